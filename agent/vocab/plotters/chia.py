"""`chia plots create` (and `chia plotters chiapos`): Chia's own plotter."""
import re

from .base import PlotterSpec, _fixed, _n

FLAGS = {
    "-k": "k", "--size": "k", "-t": "tmp_dir", "--tmp_dir": "tmp_dir",
    "-2": "tmp2_dir", "--tmp2_dir": "tmp2_dir", "-d": "dst_dir", "--final_dir": "dst_dir",
    "-r": "threads", "--num_threads": "threads", "-u": "buckets", "--buckets": "buckets",
    "-b": "buffer", "--buffer": "buffer", "-n": "num", "--num": "num",
    "-f": "farmer_key", "--farmer_public_key": "farmer_key", "-p": "pool_key",
    "--pool_public_key": "pool_key", "-c": "pool_contract", "--pool_contract_address":
    "pool_contract", "-i": None, "--plotid": None,
    "-m": None, "--memo": None, "-a": None, "--alt_fingerprint": None,
    "-D": None, "--connect_to_daemon": None,
}
SWITCHES = {"-e": "nobitfield", "--nobitfield": "nobitfield", "-x": "exclude_final_dir",
            "--exclude_final_dir": "exclude_final_dir", "--override-k": "override_k"}

# `chia plotters bladebit|madmax|chiapos` (chia/plotters/plotters.py): its own
# flag names, the same for every plotter it wraps.  For bladebit, --compress
# defaults to 1 there.
PLOTTERS_FLAGS = {
    "-k": "k", "--size": "k", "-t": "tmp_dir", "--tmp_dir": "tmp_dir",
    "-2": "tmp2_dir", "--tmp_dir2": "tmp2_dir", "-d": "dst_dir", "--final_dir": "dst_dir",
    "-r": "threads", "--threads": "threads", "-u": "buckets", "--buckets": "buckets",
    "-n": "num", "--count": "num", "-b": "buffer", "--buffer": "buffer",
    "--compress": "compress", "--device": "device", "--disk-128": False, "--disk-16": False,
    "-v": None, "--buckets3": None, "-K": None, "--rmulti2": None, "-s": None,
    "--stripes": None, "-m": None, "--memo": None, "-i": None, "--id": None,
    "-c": None, "--contract": None, "-p": None, "--pool-key": None, "-f": None,
    "--farmerkey": None, "-a": None, "--alt_fingerprint": None, "--cache": None,
    "--f1-threads": None, "--fp-threads": None, "--c-threads": None,
    "--p2-threads": None, "--p3-threads": None,
}

RULES = (
    ("Starting phase", re.compile(r"Starting phase (\d)/4"), _n(lambda n: (n, 0))),
    ("Computing table", re.compile(r"Computing table (\d)"), _n(lambda n: (1, n))),
    ("Backpropagating on table", re.compile(r"Backpropagating on table (\d)"),
     _n(lambda n: (2, 8 - n))),
    ("table 1 new size", None, _fixed((2, 7))),
    ("Compressing tables", re.compile(r"Compressing tables (\d) and \d"),
     _n(lambda n: (3, n))),
    ("Starting to write C1 and C3 tables", None, _fixed((4, 1))),
    ("Writing C2 table", None, _fixed((4, 2))),
    ("Final table pointers", None, _fixed((4, 3))),
    ("Approximate working space used", None, _fixed((5, 0))),
    ("Copied final file", None, _fixed((5, 1))),
    ("Removed temp2 file", None, _fixed((5, 2))),
    ("Renamed final file", None, _fixed((5, 3))),
)
SIGNATURES = ("Starting plotting progress into temporary dirs", "Starting phase 1/4",
              "Plot size is: ")
FINISHED = ("Renamed final file",)

SPEC = PlotterSpec(
    "chia", (25, None, "chia plots create refuses k < 25; use plotter chiapos for small plots"),
    (16, 128, "chia plots create takes 16 to 128 buckets"), executable="chia",
    options=frozenset({"nobitfield", "exclude_final_dir"}),
    flags=FLAGS, switches=SWITCHES, signatures=SIGNATURES, rules=RULES, finished=FINISHED,
    reader="chia")
