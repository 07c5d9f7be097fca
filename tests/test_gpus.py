"""Several GPUs on one plotter: `cuda_devices: [0, 1, ...]` runs one job per
GPU, each pinned with the plotter's own flag; a job's GPU is read back from
its argv (a job started by hand counts against its GPU); a GPU whose jobs
keep failing backs off alone."""
import os
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from orchestrator.config.inventory import load_inventory
from orchestrator.core.decisions import Wait
from orchestrator.core.scheduler import _pick_device, judge_plotter, schedule
from orchestrator.core.state import Failures, host_state_from_snapshot
from orchestrator.errors import InventoryError
from tests.agent_helpers import host_dirs, wait_for
from tests.factories import NOW, fleet, host_state, inventory, job, plotter

KEYS = dict(farmer_key="f" * 96, pool_key="p" * 96, plotter="gigahorse", compress=7,
            global_stagger_m=0.0)


def gpu_host(**fields):
    return plotter(**dict(dict(KEYS, cuda_devices=(0, 1)), **fields))


def _flag(argv, flag):
    return argv[argv.index(flag) + 1]


def test_each_job_is_pinned_to_a_free_gpu_by_the_plotters_own_flag():
    h = gpu_host()
    start = judge_plotter(h, host_state(h), NOW, NOW)
    assert (start.device, _flag(start.argv, "-g")) == (0, "0")
    # a job on GPU 0 (started by hand: its argv said -g 0): the next goes to GPU 1
    start = judge_plotter(h, host_state(h, jobs=[job(device=0, plotter="gigahorse")]), NOW, NOW)
    assert (start.device, _flag(start.argv, "-g")) == (1, "1")
    # a job that names no GPU runs on the plotter's own GPU 0
    start = judge_plotter(h, host_state(h, jobs=[job(device=None, plotter="gigahorse")]), NOW, NOW)
    assert start.device == 1
    busy = host_state(h, jobs=[job(device=0, pid=1), job(device=1, pid=2)])
    w = judge_plotter(h, busy, NOW, NOW)
    assert isinstance(w, Wait) and w.reason == "max jobs 2/2"
    # bladebit cudaplot's flag is --device
    b = plotter(**dict(KEYS, plotter="bladebit", bladebit_mode="cudaplot", cuda_devices=(2, 3)))
    start = judge_plotter(b, host_state(b, jobs=[job(device=2)]), NOW, NOW)
    assert _flag(start.argv, "--device") == "3"


def test_global_max_jobs_still_caps_the_total():
    h = gpu_host(cuda_devices=(0, 1, 2), global_max_jobs=2)
    w = judge_plotter(h, host_state(h, jobs=[job(device=0, pid=1), job(device=2, pid=2)]), NOW, NOW)
    assert isinstance(w, Wait) and w.reason == "max jobs 2/2"
    h = gpu_host(cuda_devices=(0, 1, 2), global_max_jobs=5)
    w = judge_plotter(h, host_state(h, jobs=[job(device=0, pid=1), job(device=1, pid=2),
                                            job(device=2, pid=3)]), NOW, NOW)
    assert w.reason == "no GPU free: GPU 0 busy, GPU 1 busy, GPU 2 busy"


def test_a_failing_gpu_backs_off_alone():
    h = gpu_host(max_failures=2, failure_backoff_m=60)
    bad = {"0": {"count": 3, "last_error": "CUDA error 719: unspecified launch failure",
                 "last_at": NOW - 60}}
    hs = host_state(h)
    hs = type(hs)(**dict(hs.__dict__, failures=Failures(count=3, last_at=NOW - 60, devices=bad)))
    d = schedule(fleet(hs), inventory(h), NOW)
    assert [s.device for s in d.starts] == [1], d.waits     # GPU 1 is not held up
    bad["1"] = dict(bad["0"])
    d = schedule(fleet(hs), inventory(h), NOW)
    assert d.starts == () and d.waits[0].blocked and "GPU" in d.waits[0].reason


@pytest.mark.parametrize("vars, why", [
    (dict(cuda_device=0, cuda_devices=[0, 1]),
     "cuda_devices and cuda_device cannot both be set (cuda_device is the one-GPU form)"),
    (dict(cuda_devices=[0, 0]), "cuda_devices lists a GPU twice: [0, 0]"),
    (dict(cuda_devices=[]), "cuda_devices must be a list of GPU numbers (0, 1, ...), got []"),
    (dict(cuda_devices=["a"]), "cuda_devices must be a list of GPU numbers (0, 1, ...)"),
    (dict(plotter="chiapos", k=18, cuda_devices=[0]),
     "cuda_devices is for plotter bladebit or gigahorse, not chiapos"),
    (dict(plotter="bladebit", bladebit_mode="ramplot", compress=1, cuda_devices=[0, 1]),
     "cuda_devices is for bladebit_mode cudaplot, not ramplot"),
])
def test_bad_gpu_settings_are_one_line_at_load(tmp_path, monkeypatch, vars, why):
    import yaml
    monkeypatch.chdir(tmp_path)
    v = dict(tmp_dirs=["/t"], dst_dirs=["/d"], log_dir="/l", k=32, farmer_key="f" * 96,
             pool_key="p" * 96, plotter="gigahorse")
    v.update(vars)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(
        {"all": {"children": {"plotters": {"hosts": {"gpu1": v}}}}}))
    with pytest.raises(InventoryError) as e:
        load_inventory("inventory.yaml")
    assert str(e.value).startswith("inventory.yaml: host gpu1: " + why), str(e.value)
    v.pop("cuda_device", None)
    v.update(plotter="gigahorse", k=32, cuda_devices=[1, 0])
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(
        {"all": {"children": {"plotters": {"hosts": {"gpu1": v}}}}}))
    assert load_inventory("inventory.yaml").host("gpu1").cuda_devices == (1, 0)


