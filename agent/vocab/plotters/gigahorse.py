"""Gigahorse's GPU plotter (cuda_plot_k32, cuda_plot_k32_v3, ...; one binary per k).

Flags: cuda-plotter/README.md of chia-gigahorse: -r is the number of GPUs,
not threads; -d may be given more than once; -g picks the GPU; -t only
caches the finished plot for its copy to -d; -2 is the SSD of partial-RAM mode.
"""
import re

from .base import PlotterSpec, _fixed, _n

FLAGS = {
    "-C": "compress_gh", "--level": "compress_gh", "-n": "num", "--count": "num",
    "-t": "tmp_dir", "--tmpdir": "tmp_dir", "-2": "tmp2_dir", "--tmpdir2": "tmp2_dir",
    "-3": None, "--tmpdir3": None, "-d": "dst_dir", "--finaldir": "dst_dir",
    "-g": "device", "--device": "device", "-r": None, "--ndevices": None,
    "-x": None, "--port": None, "-z": None, "--dstport": None, "-p": "pool_key",
    "--poolkey": "pool_key", "-c": "pool_contract", "--contract": "pool_contract",
    "-f": "farmer_key", "--farmerkey": "farmer_key",
    "-S": None, "--streams": None, "-M": None, "--memory": None, "-k": "k", "--size": "k",
}
SWITCHES = {"-w": "waitforcopy", "--waitforcopy": "waitforcopy", "-Z": "unique",
            "--unique": "unique", "-D": "direct"}
BINARY = re.compile(r"^cuda_plot_k(\d+)")     # cuda_plot_k32, cuda_plot_k32_v3, ...

# Gigahorse (cuda_plot_k32, cuda_plot_k32_v3, ...; and its CPU chia_plot) is
# madMAx's code and prints madmax's lines where it has them ("Plot Name:",
# "[P1] Table N took", "Phase N took", "Started copy to", "Copy to .. finished");
# its phase 3 prints "[P3] Table N PDSK|LPSK|NSK took" (chia-gigahorse issue
# #120).  Mapped as madmax's:
#   "Crafting plot" -> 0:1, "Plot Name:" -> 1:0, "[P1] Table N took" -> 1:min(N+1, 7),
#   "Phase N took" -> (N+1):0, "[P2] Table N" -> 2:(9-N),
#   "[P3] Table N <step> took" -> 3:min(N, 6), "[P4]" -> 4:1,
#   "Started copy to" -> 5:1, "Copy to .. finished" / "Renamed final plot" -> 5:2.
# A GPU plotter copies the previous plot while it makes the next one: a copy
# line moves the phase only when it names the plot in progress (LogState).
# The [P2] and [P4] lines are mapped by analogy with madmax: no real log at
# hand shows them.
RULES = (
    ("Crafting plot", None, _fixed((0, 1))),
    ("Plot Name:", None, _fixed((1, 0))),
    ("[P1] Table", re.compile(r"\[P1\] Table (\d) took"), _n(lambda n: (1, min(n + 1, 7)))),
    ("Phase", re.compile(r"(?:^|[\s\]])Phase (\d) took"), _n(lambda n: (n + 1, 0))),
    ("[P2] Table", re.compile(r"\[P2\] Table (\d)"), _n(lambda n: (2, max(1, 9 - n)))),
    ("[P3] Table", re.compile(r"\[P3\] Table (\d) \w+ took"), _n(lambda n: (3, min(n, 6)))),
    ("[P4]", None, _fixed((4, 1))),
)
COPY_RULES = (
    ("Started copy to", None, _fixed((5, 1))),
    ("Renamed final plot", None, _fixed((5, 2))),
    (" finished, took", re.compile(r"Copy to .* finished, took"), _fixed((5, 2))),
)
# Gigahorse 3.x opens with "Gigahorse 3.0 k32 CUDA plotter - <commit>" and
# "Plot Format: mmx-v3.0" (chia-gigahorse issue #301); k34 builds and 2.x
# with "Chia k34 next-gen CUDA plotter - <commit>" (issue #17).  k is read
# from the banner (BANNER_K) or the plot name.
SIGNATURES = ("next-gen CUDA plotter", "next-gen plotter", "Compression Level: C",
              "CUDA plotter - ", "Plot Format: mmx-v")
BANNER_K = re.compile(r"\bk(\d+) (?:next-gen )?CUDA plotter")
# its threads report "<who> failed with: CUDA error N: ...", then the C++
# runtime ends it with an empty what() (issue #301): that line is the cause
CAUSE_MARKS = (" failed with: ",)

# as a copy line names its plot, LogState marks that plot finished
SPEC = PlotterSpec(
    "gigahorse", (29, 34, "Gigahorse's GPU plotter makes k29 to k34"), None,
    needs_keys=True, executable="cuda_plot_k{k}", compress_format="gigahorse",
    options=frozenset({"cuda_device", "cuda_devices"}), flags=FLAGS, switches=SWITCHES, device_flag="-g",
    signatures=SIGNATURES, rules=RULES + COPY_RULES, finished=(), cause_marks=CAUSE_MARKS,
    reader="gigahorse")
