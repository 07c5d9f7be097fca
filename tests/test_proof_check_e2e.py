"""Plots proven before they farm, end to end: real sshd, real chiapos k18
plots made by the agent's own plotter (their logs in log_dir), real rsync,
a real apprise alert over HTTP, driven through the real `plotfleet` command.

A bad plot here is a good plot with a third of its middle overwritten with
random bytes: its header, name and size are intact and its copy would be
byte-identical, so only asking the prover for proofs finds it.
"""
import json
import os
import re
import time
from pathlib import Path

from tests.cli import plotfleet, status_json
from tests.sampler import Sampler
from tests.test_failures_e2e import hand_plot
from tests.test_notify_e2e import inbox  # noqa: F401,F811  (an HTTP server for apprise)
from tests.test_unattended_e2e import with_controller


def corrupt_middle(path):
    """A third of the plot's middle overwritten with random bytes."""
    n = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(n // 3)
        f.write(os.urandom(n // 3))
    assert os.path.getsize(path) == n


# What chiapos's DiskProver says about a plot whose middle is noise: which of
# its messages comes depends on where the noise lands (strings in chiapos's
# own library).  The tests ask for the prover's words, whichever they are.
PROVER_WORDS = re.compile(r"(Invalid size for deltas: |Destination buffer is too small"
                          r"|Bad delta detected|Corrupted block detected"
                          r"|Invalid prev bucket start|Position too small"
                          r"|workspace buffer is too small|Invalid C2 table size)")


def in_provers_words(text):
    return PROVER_WORDS.match(text) is not None


def plots_in(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".plot"))


def pass_until(inv, done, timeout=90.0):
    """`plot-all --once --plots 0` passes (no job started) until done(doc)."""
    end = time.time() + timeout
    outs = []
    while True:
        r = plotfleet("plot-all", "--inventory", inv, "--once", "--plots", 0, "--json",
                      timeout=60)
        assert "Traceback" not in r.stderr, r.stderr
        outs.append(json.loads(r.stdout.splitlines()[-1]))
        if done(outs[-1]):
            return outs
        assert time.time() < end, json.dumps(outs[-1])[-3000:]
        time.sleep(0.5)


class FarmWatch(Sampler):
    """Every name seen in the farm dirs while it runs (listed every 2 ms):
    a partial that comes and goes between two passes is seen too."""
    every = 0.002

    def __init__(self, farm):
        self.farm, self.names = list(farm), set()

    def sample(self):
        for d in self.farm:
            try:
                self.names.update(os.listdir(d))
            except OSError:
                pass


def on_farm(farm, name):
    return [os.path.join(f, name) for f in farm if name in os.listdir(f)]


def test_a_bad_plot_is_quarantined_with_the_provers_words_and_a_good_one_archived(
        ssh_fleet, tmp_path, inbox, k18_plots):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    h = fleet.hosts["plotter1"]
    farm = fleet.hosts["harvester1"].dirs["farm"]
    dst = h.dirs["dst"][0]
    hand_plot(h, "good.log")
    [good] = plots_in(dst)
    hand_plot(h, "bad.log")
    [bad] = [n for n in plots_in(dst) if n != good]
    corrupt_middle(os.path.join(dst, bad))
    [other] = k18_plots.copy_to(tmp_path / "other", 1)     # a bad one made elsewhere
    corrupt_middle(other)
    os.rename(other, os.path.join(dst, other.name))
    # nothing tuned: check_challenges, check_min_ratio, check_parallel as they come
    inv = with_controller(fleet.write_inventory(tmp_path / "inv.yaml", global_stagger_m=0,
                                                polling_time_s=1),
                          notify=[inbox.url], app_log=str(tmp_path / "plotfleet.log"))

    qdir = Path(dst, "quarantine")
    with FarmWatch(farm) as seen:
        outs = pass_until(inv, lambda d: on_farm(farm, good) and qdir.is_dir()
                          and len(plots_in(qdir)) == 2)
    # not one byte of a bad plot ever reached a farm drive, not even as a
    # partial (the watch sees partials: the good plot's was seen)
    assert good + ".plotfleet-tmp" in seen.names, seen.names
    assert not [n for n in seen.names if bad in n or other.name in n], seen.names
    events = [e for o in outs for e in o["events"]]
    kinds = [e["kind"] for e in events]
    # one check at a time (check_parallel 1), each plot checked once
    assert kinds.count("check_started") == 3, kinds
    quarantined = {e["subject"]: e for e in events if e["kind"] == "plot_quarantined"}
    assert set(quarantined) == {bad, other.name}
    assert PROVER_WORDS.search(quarantined[bad]["detail"]), quarantined[bad]
    # the good one went to the farm, byte for byte; the bad ones never did
    assert plots_in(dst) == [] and not on_farm(farm, bad) and not on_farm(farm, other.name)
    assert sorted(os.listdir(qdir)) == sorted([bad, bad + ".json", other.name,
                                               other.name + ".json"])
    # the good one, checked first, was handed to a drive's queue with its
    # check; the bad ones waited their turn in the check runner, and failed
    assert not [e for e in events if e["kind"] == "transfer_started" and e["subject"] != good]
    assert not any(e["kind"] in ("copy_promoted", "copy_confirmed", "source_removed",
                                 "drive_failure_recorded") and e["subject"] != good
                   for e in events), events

    # status says why, in the prover's words, and counts it as a failure
    r, doc = status_json(inv)
    host = next(x for x in doc["hosts"] if x["name"] == "plotter1")
    [entry] = [q for q in host["quarantine"] if q["path"].endswith(bad)]
    assert entry["path"] == str(qdir / bad)
    why = entry["reason"]
    assert in_provers_words(why) and why in quarantined[bad]["detail"], entry
    # two bad plots since the last good one: a back-off count of 2
    assert host["failures"]["count"] == 2 and host["failures"]["quarantined"] == 2
    assert host["failures"]["last_error"] in ["plot quarantined: " + q["reason"]
                                              for q in host["quarantine"]], host["failures"]
    text = plotfleet("status", "--inventory", inv).stdout
    [row] = [line for line in text.splitlines() if entry["reason"] in line]
    assert "proof checks" in text and "quarantine" in row, text

    # one alert for that plot, however many passes see it
    pass_until(inv, lambda d: True)
    posts = inbox.take()
    mine = [p for p in posts if bad in p["message"]]
    assert len(mine) == 1 and why in mine[0]["message"], posts

    # analyze: the check results per plotter, device and level
    r = plotfleet("analyze", "--inventory", inv, "--limit", "plotter1", "--json")
    checks = json.loads(r.stdout)["checks"]
    [row] = checks["plotter"]
    assert (row["key"], row["checked"], row["passed"], row["failed"]) == \
        ("plotter1 chiapos", 3, 1, 2), checks
    assert [r["key"] for r in checks["device"]] == ["plotter1 cpu"]
    assert [r["key"] for r in checks["level"]] == ["C0"] and row["mean_bytes_read"] > 0
    assert "proof checks by plotter" in plotfleet("analyze", "--inventory", inv).stdout

    # the farmer's call: one deleted, the other archived anyway
    r = plotfleet("release", "--delete", other.name[-69:-53], "--inventory", inv)
    assert r.returncode == 0 and "deleted" in r.stdout, r.stdout + r.stderr
    assert sorted(os.listdir(qdir)) == [bad, bad + ".json"]
    r = plotfleet("release", bad[:20], "--inventory", inv)
    assert r.returncode == 2 and "no quarantined plot matches" in r.stderr, r.stderr
    r = plotfleet("release", bad, "--inventory", inv)
    assert r.returncode == 0 and "released" in r.stdout, r.stdout + r.stderr
    outs = pass_until(inv, lambda d: on_farm(farm, bad))
    assert not any(e["kind"] == "check_started" for o in outs for e in o["events"])

    # on the farm: the check finds the bad one and leaves it where it is
    before = {p: os.stat(p).st_mtime_ns for f in farm for p in map(str, Path(f).iterdir())}
    r = plotfleet("check", "--inventory", inv, "--json", timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    found = {os.path.basename(x["path"]): x["check"] for x in json.loads(r.stdout)["checks"]}
    assert found[good]["status"] == "passed" and found[good]["ratio"] >= 0.3
    assert found[bad]["status"] == "failed"
    assert in_provers_words(found[bad]["error"]), found[bad]
    assert {p: os.stat(p).st_mtime_ns for f in farm for p in map(str, Path(f).iterdir())} \
        == before
    text = plotfleet("check", "--inventory", inv, "--sample", 1).stdout
    assert "farm check" in text

    # a farm plot gone since its check (replotted, moved): the next check
    # forgets its record; the others' stay
    from agent.facts.checks import record_path
    on = {name: next(Path(f) / name for f in farm if (Path(f) / name).exists())
          for name in (good, bad)}
    assert all(os.path.exists(record_path(str(p))) for p in on.values())
    on[bad].unlink()
    r = plotfleet("check", "--inventory", inv, "--json", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists(record_path(str(on[bad])))
    assert os.path.exists(record_path(str(on[good])))


def test_an_endless_job_that_keeps_making_bad_plots_is_suspended_with_why(ssh_fleet,
                                                                          tmp_path):
    """A GPU job making plots without end is never restarted, so a back-off
    would never reach it.  Here every plot "fails" because the farmer asks
    for more proofs than any plot gives (check_min_ratio 5): after
    max_failures of them in a row, in quarantine, the job is suspended and
    says why; nothing is deleted."""
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    dst = h.dirs["dst"][0]
    inv = fleet.write_inventory(tmp_path / "inv.yaml", count=0, global_max_jobs=1,
                                global_stagger_m=0, polling_time_s=0.5, check_min_ratio=5,
                                max_failures=2)
    job = None
    try:
        end = time.time() + 150
        while True:
            r = plotfleet("plot-all", "--inventory", inv, "--once", "--json", timeout=60)
            assert "Traceback" not in r.stderr, r.stderr
            doc = json.loads(r.stdout.splitlines()[-1])
            [host] = doc["hosts"]
            job = (host["jobs"] or [job])[0]
            if job and job["state"] == "suspended":
                break
            assert time.time() < end, json.dumps(host)[-3000:]
            time.sleep(0.5)
        # at least max_failures: the plots a pass checks together fail together
        m = re.match(r"making bad plots: (\d+) in a row failed their proof check "
                     r"\(max_failures 2\), last: plot quarantined: ", job["paused"])
        assert m and int(m.group(1)) >= 2, job
        assert "ratio" in job["paused"] and "plotfleet reset plotter1" in job["paused"]
        assert host["failures"]["quarantined"] >= 2
        quarantined = plots_in(os.path.join(dst, "quarantine"))
        assert len(quarantined) >= 2 and all(q["reason"].endswith("min 5.00), twice")
                                             for q in host["quarantine"])
        # it stays suspended: the next pass neither resumes nor restarts it
        r = plotfleet("plot-all", "--inventory", inv, "--once", "--json", timeout=60)
        [host] = json.loads(r.stdout.splitlines()[-1])["hosts"]
        assert [j["state"] for j in host["jobs"]] == ["suspended"]
        assert not json.loads(r.stdout.splitlines()[-1])["decisions"]["starts"]
    finally:
        if job:
            import psutil
            try:
                p = psutil.Process(job["pid"])
                p.kill()
                p.resume()
            except psutil.Error:
                pass


def test_a_plot_no_prover_reads_is_archived_not_checked_when_check_command_fails(
        ssh_fleet, tmp_path, k18_plots):
    """A plot chiapos cannot read (its header is not chiapos' nor bladebit's,
    as Gigahorse's is not) and a check_command that is not installed: the
    plot is archived, said `not checked: <why>`, never held."""
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    dst = fleet.hosts["plotter1"].dirs["dst"][0]
    farm = fleet.hosts["harvester1"].dirs["farm"]
    [made] = k18_plots.copy_to(tmp_path / "made", 1)
    with open(made, "r+b") as f:
        f.write(b"GH-compressed-plot!")
    plot = Path(dst, made.name.replace("plot-k18-", "plot-k18-c15-"))    # Gigahorse's name
    os.rename(made, plot)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", global_stagger_m=0, polling_time_s=1,
                                check_command="bladebit_cuda_not_here check -n {n} {path}")
    outs = pass_until(inv, lambda d: on_farm(farm, plot.name), timeout=60)
    seen = [p["check"] for o in outs for h in o["hosts"] for p in h["plots"] if p["check"]]
    why = "check_command: bladebit_cuda_not_here: not found"
    assert seen and seen[-1]["status"] == "not_checked" and seen[-1]["error"] == why, seen
    # handed over as its check began; its verdict said where it reached the farm
    [sent] = [e for o in outs for e in o["events"] if e["kind"] == "transfer_started"]
    assert sent["why"].endswith("; sent once its proof check passes"), sent
    [promoted] = [e for o in outs for e in o["events"] if e["kind"] == "copy_promoted"]
    assert "; not checked: " + why in promoted["detail"], promoted
    assert not os.path.exists(os.path.join(dst, "quarantine"))
