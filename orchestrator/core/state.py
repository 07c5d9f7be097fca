"""Immutable data the whole controller shares.

An agent snapshot (agent/vocab/wire.py's SnapshotReply) becomes a HostState; all
HostStates of one pass form a FleetState.  Scheduler, archiver and views only
ever read these; nothing here does I/O.
"""
from __future__ import annotations

import posixpath

from dataclasses import dataclass, field, asdict, replace
from typing import NamedTuple, Optional, Tuple

from agent.vocab import wire
from agent.vocab.wire import DirError
from orchestrator.core import plotsize
from orchestrator.core.keys import FIELD_DEFAULTS
from orchestrator.core.plotsize import Compression

class Phase(NamedTuple):
    """A job's progress with plotman's numbering (DESIGN.md); a tuple, so it
    compares and orders as one.  None where unknown: shown `?:?`."""
    major: int
    minor: int

    def __str__(self) -> str:
        return phase_str(self)


def phase_str(p: Optional[Tuple[int, int]]) -> str:
    """The one way a phase is written: `2:3`, or `?:?` while unknown."""
    return "?:?" if p is None else f"{p[0]}:{p[1]}"


def expected_plot_bytes(k: int, compression: Optional[Compression] = None,
                        observed: Optional[plotsize.Observed] = None) -> int:
    """Size of a finished plot of size k (and compression), for room checks
    before it exists: orchestrator/core/plotsize.py."""
    return plotsize.plot_bytes(k, compression, observed)


class _Compressed:
    """`compression` of a record carrying the agent's compress/compress_format."""

    @property
    def compression(self) -> Optional[Compression]:
        return plotsize.compression(self.compress_format, self.compress)


def expected_tmp_bytes(k: int) -> int:
    """Peak temp space of one job (chia: ~239 GiB for k32, ~2.2 x plot)."""
    return int(expected_plot_bytes(k) * 2.2)


@dataclass(frozen=True)
class Job(_Compressed):
    plot_id: Optional[str]          # hex, None until the log names it
    plotter: str                    # chia | madmax | bladebit | chiapos | gigahorse
    k: int
    pid: int
    phase: Optional[Phase]          # None: unknown (no line of its log read yet)
    state: str                      # running | suspended
    tmp_dir: Optional[str]
    dst_dir: Optional[str]
    log_file: Optional[str]
    elapsed_s: float
    tmp_bytes: int
    tmp2_dir: Optional[str] = None
    started_at: float = 0.0         # epoch seconds, host clock
    rss_bytes: int = 0
    cpu_s: float = 0.0
    log_idle_s: Optional[float] = None   # seconds since the log last grew
    stalled: bool = False
    compress: int = 0                   # compression level (0: uncompressed) ...
    compress_format: Optional[str] = None   # ... of this format: bladebit | gigahorse
    wrapper_pid: Optional[int] = None   # `chia plotters ...` running this plotter binary
    device: Optional[int] = None        # the GPU its argv pins it to (None: the plotter's 0)
    count: int = 1                  # plots it was asked for (-n); 0: without end
    plots_done: int = 0             # plots it has finished (its log's markers)
    paused: Optional[str] = None    # why the agent suspended it (no room), else None


@dataclass(frozen=True)
class DeadJob:
    """A failed job: a log whose plot never finished, that nothing writes any more."""
    plot_id: Optional[str]          # None: it died before its log named one
    log_file: str
    phase: Optional[Phase]          # None: its log holds no line
    tmp_files: Tuple[str, ...]
    tmp_bytes: int
    ended_at: float = 0.0           # host clock: when its log was last written
    error: Optional[str] = None     # the log's own last error line
    started_at: float = 0.0
    plotter: Optional[str] = None
    k: int = 0
    tmp_dir: Optional[str] = None   # as its log names them
    tmp2_dir: Optional[str] = None
    changed_at: float = 0.0         # host clock: newest change to its temp files
    killed: bool = False            # ended by `plotfleet kill`: not a failure


