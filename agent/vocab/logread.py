"""Plot logs -> phase, plot id, k, dirs, timings: the reader both sides use.

Phase rules are each plotter's (plotters/<name>.py, DESIGN.md's tables): a
line containing a case-sensitive marker sets the phase; the last matching
line wins.  Lines are cleaned of ANSI codes, `\\r` and undecodable bytes
first, so colours, CRLF and junk never hide a marker.  `LogState` is fed
line by line (the agent's LogTail follows a growing file with it);
`analyze_log` summarises a finished one.
"""
import os
import re
import time

from . import compression, names
from .plotters import PLOTTERS, detect as detect_plotter
from .plotters import gigahorse as _gigahorse
from .plotters import pos2 as _pos2

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
HEX64 = re.compile(r"\b([0-9a-fA-F]{64})\b")
CHIA_ID = re.compile(r"(?:^|\s)ID: ([0-9a-fA-F]{64})\b")
NUM = r"(\d+(?:\.\d+)?)"

RULES = dict({name: s.rules for name, s in PLOTTERS.items()},
             gigahorse_plot=_gigahorse.RULES)   # LogState: copy lines checked apart
GIGAHORSE_COPY = _gigahorse.COPY_RULES
# A line containing one of these means the plot is complete on its dst disk.
FINISHED = {name: s.finished for name, s in PLOTTERS.items()}


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
MAX_EARLY = 5000        # lines kept while no line has named the plotter
# `chia plotters bladebit|madmax` prefixes the plotter's stderr lines
# (bladebit issue #389)
WRAPPED = "STDERR: "


# every plotter's failure lines (plotters/<name>.py)
FATAL_HEADERS = tuple(h for s in PLOTTERS.values() for h in s.fatal_headers)
CRASH_MARKS = tuple(m for s in PLOTTERS.values() for m in s.crash_marks)
CAUSE_MARKS = tuple(dict.fromkeys(m for s in PLOTTERS.values() for m in s.cause_marks))
# a backtrace frame: `./bladebit(+0xcf8cb)[0x55a6a165d8cb]`,
# `/lib/x86_64-linux-gnu/libc.so.6(__clone+0x40)[0x7f..]` (bladebit issue #260)
FRAME = re.compile(r"^\S*\([^()\s]*\)\s*\[0x[0-9a-fA-F]+\]$")
CPP_RECURSIVE = "terminate called recursively"


class ErrorLine:
    """Follows a log line by line; `.text` is its last meaningful error line.

    A failure header whose message is on the next line (bladebit's
    `Fatal Error:`) is shown with that message; a crash banner
    (`*** Crashed! ***`) with the last line the plotter printed before it,
    never a backtrace frame; a C++ terminate whose what() is empty with the
    plotter's own `... failed with: ...` line before it (Gigahorse: the CUDA
    error), while a what() that says something is kept whole."""

    def __init__(self):
        self.text = None
        self.in_traceback = False
        self.cpp_type = None
        self.header = None      # a fatal header waiting for its message
        self.cause = None       # the last `... failed with: ...` line
        self.last = None        # the last line that was no error and no frame

    def feed(self, line):
        s = line.strip()
        if not s:
            return
        if FRAME.match(s):
            return
        if self.header is not None:
            self._set("%s %s" % (self.header, s))
            self.header = None
            return
        head = next((h for h in FATAL_HEADERS if s.endswith(h)), None)
        if head is not None and s[:-len(head)].strip() in ("", "*** Panic!!! ***"):
            self.header = "Fatal Error:"
            return
        if any(m in s for m in CRASH_MARKS):
            self._set("crashed after: %s" % self.last if self.last else "crashed")
            return
        if s.startswith(CPP_RECURSIVE):
            return
        if any(m in s for m in CAUSE_MARKS):
            self.cause = s
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
            if not what and self.cause:
                self._set(self.cause)       # the empty what() says nothing: its cause
            elif not what:
                self._set("terminated: %s" % (self.cpp_type or "C++ exception"))
            else:
                self._set("%s: %s" % (self.cpp_type, what) if self.cpp_type else what)
            self.cpp_type = None
            return
        if ERROR_WORDS.search(s) and not any(s.endswith(v) for v in VAGUE):
            self._set(s)
        else:
            self.last = s

    def _set(self, text):
        self.text = text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 1] + "\u2026"


# each rule with whether its regex ignores case, worked out once: phase_of
# runs on every line of every log (re.I's enum arithmetic per line was 40%
# of a huge log's reading)
_RULES_CI = {}


def _rules(plotter):
    rules = _RULES_CI.get(plotter)
    if rules is None:
        rules = _RULES_CI[plotter] = tuple(
            (sub, rx, fn, rx is not None and bool(rx.flags & re.I))
            for sub, rx, fn in RULES.get(plotter, ()))
    return rules


def phase_of(line, plotter):
    """Phase set by this line under `plotter`'s rules, or None."""
    lower = None
    for sub, rx, fn, ignore_case in _rules(plotter):
        if ignore_case:
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
        self.spoken = False     # a plotter's own line (banner or marker) was read
        self._early = []        # lines read before the plotter was known

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
        if line.startswith(WRAPPED):
            line = line[len(WRAPPED):]
        if not line.strip():
            return
        self.lines += 1
        if line.startswith(KILLED_MARK):
            self.killed = True
            return
        self.errors.feed(line)
        said = detect_plotter(line) if not (self.spoken and self.plotter) else None
        self.spoken = self.spoken or said is not None
        if self.plotter is None:
            self.plotter = said
            if self.plotter is None:
                # kept until a line names the plotter, then read in order: a
                # log found mid-run may name it late (a crash frame, a copy line)
                self._early.append(line)
                del self._early[:-MAX_EARLY]
                return
            early, self._early = self._early, []
            for e in early:
                self._read(e)
        self._read(line)

    def _read(self, line):
        fam = "chia" if self.plotter == "chiapos" else self.plotter
        ph = phase_of(line, "gigahorse_plot" if fam == "gigahorse" else fam)
        self._before = self.phase       # the plot this line may end keeps its phase
        if ph is not None:
            self.phase = ph
            self.spoken = True      # a plotter's own marker
        if fam == "chia":
            self._chia(line)
        elif fam == "madmax":
            self._madmax(line)
        elif fam == "gigahorse":
            self._gigahorse(line)
        elif fam == "pos2":
            self._pos2(line)
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
        if "CUDA plotter" in line:
            m = _gigahorse.BANNER_K.search(line)
            if m:
                self.k = int(m.group(1))
        if "Plot Name:" in line:
            p = names.find(line)
            if p is not None and p.k:
                self.k = p.k
                self._new_plot(p.plot_id)
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

    def _pos2(self, line):
        """The pos2 launcher's own lines (plotters/pos2.py)."""
        if line.startswith(_pos2.START):
            m = re.search(r"strength (\d+)", line)
            if m:
                self._level(compression.from_level(m.group(1), compression.POS2))
            m = re.search(r"plot\(s\) into (.+)$", line)
            if m:
                self.dst_dir = m.group(1).strip()
        elif line.startswith((_pos2.PLOTTING, _pos2.WROTE)):
            p = names.find(line)
            if p is not None:
                self.k = p.k
                self._new_plot(p.plot_id)
            m = re.search(r"in " + NUM + " s$", line)
            if m and line.startswith(_pos2.WROTE):
                self.total_s = float(m.group(1))

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
            p = names.find(path)
            if p is not None and p.k:
                self.k = p.k
                self._new_plot(p.plot_id)
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
