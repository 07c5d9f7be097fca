"""The rsync version a snapshot reports (it decides --fsync) is the rsync
on the host's PATH now: kept between agents, asked again once it changes."""
import os
import stat
import time

from agent.facts import snapshot


def _fake_rsync(bin_dir, version):
    path = bin_dir / "rsync"
    path.write_text("#!/bin/sh\necho 'rsync  version %s  protocol version 31'\n" % version)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_new_rsync_is_seen_and_the_old_answer_kept_until_then(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    rsync = _fake_rsync(bin_dir, "3.1.3")
    assert snapshot.Agent().rsync_version() == [3, 1, 3]
    # a second agent reads the kept answer: the binary is not run again
    before = rsync.stat().st_mtime_ns
    rsync.write_text(rsync.read_text().replace("3.1.3", "9.9.9"))
    os.utime(rsync, ns=(before, before))
    # same size, mtime put back: still the kept answer (it was not asked)
    assert snapshot.Agent().rsync_version() == [3, 1, 3]
    # an upgrade (another mtime) is asked afresh
    time.sleep(0.01)
    _fake_rsync(bin_dir, "3.2.7")
    assert snapshot.Agent().rsync_version() == [3, 2, 7]


def test_no_rsync_is_none_and_nothing_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert snapshot.Agent().rsync_version() is None
    assert not (tmp_path / "home" / ".plotfleet" / snapshot.RSYNC_VERSION).exists()