@dataclass(frozen=True)
class FinishedJob:
    """A job log that finished its plot lately (within dead_keep_h)."""
    log_file: str
    plot_id: str
    ended_at: float = 0.0           # host clock: when its log was last written


@dataclass(frozen=True)
class Failures:
    """A plotter's failed jobs in a row, newest back to its newest finished
    plot (or the operator's reset), as its logs show them."""
    count: int = 0
    last_error: Optional[str] = None
    last_at: float = 0.0            # host clock: when the newest failure ended
    last_log: Optional[str] = None
    reset_at: float = 0.0
    quarantined: int = 0            # of them, plots that failed their proof check
    # per GPU ("1": {count, last_error, last_at}) of a host with cuda_devices:
    # the jobs pinned to it, from their log names
    devices: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class OldPlot:
    """A farm plot a replot rule matches (agent/vocab/replot.py)."""
    path: str
    size_bytes: int
    k: int = 0
    level: int = 0
    date: Optional[str] = None      # YYYY-MM-DD from its name
    rule: str = ""                  # "rule 1 (made_before: 2024-01-01)"


@dataclass(frozen=True)
class Deleted:
    """One plot a replot set deleted."""
    name: str
    path: str
    size_bytes: int
    rule: str
    at: float = 0.0


@dataclass(frozen=True)
class ReplotSet:
    """One new plot's set of deletions in a harvester's ledger (agent/facts/ledger.py)."""
    plot_id: str
    plot: str                       # the new plot's file name
    dir: str                        # the farm dir (resolved) its room is on
    drive: Optional[str] = None     # the drive's claim key on its harvester
    deletions: Tuple[Deleted, ...] = ()
    freed: int = 0
    need: int = 0
    at: float = 0.0
    holder: Optional[str] = None
    from_host: Optional[str] = None     # the plotter the new plot comes from
    space_ok: Optional[bool] = None
    arrived: bool = False
    pending: bool = False           # not arrived, not released: its room is its plot's
    claimed: bool = False           # a live claim holds it: its transfer is under way
    released_at: Optional[float] = None


@dataclass(frozen=True)
class Replot:
    """A harvester's replot records: its ledger, the deletions of the last
    hour, and the drives where replotting stopped (dir, why)."""
    sets: Tuple[ReplotSet, ...] = ()
    deletes_last_hour: int = 0
    stopped: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Dir:
    path: str
    kind: str                       # tmp | tmp2 | dst | farm | log
    total_bytes: int
    free_bytes: int
    device: str                     # same string = same disk
    plot_count: int = 0             # farm dirs: finished plots on it
    plot_bytes: int = 0
    error: Optional[str] = None     # why it cannot be used (None: it can)
    error_code: Optional[DirError] = None   # why, as a kind (agent/vocab/wire.py)
    resolved: Optional[str] = None  # the path as the host resolves it (`~` expanded there)
    set_aside_until: Optional[float] = None     # host clock: after failed transfers
    mount: Optional[str] = None     # the mount point it is on, e.g. /mnt/hdd07
    disk: Optional[str] = None      # what is mounted there, e.g. sdh1 (tmpfs, a NAS share)
    plot_kinds: Tuple[Tuple, ...] = ()  # farm dirs: (k, level, format, count, median size)
    replaceable_count: int = 0      # farm dirs: plots a replot rule matches ...
    replaceable_bytes: int = 0
    replaceable: Tuple[OldPlot, ...] = ()   # ... the largest of them, oldest first


