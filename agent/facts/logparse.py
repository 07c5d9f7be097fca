"""Plot logs -> phase, plot id, k, dirs, timings.

Phase rules are DESIGN.md's tables: a line containing a case-sensitive
marker sets the phase; the last matching line wins.  Lines are cleaned of
ANSI codes, `\\r` and undecodable bytes first, so colours, CRLF and junk
never hide a marker.  `LogTail` follows a growing log a chunk at a time;
`analyze_log` summarises a finished one.
"""
import os
import re
import time

from . import compression

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
PLOT_NAME = re.compile(
    r"plot-k(\d+)-(?:c\d+-)?\d{4}-\d\d-\d\d-\d\d-\d\d-([0-9a-fA-F]{64})")
HEX64 = re.compile(r"\b([0-9a-fA-F]{64})\b")
CHIA_ID = re.compile(r"(?:^|\s)ID: ([0-9a-fA-F]{64})\b")
NUM = r"(\d+(?:\.\d+)?)"


def _fixed(p):
    return lambda m: p


def _n(fn):
    return lambda m: fn(int(m.group(1)))


# (cheap substring, regex or None, phase function of the match)
CHIA_RULES = [
    ("Starting phase", re.compile(r"Starting phase (\d)/4"), _n(lambda n: (n, 0))),
    ("Computing table", re.compile(r"Computing table (\d)"), _n(lambda n: (1, n))),
    ("Backpropagating on table", re.compile(r"Backpropagating on table (\d)"),
     _n(lambda n: (2, 8 - n))),
    ("table 1 new size", None, _fixed((2, 7))),
    ("Compressing tables", re.compile(r"Compressing tables (\d) and \d"),
     _n(lambda n: (3, n))),
    ("Starting to write C1 and C3 tables", None, _fixed((4, 1))),
    ("Writing C2 table", None, _fixed((4, 2))),
    ("Final table pointers", None, _fixed((4, 3))),
    ("Approximate working space used", None, _fixed((5, 0))),
    ("Copied final file", None, _fixed((5, 1))),
    ("Removed temp2 file", None, _fixed((5, 2))),
    ("Renamed final file", None, _fixed((5, 3))),
]

MADMAX_RULES = [
    ("Plot Name:", None, _fixed((1, 1))),
    ("[P1] Table", re.compile(r"\[P1\] Table (\d) took"), _n(lambda n: (1, min(n + 1, 7)))),
    ("[P2] max_table_size", None, _fixed((2, 1))),
    ("[P2] Table", re.compile(r"\[P2\] Table (\d) rewrite took"), _n(lambda n: (2, 9 - n))),
    ("Phase 2 took", None, _fixed((3, 0))),
    ("Wrote plot header", None, _fixed((3, 1))),
    ("[P3-2] Table", re.compile(r"\[P3-2\] Table (\d) took"), _n(lambda n: (3, min(n, 6)))),
    ("Phase 3 took", None, _fixed((4, 0))),
    ("[P4] Starting to write C1 and C3 tables", None, _fixed((4, 1))),
    ("[P4] Writing C2 table", None, _fixed((4, 2))),
    ("Phase 4 took", None, _fixed((5, 0))),
    ("Started copy to", None, _fixed((5, 1))),
    ("Renamed final plot", None, _fixed((5, 2))),
]

