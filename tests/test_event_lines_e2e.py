"""`plotfleet plot-all --plots 3` on the README's demo inventory in a real
terminal (tmux): at 80 columns every event is one line; at 200 columns the
same events, with more of their cause."""
import re
import shlex
import shutil
import sys

from tests.cli import REPO
from tests.test_dashboard import Tmux

EVENT = re.compile(r"^\d\d:\d\d:\d\d (▶|→|✓|✗|·) (.*)$")


def demo_run(base, width):
    base.mkdir()
    shutil.copy(REPO / "inventory.example.yaml", base / "inventory.yaml")
    cmd = " ".join(shlex.quote(str(a)) for a in (
        "env", "-u", "COLUMNS", "-u", "LINES", "LANG=C.UTF-8", f"PYTHONPATH={REPO}",
        sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
        base / "inventory.yaml", "--plots", "3"))
    t = Tmux(base, f"cd {shlex.quote(str(base))} && {cmd}", width=width, height=24)
    try:
        status = t.exit_status(timeout=240)
        # -J joins what the terminal wrapped: a line longer than the width was cut in two
        text = t.run("capture-pane", "-p", "-J", "-S", "-", "-t", "dash")
    finally:
        t.close()
    return status, text


def events(text):
    return [m.group(0) for m in map(EVENT.match, text.splitlines()) if m]


def shapes(lines):
    """Each event without its time, ids and pids: what happened, in order."""
    out = []
    for line in lines:
        what = EVENT.match(line).group(2)
        what = re.sub(r"\b[0-9a-f]{8}\b", "ID", what)
        what = re.sub(r"\(.*", "", what).strip()
        out.append(re.sub(r"farm[12]", "farmN", re.sub(r"tmp[01]", "tmpN", what)))
    return sorted(out)


def test_plot_all_in_80_columns_prints_each_event_on_one_line(tmp_path):
    status, text = demo_run(tmp_path / "w80", 80)
    assert status == "EXIT=0", text
    lines = events(text)
    demo = f"{tmp_path / 'w80'}/demo/"
    # the key line names the dirs once, before the first event
    keyed = [i for i, line in enumerate(text.splitlines()) if line.startswith("key localhost:")]
    assert len(keyed) == 1 and f"tmp, dst, farm {demo}" in text.splitlines()[keyed[0]], text
    for line in text.splitlines():
        if not line.startswith("key "):
            assert len(line) <= 80, line
    starts = [line for line in lines if " ▶ localhost chiapos k18 " in line]
    sends = [line for line in lines if re.search(r" → [0-9a-f]{8} localhost:dst → localhost:farm[12] \(", line)]
    promoted = [line for line in lines if re.search(r" ✓ [0-9a-f]{8} promoted on localhost:farm[12] \(.*verified\)", line)]
    removed = [line for line in lines if re.search(r" ✓ [0-9a-f]{8} source removed from localhost:dst", line)]
    assert (len(starts), len(sends), len(promoted), len(removed)) == (3, 3, 3, 3), text
    assert all(re.search(r"tmp[01] → dst \(pid \d+\)", line) for line in starts), starts
    assert demo not in "\n".join(lines)         # no event spells a path the key names
    assert any(line.endswith("…") for line in lines), lines      # causes cut at the width

    status, wide = demo_run(tmp_path / "w200", 200)
    assert status == "EXIT=0", wide
    wide_lines = events(wide)
    assert shapes(wide_lines) == shapes(lines)          # the same events
    assert max(map(len, wide_lines)) > 80
    assert all(re.search(r"\(pid \d+\) · tmp tmp[01] \S+, dst dst [\d.]+ \w+ free$", line)
               for line in wide_lines if " ▶ " in line), wide_lines     # the cause, whole