@dataclass(frozen=True)
class Check:
    """A plot's proof check (agent/launch/check.py), as its plotter reports it."""
    status: str                     # running | interrupted | passed | failed |
                                    # not_checked | released (by the farmer)
    method: Optional[str] = None    # chiapos | command | chia_rs
    ratio: Optional[float] = None   # valid proofs per challenge (last round)
    proofs: Optional[int] = None
    challenges: Optional[int] = None
    error: Optional[str] = None     # the prover's own words, or why not checked
    seconds: Optional[float] = None
    bytes_read: Optional[int] = None
    reads: Optional[int] = None     # read calls (each may be a seek on a disk)
    cpu_seconds: Optional[float] = None
    started_at: float = 0.0
    finished_at: Optional[float] = None
    pid: Optional[int] = None
    plot: Optional[str] = None      # in HostState.checks: the plot it checks

    @property
    def done(self) -> bool:
        """Its plot may be archived: it passed, could not be checked (and
        says why), or the farmer released it."""
        return self.status in wire.CHECK_LETS_GO

    def summary(self) -> str:
        """One line: the ratio found, or the prover's (or the tool's) words."""
        if self.status == "passed":
            return f"passed: {self.proofs}/{self.challenges} proofs (ratio {self.ratio:.2f})"
        if self.status == "running":
            return "checking"
        if self.status == "not_checked":
            return f"not checked: {self.error}"
        if self.status == "released":
            return f"released by the farmer (was: {self.error})"
        return f"{self.status}: {self.error}"


@dataclass(frozen=True)
class Quarantined:
    """A plot that failed its check, waiting in `<dst>/quarantine/` for the
    farmer: never archived, never deleted by plotfleet."""
    path: str
    size_bytes: int
    dst_dir: str
    reason: str                     # the prover's words, or the ratio found
    k: int = 0
    plot_id: Optional[str] = None
    mtime: float = 0.0
    ratio: Optional[float] = None
    method: Optional[str] = None
    quarantined_at: float = 0.0
    format: str = "v1"              # as Plot's
    plots: int = 1
    compress: int = 0
    compress_format: Optional[str] = None


@dataclass(frozen=True)
class Plot(_Compressed):
    """A finished plot file waiting in a dst dir (or on a farm dir)."""
    path: str
    size_bytes: int
    k: int = 0
    plot_id: Optional[str] = None
    mtime: float = 0.0
    error: Optional[str] = None     # its header contradicts its name, or it is unreadable
    compress: int = 0               # from its header, else its name (PoS2: its strength)
    compress_format: Optional[str] = None
    format: str = "v1"              # agent/vocab/formats.py: v1 | pos2 | pos2_group | drplot
    plots: int = 1                  # plots the file holds (a PoS2 group: from its header)
    bound_to: Optional[Tuple[str, str]] = None  # replotting: (harvester, dir) it is bound to
    check: Optional[Check] = None   # its proof check; None: not checked yet

    @property
    def proven(self) -> bool:
        """Its check is over and lets it be archived."""
        return self.check is not None and self.check.done


@dataclass(frozen=True)
class Transfer:
    plot: str                       # source path on the plotter
    to_host: str
    to_dir: str
    bytes_done: int
    pid: Optional[int]
    size_bytes: int = 0
    status: str = "running"         # queued | running | copied | failed
    started_at: float = 0.0
    error: Optional[str] = None     # rsync's most specific error line
    ended_at: float = 0.0           # host clock: when a failed transfer last made progress
    fault: Optional[str] = None     # failed: drive | plotter | network | unknown
    fatal: bool = False             # drive fault that sets the drive aside at once
    exit_code: Optional[int] = None

    @property
    def in_flight(self) -> bool:
        """Being sent, or queued behind the plot being sent (one runner per drive)."""
        return self.status in ("running", "queued")


@dataclass(frozen=True)
class Partial:
    """A temporary transfer file on a harvester drive (never named *.plot)."""
    path: str
    final_name: str
    size_bytes: int
    receiving: bool                 # an rsync is writing it right now


@dataclass(frozen=True)
class Conflict:
    """A final *.plot name on a harvester drive holding other bytes than the
    plot of that name: never deleted by plotfleet, reported until resolved."""
    path: str
    final_name: str
    detail: str
    at: float = 0.0


@dataclass(frozen=True)
class DriveFailure:
    """A failed transfer a harvester has in its drive's record (by key)."""
    dir: str
    key: str


