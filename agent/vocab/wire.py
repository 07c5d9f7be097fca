"""The agent's wire: what crosses it besides the arguments of each op.

Each op is declared once, at its handler (`@op(Reply)` in agent/ops/, see
agent/protocol.py): its name is the function's, its arguments and their
types are the function's parameters.  This module holds the rest, shared by
the agent and the controller:

- the dicts whose keys steer the agent (`Config`, `Limits`, `SshTarget`):
  an unknown key in one is refused, never ignored;
- every reply, a frozen dataclass: the agent's JSON object has exactly its
  fields (those with a default may be left out);
- every error code the agent sends (`ErrorCode`), and why a dir cannot take
  files (`DirError`): `str` Enums, so the JSON is the plain string;
- the rule for keys one side does not know (`known`): an error where
  PLOTFLEET_STRICT_WIRE is set (the test suite), a logged warning otherwise,
  never silently dropped.

A leaf: standard library only, Python 3.8.
"""
import logging
import os
from dataclasses import MISSING, dataclass, field, fields
from enum import Enum
from typing import Optional

try:
    from typing import TypedDict
except ImportError:     # pragma: no cover  (3.8 has it; a guard for odd builds)
    TypedDict = dict

STRICT_ENV = "PLOTFLEET_STRICT_WIRE"
_log = logging.getLogger("plotfleet.wire")
_warned = set()


class ErrorCode(str, Enum):
    """Why the agent answered ok=false.  Callers match these, never the message."""
    REFUSED = "refused"                     # an op said no (limits, paths, a live job ...)
    BAD_REQUEST = "bad_request"             # not a JSON object, or bad arguments
    UNKNOWN_OP = "unknown_op"
    DEADLINE_EXPIRED = "deadline_expired"   # taken up too late: nothing was done
    INTERNAL = "internal"                   # the agent itself failed (a bug)
    VANISHED = "vanished"                   # the transfer temp file is gone
    MISMATCH = "mismatch"                   # a copy's bytes differ from its source's
    CONFLICT = "conflict"                   # a final name holds other bytes (kept, recorded)
    EXISTS = "exists"                       # a file already holds the final name
    BUSY = "busy"                           # the drive receives another plot
    NO_ROOM = "no_room"                     # the drive cannot take the plot
    DRIVE_ERROR = "drive_error"             # the dir cannot take files
    UNREADABLE = "unreadable"               # a file could not be read
    MISSING = "missing"                     # a file asked for is not there
    REPLOT_REFUSED = "replot_refused"       # a replot deletion's check failed: nothing deleted

    def __str__(self):
        return self.value


class DirError(str, Enum):
    """dirs[].error_code in a snapshot: why a dir cannot take files."""
    MISSING = "missing"
    NOT_DIR = "not_dir"
    READ_ONLY = "read_only"
    NOT_WRITABLE = "not_writable"
    NOT_MOUNTED = "not_mounted"             # a farm dir on the root filesystem
    NOT_RESPONDING = "not_responding"       # no answer within dir_timeout_s
    SET_ASIDE = "set_aside"                 # after failed transfers, until set_aside_until
    UNREADABLE = "unreadable"

    def __str__(self):
        return self.value


# A plot whose check record reads one of these may go to a farm drive: it
# passed, could not be checked (and says why), or the farmer released it.
# The controller archives only such plots, and the plotter's transfer runner
# copies only such plots.
CHECK_LETS_GO = ("passed", "not_checked", "released")


# --- dicts whose keys steer the agent (only the key set is checked) ----------

class Config(TypedDict, total=False):
    """The host's dirs and thresholds: every request that touches files carries it."""
    tmp_dirs: list
    tmp2_dir: Optional[str]
    dst_dirs: list
    log_dir: Optional[str]
    farm_dirs: list
    stall_after_s: float
    dead_keep_s: float
    kill_quiet_s: float
    clean_quiet_s: float
    create_dirs: list           # the dirs it may make when missing (inside the inventory's folder)
    require_mounted_farm: bool
    drive_cooldown_s: float
    drive_fail_window_s: float
    dir_timeout_s: float
    replot: list            # the harvester's replot rules (agent/vocab/replot.py)


# The thresholds a request may leave out, and what they then are.  Written
# here only: the inventory keys that set them take these as their defaults
# (orchestrator/core/keys.py), so the agent and the controller cannot differ.
CONFIG_DEFAULTS = {
    "stall_after_s": 1800.0,            # stall_after_m
    "drive_fail_window_s": 1800.0,      # drive_fail_window_m
    "drive_cooldown_s": 1800.0,         # drive_cooldown_m
    "dir_timeout_s": 3.0,               # dir_timeout_s
}


def setting(config, name: str) -> float:
    """Threshold `name` of a request's config, else its default."""
    value = (config or {}).get(name)
    return float(CONFIG_DEFAULTS[name] if value is None else value)


