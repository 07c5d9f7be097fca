"""Only regular files are plots: a symlink, a dir or a fifo under a plot's
name in dst is shown as such, never claimed, never sent; a drive claim
whose transfer cannot start is given back in the same pass."""
import json
import os
import shutil
import time

from agent.facts import claim_record
from tests.cli import plotfleet, status_json


def _archive(inv, until):
    """archive passes (a plot's proof check comes first) until an event of
    kind `until`; (the last result, every pass's events and actions)."""
    events, actions = [], []
    end = time.time() + 90
    while True:
        r = plotfleet("archive", "--inventory", inv, "--json", timeout=90)
        assert r.stdout, r.stderr
        out = json.loads(r.stdout)
        events += out["events"]
        actions += out["actions"]
        if any(e["kind"] == until for e in out["events"]) or time.time() > end:
            return r, {"events": events, "actions": actions}
        time.sleep(1)


def test_plot_named_symlink_dir_and_fifo_are_shown_never_sent(ssh_fleet, k18_plots, tmp_path):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", require_mounted_farm=False)
    dst = fleet.hosts["plotter1"].dirs["dst"][0]
    farm = fleet.hosts["harvester1"].dirs["farm"][0]
    real_plot, outside = k18_plots.copy_to(dst, 1)[0], k18_plots.copy_to(tmp_path, 1)[0]
    # names that sort (and are picked) before the real plot
    impostors = {"plot-k18-2020-01-01-00-00-" + "a" * 64 + ".plot": "/etc/passwd",
                 "plot-k18-2020-01-01-00-00-" + "b" * 64 + ".plot": str(outside)}
    for name, target in impostors.items():
        os.symlink(target, os.path.join(dst, name))
    os.mkdir(os.path.join(dst, "plot-k18-2020-01-01-00-00-" + "c" * 64 + ".plot"))
    os.mkfifo(os.path.join(dst, "plot-k18-2020-01-01-00-00-" + "d" * 64 + ".plot"))

    _, doc = status_json(inv)
    rows = {os.path.basename(p["path"]): p for p in doc["hosts"][0]["plots"]}
    for name in impostors:
        assert "not a regular file (a symlink to" in rows[name]["error"], rows[name]
    assert "a directory" in rows["plot-k18-2020-01-01-00-00-" + "c" * 64 + ".plot"]["error"]
    assert "a fifo" in rows["plot-k18-2020-01-01-00-00-" + "d" * 64 + ".plot"]["error"]
    assert rows[os.path.basename(real_plot)]["error"] is None

    r, out = _archive(inv, "transfer_started")
    assert not [e for e in out["events"] if e["kind"] in ("claim_failed", "request_failed")], out
    started = [e["subject"] for e in out["events"] if e["kind"] == "transfer_started"]
    assert started == [os.path.basename(real_plot)], out
    assert any("not a regular file" in w for w in out["actions"]), out
    for name in impostors:
        assert os.path.islink(os.path.join(dst, name))
        assert not os.path.lexists(os.path.join(farm, name))
    assert os.path.realpath("/etc/passwd") and os.path.isfile(outside)


def test_a_claim_whose_transfer_cannot_start_is_released(ssh_fleet, k18_plots, tmp_path):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", require_mounted_farm=False)
    dst = fleet.hosts["plotter1"].dirs["dst"][0]
    plot = os.path.basename(k18_plots.copy_to(dst, 1)[0])
    # the plotter cannot record a transfer: its start fails after the claim
    transfers = os.path.expanduser("~/.plotfleet/transfers")
    shutil.rmtree(transfers, ignore_errors=True)
    os.makedirs(os.path.dirname(transfers), exist_ok=True)
    with open(transfers, "w") as f:
        f.write("in the way\n")
    try:
        r, out = _archive(inv, "request_failed")
        kinds = [e["kind"] for e in out["events"]]
        assert "request_failed" in kinds and "transfer_started" not in kinds, out
        with open(os.path.expanduser("~/.plotfleet/drive-claims.json")) as f:
            claims = json.load(f)
        farms = fleet.hosts["harvester1"].dirs["farm"]
        assert [c for c in claims.values() if c["dir"] in farms and
                any(p["plot"] == plot for p in claim_record.plots(c))] == [], \
            "the drive stays claimed for a plot that is not coming"
    finally:
        os.remove(transfers)
