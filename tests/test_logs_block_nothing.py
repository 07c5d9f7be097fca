"""Logs never stall an agent: reading stops at the request's deadline and
goes on from the same offset at the next request (the answer names what is
left unread), an over-long line is skipped without being parsed, and a file
in log_dir that no plot job wrote is no failed job."""
import os
import time

from agent.vocab import lognames
from tests.agent_helpers import host_dirs

BANNER = (b"Starting plotting progress into temporary dirs: /t and /t\n"
          b"ID: " + b"ab" * 32 + b"\nPlot size is: 18\nStarting phase 1/4: Forward Propagation\n")
FILLER = b"\tBucket 7 uniform sort. Ram: 0.273GiB, u_sort min: 0.000GiB, qs min: 0.000GiB.\n"


def _log(d, content, ago):
    path = os.path.join(d["log"], lognames.new_log_name("chiapos", time.time() - ago))
    with open(path, "wb") as f:
        f.write(content)
    return path


def _snapshot(agent, config, timeout_s):
    began = time.monotonic()
    snap = agent.ok("snapshot", config=config, timeout_s=timeout_s)
    return snap, time.monotonic() - began


def test_a_huge_log_is_read_across_requests_each_answered_by_its_deadline(agent, tmp_path):
    d, config = host_dirs(tmp_path / "host")
    big = _log(d, BANNER + FILLER * 500_000 + b"Error: No space left on device\n", 600)
    seen, answers = [], 0
    while True:
        snap, took = _snapshot(agent, config, 6)
        answers += 1
        assert took < 6, f"answer {answers} came {took:.1f}s after a 6s deadline"
        seen.append(snap["logs_pending"])
        if not snap["logs_pending"]:
            break
        assert snap["dead"] == [] and answers < 40
    assert seen[0] == [big] and answers >= 2, seen       # more than one request's reading
    (dead,) = snap["dead"]                               # the end of the log, read at last
    assert dead["log_file"] == big and dead["error"] == "Error: No space left on device"


def test_an_over_long_line_is_skipped_not_parsed(agent, tmp_path):
    d, config = host_dirs(tmp_path / "host")
    path = _log(d, BANNER + b"x" * (20 << 20) + b"\nStarting phase 2/4: Backpropagation\n"
                + b"\x00\xff" * (5 << 20) + b"\nError: bad alloc in table 3\n", 600)
    snap, _ = _snapshot(agent, config, 3)
    assert snap["logs_pending"] == [], "30 MB of two lines takes no request's whole time"
    (dead,) = snap["dead"]
    assert dead["log_file"] == path and dead["phase"] == [2, 0]
    assert dead["error"] == "Error: bad alloc in table 3"


def test_files_no_plot_job_wrote_are_not_failed_jobs(agent, tmp_path):
    d, config = host_dirs(tmp_path / "host")
    for i in range(300):        # stub logs under plotfleet's own log names
        _log(d, b"hello %d\n" % i if i % 2 else b"", 600 + i)
    snap, _ = _snapshot(agent, config, 8)
    assert snap["dead"] == [] and snap["failures"]["count"] == 0, snap["failures"]
    # a job this agent started that died printing nothing is still a failed job
    r = agent.ok("start_job", config=config, argv=["/bin/sh", "-c", "exit 3"], plotter="chiapos",
                 k=18, tmp_dir=d["tmp"], dst_dir=d["dst"], limits={}, timeout_s=8)
    deadline = time.time() + 20
    while True:
        snap, _ = _snapshot(agent, config, 8)
        if snap["failures"]["count"] or time.time() > deadline:
            break
        time.sleep(0.2)
    assert snap["failures"]["count"] == 1 and [x["log_file"] for x in snap["dead"]] == \
        [r["log_file"]], snap["dead"]
