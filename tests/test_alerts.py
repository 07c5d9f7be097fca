"""Alerts, pure: what is wrong after a pass, keyed the same while it lasts;
what started and resolved between two passes; one message per pass."""
import json
from types import SimpleNamespace

from orchestrator.core.alerts import Alert, conditions, message, transitions
from orchestrator.core.events import Event
from orchestrator.core.scheduler import schedule
from orchestrator.core.state import Failures, expected_plot_bytes
from orchestrator.plotloop import PassResult
from tests.factories import (NOW, down, fleet, harvester, host_state, inventory, job,
                             plotter, replace)

ERR = "InvalidValueException: Triggering bucket too early"
CONFIG = SimpleNamespace(notify=(), alert_host_down_m=10.0, alert_farm_free_plots=10)


def result(*states, hosts, events=(), now=NOW):
    """A pass as plot-all makes it: the scheduler's own waits."""
    st = fleet(*states, now=now)
    d = schedule(st, hosts, now)
    return PassResult(st, tuple(events), d.waits, d.waits, d.backpressure)


class Passes:
    """Consecutive passes: the memory carried, the transitions of each."""

    def __init__(self, hosts, config=CONFIG):
        self.hosts, self.config = hosts, config
        self.memory, self.active = {}, frozenset()

    def run(self, *states, events=(), now=NOW):
        now_active, self.memory = conditions(result(*states, hosts=self.hosts, events=events,
                                                    now=now),
                                             self.hosts, self.config, self.memory)
        # the memory is what the state file keeps: plain JSON
        self.memory = json.loads(json.dumps(self.memory))
        started, resolved = transitions(self.active, now_active)
        self.active = now_active
        return [a.key for a in started], [a.key for a in resolved]

    def text(self, key):
        return next(a.text for a in self.active if a.key == key)


def failing(hs, count=2, ago_s=60.0):
    return replace(hs, failures=Failures(count=count, last_error=ERR, last_at=NOW - ago_s))


def farm_counts(hs, **counts):
    return replace(hs, dirs=tuple(replace(d, plot_count=counts.get(d.path.strip("/"), 0))
                                  for d in hs.dirs))


def test_a_backed_off_plotter_alerts_once_with_its_last_error_and_resolves_once():
    p = plotter(global_stagger_m=0, max_failures=2, failure_backoff_m=60)
    run = Passes(inventory(p))
    assert run.run(failing(host_state(p), count=1)) == ([], [])     # one failure: no back-off
    assert run.run(failing(host_state(p))) == (["backed_off:p1"], [])
    assert ERR in run.text("backed_off:p1") and "2 failed jobs in a row" in run.text("backed_off:p1")
    assert run.run(failing(host_state(p), ago_s=120)) == ([], [])   # still: nothing new
    assert run.run(host_state(p)) == ([], ["backed_off:p1"])        # a plot finished: over
    assert run.run(host_state(p)) == ([], [])


def test_a_stalled_job_keeps_its_key_when_its_plot_id_appears():
    p = plotter()
    run = Passes(inventory(p))
    stalled = job(pid=7, stalled=True, log_idle_s=3600.0)
    assert run.run(host_state(p, jobs=[stalled])) == (["stalled:p1:/log/7.log"], [])
    assert "stalled in phase 1:0" in run.text("stalled:p1:/log/7.log")
    assert run.run(host_state(p, jobs=[replace(stalled, plot_id="ab" * 32)])) == ([], [])
    assert run.run(host_state(p, jobs=[replace(stalled, stalled=False)])) == (
        [], ["stalled:p1:/log/7.log"])


