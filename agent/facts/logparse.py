"""Plot logs followed as they grow (the reading itself: agent/vocab/logread.py)."""
import os
import re

from ..vocab.logread import LogState


CHUNK = 1 << 20          # bytes read at a time: memory stays bounded
MAX_PER_POLL = 64 << 20  # a poll of a huge backlog yields; the next one resumes
MAX_LINE = 64 << 10      # a "line" longer than this is junk, not a marker


class LogTail:
    """Follows one growing log, reading only bytes added since the last poll."""

    def __init__(self, path, plotter=None):
        self.path = path
        self.plotter_hint = plotter
        self.inode = None
        self.offset = 0
        self.pending = b""
        self.last_growth_time = None
        self._reset()

    def _reset(self):
        self.state = LogState(self.plotter_hint)
        self.offset = 0
        self.pending = b""

    # the fields the snapshot reads
    plotter = property(lambda s: s.state.plotter)
    phase = property(lambda s: s.state.phase)
    plot_id = property(lambda s: s.state.plot_id)
    k = property(lambda s: s.state.k)
    finished = property(lambda s: s.state.finished)
    plots_done = property(lambda s: s.state.plots_done)

    def poll(self, now=None):
        """Parse what was appended; returns the number of bytes read."""
        try:
            st = os.stat(self.path)
        except OSError:
            return 0
        if self.inode is not None and (st.st_ino != self.inode or st.st_size < self.offset):
            self._reset()   # rotated or truncated: read it anew
        if self.inode != st.st_ino or self.last_growth_time is None:
            self.last_growth_time = st.st_mtime
        self.inode = st.st_ino
        if st.st_size == self.offset:
            return 0
        got = 0
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                while got < MAX_PER_POLL:
                    data = f.read(CHUNK)
                    if not data:
                        break
                    got += len(data)
                    self._consume(data)
        except OSError:
            pass
        self.offset += got
        if got:
            self.last_growth_time = max(st.st_mtime, self.last_growth_time or 0)
        return got

    def _consume(self, data):
        buf = self.pending + data
        # \r ends a line too: progress bars redraw with it, CRLF gives an empty line
        parts = re.split(b"[\r\n]", buf)
        self.pending = parts.pop()
        if len(self.pending) > MAX_LINE:
            self.pending = b""
        for raw in parts:
            if raw:
                self.state.feed(raw)