# bladebit, every mode of v1..v3 (ramplot = v1's only mode).  DESIGN.md's
# table for v1, plus what v3 prints, read from bladebit's sources
# (src/plotmem, src/plotdisk, cuda/CudaPlotter.cu, CudaPlotPhase2/3.cu) and
# real logs (tests/test_plotters_today.py names them):
#   ramplot   "Running Phase N" -> N:0, "Forward propagating to table N" -> 1:N,
#             "Prunning table N" -> 2:(7-N), "Compressing tables N and N+1" -> 3:N,
#             "Writing P7/C1/C2/C3" -> 4:1..4:4, "Finished Phase N in" -> (N+1):0,
#             "Writing final plot tables to disk" -> 5:1
#   diskplot  "Generating f1" -> 1:0, "Finished f1 generation in" -> 1:1,
#             "Completed table N in .. with E entries." -> 1:N,
#             "Finished marking table N" -> 2:(7-N), "Compressing tables N and N+1." -> 3:N,
#             "Finished Phase N in" -> (N+1):0, "Finished writing plot" -> 5:2
#   cudaplot  "Generating F1" -> 1:0, "Finished F1 in" -> 1:1,
#             "Table N completed in" -> 1:N, "Completed Phase 1 in" -> 2:0,
#             "Marked Table N in" -> 2:(7-N), "Completed Phase 2 in" -> 3:0,
#             "Compressing Table 2 and 3..." then "Compressing tables 3 and 4..." -> 3:N
#             (the case differs within one log: matched without case),
#             "Completed Phase 3 in" -> 4:0 (cudaplot writes C tables inside phase 3:
#             it has no phase 4), "Completed Plot 1 in" (built; the write to the dst
#             dir goes on) -> 5:1, last "Completed writing plot in" -> 5:2 (done).
#   cudaplot's phase-3 "Completed table N in .. with A / B entries" is no phase-1
#   line: only the diskplot form (one entry count, no " / ") sets 1:N.
BLADEBIT_RULES = [
    ("Allocating buffers", None, _fixed((0, 1))),
    ("Generating plot", None, _fixed((0, 2))),
    ("Running Phase", re.compile(r"Running Phase (\d)"), _n(lambda n: (n, 0))),
    ("generating f1", re.compile(r"Generating F1\b(?! generation)", re.I), _fixed((1, 0))),
    ("Finished F1 generation", None, _fixed((1, 1))),
    ("finished f1 generation", re.compile(r"Finished f1 generation", re.I), _fixed((1, 1))),
    ("Completed F1 in", None, _fixed((1, 1))),
    ("Finished F1 in", None, _fixed((1, 1))),
    ("Forward propagating to table", re.compile(r"Forward propagating to table (\d)"),
     _n(lambda n: (1, n))),
    ("Completed table", re.compile(r"Completed table (\d) in [\d.]+ seconds with \d+ entries"),
     _n(lambda n: (1, n))),
    ("completed in", re.compile(r"Table (\d) completed in"), _n(lambda n: (1, n))),
    ("Finished Phase", re.compile(r"Finished Phase (\d)"), _n(lambda n: (n + 1, 0))),
    ("Completed Phase", re.compile(r"Completed Phase (\d) in"), _n(lambda n: (n + 1, 0))),
    ("Prunning table", re.compile(r"Prunning table (\d)"), _n(lambda n: (2, 7 - n))),
    ("Finished marking table", re.compile(r"Finished marking table (\d)"),
     _n(lambda n: (2, 7 - n))),
    ("Marked Table", re.compile(r"Marked Table (\d)"), _n(lambda n: (2, 7 - n))),
    ("compressing table", re.compile(r"(?<!Finished )compressing tables? (\d) and \d", re.I),
     _n(lambda n: (3, n))),
    ("Writing P7", None, _fixed((4, 1))),
    ("Writing C1 table", None, _fixed((4, 2))),
    ("Writing C2 table", None, _fixed((4, 3))),
    ("Writing C3 table", None, _fixed((4, 4))),
    ("Writing final plot tables to disk", None, _fixed((5, 1))),
    ("Completed Plot", re.compile(r"Completed Plot \d+ in"), _fixed((5, 1))),
    ("Finished writing plot", None, _fixed((5, 2))),
    ("Completed writing plot", None, _fixed((5, 2))),
]

# Gigahorse (cuda_plot_k32, cuda_plot_k32_v3, ...; and its CPU chia_plot) is
# madMAx's code and prints madmax's lines where it has them ("Plot Name:",
# "[P1] Table N took", "Phase N took", "Started copy to", "Copy to .. finished");
# its phase 3 prints "[P3] Table N PDSK|LPSK|NSK took" (chia-gigahorse issue
# #120).  Mapped as madmax's:
#   "Crafting plot" -> 0:1, "Plot Name:" -> 1:0, "[P1] Table N took" -> 1:min(N+1, 7),
#   "Phase N took" -> (N+1):0, "[P2] Table N" -> 2:(9-N),
#   "[P3] Table N <step> took" -> 3:min(N, 6), "[P4]" -> 4:1,
#   "Started copy to" -> 5:1, "Copy to .. finished" / "Renamed final plot" -> 5:2.
# A GPU plotter copies the previous plot while it makes the next one: a copy
# line moves the phase only when it names the plot in progress (LogState).
# The [P2] and [P4] lines are mapped by analogy with madmax: no real log at
# hand shows them.
GIGAHORSE_RULES = [
    ("Crafting plot", None, _fixed((0, 1))),
    ("Plot Name:", None, _fixed((1, 0))),
    ("[P1] Table", re.compile(r"\[P1\] Table (\d) took"), _n(lambda n: (1, min(n + 1, 7)))),
    ("Phase", re.compile(r"(?:^|[\s\]])Phase (\d) took"), _n(lambda n: (n + 1, 0))),
    ("[P2] Table", re.compile(r"\[P2\] Table (\d)"), _n(lambda n: (2, max(1, 9 - n)))),
    ("[P3] Table", re.compile(r"\[P3\] Table (\d) \w+ took"), _n(lambda n: (3, min(n, 6)))),
    ("[P4]", None, _fixed((4, 1))),
]
GIGAHORSE_COPY = [
    ("Started copy to", None, _fixed((5, 1))),
    ("Renamed final plot", None, _fixed((5, 2))),
    (" finished, took", re.compile(r"Copy to .* finished, took"), _fixed((5, 2))),
]