@dataclass(frozen=True)
class HostState:
    name: str
    roles: Tuple[str, ...]
    reachable: bool
    error: Optional[str] = None
    jobs: Tuple[Job, ...] = ()
    dirs: Tuple[Dir, ...] = ()
    plots: Tuple[Plot, ...] = ()
    transfers: Tuple[Transfer, ...] = ()
    partials: Tuple[Partial, ...] = ()
    dead: Tuple[DeadJob, ...] = ()
    finished: Tuple[FinishedJob, ...] = ()
    failures: Failures = Failures()
    host_time: float = 0.0
    last_start: float = 0.0         # host clock: newest job start, finished ones too
    conflicts: Tuple[Conflict, ...] = ()
    drive_failures: Tuple[DriveFailure, ...] = ()
    rsync_version: Optional[Tuple[int, ...]] = None
    checks: Tuple[Check, ...] = ()          # proof checks running (dst and farm plots)
    quarantine: Tuple[Quarantined, ...] = ()
    logs_pending: Tuple[str, ...] = ()      # logs the agent has not read to their end yet
    replot: Replot = Replot()

    def to_json(self) -> dict:
        d = asdict(self)
        d["roles"] = list(self.roles)
        for j, job in zip(d["jobs"], self.jobs):
            j["compression"] = plotsize.label(job.compression)
            j["kind"] = plotsize.kind_label(job.k, job.compression)
        for p, plot in zip(d["plots"], self.plots):
            p["compression"] = plotsize.label(plot.compression)
            p["kind"] = plotsize.kind_label(plot.k, plot.compression)
        for j in d["jobs"] + d["dead"]:
            j["phase"] = None if j["phase"] is None else list(j["phase"])
        d["replot"]["stopped"] = [{"dir": p, "why": w} for p, w in self.replot.stopped]
        return d


@dataclass(frozen=True)
class FleetState:
    hosts: Tuple[HostState, ...]
    now: float = 0.0

    def host(self, name: str) -> HostState:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def to_json(self) -> dict:
        return {"hosts": [h.to_json() for h in self.hosts]}


def _tuple(cls, items):
    return tuple(cls(**_known(cls, i)) for i in items or ())


def _plot(d: dict) -> Plot:
    out = _known(Plot, d)
    if out.get("check") is not None:
        out["check"] = Check(**_known(Check, out["check"]))
    return Plot(**out)


def _known(cls, d: dict) -> dict:
    # a key this controller does not know: an error under the tests, a
    # logged warning in production, never dropped silently (wire.known)
    out = wire.known(cls.__dataclass_fields__.keys(), d, f"snapshot {cls.__name__}")
    if out.get("phase") is not None:
        out["phase"] = Phase(*out["phase"])
    if out.get("error_code") is not None:
        out["error_code"] = wire.dir_error(out["error_code"])
    if "tmp_files" in out:
        out["tmp_files"] = tuple(out["tmp_files"])
    if out.get("bound_to") is not None:
        out["bound_to"] = tuple(out["bound_to"])
    if "plot_kinds" in out:
        out["plot_kinds"] = tuple(tuple(x) for x in out["plot_kinds"] or ())
    if cls is Dir and isinstance(d.get("replaceable"), dict):
        r = d["replaceable"]
        out["replaceable_count"] = int(r.get("count") or 0)
        out["replaceable_bytes"] = int(r.get("bytes") or 0)
        out["replaceable"] = _tuple(OldPlot, r.get("plots"))
    if cls is ReplotSet:
        out["deletions"] = _tuple(Deleted, out.get("deletions"))
    return out


def _replot(snap: dict) -> Replot:
    r = snap.get("replot") or {}
    return Replot(sets=_tuple(ReplotSet, r.get("sets")),
                  deletes_last_hour=int(r.get("deletes_last_hour") or 0),
                  stopped=tuple((s.get("dir"), s.get("why")) for s in r.get("stopped") or ()))