def test_a_host_down_alerts_after_alert_host_down_m_on_the_controllers_clock():
    p, h = plotter(), harvester()
    run = Passes(inventory(p, h), SimpleNamespace(alert_host_down_m=5, alert_farm_free_plots=0))
    up = host_state(h)
    assert run.run(host_state(p), down(h), now=NOW) == ([], [])
    assert run.memory["down_since"] == {"h1": NOW}
    assert run.run(host_state(p), down(h), now=NOW + 299) == ([], [])
    assert run.run(host_state(p), down(h), now=NOW + 300) == (["host_down:h1"], [])
    assert "unreachable for more than 5 min: ssh: connection refused" in run.text("host_down:h1")
    assert run.run(host_state(p), down(h), now=NOW + 900) == ([], [])
    assert run.run(host_state(p), up, now=NOW + 960) == ([], ["host_down:h1"])
    assert run.memory["down_since"] == {}
    # down again: counted from then, not from the first time
    assert run.run(host_state(p), down(h), now=NOW + 1000) == ([], [])
    assert run.run(host_state(p), down(h), now=NOW + 1200) == ([], [])


def test_what_a_host_down_cannot_tell_is_held_not_resolved():
    p = plotter(global_stagger_m=0, max_failures=2, failure_backoff_m=60)
    run = Passes(inventory(p), SimpleNamespace(alert_host_down_m=10, alert_farm_free_plots=0))
    sick = failing(host_state(p, errors={"/d0": "read-only file system"}))
    assert run.run(sick) == (["backed_off:p1", "drive:p1:/d0"], [])
    assert run.run(down(p), now=NOW + 60) == ([], [])                  # unknown, not resolved
    assert run.run(down(p), now=NOW + 660) == (["host_down:p1"], [])
    assert run.run(host_state(p), now=NOW + 700) == (
        [], ["backed_off:p1", "drive:p1:/d0", "host_down:p1"])


def test_a_dir_with_an_error_or_set_aside_alerts_until_it_is_usable_again():
    p, h = plotter(), harvester(farm_dirs=("/f0", "/f1"))
    run = Passes(inventory(p, h), SimpleNamespace(alert_farm_free_plots=0))
    hv = host_state(h)
    aside = tuple(replace(d, error="set aside until 12:30: rsync: No space left on device",
                          error_code="set_aside", set_aside_until=NOW + 1800)
                  if d.path == "/f1" else d for d in hv.dirs)
    assert run.run(host_state(p, errors={"/t1": "not responding"}), replace(hv, dirs=aside)) == (
        ["drive:h1:/f1", "drive:p1:/t1"], [])
    assert run.text("drive:p1:/t1") == "p1: tmp dir /t1: not responding"
    assert "h1: farm dir /f1: set aside until 12:30" in run.text("drive:h1:/f1")
    assert run.run(host_state(p), hv) == ([], ["drive:h1:/f1", "drive:p1:/t1"])


def test_a_harvesters_plot_count_drop_alerts_for_one_pass():
    p, h = plotter(), harvester(farm_dirs=("/f0", "/f1"))
    run = Passes(inventory(p, h), SimpleNamespace(alert_farm_free_plots=0))
    hv = host_state(h)
    assert run.run(host_state(p), farm_counts(hv, f0=5, f1=7)) == ([], [])     # first sight
    assert run.run(host_state(p), farm_counts(hv, f0=6, f1=7)) == ([], [])     # one more
    # /f1 pulled out: it reports missing, its plots are not seen
    gone = farm_counts(host_state(h, errors={"/f1": "missing"}), f0=6)
    assert run.run(host_state(p), gone) == (["drive:h1:/f1", "plots_dropped:h1"], [])
    assert run.text("plots_dropped:h1") == (
        "h1: farm plot count dropped from 13 to 6 (-7); unusable: /f1 (missing)")
    # the drop is news once; the drive's error lasts
    assert run.run(host_state(p), gone) == ([], ["plots_dropped:h1"])
    # plots lost while the harvester was down are seen when it answers
    assert run.run(host_state(p), down(h)) == ([], [])
    assert run.run(host_state(p), farm_counts(host_state(h, errors={"/f1": "missing"}), f0=4)
                   ) == (["plots_dropped:h1"], [])