RULES = {"chia": CHIA_RULES, "chiapos": CHIA_RULES,
         "madmax": MADMAX_RULES, "bladebit": BLADEBIT_RULES,
         "gigahorse": GIGAHORSE_RULES + GIGAHORSE_COPY,
         "gigahorse_plot": GIGAHORSE_RULES}     # LogState: copy lines checked apart

# A line containing one of these means the plot is complete on its dst disk.
FINISHED = {
    "chia": ("Renamed final file",),
    "madmax": ("Renamed final plot",),
    "bladebit": ("Finished plotting in", "Finished writing plot",
                 "Completed writing plot"),
    # as a copy line names its plot, LogState marks that plot finished
    "gigahorse": (),
}

# Content that names the plotter, for logs of unknown origin.
SIGNATURES = [
    ("gigahorse", ("next-gen CUDA plotter", "next-gen plotter", "Compression Level: C")),
    ("madmax", ("Multi-threaded pipelined Chia", "[P1] Table", "Plot Name: ")),
    ("bladebit", ("Bladebit", "bladebit", "Generating plot ", "Running Phase 1",
                  "Plot temporary file:", "Generating F1", "Table 2 completed in")),
    ("chia", ("Starting plotting progress into temporary dirs", "Starting phase 1/4",
              "Plot size is: ")),
]


def clean_line(raw):
    """bytes or str of one line -> printable text without ANSI codes."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return ANSI.sub("", raw).replace("\r", "").replace("\x00", "")


# -- the log's own error line ------------------------------------------------
# A failed job is shown with the last line in its log that says what went
# wrong, in the plotter's own words: an exception's message (never a
# traceback frame), C++'s `terminate called ... / what(): ...` pair, or a
# line that reads like an error.
ERROR_WORDS = re.compile(
    r"\b(?:error|exception|fatal|failed|failure|invalid|cannot|can't|could not|"
    r"couldn't|unable|denied|no such file|not found|aborted|segmentation fault|"
    r"out of memory|bad_alloc)\b", re.I)
TRACEBACK = "Traceback (most recent call last):"
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
CPP_TERMINATE = re.compile(r"terminate called after throwing an instance of '([^']+)'")
CPP_WHAT = re.compile(r"^\s*what\(\):\s*(.*)$")
# pybind11's text for a C++ exception it could not translate: says nothing
VAGUE = ("std::exception",)
# what `plotfleet kill` appends to the log of a job it ended: not a failure
KILLED_MARK = "plotfleet: killed on request"
MAX_ERROR = 300


class ErrorLine:
    """Follows a log line by line; `.text` is its last meaningful error line."""

    def __init__(self):
        self.text = None
        self.in_traceback = False
        self.cpp_type = None

    def feed(self, line):
        s = line.strip()
        if not s:
            return
        if s.startswith(TRACEBACK):
            self.in_traceback = True
            return
        if self.in_traceback:
            if line[:1].isspace() or s.startswith(CHAINED):
                return              # a frame, its source line, or the chain's note
            self.in_traceback = False
            self._set(s)            # the exception itself: `ValueError: bad key`
            return
        if s.startswith(CHAINED):
            return
        m = CPP_TERMINATE.search(s)
        if m:
            self.cpp_type = m.group(1)
            self._set(s)
            return
        m = CPP_WHAT.match(line)
        if m:
            what = m.group(1).strip()
            self._set("%s: %s" % (self.cpp_type, what) if self.cpp_type else what)
            self.cpp_type = None
            return
        if ERROR_WORDS.search(s) and not any(s.endswith(v) for v in VAGUE):
            self._set(s)

    def _set(self, text):
        self.text = text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 1] + "\u2026"


def detect_plotter(line):
    for name, marks in SIGNATURES:
        for m in marks:
            if m in line:
                return name
    return None


def phase_of(line, plotter):
    """Phase set by this line under `plotter`'s rules, or None."""
    lower = None
    for sub, rx, fn in RULES.get(plotter, ()):
        if rx is not None and rx.flags & re.I:
            if lower is None:
                lower = line.lower()
            if sub not in lower:
                continue
        elif sub not in line:
            continue
        if rx is None:
            return fn(None)
        m = rx.search(line)
        if m:
            return fn(m)
    return None