def host_state_from_snapshot(name: str, roles, snap: dict) -> HostState:
    """Build a HostState from an agent's snapshot dict (its records' unknown
    keys as wire.known says)."""
    return HostState(
        name=name, roles=tuple(roles), reachable=True,
        jobs=_tuple(Job, snap.get("jobs")),
        dirs=_tuple(Dir, snap.get("dirs")),
        plots=tuple(_plot(p) for p in snap.get("plots") or ()),
        transfers=_tuple(Transfer, snap.get("transfers")),
        partials=_tuple(Partial, snap.get("partials")),
        dead=_tuple(DeadJob, snap.get("dead")),
        finished=_tuple(FinishedJob, snap.get("finished")),
        failures=Failures(**_known(Failures, snap.get("failures") or {})),
        host_time=snap.get("host_time", 0.0),
        last_start=snap.get("last_start", 0.0),
        conflicts=_tuple(Conflict, snap.get("conflicts")),
        drive_failures=_tuple(DriveFailure, snap.get("drive_failures")),
        rsync_version=tuple(snap["rsync_version"]) if snap.get("rsync_version") else None,
        checks=_tuple(Check, snap.get("checks")),
        quarantine=_tuple(Quarantined, snap.get("quarantine")),
        logs_pending=tuple(snap.get("logs_pending") or ()),
        replot=_replot(snap),
    )


def unreachable(name: str, roles, error: str) -> HostState:
    return HostState(name=name, roles=tuple(roles), reachable=False, error=error)


def _default(attr: str):
    """The default of the inventory key that sets field `attr`: core/keys.py
    is the one place defaults are written."""
    d = FIELD_DEFAULTS[attr]
    return field(default_factory=dict, compare=False, hash=False) if isinstance(d, dict) \
        else field(default=d)


def _loose(attr: str):
    """A default that is no value to compare hosts by (replot rules)."""
    return field(default=FIELD_DEFAULTS[attr], compare=False, hash=False)


@dataclass(frozen=True)
class SshTarget:
    """How one host is reached: all a Session (remote/session.py) knows of it."""
    address: str = "localhost"      # unset in the inventory: the host's own name
    port: int = _default("port")
    user: Optional[str] = _default("user")
    key_file: Optional[str] = _default("key_file")
    connection: str = _default("connection")            # ssh | local
    python: str = _default("python")
    host_key_checking: bool = _default("host_key_checking")
    known_hosts_file: Optional[str] = _default("known_hosts_file")
    proxy_jump: Optional[str] = _default("proxy_jump")  # -o ProxyJump / -J from ansible_ssh_*_args
    connect_timeout_s: float = _default("connect_timeout_s")
    request_timeout_s: float = _default("request_timeout_s")    # an agent's answer waited for


@dataclass(frozen=True)
class PlotterSpec:
    """What a plotter's jobs are made with: the plot command's flags."""
    plotter: str = _default("plotter")      # agent/vocab/plotters: chia, madmax, bladebit, ...
    k: int = _default("k")
    threads: int = _default("threads")
    buckets: int = _default("buckets")
    buffer_mib: int = _default("buffer_mib")
    farmer_key: Optional[str] = _default("farmer_key")
    pool_key: Optional[str] = _default("pool_key")
    pool_contract: Optional[str] = _default("pool_contract")
    count: int = _default("count")                      # plots per job (-n); 0: without end
    bladebit_mode: str = _default("bladebit_mode")
    compress: int = _default("compress")                # level (bladebit, gigahorse)
    strength: int = _default("strength")                # PoS2 plot strength
    executable: Optional[str] = _default("executable")
    cuda_device: Optional[int] = _default("cuda_device")
    cuda_devices: Tuple[int, ...] = _default("cuda_devices")    # one job per GPU
    disk_128: bool = _default("disk_128")
    disk_16: bool = _default("disk_16")
    nobitfield: bool = _default("nobitfield")
    exclude_final_dir: bool = _default("exclude_final_dir")
    n_buckets3: Optional[int] = _default("n_buckets3")
    rmulti2: Optional[int] = _default("rmulti2")
    plotter_command: Optional[str] = _default("plotter_command")    # jinja2 override


