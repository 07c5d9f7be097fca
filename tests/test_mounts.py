"""Dirs are named by their mount and disk, as a farmer knows them, read from
the machine's own mount table (which a dead mount cannot hang)."""

from agent.facts import mounts
from tests.agent_helpers import host_dirs


def test_each_dir_names_its_mount_and_disk(agent, tmp_path, tmpfs):
    drive = tmp_path / "hdd 07"                   # mountinfo escapes the space
    tmpfs.mount(drive, "4m")
    (drive / "plots").mkdir()
    d, config = host_dirs(tmp_path / "host")
    config = dict(config, farm_dirs=[str(drive), str(drive / "plots"), d["farm"]])
    farms = {x["path"]: x for x in agent.ok("snapshot", config=config)["dirs"]
             if x["kind"] == "farm"}
    assert (farms[str(drive)]["mount"], farms[str(drive)]["disk"]) == (str(drive), "tmpfs")
    assert farms[str(drive / "plots")]["mount"] == str(drive)    # grouped with its disk
    root = farms[d["farm"]]
    assert root["mount"] and root["mount"] != str(drive) and root["disk"]
    assert root["device"] and root["device"] != farms[str(drive)]["device"]   # still there


def test_the_mount_on_top_wins_and_dev_names_are_short(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "25 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "40 25 8:113 / /mnt/hdd07 rw - ext4 /dev/sdh1 rw\n"
        "41 25 0:50 / /mnt/hdd07 rw - xfs /dev/mapper/vg-hdd07b rw\n"
        "42 25 0:51 / /mnt/nas\\040share rw - nfs4 nas:/plots rw\n"
        "garbage line\n")
    table = mounts.table(str(info))
    assert mounts.where("/mnt/hdd07/plots", table) == ("/mnt/hdd07", "vg-hdd07b")
    assert mounts.where("/mnt/hdd070", table) == ("/", "sda1")
    assert mounts.where("/mnt/nas share/x", table) == ("/mnt/nas share", "nas:/plots")
    assert mounts.table(str(tmp_path / "none")) == [] and mounts.where("/x", []) == (None, None)


def test_status_shows_the_mount_not_a_number(ssh_fleet, tmp_path, tmpfs):
    from tests.cli import plotfleet
    fleet = ssh_fleet(n_plotters=0, n_harvesters=1)
    fleet.farms_mounted = True
    h = fleet.hosts["harvester1"]
    for path in h.dirs["farm"]:
        tmpfs.mount(path, "4m")
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    out = plotfleet("status", "--inventory", inv, env={"COLUMNS": "320"}).stdout
    for path in h.dirs["farm"]:
        assert f"{path} (tmpfs)" in out, out