class LogState:
    """What the lines of one log have told so far (fed line by line)."""

    def __init__(self, plotter=None):
        self.plotter = plotter
        self.phase = (0, 0)
        self.plot_id = None
        self.k = None
        self.finished = False
        self.tmp_dir = None
        self.tmp2_dir = None
        self.dst_dir = None
        self.start_time = None
        self.phase_s = [None, None, None, None]
        self.total_s = None
        self.copy_s = None
        self.earlier = []       # summaries of the earlier plots of a multi-plot log
        self.lines = 0          # non-blank lines read (none: phase unknown)
        self.errors = ErrorLine()
        self.killed = False
        self.compress, self.compress_format = 0, None

    @property
    def plots_done(self):
        """Plots this log has finished: a multi-plot log (-n N, endless jobs)
        has one section per plot, each ending in its FINISHED marker."""
        return sum(1 for e in self.earlier if e["finished"]) + (1 if self.finished else 0)

    def summary(self):
        return {
            "plotter": self.plotter, "plot_id": self.plot_id, "k": self.k,
            "compress": self.compress, "compress_format": self.compress_format,
            "phase": list(self.phase), "finished": self.finished,
            "phase_s": list(self.phase_s), "copy_s": self.copy_s, "total_s": self.total_s,
            "start_time": self.start_time, "tmp_dir": self.tmp_dir,
            "tmp2_dir": self.tmp2_dir, "dst_dir": self.dst_dir,
            "error": self.errors.text, "killed": self.killed, "lines": self.lines,
        }

    def feed(self, line):
        line = clean_line(line)
        if not line.strip():
            return
        self.lines += 1
        if line.startswith(KILLED_MARK):
            self.killed = True
            return
        self.errors.feed(line)
        if self.plotter is None:
            self.plotter = detect_plotter(line)
            if self.plotter is None:
                return
        fam = "chia" if self.plotter == "chiapos" else self.plotter
        ph = phase_of(line, "gigahorse_plot" if fam == "gigahorse" else fam)
        self._before = self.phase       # the plot this line may end keeps its phase
        if ph is not None:
            self.phase = ph
        if fam == "chia":
            self._chia(line)
        elif fam == "madmax":
            self._madmax(line)
        elif fam == "gigahorse":
            self._gigahorse(line)
        else:
            self._bladebit(line)
        for m in FINISHED.get(fam, ()):
            if m in line:
                self.finished = True

    def _new_plot(self, plot_id):
        # A multi-plot log (-n N) starts over for each plot.
        if self.plot_id and plot_id != self.plot_id:
            done = self.summary()
            done["phase"] = list(getattr(self, "_before", self.phase))
            self.earlier.append(done)
            self.finished = False
            self.phase_s = [None, None, None, None]
            self.total_s = self.copy_s = None
            self.start_time = None      # the next plot's own "Starting phase 1/4"
            self.errors = ErrorLine()
            self.killed = False
        self.plot_id = plot_id

    def _chia(self, line):
        if "ID: " in line:
            m = CHIA_ID.search(line)
            if m:
                self._new_plot(m.group(1).lower())
        elif "Plot size is:" in line:
            m = re.search(r"Plot size is: (\d+)", line)
            if m:
                self.k = int(m.group(1))
        elif "Starting plotting progress into temporary dirs:" in line:
            rest = line.split("temporary dirs:", 1)[1].strip()
            if " and " in rest:
                self.tmp_dir, self.tmp2_dir = [p.strip() for p in rest.rsplit(" and ", 1)]
        elif "Final Directory is:" in line:
            self.dst_dir = line.split("Final Directory is:", 1)[1].strip()
        elif "Time for phase" in line:
            m = re.search(r"Time for phase (\d) = " + NUM, line)
            if m and 1 <= int(m.group(1)) <= 4:
                self.phase_s[int(m.group(1)) - 1] = float(m.group(2))
        elif "Total time =" in line:
            m = re.search(r"Total time = " + NUM, line)
            if m:
                self.total_s = float(m.group(1))
        elif "Copy time =" in line:
            m = re.search(r"Copy time = " + NUM, line)
            if m:
                self.copy_s = float(m.group(1))
        if self.start_time is None and "Starting phase 1/4" in line:
            self.start_time = _ctime(line)

    def _madmax(self, line):
        if "Plot Name:" in line:
            m = PLOT_NAME.search(line)
            if m:
                self.k = int(m.group(1))
                self._new_plot(m.group(2).lower())
                self._level(compression.from_name(line))
        elif "Compression Level: C" in line:
            m = re.search(r"Compression Level: C(\d+)", line)
            if m:       # Gigahorse (its chia_plot too): "Compression Level: C7 (xbits = ..)"
                self._level(compression.from_level(m.group(1), compression.GIGAHORSE))
        elif "Working Directory 2:" in line:
            self.tmp2_dir = line.split("Working Directory 2:", 1)[1].strip()
        elif "Working Directory:" in line:
            self.tmp_dir = line.split("Working Directory:", 1)[1].strip()
        elif "Final Directory:" in line:
            self.dst_dir = line.split("Final Directory:", 1)[1].strip()
        elif " took " in line:
            m = re.search(r"(?:^|\s)Phase (\d) took " + NUM, line)
            if m and 1 <= int(m.group(1)) <= 4:
                self.phase_s[int(m.group(1)) - 1] = float(m.group(2))
            m = re.search(r"Copy to .* finished, took " + NUM, line)
            if m:
                self.copy_s = float(m.group(1))
        elif "Total plot creation time was" in line:
            m = re.search(r"Total plot creation time was " + NUM, line)
            if m:
                self.total_s = float(m.group(1))

    def _level(self, level):
        if level[0]:
            self.compress, self.compress_format = level

    def _gigahorse(self, line):
        """madmax's lines; and copies, which may be of the plot before (a GPU
        plotter copies one plot while it makes the next)."""
        for sub, rx, fn in GIGAHORSE_COPY:
            if sub not in line or (rx is not None and not rx.search(line)):
                continue
            m = HEX64.search(line)
            copied = m.group(1).lower() if m else self.plot_id
            done = fn(None) == (5, 2)
            if copied == self.plot_id:
                self.phase = fn(None)
                self.finished = self.finished or done
                t = re.search(r"finished, took " + NUM, line)
                if t:
                    self.copy_s = float(t.group(1))
            elif done:
                for earlier in self.earlier:
                    if earlier["plot_id"] == copied:
                        earlier["finished"], earlier["phase"] = True, [5, 2]
            return
        self._madmax(line)

    def _bladebit(self, line):
        if " Compression Level" in line:
            m = re.search(r"Compression Level\s*: (\d+)", line)
            if m:
                self._level(compression.from_level(m.group(1), compression.BLADEBIT))
        if "Generating plot" in line:
            m = HEX64.search(line)
            if m:
                self._new_plot(m.group(1).lower())
        elif "Plot temporary file:" in line:
            path = line.split("Plot temporary file:", 1)[1].strip()
            self.dst_dir = self.dst_dir or os.path.dirname(path)
            m = PLOT_NAME.search(path)
            if m:
                self.k = int(m.group(1))
                self._new_plot(m.group(2).lower())
                self._level(compression.from_name(path))
        else:
            for key, attr in (("Output path", "dst_dir"), ("Temp1 path", "tmp_dir"),
                              ("Temp2 path", "tmp2_dir")):
                m = re.search(key + r"\s*: (.+)$", line)
                if m:
                    setattr(self, attr, m.group(1).strip())
        m = re.search(r"(?:Finished|Completed) Phase (\d) in " + NUM, line)
        if m and 1 <= int(m.group(1)) <= 4:
            self.phase_s[int(m.group(1)) - 1] = float(m.group(2))
        m = re.search(r"(?:Finished plotting|Completed Plot \d+) in " + NUM, line)
        if m:
            self.total_s = float(m.group(1))
        m = re.search(r"(?:Completed|Finished) writing plot in " + NUM, line)
        if m:
            self.copy_s = float(m.group(1))
        if self.k is None:
            self.k = 32


def _ctime(line):
    m = re.search(r"(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})", line)
    if not m:
        return None
    try:
        return time.mktime(time.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y"))
    except ValueError:
        return None


def analyze_plots(text, plotter=None):
    """Every plot a whole log (str or bytes) tells of, finished or not, oldest
    first; None if no plotter speaks in it."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    st = LogState(plotter)
    for line in re.split(r"[\r\n]", text):
        st.feed(line)
    if st.plotter is None:
        return None
    return st.earlier + [st.summary()]


def analyze_log(text, plotter=None):
    """Summary of a whole log's (last) plot, or None if no plotter speaks in it."""
    plots = analyze_plots(text, plotter)
    return plots[-1] if plots else None


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
