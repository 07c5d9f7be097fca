"""One event, one line (ui/eventline.py): marks by locale, the cause cut to
the width left, a kind it does not know, more than 5 of a kind folded."""
from orchestrator.core.events import Event
from orchestrator.ui import eventline
from orchestrator.ui.dirtables import HostKeys
from tests.factories import harvester, plotter

ID = "33edc5e6f553b5b4be0214845d250ddcbe75a9da53137fc0c86b806d51e81503"
PLOT = f"plot-k18-2026-12-04-19-34-{ID}.plot"


def places():
    p = plotter("plotter1", tmp_dirs=("/mnt/nvme/t0", "/mnt/nvme/t1"), dst_dirs=("/mnt/dst",))
    h = harvester("hv1", farm_dirs=("/mnt/hdd/farm1", "/mnt/hdd/farm2"))
    return eventline.Places({"plotter1": HostKeys(p, None), "hv1": HostKeys(h, None)})


def transfer(**kw):
    return Event("transfer_started", "plotter1", PLOT, "transfer: (the whole line)",
                 dir="/mnt/dst", to_host="hv1", to_dir="/mnt/hdd/farm1", size_bytes=4 << 20,
                 pid=77, why="spread: hv1:/mnt/hdd/farm1 has 7.2 TiB free", **kw).to_json()


def test_marks_follow_the_locale_not_the_terminal():
    assert eventline.marks_for({"LANG": "en_US.UTF-8"}) is eventline.UTF8
    assert eventline.marks_for({"LC_ALL": "C", "LANG": "en_US.UTF-8"}) is eventline.ASCII
    assert eventline.marks_for({"LC_CTYPE": "de_DE.utf8"}) is eventline.UTF8
    assert eventline.marks_for({}) is eventline.ASCII
    line = eventline.line(transfer(), "19:34:16", places(), eventline.ASCII, 80)
    assert line.startswith("19:34:16 -> 33edc5e6 plotter1:dst -> hv1:farm1 (4.0 MiB, pid 77)")
    assert line.isascii() and len(line) <= 80


def test_the_cause_takes_the_width_left_with_dirs_by_their_key():
    full = eventline.line(transfer(), "19:34:16", places(), eventline.UTF8)
    assert full == ("19:34:16 → 33edc5e6 plotter1:dst → hv1:farm1 (4.0 MiB, pid 77)"
                    " · spread: hv1:farm1 has 7.2 TiB free")
    cut = eventline.line(transfer(), "19:34:16", places(), eventline.UTF8, 80)
    assert len(cut) == 80 and cut.endswith("…") and full.startswith(cut[:-1])
    bare = eventline.line(transfer(), "19:34:16", places(), eventline.UTF8, 66)
    assert bare == "19:34:16 → 33edc5e6 plotter1:dst → hv1:farm1 (4.0 MiB, pid 77)"
    assert places().key_lines() == ["key plotter1: tmp /mnt/nvme/ · dst /mnt/",
                                    "key hv1: farm /mnt/hdd/"]


def test_a_failure_says_its_error_after_a_colon():
    e = Event("promote_failed", "hv1", PLOT, "hv1: promote failed: disk I/O error",
              failed=True, dir="/mnt/hdd/farm2", why="disk I/O error").to_json()
    text = eventline.render(e, "19:35:02", places(), eventline.UTF8, 80)
    assert text.plain == "19:35:02 ✗ 33edc5e6 promote on hv1:farm2 failed: disk I/O error"
    assert text.style == "red"


def test_a_kind_it_does_not_know_still_gets_one_line():
    # a kind added later (or read from an old log) with no facts at all
    e = {"kind": "plot_quarantined", "host": "plotter1", "subject": f"/mnt/dst/{PLOT}",
         "detail": "plotter1: " + "proof check failed at 12 of 1000 challenges " * 4,
         "failed": True}
    line = eventline.line(e, "19:36:00", places(), eventline.UTF8, 80)
    assert line.startswith("19:36:00 ✗ plotter1 33edc5e6 plot quarantined: proof check failed")
    assert len(line) == 80
    verbose = eventline.render(e, "19:36:00", places(), eventline.UTF8, 80, verbose=True)
    assert verbose.plain == "19:36:00 " + e["detail"]


def test_more_than_five_of_a_kind_in_a_pass_fold_into_one_line():
    ids = [f"{i:08x}" + ID[8:] for i in range(7)]
    claims = [Event("claim_failed", "hv1", "/mnt/hdd/farm1", "hv1: claim failed: drive busy",
                    failed=True, dir="/mnt/hdd/farm1", why="drive busy").to_json()
              for _ in range(7)]
    sends = [Event("transfer_started", "plotter1", f"plot-k18-2026-12-04-19-34-{i}.plot", "t",
                   dir="/mnt/dst", to_host="hv1", to_dir="/mnt/hdd/farm1").to_json()
             for i in ids[:5]]
    folded = eventline.fold(claims[:3] + sends + claims[3:])
    assert len(folded) == 6                     # 5 transfers as they are, 7 claims as one
    [one] = [e for e in folded if e.get("folded")]
    assert one["folded"] == 7 and one["failed"]
    text = eventline.render(one, "19:40:00", places(), eventline.UTF8, 80).plain
    assert text == "19:40:00 ✗ 7 x claim failed on hv1: drive busy"
    assert eventline.fold(sends) == sends


def test_a_replot_deletion_names_the_old_plot_and_the_new_one_it_made_room_for():
    old = "plot-k32-2021-04-04-19-00-" + "ab" * 32 + ".plot"
    e = Event("replot_deleted", "hv1", old, "replot: deleted hv1:/mnt/hdd/farm1/" + old,
              dir="/mnt/hdd/farm1", plot_id=ID, size_bytes=101 << 30,
              why=f"og-plots, room for {PLOT}").to_json()
    line = eventline.line(e, "19:40:00", places(), eventline.UTF8, 80)
    assert line.startswith("19:40:00 · abababab deleted on hv1:farm1 for 33edc5e6 (101.0 GiB)")
    assert len(line) <= 80
