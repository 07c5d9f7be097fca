"""bladebit (v1 ramplot; v3 ramplot, diskplot, cudaplot): k32 only.

Global options, then the mode, its options, then the dst dir."""
import re

from .base import PlotterSpec, _fixed, _n

GLOBAL_FLAGS = {
    "-t": "threads", "--threads": "threads", "-n": "num", "--count": "num",
    "-f": "farmer_key", "--farmer-key": "farmer_key", "-p": "pool_key", "--pool-key": "pool_key",
    "-c": "pool_contract", "--pool-contract": "pool_contract", "-i": None, "--plot-id": None,
    "--memo": None, "--compress": "compress", "-z": "compress", "-k": "k", "--size": "k",
}
MODE_FLAGS = {
    "-t1": "tmp_dir", "--temp1": "tmp_dir", "-t2": "tmp2_dir", "--temp2": "tmp2_dir",
    "-b": "buckets", "--buckets": "buckets", "--cache": None, "--f1-threads": None,
    "--fp-threads": None, "--c-threads": None, "--p2-threads": None, "--p3-threads": None,
    "--device": "device", "-d": "device",
}
MODE_SWITCHES = {"--disk-128": "disk_128", "--disk-16": "disk_16"}
MODES = ("ramplot", "diskplot", "cudaplot")
BINARIES = ("bladebit", "bladebit_cuda", "bladebit.exe", "bladebit_cuda.exe")

# bladebit, every mode of v1..v3 (ramplot = v1's only mode).  DESIGN.md's
# table for v1, plus what v3 prints, read from bladebit's sources
# (src/plotmem, src/plotdisk, cuda/CudaPlotter.cu, CudaPlotPhase2/3.cu) and
# real logs (tests/test_plotters_today.py names them):
#   ramplot   "Running Phase N" -> N:0, "Forward propagating to table N" -> 1:N,
#             "Prunning table N" -> 2:(7-N), "Compressing tables N and N+1" -> 3:N,
#             "Writing P7/C1/C2/C3" -> 4:1..4:4, "Finished Phase N in" -> (N+1):0,
#             "Writing final plot tables to disk" -> 5:1
#   diskplot  "Generating f1" -> 1:0, "Finished f1 generation in" -> 1:1,
#             "Completed table N in .. with E entries." -> 1:N,
#             "Finished marking table N" -> 2:(7-N), "Compressing tables N and N+1." -> 3:N,
#             "Finished Phase N in" -> (N+1):0, "Finished writing plot" -> 5:2
#   cudaplot  "Generating F1" -> 1:0, "Finished F1 in" -> 1:1,
#             "Table N completed in" -> 1:N, "Completed Phase 1 in" -> 2:0,
#             "Marked Table N in" -> 2:(7-N), "Completed Phase 2 in" -> 3:0,
#             "Compressing Table 2 and 3..." then "Compressing tables 3 and 4..." -> 3:N
#             (the case differs within one log: matched without case),
#             "Completed Phase 3 in" -> 4:0 (cudaplot writes C tables inside phase 3:
#             it has no phase 4), "Completed Plot 1 in" (built; the write to the dst
#             dir goes on) -> 5:1, last "Completed writing plot in" -> 5:2 (done).
#   cudaplot's phase-3 "Completed table N in .. with A / B entries" is no phase-1
#   line: only the diskplot form (one entry count, no " / ") sets 1:N.
RULES = (
    ("Allocating buffers", None, _fixed((0, 1))),
    ("Generating plot", None, _fixed((0, 2))),
    ("Running Phase", re.compile(r"Running Phase (\d)"), _n(lambda n: (n, 0))),
    ("generating f1", re.compile(r"Generating F1\b(?! generation)", re.I), _fixed((1, 0))),
    ("Finished F1 generation", None, _fixed((1, 1))),
    ("finished f1 generation", re.compile(r"Finished f1 generation", re.I), _fixed((1, 1))),
    ("Completed F1 in", None, _fixed((1, 1))),
    ("Finished F1 in", None, _fixed((1, 1))),
    ("Forward propagating to table", re.compile(r"Forward propagating to table (\d)"),
     _n(lambda n: (1, n))),
    ("Completed table", re.compile(r"Completed table (\d) in [\d.]+ seconds with \d+ entries"),
     _n(lambda n: (1, n))),
    ("completed in", re.compile(r"Table (\d) completed in"), _n(lambda n: (1, n))),
    ("Finished Phase", re.compile(r"Finished Phase (\d)"), _n(lambda n: (n + 1, 0))),
    ("Completed Phase", re.compile(r"Completed Phase (\d) in"), _n(lambda n: (n + 1, 0))),
    ("Prunning table", re.compile(r"Prunning table (\d)"), _n(lambda n: (2, 7 - n))),
    ("Finished marking table", re.compile(r"Finished marking table (\d)"),
     _n(lambda n: (2, 7 - n))),
    ("Marked Table", re.compile(r"Marked Table (\d)"), _n(lambda n: (2, 7 - n))),
    ("compressing table", re.compile(r"(?<!Finished )compressing tables? (\d) and \d", re.I),
     _n(lambda n: (3, n))),
    ("Writing P7", None, _fixed((4, 1))),
    ("Writing C1 table", None, _fixed((4, 2))),
    ("Writing C2 table", None, _fixed((4, 3))),
    ("Writing C3 table", None, _fixed((4, 4))),
    ("Writing final plot tables to disk", None, _fixed((5, 1))),
    ("Completed Plot", re.compile(r"Completed Plot \d+ in"), _fixed((5, 1))),
    ("Finished writing plot", None, _fixed((5, 2))),
    ("Completed writing plot", None, _fixed((5, 2))),
)
SIGNATURES = ("Bladebit", "bladebit", "Generating plot ", "Running Phase 1",
              "Plot temporary file:", "Generating F1", "Table 2 completed in")
FINISHED = ("Finished plotting in", "Finished writing plot", "Completed writing plot")
# bladebit's Panic()/Fatal() print the header and the message on the next line,
# and its crash handler a banner before the backtrace (bladebit issues #268,
# #41, #260: github.com/Chia-Network/bladebit/issues/268)
FATAL_HEADERS = ("*** Panic!!! *** Fatal Error:", "Fatal Error:")
CRASH_MARKS = ("*** Crashed! ***",)

SPEC = PlotterSpec(
    "bladebit", (32, 32, "bladebit makes k32 only"),
    (64, 1024, "bladebit diskplot takes 64 to 1024 buckets"), needs_keys=True,
    executable="bladebit", compress_format="bladebit",
    options=frozenset({"cuda_device", "cuda_devices", "disk_128", "disk_16"}),
    flags=dict(GLOBAL_FLAGS, **MODE_FLAGS), switches=MODE_SWITCHES, device_flag="--device",
    signatures=SIGNATURES, rules=RULES, finished=FINISHED, fatal_headers=FATAL_HEADERS,
    crash_marks=CRASH_MARKS, reader="bladebit")
