"""What follows from a plan's outcomes (core/followup.py): pure, no SSH.

The e2e tests (test_copies_e2e.py, test_archive_e2e.py) show these on real
hosts; here each rule is pinned on its own, including the ones a real fleet
rarely shows (a digest that disagrees after a promote, a start unanswered
for ten minutes)."""
from agent.vocab.wire import ErrorCode
from orchestrator.core.decisions import Promote, RemoveSource, StartJob, StartTransfer
from orchestrator.core.followup import ASK_AGAIN_S, follow_up
from orchestrator.core.outlook import outlook
from orchestrator.core.outcomes import (CopyLost, Failed, NameTaken, Outcome, Promoted, Started,
                                        Unanswered)
from orchestrator.core.plan import AskAgain, plan, plan_before
from tests import factories as f

HOSTS = f.inventory(f.plotter("p1"), f.harvester("h1"))
NAME = "plot-k32-2024-01-01-00-00-" + "ab" * 32 + ".plot"
T = StartTransfer("p1", f"/d0/{NAME}", 1000, "h1", "/f0", "ssh", "spread")
P = Promote("h1", f"/f0/{NAME}.plotfleet-tmp", 1000, "p1", f"/d0/{NAME}")
S = StartJob("p1", "/t0", "/d0", None, "chiapos", 18, ("chiapos",), "ready")
DIGEST = {"size": 1000, "sha256": "00" * 32, "method": "full", "spec": {}}


def test_a_taken_name_is_compared_first_and_never_sent_again_from_there():
    more = follow_up([NameTaken(T, ())], HOSTS, 0.0)
    [p] = more.plan.promotes
    assert (p.host, p.partial, p.from_host, p.plot) == ("h1", f"/f0/{NAME}.plotfleet-tmp",
                                                         "p1", f"/d0/{NAME}")
    assert not p.resend and not more.plan.transfers
    # the file there vanished or differs: the next pass decides, no loop in this one
    assert not follow_up([CopyLost(p, (), "copy vanished")], HOSTS, 0.0).plan


def test_a_lost_or_different_copy_is_sent_again_to_the_drive_it_was_on():
    [t] = follow_up([CopyLost(P, (), "copy vanished")], HOSTS, 0.0).plan.transfers
    assert (t.from_host, t.plot, t.to_host, t.to_dir, t.reason) == (
        "p1", f"/d0/{NAME}", "h1", "/f0", "copy vanished")


def test_the_source_goes_only_when_both_digests_agree():
    ok = follow_up([Promoted(P, (), DIGEST, dict(DIGEST))], HOSTS, 0.0)
    [r] = ok.plan.removals
    assert isinstance(r, RemoveSource) and (r.host, r.plot) == ("p1", f"/d0/{NAME}")
    assert r.proof["sha256"] == DIGEST["sha256"]
    bad = follow_up([Promoted(P, (), DIGEST, dict(DIGEST, sha256="11" * 32))], HOSTS, 0.0)
    assert not bad.plan
    [e] = bad.events
    assert e.kind == "copy_mismatch" and e.failed and "source kept" in e.detail


def test_a_lost_start_is_asked_again_until_its_time_is_up():
    first = follow_up([Unanswered(S, (), {"request_id": "r1"}, 100.0, "timed out")], HOSTS, 101.0)
    [ask] = first.asks
    assert ask.args == {"request_id": "r1"} and first.events[0].kind == "job_start_unanswered"
    assert follow_up([Unanswered(ask, (), ask.args, 100.0, "again")], HOSTS, 200.0).asks == (ask,)
    late = follow_up([Unanswered(ask, (), ask.args, 100.0, "again")], HOSTS,
                     100.0 + ASK_AGAIN_S)
    assert late.asks == () and "no longer asked" in late.events[0].detail
    # a try that expired on the host did nothing: asked again; a refusal is final
    assert follow_up([Failed(ask, (), ErrorCode.DEADLINE_EXPIRED, "late")], HOSTS, 200.0).asks == (ask,)
    refused = follow_up([Failed(ask, (), ErrorCode.REFUSED, "limits")], HOSTS, 200.0)
    assert refused.asks == () and refused.events[0].kind == "job_start_failed"
    assert follow_up([Started(ask, (), 42, "/log/a.log")], HOSTS, 200.0).started == (
        ("p1", 42, "/log/a.log"),)


def test_what_was_done_as_decided_needs_nothing_more():
    assert not follow_up([Outcome(T, ()), Failed(P, (), "conflict", "other bytes")],
                         HOSTS, 0.0).plan


def test_the_plan_holds_what_the_scheduler_and_archiver_decide_and_guards_before_the_snapshot():
    p1 = f.plotter("p1", count=0)
    hosts = f.inventory(p1, f.harvester("h1"))
    plot = f.plot_file("/d0")
    state = f.fleet(f.host_state(p1, plots=[plot]), f.host_state(hosts["h1"]))
    p = plan(state, hosts, f.NOW)
    assert p.farm is not None and p.schedule is not None and p.archive is not None
    assert p.transfers == p.archive.transfers and [t.plot for t in p.transfers] == [plot.path]
    assert p.to_json()["transfers"][0]["plot"] == plot.path
    assert outlook(state, hosts, p.schedule, p.archive)[0].archiving == "next"
    before = plan_before(hosts.values(), (AskAgain(S, {}, 0.0),))
    assert [g.host for g in before.guards] == ["p1"] and len(before.asks) == 1

