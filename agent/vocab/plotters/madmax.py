"""madMAx's chia_plot: wants a trailing `/` on its dirs."""
import re

from .base import PlotterSpec, _fixed, _n

FLAGS = {
    "-k": "k", "--size": "k", "-t": "tmp_dir", "--tmpdir": "tmp_dir",
    "-2": "tmp2_dir", "--tmpdir2": "tmp2_dir", "-d": "dst_dir", "--finaldir": "dst_dir",
    "-r": "threads", "--threads": "threads", "-u": "buckets", "--buckets": "buckets",
    "-n": "num", "--count": "num", "-v": "n_buckets3", "--buckets3": "n_buckets3",
    "-p": "pool_key", "--poolkey": "pool_key", "-c": "pool_contract", "--contract": "pool_contract",
    "-f": "farmer_key", "--farmerkey": "farmer_key", "-s": None, "--stagedir": None,
    "-K": "rmulti2", "--rmulti2": "rmulti2", "-x": None, "--port": None,
    "-C": "compress_gh", "--level": "compress_gh",      # Gigahorse's CPU chia_plot
}

RULES = (
    ("Plot Name:", None, _fixed((1, 1))),
    ("[P1] Table", re.compile(r"\[P1\] Table (\d) took"), _n(lambda n: (1, min(n + 1, 7)))),
    ("[P2] max_table_size", None, _fixed((2, 1))),
    ("[P2] Table", re.compile(r"\[P2\] Table (\d) rewrite took"), _n(lambda n: (2, 9 - n))),
    ("Phase 2 took", None, _fixed((3, 0))),
    ("Wrote plot header", None, _fixed((3, 1))),
    ("[P3-2] Table", re.compile(r"\[P3-2\] Table (\d) took"), _n(lambda n: (3, min(n, 6)))),
    ("Phase 3 took", None, _fixed((4, 0))),
    ("[P4] Starting to write C1 and C3 tables", None, _fixed((4, 1))),
    ("[P4] Writing C2 table", None, _fixed((4, 2))),
    ("Phase 4 took", None, _fixed((5, 0))),
    ("Started copy to", None, _fixed((5, 1))),
    ("Renamed final plot", None, _fixed((5, 2))),
)
SIGNATURES = ("Multi-threaded pipelined Chia", "[P1] Table", "Plot Name: ")


def recognise(argv0):
    return argv0.startswith("chia_plot")


SPEC = PlotterSpec(
    "madmax", (25, None, "madmax makes k >= 25"),
    (16, 65536, "madmax takes 2^4 to 2^16 buckets"), needs_keys=True,
    executable="chia_plot", options=frozenset({"n_buckets3", "rmulti2"}),
    flags=FLAGS, signatures=SIGNATURES, rules=RULES, finished=("Renamed final plot",),
    cause_marks=(" failed with: ",),       # "thread failed with: std::bad_alloc"
    reader="madmax")