class Limits(TypedDict, total=False):
    """start_job's limits, checked again under the host lock."""
    global_max_jobs: int
    tmpdir_max_jobs: int
    global_stagger_s: float


class SshTarget(TypedDict, total=False):
    """Where a plotter's rsync sends a plot."""
    host: str
    port: int
    user: Optional[str]
    key: Optional[str]
    known_hosts: Optional[str]


def keys_of(typed_dict) -> frozenset:
    return frozenset(typed_dict.__annotations__)


# --- replies -------------------------------------------------------------------

@dataclass(frozen=True)
class HelloReply:
    version: str            # the deployed content hash, else "dev"
    protocol: int
    python: str
    pid: int
    started_at: float
    psutil: str


@dataclass(frozen=True)
class EndAgentReply:
    ended: bool


@dataclass(frozen=True)
class SnapshotReply:
    """What the host sees; each record's fields are orchestrator/core/state.py's
    (Job, Dir, Plot, Transfer, Partial, DeadJob, FinishedJob, Failures, Conflict,
    DriveFailure).

    - Every configured dir is probed first, each in its own thread, for
      dir_timeout_s (facts/probe.py): dirs[].error / error_code (DirError)
      say why a dir cannot take files; nothing else touches a dir that is
      not responding.  dirs[].resolved is the path as this host resolves it;
      dirs[].mount and .disk name the mount it is on (`device` stays the number).
    - dirs[].path is the configured spelling (e.g. "~/tmp"); a job's tmp_dir,
      tmp2_dir and dst_dir are given in that spelling when they are one of the
      configured dirs, as printed on its command line otherwise.  File paths
      (plots, logs, partials, temp files) are absolute and resolved.
    - Only jobs whose tmp or dst dir lies inside the configured dirs, and only
      transfers whose source plot does, are reported (hosts may share a machine).
    - plots are the finished plots of dst dirs (any format plotfleet moves:
      agent/vocab/names.py; "format", and "plots" a file holds); farm dirs report plot_count,
      plot_bytes and plot_kinds ([[k, level, format, count, median size]])
      instead.  jobs[].phase is null while no line of the job's log was read;
      jobs[].paused says why the agent suspended it for room (ops/room.py).
    - dead lists failed jobs (facts/failures.py); failures counts those in a
      row, newest first, back to a finished plot or the operator's reset;
      finished lists the job logs that finished their plot within
      dead_keep_s (log_file, plot_id, ended_at): a controller that started
      a job and missed its end between two polls still knows its plot.
    - Reading logs stops at the request's deadline (a third of its time is
      kept for the rest): logs_pending names the logs not read to their end;
      their jobs' phases may lag, and a dead job or failure they tell of is
      reported once they are read (the next requests go on where this one
      stopped).
    - transfers[].fault (drive | plotter | network | unknown), fatal and
      error (rsync's most specific line) for a failed transfer; a partial
      counts as receiving while an rsync has it (facts/procs.py).
    """
    host_time: float
    last_start: float       # host clock: newest job start, finished ones too
    jobs: list
    dirs: list
    plots: list
    transfers: list
    partials: list
    dead: list
    finished: list
    failures: dict
    conflicts: list
    drive_failures: list
    rsync_version: Optional[list]
    # proof checks (agent/facts/checks.py): plots[].check is each plot's
    # check record ({status: running | interrupted | passed | failed |
    # not_checked | released, ratio, proofs, challenges, error, seconds,
    # bytes_read, reads, ...}, null before its check); `checks` the checks
    # running on this host; `quarantine` the plots waiting in
    # <dst>/quarantine/ ({path, size_bytes, dst_dir, reason, ratio, ...})
    checks: Optional[list] = None
    quarantine: Optional[list] = None
    logs_pending: Optional[list] = None     # logs not read to their end by the deadline:
                                            # what they say is left out until they are
    replot: Optional[dict] = None   # {sets, deletes_last_hour, stopped}: facts/ledger.py


@dataclass(frozen=True)
class NewsReply:
    """What changed since the last snapshot began that a pass acts on
    (facts/news.py), at most a few items: empty when the wait ran out or
    another request came."""
    news: list


@dataclass(frozen=True)
class StartJobReply:
    pid: int
    log_file: str
    replayed: bool = False  # asked again with its request_id: what was done the first time


@dataclass(frozen=True)
class JobStateReply:
    """suspend, resume."""
    pid: int
    state: str              # running | suspended


@dataclass(frozen=True)
class RemovedFilesReply:
    """kill, clean_dead."""
    removed: list
    freed_bytes: int


@dataclass(frozen=True)
class ResetReply:
    reset_at: float


@dataclass(frozen=True)
class TransferStartedReply:
    pid: int                # the runner's
    joined: bool = False    # its plots joined the queue of a runner already at work
    already: list = field(default_factory=list)     # plots already on their way there: left so


@dataclass(frozen=True)
class DigestReply:
    size: int
    sha256: str
    method: str             # full | sampled
    bytes_read: int
    header: dict            # {format, plot_id, k, version}
    header_error: Optional[str] = None