def test_the_farm_within_alert_farm_free_plots_of_full():
    k = 32
    plot = expected_plot_bytes(k)
    p, h = plotter(k=k), harvester(farm_dirs=("/f0", "/f1"))
    run = Passes(inventory(p, h), SimpleNamespace(alert_farm_free_plots=10))
    roomy = host_state(h, free={"/f0": 20 * plot, "/f1": 20 * plot})
    tight = host_state(h, free={"/f0": 5 * plot, "/f1": 5 * plot + 1})
    assert run.run(host_state(p), roomy) == ([], [])
    assert run.run(host_state(p), tight) == (["farm_full"], [])
    assert run.text("farm_full") == (
        "farm nearly full: room for 10 more k32 plots (alert_farm_free_plots 10)")
    assert run.run(host_state(p), down(h)) == ([], [])      # its room unknown: held
    assert run.run(host_state(p), roomy) == ([], ["farm_full"])
    # the plotters' largest k counts
    big = Passes(inventory(p, plotter("p2", k=33), h), SimpleNamespace(alert_farm_free_plots=10))
    assert big.run(host_state(p), host_state(plotter("p2", k=33)),
                   host_state(h, free={"/f0": 12 * plot, "/f1": 0})) == (["farm_full"], [])


def test_copy_conflicts_and_mismatches_alert_for_the_pass_they_happen_in():
    p, h = plotter(), harvester()
    run = Passes(inventory(p, h), SimpleNamespace(alert_farm_free_plots=0))
    name = "plot-k32-x.plot"
    events = [Event("copy_conflict", "h1", name, f"h1: conflict: {name} holds other bytes",
                    failed=True),
              Event("copy_mismatch", "h1", "plot-k32-y.plot", "h1: digest differs", failed=True),
              Event("would_copy_conflict", "h1", "z.plot", "check only", failed=True),
              Event("copy_promoted", "h1", "w.plot", "promoted")]
    assert run.run(host_state(p), host_state(h), events=events) == (
        [f"copy_conflict:h1:{name}", "copy_mismatch:h1:plot-k32-y.plot"], [])
    assert run.text(f"copy_conflict:h1:{name}") == f"h1: conflict: {name} holds other bytes"
    assert run.run(host_state(p), host_state(h)) == (
        [], [f"copy_conflict:h1:{name}", "copy_mismatch:h1:plot-k32-y.plot"])


def test_defaults_without_a_config():
    p = plotter()
    hosts = inventory(p)
    active, memory = conditions(result(down(p), hosts=hosts, now=NOW), hosts, None, None)
    assert active == frozenset()
    active, _ = conditions(result(down(p), hosts=hosts, now=NOW + 600), hosts, None, memory)
    assert [a.key for a in active] == ["host_down:p1"]


def test_transitions_compare_keys_and_a_resolved_alert_is_given_as_it_was():
    a1 = Alert("stalled:p1:/log/1.log", "p1", "job 1", "p1: job 1 stalled, log silent 31 min")
    a1_later = replace(a1, text="p1: job 1 stalled, log silent 45 min")
    b = Alert("host_down:h1", "h1", "host", "h1: unreachable")
    assert transitions([], [a1, b]) == ((b, a1), ())
    assert transitions([a1, b], [a1_later, b]) == ((), ())
    assert transitions([a1_later, b], [b]) == ((), (a1_later,))


def test_one_message_for_everything_of_a_pass():
    a = Alert("backed_off:p1", "p1", "plotter", "p1: plotter backed off after 2 failed jobs")
    b = Alert("drive:h1:/f1", "h1", "/f1", "h1: farm dir /f1: missing")
    c = Alert("farm_full", "", "farm", "farm nearly full: room for 3 more k32 plots")
    title, body = message([a, b], [c])
    assert title == "plotfleet: 2 alerts, 1 resolved (farm, h1, p1)"
    assert body.splitlines() == ["ALERT h1: farm dir /f1: missing",
                                 "ALERT p1: plotter backed off after 2 failed jobs",
                                 "RESOLVED farm nearly full: room for 3 more k32 plots"]
    assert message([a], []) == (f"plotfleet: {a.text}", f"ALERT {a.text}")
    assert message([], [b]) == (f"plotfleet: resolved: {b.text}", f"RESOLVED {b.text}")


def test_an_alert_survives_json():
    a = Alert("drive:h1:/f1", "h1", "/f1", "h1: farm dir /f1: missing")
    assert Alert.from_json(json.loads(json.dumps(a.to_json()))) == a
    assert a.kind == "drive"