@dataclass(frozen=True)
class Schedule:
    """When a plotter starts jobs (plotman's keys and meanings), and how it
    treats the ones that failed."""
    global_max_jobs: int = _default("global_max_jobs")     # 0 = no limit
    global_stagger_m: float = _default("global_stagger_m")
    tmpdir_max_jobs: int = _default("tmpdir_max_jobs")
    tmpdir_stagger_phase_major: int = _default("tmpdir_stagger_phase_major")
    tmpdir_stagger_phase_minor: int = _default("tmpdir_stagger_phase_minor")
    tmpdir_stagger_phase_limit: int = _default("tmpdir_stagger_phase_limit")
    tmp_overrides: dict = _default("tmp_overrides")
    polling_time_s: float = _default("polling_time_s")
    nice: int = _default("nice")
    stall_after_m: float = _default("stall_after_m")
    dead_keep_h: float = _default("dead_keep_h")
    max_failures: int = _default("max_failures")
    failure_backoff_m: float = _default("failure_backoff_m")
    clean_after_m: float = _default("clean_after_m")
    kill_after_m: float = _default("kill_after_m")


@dataclass(frozen=True)
class Dirs:
    """A host's dirs, and how the agent treats them."""
    tmp_dirs: Tuple[str, ...] = _default("tmp_dirs")
    tmp2_dir: Optional[str] = _default("tmp2_dir")
    dst_dirs: Tuple[str, ...] = _default("dst_dirs")
    log_dir: Optional[str] = _default("log_dir")
    farm_dirs: Tuple[str, ...] = _default("farm_dirs")
    create_dirs: bool = _default("create_dirs")                 # demos; never for mounts
    require_mounted_farm: bool = _default("require_mounted_farm")
    dir_timeout_s: float = _default("dir_timeout_s")


@dataclass(frozen=True)
class TransferPolicy:
    """How a plotter's finished plots travel, and where they land."""
    transfer: str = _default("transfer")                    # ssh | local
    transfer_ssh_key: Optional[str] = _default("transfer_ssh_key")
    transfer_known_hosts: Optional[str] = _default("transfer_known_hosts")
    transfer_bwlimit_kbps: int = _default("transfer_bwlimit_kbps")     # 0 = unlimited
    max_transfers_per_plotter: int = _default("max_transfers_per_plotter")    # 0: as needed
    transfer_queue_s: float = _default("transfer_queue_s")
    batch_bytes: int = _default("batch_bytes")
    fill: str = _default("fill")                            # spread | pack


@dataclass(frozen=True)
class ProofChecks:
    """How a new plot is checked before it is archived (core/checker.py)."""
    check_challenges: int = _default("check_challenges")
    check_min_ratio: float = _default("check_min_ratio")
    check_challenges_v2: int = _default("check_challenges_v2")
    check_command: Optional[str] = _default("check_command")
    check_parallel: int = _default("check_parallel")


@dataclass(frozen=True)
class Harvest:
    """A harvester's drives: what is kept free, set aside, and replaced."""
    farm_reserve_bytes: int = _default("farm_reserve_bytes")
    drive_cooldown_m: float = _default("drive_cooldown_m")
    drive_fail_window_m: float = _default("drive_fail_window_m")
    max_inbound_transfers: int = _default("max_inbound_transfers")     # 0: no limit
    replot: Tuple[dict, ...] = _loose("replot")     # agent/vocab/replot.py's rules
    replot_max_deletes_per_hour: int = _default("replot_max_deletes_per_hour")


# Host's parts: its attribute -> the record's type.  Each part's fields read
# flat too (host.k is host.plotting.k), and Host(k=18) sets one.
PARTS = {"ssh": SshTarget, "plotting": PlotterSpec, "schedule": Schedule, "dirs": Dirs,
         "moving": TransferPolicy, "checks": ProofChecks, "harvest": Harvest}
PART_OF = {f: part for part, cls in PARTS.items() for f in cls.__dataclass_fields__}