@dataclass(frozen=True)
class PromoteReply:
    """The final file's digest and where it is."""
    size: int
    sha256: str
    method: str
    bytes_read: int
    header: dict
    path: str
    size_bytes: int
    already: bool           # it was there already with the same bytes


@dataclass(frozen=True)
class RemovePlotReply:
    removed: str
    size_bytes: int


@dataclass(frozen=True)
class CleanPartialReply:
    removed: str


@dataclass(frozen=True)
class ReserveDriveReply:
    """The drive's claim (agent/ops/claims.py), and what replotting deleted
    under it (agent/ops/replot.py): space_ok false when deleting gave no
    space back (the drive then stops replotting; space_error says why)."""
    drive: str
    holder: Optional[str] = None
    expires_at: Optional[float] = None
    deleted: list = field(default_factory=list)    # [{name, path, size_bytes, rule}]
    freed: int = 0
    space_ok: bool = True
    space_error: Optional[str] = None


@dataclass(frozen=True)
class BindReplotReply:
    plot: str
    to_host: str
    to_dir: str


@dataclass(frozen=True)
class ReleaseDriveReply:
    released: int


@dataclass(frozen=True)
class NoteDriveFailureReply:
    recorded: bool


@dataclass(frozen=True)
class ReadLogReply:
    data: str
    offset: int             # where the next read starts
    size: int


@dataclass(frozen=True)
class ListLogsReply:
    logs: list              # [{path, size, mtime}]


@dataclass(frozen=True)
class GuardRoomReply:
    suspended: list         # [{pid, plot_id, dst_dir, reason}]
    resumed: list


@dataclass(frozen=True)
class CheckStartedReply:
    """start_check, start_drive_check: the runner and the plots it checks in turn."""
    pid: Optional[int]      # None: no plot to check
    plots: list


@dataclass(frozen=True)
class ReadChecksReply:
    checks: dict            # path -> its check record, or None


@dataclass(frozen=True)
class CheckHistoryReply:
    checks: list            # [{plot, k, compress, compress_format, status, method,
                            #   ratio, error, seconds, bytes_read, reads, finished_at}]


@dataclass(frozen=True)
class QuarantineReply:
    path: str               # where the plot waits now
    reason: str


@dataclass(frozen=True)
class ReleaseReply:
    path: Optional[str] = None      # where a released plot is now
    released: bool = False
    removed: Optional[str] = None   # the quarantined plot deleted (--delete)


@dataclass(frozen=True)
class PlotmanConfigReply:
    path: str
    text: str


# --- keys one side does not know ---------------------------------------------

class UnknownKeys(ValueError):
    """A record on the wire carries keys its declaration does not (strict mode)."""


class BadReply(ValueError):
    """A reply lacks a field its declaration needs."""


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def known(names, d: dict, where: str) -> dict:
    """The items of `d` whose keys are in `names`.  Any other key is an error
    in strict mode (UnknownKeys) and a warning logged once otherwise."""
    out = {k: v for k, v in d.items() if k in names}
    if len(out) != len(d):
        unknown = sorted(str(k) for k in d if k not in names)
        if strict():
            raise UnknownKeys("%s: unknown keys: %s" % (where, ", ".join(unknown)))
        for k in unknown:
            if (where, k) not in _warned:
                _warned.add((where, k))
                _log.warning("%s: ignoring unknown key %s (agent and controller differ?)", where, k)
    return out


def field_names(cls) -> frozenset:
    return frozenset(f.name for f in fields(cls))


def reply(cls, d, op: str):
    """The JSON object an op answered, as its declared reply `cls`."""
    if not isinstance(d, dict):
        raise BadReply("%s answered a JSON %s, not an object" % (op, type(d).__name__))
    kw = known(field_names(cls), d, "%s reply" % op)
    lacking = [f.name for f in fields(cls) if f.name not in kw
               and f.default is MISSING and f.default_factory is MISSING]
    if lacking:
        raise BadReply("%s reply lacks %s" % (op, ", ".join(lacking)))
    return cls(**kw)


def member(kind, value, fallback, what: str):
    """kind(value); a value this side does not know is an error in strict
    mode and `fallback` otherwise (logged once)."""
    try:
        return kind(value)
    except ValueError:
        if strict():
            raise UnknownKeys("unknown %s %r" % (what, value))
        if (what, value) not in _warned:
            _warned.add((what, value))
            _log.warning("unknown %s %r, taken as %s", what, value, fallback)
        return fallback


def code(value) -> ErrorCode:
    """The ErrorCode an answer names (an unknown one: a plain refusal)."""
    return member(ErrorCode, value, ErrorCode.REFUSED, "error code")


def dir_error(value) -> Optional[DirError]:
    """The DirError a snapshot's dir names (an unknown one: unreadable)."""
    return None if value is None else member(DirError, value, DirError.UNREADABLE, "dir error")
