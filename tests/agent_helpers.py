"""Helpers for the agent tests: a real `python -m agent serve` process, host
dirs, the DESIGN.md phase table as an oracle, and madmax/bladebit logs in
those plotters' real output formats."""
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AgentProc:
    """`python -m agent serve` spoken to over JSON lines, as the controller does."""

    def __init__(self):
        self.p = subprocess.Popen([sys.executable, "-m", "agent", "serve"], cwd=ROOT,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.n = 0

    def raw(self, op, **args):
        self.n += 1
        self.p.stdin.write(json.dumps(dict(args, id=self.n, op=op)) + "\n")
        self.p.stdin.flush()
        resp = json.loads(self.p.stdout.readline())
        assert resp["id"] == self.n
        return resp

    def ok(self, op, **args):
        resp = self.raw(op, **args)
        assert resp["ok"], resp
        return resp["result"]

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


def host_dirs(base):
    """A host's dirs under `base` and its agent config (its farm dir is on the
    test machine's root filesystem: require_mounted_farm off)."""
    d = {k: os.path.join(str(base), k) for k in ("tmp", "tmp2", "dst", "log", "farm")}
    for p in d.values():
        os.makedirs(p, exist_ok=True)
    config = {"tmp_dirs": [d["tmp"]], "tmp2_dir": d["tmp2"], "dst_dirs": [d["dst"]],
              "log_dir": d["log"], "farm_dirs": [d["farm"]], "stall_after_s": 600.0,
              "require_mounted_farm": False}
    return d, config


def chiapos_argv(d, k=18, plot_id=None):
    argv = ["plotfleet-chiapos", "-k", str(k), "-t", d["tmp"], "-2", d["tmp2"],
            "-d", d["dst"], "-b", "300", "-u", "32", "-r", "2"]
    return argv + (["--id", plot_id] if plot_id else [])


def wait_for(fn, timeout=30.0, every=0.05):
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > end:
            raise AssertionError("timed out waiting for %s" % fn)
        time.sleep(every)


# -- the DESIGN.md phase table, written out independently of agent/logparse ----

def _t(pattern, fn):
    return (re.compile(pattern), fn)


DESIGN_TABLE = {
    "chia": [
        _t(r"Starting phase (\d)/4", lambda n: (n, 0)),
        _t(r"Computing table (\d)", lambda n: (1, n)),
        _t(r"Backpropagating on table (\d)", lambda n: (2, 8 - n)),
        _t(r"table 1 new size", lambda n: (2, 7)),
        _t(r"Compressing tables (\d) and", lambda n: (3, n)),
        _t(r"Starting to write C1 and C3 tables", lambda n: (4, 1)),
        _t(r"Writing C2 table", lambda n: (4, 2)),
        _t(r"Final table pointers", lambda n: (4, 3)),
        _t(r"Approximate working space used", lambda n: (5, 0)),
        _t(r"Copied final file", lambda n: (5, 1)),
        _t(r"Removed temp2 file", lambda n: (5, 2)),
        _t(r"Renamed final file", lambda n: (5, 3)),
    ],
}


def design_phase(lines, plotter="chia"):
    """Phase per DESIGN.md after these complete lines: last matching line wins."""
    phase = (0, 0)
    for line in lines:
        for rx, fn in DESIGN_TABLE[plotter]:
            m = rx.search(line)
            if m:
                phase = fn(int(m.group(1)) if m.groups() else None)
                break
    return phase


# -- other plotters' logs ----------------------------------------------------

PID_A = "a" * 8 + "0123456789abcdef" * 3 + "b" * 8
TMP_A, TMP2_A, DST_A = "/mnt/nvme/tmp/", "/mnt/nvme/tmp2/", "/mnt/hdd1/plots/"
MADMAX_NAME = "plot-k32-2021-06-20-12-33-" + PID_A

# (line, phase after it) for a madmax run, in chia_plot's real output format.
MADMAX_LOG = [
    ("Multi-threaded pipelined Chia k32 plotter - 974d6e5", (0, 0)),
    ("Final Directory: " + DST_A, (0, 0)),
    ("Number of Plots: 1", (0, 0)),
    ("Crafting plot 1 out of 1", (0, 0)),
    ("Process ID: 4242", (0, 0)),
    ("Number of Threads: 8", (0, 0)),
    ("Number of Buckets P1:    2^8 (256)", (0, 0)),
    ("Working Directory:   " + TMP_A, (0, 0)),
    ("Working Directory 2: " + TMP2_A, (0, 0)),
    ("Plot Name: " + MADMAX_NAME, (1, 1)),
    ("[P1] Table 1 took 17.3898 sec", (1, 2)),
    ("[P1] Table 2 took 141.258 sec, found 4294967296 matches", (1, 3)),
    ("[P1] Table 3 took 150.1 sec, found 4294967296 matches", (1, 4)),
    ("[P1] Table 4 took 160.2 sec, found 4294967296 matches", (1, 5)),
    ("[P1] Table 5 took 170.3 sec, found 4294967296 matches", (1, 6)),
    ("[P1] Table 6 took 180.4 sec, found 4294967296 matches", (1, 7)),
    ("[P1] Table 7 took 155.431 sec, found 4294763479 matches", (1, 7)),
    ("Phase 1 took 1042.73 sec", (1, 7)),
    ("[P2] max_table_size = 4295030312", (2, 1)),
    ("[P2] Table 7 scan took 14.9023 sec", (2, 1)),
    ("[P2] Table 7 rewrite took 43.6577 sec, dropped 0 entries (0 %)", (2, 2)),
    ("[P2] Table 6 scan took 32.8431 sec", (2, 2)),
    ("[P2] Table 6 rewrite took 58.9898 sec, dropped 581354793 entries (13.5353 %)", (2, 3)),
    ("[P2] Table 2 rewrite took 49.0223 sec, dropped 869770427 entries (20.2485 %)", (2, 7)),
    ("Phase 2 took 497.583 sec", (3, 0)),
    ("Wrote plot header with 268 bytes", (3, 1)),
    ("[P3-1] Table 2 took 54.2213 sec, wrote 3429190551 right entries", (3, 1)),
    ("[P3-2] Table 2 took 54.0466 sec, wrote 3429190551 left entries, 3429190551 final", (3, 2)),
    ("[P3-2] Table 6 took 60.0 sec, wrote 1 left entries, 1 final", (3, 6)),
    ("[P3-2] Table 7 took 61.0 sec, wrote 1 left entries, 1 final", (3, 6)),
    ("Phase 3 took 820.124 sec, wrote 21876183452 entries to final plot", (4, 0)),
    ("[P4] Starting to write C1 and C3 tables", (4, 1)),
    ("[P4] Finished writing C1 and C3 tables", (4, 1)),
    ("[P4] Writing C2 table", (4, 2)),
    ("[P4] Finished writing C2 table", (4, 2)),
    ("Phase 4 took 89.1981 sec, final plot size is 108825137564 bytes", (5, 0)),
    ("Total plot creation time was 2449.69 sec (40.8282 min)", (5, 0)),
    ("Started copy to " + DST_A + MADMAX_NAME + ".plot", (5, 1)),
    ("Copy to " + DST_A + MADMAX_NAME + ".plot finished, took 312.335 sec, 332.391 MB/s avg.",
     (5, 1)),
    ("Renamed final plot to " + DST_A + MADMAX_NAME + ".plot", (5, 2)),
]
MADMAX_TIMES = {"phase_s": [1042.73, 497.583, 820.124, 89.1981], "total_s": 2449.69,
                "copy_s": 312.335}

BB_TMPFILE = DST_A + "plot-k32-2023-09-12-19-26-" + PID_A + ".plot.tmp"
BLADEBIT_RAM_LOG = [
    ("Bladebit Chia Plotter", (0, 0)),
    ("Version      : 3.1.0", (0, 0)),
    ("[Global Plotting Config]", (0, 0)),
    (" Will create 1 plots.", (0, 0)),
    (" Output path           : " + DST_A, (0, 0)),
    ("[Bladebit RAM Plotter]", (0, 0)),
    ("Allocating buffers (this may take a few seconds)...", (0, 1)),
    ("Generating plot 1 / 1: " + PID_A, (0, 2)),
    ("Plot temporary file: " + BB_TMPFILE, (0, 2)),
    ("Running Phase 1", (1, 0)),
    ("Generating F1...", (1, 0)),
    ("Finished F1 generation in 4.17 seconds.", (1, 1)),
    ("Forward propagating to table 2...", (1, 2)),
    ("Finished forward propagating table 2 in 28.86 seconds.", (1, 2)),
    ("Forward propagating to table 7...", (1, 7)),
    ("Finished Phase 1 in 237.30 seconds.", (2, 0)),
    ("Running Phase 2", (2, 0)),
    ("  Prunning table 6...", (2, 1)),
    ("  Finished prunning table 6 in 1.57 seconds.", (2, 1)),
    ("  Prunning table 2...", (2, 5)),
    ("Finished Phase 2 in 26.52 seconds.", (3, 0)),
    ("Running Phase 3", (3, 0)),
    ("  Compressing tables 1 and 2...", (3, 1)),
    ("  Compressing tables 6 and 7...", (3, 6)),
    ("Finished Phase 3 in 150.66 seconds.", (4, 0)),
    ("Running Phase 4", (4, 0)),
    ("  Writing P7.", (4, 1)),
    ("  Finished writing P7 in 0.62 seconds.", (4, 1)),
    ("  Writing C1 table.", (4, 2)),
    ("  Finished writing C1 table in 0.00 seconds.", (4, 2)),
    ("  Writing C2 table.", (4, 3)),
    ("  Finished writing C2 table in 0.00 seconds.", (4, 3)),
    ("  Writing C3 table.", (4, 4)),
    ("  Finished writing C3 table in 3.73 seconds.", (4, 4)),
    ("Finished Phase 4 in 4.36 seconds.", (5, 0)),
    ("Writing final plot tables to disk", (5, 1)),
    ("Finished writing tables to disk in 5.74 seconds.", (5, 1)),
    ("Finished plotting in 418.84 seconds (6.98 minutes).", (5, 1)),
]
BLADEBIT_RAM_TIMES = {"phase_s": [237.30, 26.52, 150.66, 4.36], "total_s": 418.84}

BLADEBIT_DISK_LOG = [
    ("Bladebit Chia Plotter", (0, 0)),
    (" Output path           : " + DST_A, (0, 0)),
    ("[Bladebit Disk Plotter]", (0, 0)),
    (" Temp1 path     : " + TMP_A, (0, 0)),
    (" Temp2 path     : " + TMP2_A, (0, 0)),
    ("Generating plot 1 / 1: " + PID_A, (0, 2)),
    ("Started plot.", (0, 2)),
    ("Running Phase 1", (1, 0)),
    ("Table 1: F1 generation", (1, 0)),
    ("Generating f1...", (1, 0)),
    ("Completed F1 in 10.39 seconds.", (1, 1)),
    ("Table 2", (1, 1)),
    (" Sorting      : Completed in 24.18 seconds.", (1, 1)),
    ("Completed table 2 in 86.20 seconds with 4294967296 entries.", (1, 2)),
    ("Completed table 7 in 74.86 seconds with 4293182089 entries.", (1, 7)),
    ("Completed Phase 1 in 569.86 seconds", (2, 0)),
    ("Running Phase 2", (2, 0)),
    ("Finished marking table 6 in 17.07 seconds.", (2, 1)),
    ("Finished marking table 3 in 17.07 seconds.", (2, 4)),
    ("Completed Phase 2 in 88.17 seconds", (3, 0)),
    ("Running Phase 3", (3, 0)),
    ("Compressing tables 1 and 2.", (3, 1)),
    (" Step 1 completed step in 13.52 seconds.", (3, 1)),
    ("Finished compressing tables 1 and 2 in 67.65 seconds.", (3, 1)),
    ("Compressing tables 6 and 7.", (3, 6)),
    ("Completed Phase 3 in 402.50 seconds", (4, 0)),
    ("Running Phase 4", (4, 0)),
    ("Completed Phase 4 in 12.25 seconds", (5, 0)),
    ("Finished plotting in 1072.78 seconds ( 17.9 minutes ).", (5, 0)),
]
BLADEBIT_DISK_TIMES = {"phase_s": [569.86, 88.17, 402.50, 12.25], "total_s": 1072.78}

BLADEBIT_CUDA_LOG = [
    ("Bladebit Chia Plotter", (0, 0)),
    ("[Bladebit CUDA Plotter]", (0, 0)),
    ("Allocating buffers (this may take a few seconds)...", (0, 1)),
    ("Generating plot 1 / 1: " + PID_A, (0, 2)),
    ("Plot temporary file: " + BB_TMPFILE, (0, 2)),
    ("Generating F1", (1, 0)),      # cudaplot: phase 1 starts with F1
    ("Finished F1 in 2.75 seconds.", (1, 1)),
    ("Table 2 completed in 6.19 seconds with 4294967296 entries.", (1, 2)),
    ("Table 7 completed in 6.95 seconds with 4292384371 entries.", (1, 7)),
    ("Finalizing Table 7", (1, 7)),
    ("Finalized Table 7 in 3.98 seconds.", (1, 7)),
    ("Completed Phase 1 in 68.00 seconds", (2, 0)),
    ("Marked Table 6 in 2.16 seconds.", (2, 1)),
    ("Marked Table 3 in 2.17 seconds.", (2, 4)),
    ("Completed Phase 2 in 8.66 seconds", (3, 0)),
    ("Compressing Table 2 and 3...", (3, 2)),
    ("  Step 1 completed step in 4.72 seconds.", (3, 2)),
    ("Compressing Table 6 and 7...", (3, 6)),
    ("Completed Phase 3 in 189.95 seconds", (4, 0)),
    ("Completed Plot 1 in 245.15 seconds ( 4.09 minutes )", (5, 1)),
    ("Completed writing plot in 207.92 seconds", (5, 2)),
]
BLADEBIT_CUDA_TIMES = {"phase_s": [68.00, 8.66, 189.95, None], "total_s": 245.15,
                       "copy_s": 207.92}


def text_of(log):
    return "".join(line + "\n" for line, _ in log)