@dataclass(frozen=True, init=False)
class Host:
    """One inventory host with every plotfleet variable validated and typed,
    made of its parts (PARTS).

    Paths are absolute or start with `~` (expanded on the host itself).
    `vars` keeps the whole merged variable dict, for templates.
    """
    name: str
    groups: frozenset = frozenset()
    roles: Tuple[str, ...] = ()                 # "plotter", "harvester"
    vars: dict = field(default_factory=dict, compare=False, hash=False)
    source: str = "inventory.yaml"              # file it came from, for errors
    inventory_dir: str = ""                     # its folder, absolute (create_dirs makes dirs only there)
    ssh: SshTarget = SshTarget()
    plotting: PlotterSpec = PlotterSpec()
    schedule: Schedule = Schedule()
    dirs: Dirs = Dirs()
    moving: TransferPolicy = TransferPolicy()
    checks: ProofChecks = ProofChecks()
    harvest: Harvest = Harvest()

    def __init__(self, name: str, groups: frozenset = frozenset(), roles: Tuple[str, ...] = (),
                 vars: Optional[dict] = None, source: str = "inventory.yaml",
                 inventory_dir: str = "", **given):
        """Parts as records (ssh=SshTarget(...)), or their fields one by one
        (k=18), the latter over the former: dataclasses.replace(host, k=20)
        works as on a flat record."""
        flat: dict = {}
        for key, value in given.items():
            if key in PARTS:
                continue
            if key not in PART_OF:
                raise TypeError(f"Host() got an unexpected keyword argument {key!r}")
            flat.setdefault(PART_OF[key], {})[key] = value
        for attr, value in (("name", name), ("groups", groups), ("roles", roles),
                            ("vars", {} if vars is None else vars), ("source", source),
                            ("inventory_dir", inventory_dir)):
            object.__setattr__(self, attr, value)
        for part, cls in PARTS.items():
            record = given.get(part) or cls()
            if part in flat:
                record = replace(record, **flat[part])
            object.__setattr__(self, part, record)

    @property
    def compression(self) -> Optional[Compression]:
        """The level this host's plots are made at, with its format."""
        if self.plotter == "pos2":      # its strength sets its kind as a level does
            return plotsize.compression(plotsize.POS2, self.strength)
        fmt = {"bladebit": plotsize.BLADEBIT, "gigahorse": plotsize.GIGAHORSE}.get(self.plotter)
        return plotsize.compression(fmt, self.compress)

    @property
    def is_plotter(self) -> bool:
        return "plotter" in self.roles

    @property
    def is_harvester(self) -> bool:
        return "harvester" in self.roles

    def creatable_dirs(self) -> Tuple[str, ...]:
        """With create_dirs, the configured dirs inside the inventory's own
        folder (a demo's ./demo/...), which the agent makes when missing; a dir
        anywhere else (/mnt/...) is a drive to mount, never made on the root disk."""
        if not self.create_dirs or not self.inventory_dir:
            return ()
        base = self.inventory_dir.rstrip("/") + "/"
        dirs = (*self.tmp_dirs, *self.dst_dirs, *self.farm_dirs,
                *(d for d in (self.tmp2_dir, self.log_dir) if d))
        return tuple(d for d in dict.fromkeys(dirs)
                     if posixpath.normpath(d).startswith(base))

    def agent_config(self) -> dict:
        """What the agent needs to know about this host's dirs."""
        return {
            "tmp_dirs": list(self.tmp_dirs),
            "tmp2_dir": self.tmp2_dir,
            "dst_dirs": list(self.dst_dirs),
            "log_dir": self.log_dir,
            "farm_dirs": list(self.farm_dirs),
            "stall_after_s": self.stall_after_m * 60.0,
            "dead_keep_s": self.dead_keep_h * 3600.0,
            "kill_quiet_s": self.kill_after_m * 60.0,
            "clean_quiet_s": self.clean_after_m * 60.0,
            "create_dirs": list(self.creatable_dirs()),
            "require_mounted_farm": self.require_mounted_farm,
            "drive_cooldown_s": self.drive_cooldown_m * 60.0,
            "drive_fail_window_s": self.drive_fail_window_m * 60.0,
            "dir_timeout_s": self.dir_timeout_s,
            "replot": [dict(r) for r in self.replot],
        }


def _flat(part: str, name: str) -> property:
    return property(lambda self: getattr(getattr(self, part), name),
                    doc=f"{part}.{name}")


for _name, _part in PART_OF.items():
    setattr(Host, _name, _flat(_part, _name))
