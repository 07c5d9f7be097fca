"""Plot logs followed as they grow (the reading itself: agent/vocab/logread.py)."""
import os
import re

from .. import deadline
from ..vocab.logread import LogState


CHUNK = 256 << 10        # bytes read (and parsed) at a time: memory and each step bounded
MAX_LINE = 64 << 10      # a "line" longer than this is junk, not a marker: skipped
# A plotter writes a few hundred KB of log per plot: what fills a log past
# that is noise (a loop, a tool spamming).  A log is read through its first
# HEAD_READ bytes, then from its last TAIL_READ on (the last marker wins, the
# error line is near the end), never the middle of a huge one.
HEAD_READ = 32 << 20
TAIL_READ = 32 << 20
NEWLINE = re.compile(b"[\r\n]")


class LogTail:
    """Follows one log, reading only bytes added since the last poll.

    Reading stops at the request's deadline (deadline.reading_over) and goes
    on from the same offset at the next poll: a huge log is read across
    requests (its head and its tail, HEAD_READ and TAIL_READ), never holding
    one past its deadline; `complete` says whether the last poll reached the
    end.  A line longer than MAX_LINE is skipped
    up to its end without being parsed."""

    def __init__(self, path, plotter=None):
        self.path = path
        self.plotter_hint = plotter
        self.inode = None
        self.offset = 0
        self.size = 0
        self.pending = b""
        self.skipping = False       # inside an over-long line: dropped up to its end
        self.last_growth_time = None
        self._reset()

    def _reset(self):
        self.state = LogState(self.plotter_hint)
        self.offset = 0
        self.pending = b""
        self.skipping = False

    # the fields the snapshot reads
    plotter = property(lambda s: s.state.plotter)
    phase = property(lambda s: s.state.phase)
    plot_id = property(lambda s: s.state.plot_id)
    k = property(lambda s: s.state.k)
    finished = property(lambda s: s.state.finished)
    plots_done = property(lambda s: s.state.plots_done)
    complete = property(lambda s: s.offset >= s.size)

    def poll(self, now=None):
        """Parse what was appended, until the end or the deadline; returns the
        number of bytes read."""
        try:
            st = os.stat(self.path)
        except OSError:
            return 0
        if self.inode is not None and (st.st_ino != self.inode or st.st_size < self.offset):
            self._reset()   # rotated or truncated: read it anew
        if self.inode != st.st_ino or self.last_growth_time is None:
            self.last_growth_time = st.st_mtime
        self.inode = st.st_ino
        self.size = st.st_size
        if st.st_size == self.offset:
            return 0
        got = 0
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                while not deadline.reading_over():
                    if self.offset >= HEAD_READ and st.st_size - self.offset > TAIL_READ:
                        self.offset = st.st_size - TAIL_READ    # a huge log's middle: skipped
                        self.pending, self.skipping = b"", True     # from the next line on
                        f.seek(self.offset)
                    data = f.read(CHUNK)
                    if not data:
                        break
                    got += len(data)
                    self.offset += len(data)
                    self._consume(data)
        except OSError:
            pass
        if got:
            self.last_growth_time = max(st.st_mtime, self.last_growth_time or 0)
        return got

    def _consume(self, data):
        if self.skipping:
            # memchr, not a regex: an over-long line costs next to nothing
            ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
            if not ends:
                return                  # still inside the over-long line
            data = data[min(ends) + 1:]
            self.skipping = False
        buf = self.pending + data
        # \r ends a line too: progress bars redraw with it, CRLF gives an empty line
        parts = NEWLINE.split(buf)
        self.pending = parts.pop()
        if len(self.pending) > MAX_LINE:
            self.pending = b""
            self.skipping = True
        for raw in parts:
            if raw and len(raw) <= MAX_LINE:
                self.state.feed(raw)