# -- a real agent: a job's GPU read back from its argv; failures per GPU -------

# No GPU here: a stand-in for cuda_plot_k32 that prints what Gigahorse 3.0
# printed when its GPU failed (github.com/madMAx43v3r/chia-gigahorse/issues/301)
# and exits as it did; the agent, its logs and the scheduler are real.
# Its process is named cuda_plot_k32 with the argv it was given, as the real one.
FAILING = textwrap.dedent("""\
    import sys, time
    print("Gigahorse 3.0 k32 CUDA plotter - 94d0ea0", flush=True)
    print("Crafting plot 1 out of 1 (2024/04/07 01:53:38)", flush=True)
    if "--hold" in sys.argv:
        time.sleep(60)
    print("P3 upload thread failed with: CUDA error 719: unspecified launch failure", flush=True)
    print("terminate called after throwing an instance of 'std::runtime_error'", flush=True)
    print("  what():", flush=True)
    sys.exit(134)
    """)


def test_a_jobs_gpu_is_read_from_its_argv_and_its_failures_count_against_it(agent, tmp_path):
    d, config = host_dirs(tmp_path / "host")
    exe = tmp_path / "bin" / "cuda_plot_k32"
    exe.parent.mkdir()
    (tmp_path / "bin" / "gigahorse.py").write_text(FAILING)
    exe.write_text(f'#!/bin/bash\nexec -a cuda_plot_k32 {sys.executable} '
                   f'{tmp_path / "bin" / "gigahorse.py"} "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    h = plotter("gpu1", **dict(KEYS, tmp_dirs=(d["tmp"],), dst_dirs=(d["dst"],),
                               log_dir=d["log"], executable=str(exe), max_failures=2,
                               failure_backoff_m=60, cuda_devices=(0, 1)))

    def run(device, *extra):
        argv = [str(exe), "-g", str(device), "-t", d["tmp"] + "/", "-d", d["dst"] + "/"] + list(extra)
        r = agent.ok("start_job", config=config, argv=argv, plotter="gigahorse", k=32,
                     tmp_dir=d["tmp"], dst_dir=d["dst"], limits={})
        return r["pid"]

    # a job on GPU 1 started by hand (not by plotfleet): its GPU is read from -g
    hand = subprocess.Popen([str(exe), "-g", "1", "-t", d["tmp"] + "/", "-d", d["dst"] + "/",
                             "--hold"], stdout=open(tmp_path / "by-hand.log", "w"),
                            stderr=subprocess.STDOUT)
    held = hand.pid
    try:
        snap = wait_for(lambda: [j for j in agent.ok("snapshot", config=config)["jobs"]
                                 if j["pid"] == held], 20)
        assert snap[0]["device"] == 1 and snap[0]["plotter"] == "gigahorse"
        hs = host_state_from_snapshot("gpu1", ("plotter",), agent.ok("snapshot", config=config))
        # (the room rules are not what this asks: k32 needs more tmp than here)
        assert _pick_device(h, hs, time.time()) == (0, None)
    finally:
        hand.kill()
        hand.wait()
    # two jobs fail on GPU 0: GPU 0 backs off, GPU 1 does not
    for _ in range(2):
        pid = run(0)
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                 open(f"/proc/{pid}/stat").read().split()[2] == "Z", 20)
    snap = wait_for(lambda: (lambda s: s if s["failures"].get("devices", {}).get("0", {})
                             .get("count", 0) >= 2 else None)(
        agent.ok("snapshot", config=config)), 20)
    gpu0 = snap["failures"]["devices"]["0"]
    assert gpu0["last_error"] == ("P3 upload thread failed with: CUDA error 719: "
                                  "unspecified launch failure")
    assert snap["failures"]["devices"].get("1", {}).get("count", 0) == 0
    assert all("_gpu" in n for n in os.listdir(d["log"]))
    hs = host_state_from_snapshot("gpu1", ("plotter",), snap)
    hs = type(hs)(**dict(hs.__dict__, jobs=()))
    assert _pick_device(h, hs, time.time()) == (1, None)
    assert _pick_device(h, type(hs)(**dict(hs.__dict__, jobs=(job(device=1),))),
                        time.time())[1] == "no GPU free: GPU 0 backed off (2 failed jobs in a row), GPU 1 busy"
