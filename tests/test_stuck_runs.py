"""When only the farmer can clear the way, a plotter's wait is `blocked`
(a `--plots N` run ends on it); while the fleet can clear it itself, it is
an ordinary wait, and the run keeps waiting."""
from orchestrator.core.scheduler import schedule
from orchestrator.core.state import Plot
from tests.factories import NOW, down, fleet, host_state, inventory, job, plotter, replace

GIB = 1 << 30


def _waits(state, hosts):
    return {w.host: w for w in schedule(state, hosts, NOW).waits}


def _no_room(hs, free=40 * GIB):
    """tmp disks big enough for a k32 job when empty, with `free` left now."""
    return replace(hs, dirs=tuple(replace(d, total_bytes=2000 * GIB, free_bytes=free)
                                  if d.kind == "tmp" else d for d in hs.dirs))


def test_no_room_in_tmp_and_nothing_running_that_could_free_any_is_blocked():
    p = plotter(global_stagger_m=0, k=32)
    w = _waits(fleet(_no_room(host_state(p))), inventory(p))["p1"]
    assert w.blocked and w.reason.startswith("no tmp dir can take a k32 job"), w


def test_while_the_fleet_can_free_room_itself_the_run_keeps_waiting():
    p, q = plotter("p1", global_stagger_m=0, k=32), plotter("p2", global_stagger_m=0, k=32)
    hosts = inventory(p, q)
    stuck = _no_room(host_state(p))
    # a job elsewhere (maybe on the same disk), a plot that may be archived
    # away, a host that may come back: none of that is for the farmer to do
    for other in (host_state(q, jobs=(job(),)), down(q),
                  replace(host_state(q), plots=(Plot(path="/d0/x.plot", size_bytes=GIB),))):
        w = _waits(fleet(stuck, other), hosts)["p1"]
        assert not w.blocked, (other, w)
    assert _waits(fleet(stuck, host_state(q)), hosts)["p1"].blocked
