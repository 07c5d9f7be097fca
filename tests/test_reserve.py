"""Drive claims: two controllers deciding at once never send two plots into one drive."""
import os

from tests.agent_helpers import AgentProc, host_dirs

SIZE = 4_000_000


def test_second_plot_into_a_claimed_drive_is_refused_until_the_first_arrives(tmp_path):
    d, config = host_dirs(tmp_path)
    a, b = AgentProc(), AgentProc()           # two controllers' sessions to one harvester
    try:
        a.ok("reserve_drive", config=config, to_dir=d["farm"], plot="/dst/one.plot",
             size_bytes=SIZE)
        busy = b.raw("reserve_drive", config=config, to_dir=d["farm"], plot="/dst/two.plot",
                     size_bytes=SIZE)
        assert not busy["ok"] and "drive busy: one.plot" in busy["error"]
        # the same plot again (a retry or the other controller) is fine
        b.ok("reserve_drive", config=config, to_dir=d["farm"], plot="/elsewhere/one.plot",
             size_bytes=SIZE)
        # once one.plot is there under its final name the drive is free
        open(os.path.join(d["farm"], "one.plot"), "wb").close()
        b.ok("reserve_drive", config=config, to_dir=d["farm"], plot="/dst/two.plot",
             size_bytes=SIZE)
    finally:
        a.close()
        b.close()


def test_a_partial_still_arriving_blocks_the_drive(tmp_path):
    d, config = host_dirs(tmp_path)
    with open(os.path.join(d["farm"], "other.plot.plotfleet-tmp"), "wb") as f:
        f.write(b"x" * 1000)
    a = AgentProc()
    try:
        r = a.raw("reserve_drive", config=config, to_dir=d["farm"], plot="mine.plot",
                  size_bytes=SIZE)
        assert not r["ok"] and "other.plot is still arriving" in r["error"]
    finally:
        a.close()


def test_no_room_and_outside_dirs_refused(tmp_path):
    d, config = host_dirs(tmp_path)
    a = AgentProc()
    try:
        vfs = os.statvfs(d["farm"])
        r = a.raw("reserve_drive", config=config, to_dir=d["farm"], plot="big.plot",
                  size_bytes=vfs.f_blocks * vfs.f_frsize * 2)
        assert not r["ok"] and r["error"].startswith("no room on")
        r = a.raw("reserve_drive", config=config, to_dir=str(tmp_path), plot="x.plot",
                  size_bytes=1)
        assert not r["ok"] and "outside configured dirs" in r["error"]
    finally:
        a.close()


def test_with_require_mounted_farm_a_dir_on_the_root_filesystem_takes_no_plots(tmp_path):
    # tmp_path is on the root filesystem here, /dev/shm is a drive of its own
    assert os.stat(tmp_path).st_dev == os.stat("/").st_dev
    assert os.stat("/dev/shm").st_dev != os.stat("/").st_dev
    d, config = host_dirs(tmp_path)
    mounted = os.path.join("/dev/shm", "plotfleet-test-%d" % os.getpid())
    os.makedirs(mounted, exist_ok=True)
    config = dict(config, farm_dirs=[d["farm"], mounted], require_mounted_farm=True)
    a = AgentProc()
    try:
        farms = {x["path"]: x for x in a.ok("snapshot", config=config)["dirs"]
                 if x["kind"] == "farm"}
        assert farms[d["farm"]]["error"] == "not mounted: on the root filesystem"
        assert farms[d["farm"]]["error_code"] == "not_mounted"
        assert farms[mounted]["error"] is None and farms[mounted]["free_bytes"] > 0
        r = a.raw("reserve_drive", config=config, to_dir=d["farm"], plot="p.plot", size_bytes=1)
        assert not r["ok"] and "not mounted" in r["error"] and r["code"] == "drive_error"
        # the default is to require it
        default = {k: v for k, v in config.items() if k != "require_mounted_farm"}
        farms = {x["path"]: x for x in a.ok("snapshot", config=default)["dirs"]}
        assert farms[d["farm"]]["error_code"] == "not_mounted"
        a.ok("reserve_drive", config=config, to_dir=mounted, plot="p.plot", size_bytes=1)
        # without the option the same dir is an ordinary farm dir
        plain = dict(config, require_mounted_farm=False)
        farms = {x["path"]: x for x in a.ok("snapshot", config=plain)["dirs"]}
        assert farms[d["farm"]]["error"] is None
    finally:
        a.close()
        os.rmdir(mounted)


def test_a_runner_extends_its_own_claim_and_no_one_else_shares_the_drive(tmp_path):
    """A plotter's runner holds the drive while its queue grows: the same
    named holder adds plots to its claim, another holder is refused, and a
    queue is claimed as a whole, with room for all its plots."""
    d, config = host_dirs(tmp_path)
    a, b = AgentProc(), AgentProc()
    try:
        a.ok("reserve_drive", config=config, to_dir=d["farm"], plot="/dst/one.plot",
             size_bytes=SIZE, holder="runner:p1",
             queue=[{"plot": "/dst/two.plot", "size_bytes": SIZE}])
        # a later pass of any controller, for the same plotter: its queue grows
        b.ok("reserve_drive", config=config, to_dir=d["farm"], plot="/dst/three.plot",
             size_bytes=SIZE, holder="runner:p1")
        other = b.raw("reserve_drive", config=config, to_dir=d["farm"], plot="/dst/four.plot",
                      size_bytes=SIZE, holder="runner:p2")
        assert not other["ok"] and "drive busy: one.plot" in other["error"], other
        free = os.statvfs(d["farm"]).f_bavail * os.statvfs(d["farm"]).f_frsize
        big = a.raw("reserve_drive", config=config, to_dir=d["farm"], plot="/dst/five.plot",
                    size_bytes=SIZE, holder="runner:p1",
                    queue=[{"plot": "/dst/six.plot", "size_bytes": free}])
        assert not big["ok"] and big["code"] == "no_room", big
    finally:
        a.close()
        b.close()
