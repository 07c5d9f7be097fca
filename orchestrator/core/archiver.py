"""Where finished plots go: pure decisions for moving plots to harvesters.

`archive(state, hosts)` reads one FleetState and the inventory and returns
an ArchiveDecision:

- transfers: finished plots (HostState.plots on plotters) to send, each to
  one harvester drive.  A drive is (harvester, Dir.device): two farm dirs on
  one disk are one drive.  A drive has one writer at a time, counting
  transfers in flight from every plotter and partials being received: the
  runner of one plotter, whose queue (the plots sent there back to back,
  apply hands them over as one) holds `transfer_queue_s` of transfer and is
  joined by later passes (_Lanes).  A plotter writes as many drives at once
  as its plots arrive faster than one takes them, within
  `max_transfers_per_plotter` (0: as many as that needs) and its
  harvester's `max_inbound_transfers`; the drive needs room for the plot
  plus the harvester's `farm_reserve_bytes`, after what is still arriving
  there.  A plotter's dst dirs are emptied in the order of
  plotman's archive.compute_priority (`dst_priority`): a dir about to
  receive a plot (its furthest job in 3:4 or later) is held back to avoid
  concurrent I/O, a dir under 1 TB free is preferred, then one with more
  plots; oldest plot first within a dir.  One exception comes before all: a
  dst dir that cannot fit the plots already heading to it.  The plotter's
  `fill` picks among drives: `spread` the one with most room, `pack` the
  fullest that still has room.  A drive already holding a partial of the
  plot is preferred (rsync resumes it); a failed transfer is retried to the
  same drive.  `transfer: local` sends only to a farm dir on the same machine.
- promotes: a transfer reported "copied" whose harvester holds the partial,
  idle, at least as long as the source; or an idle partial that long that no
  transfer reports (a torn write can leave one of exactly the right length).
  Neither is trusted as it stands: apply compares digests first.
- notes: a failed transfer whose fault is the drive's (rsync's own error
  line says so), not yet in the harvester's record of that drive: the
  harvester is told first, and decides whether the drive is set aside.
- cleans: a partial nobody is sending any more (its plot waits on no
  plotter and no transfer names it), decided only when every plotter
  answered, so a plotter that is merely unreachable keeps its partials; and
  a partial beside a conflict (a file of its final name with other bytes).
- waits: every plot not moved, and why.

No byte of a plot moves before its proof check is over (Plot.proven, see
checker.py): a plot that failed it never reaches a farm drive.  A plot whose
check begins this pass is handed to a drive's queue already; the plotter's
runner copies it only once its check record lets it, and hands it back
otherwise (agent/launch/transfer.py gate), so its copy starts when the check
ends, not a pass later.

Drives that report an error (missing, read-only, not mounted, not
responding, set aside after failed transfers) take nothing, and a drive
holding a conflict for a plot's name is never chosen for that plot.

Contract with apply and follow-up: `archive` never removes a source itself
(a snapshot cannot prove a copy).  Apply (remote/apply.py) has both hosts
digest the same random ranges and sends each Promote with the source's
digest (the harvester renames only a matching copy); only its Promoted
outcome lets core/followup.py decide the source's removal, through
`decisions.remove_after_promote(promote, source, copy)`, which refuses
digests that differ; the plotter compares once more before it deletes.  A
controller killed between the two leaves a "copied" transfer whose partial
is gone: archive promotes again, and the harvester confirms the final file
(same bytes) or reports a conflict.
"""
from __future__ import annotations

import bisect
import posixpath
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Mapping, Optional, Tuple

from agent.vocab.names import PARTIAL_SUFFIX  # the one temp name rule, both sides
from orchestrator.core.decisions import (CleanPartial, NoteDriveFailure, Promote, StartTransfer, Wait,
                                         WaitKind, human_bytes)
from orchestrator.core import replot
from orchestrator.core.farm import Farm, farm as farm_model, settled as farm_settled
from orchestrator.core.state import (FleetState, Host, HostState, Plot, Transfer,
                                    expected_plot_bytes)
from orchestrator.core.paths import PathIndex

_ORDER = {"running": 0, "queued": 0, "copied": 1, "failed": 2}
REROUTE_AFTER_S = 600.0   # a failed transfer's harvester down this long: send elsewhere
FSYNC_SINCE = (3, 2, 4)   # the first rsync with --fsync


@dataclass(frozen=True)
class ArchiveDecision:
    transfers: Tuple[StartTransfer, ...]
    promotes: Tuple[Promote, ...]
    cleans: Tuple[CleanPartial, ...]
    waits: Tuple[Wait, ...]
    notes: Tuple[NoteDriveFailure, ...] = ()
    # replotting: harvester -> ids of plots whose room waits in its ledger but
    # that are on no plotter (told with its next claim: the room is anyone's)
    gone: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()


def failure_key(plotter: str, t: Transfer) -> str:
    """Names one failed transfer in a drive's record, the same in every pass."""
    return f"{plotter}:{_base(t.plot)}:{t.started_at:.0f}"


def _fsync(plotter: HostState, harvester: Optional[HostState], local: bool) -> bool:
    ok = lambda hs: hs is not None and hs.rsync_version is not None and \
        tuple(hs.rsync_version) >= FSYNC_SINCE
    return ok(plotter) and (local or ok(harvester))


def _base(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


class _Drive:
    """One harvester disk, with what this pass has already sent to it."""
    __slots__ = ("host", "device", "dirs", "room", "busy", "order", "partials", "resolved",
                 "conflicts", "model", "held", "owner", "arriving")

    def __init__(self, host: str, device: str, first_dir: str, room: int, order: int):
        self.host, self.device, self.dirs = host, device, [first_dir]
        self.room, self.busy, self.order = room, False, order
        self.partials: Dict[str, Tuple[str, int]] = {}     # plot name -> (path, size)
        self.resolved: Dict[str, str] = {}      # dir -> as the harvester resolves it
        self.conflicts: Dict[str, str] = {}     # plot name -> what the file there is
        self.model = None           # core/farm.py's Drive
        self.held: Dict[str, int] = {}          # plot name -> room replotting made for it
        # the plotter whose runner writes it (its queue may grow); "" when
        # some other writer is at it too, or one no transfer names
        self.owner: Optional[str] = None
        self.arriving: List[str] = []           # plot names an rsync is writing there

    @property
    def key(self):
        return (self.room, -self.order)

    def label(self) -> str:
        return f"{self.host}:{self.dirs[0]}"


class _Farm:
    """The reachable harvesters' drives, kept sorted by room for fast picks."""

    def __init__(self, state: FleetState, hosts: Mapping[str, Host], by_name: Dict[str, HostState],
                 model: Optional[Farm] = None, led: Optional[replot.Ledger] = None):
        self.hosts = hosts
        self.ledger = led or replot.Ledger()
        # replotting this pass: deletions per harvester (its last hour's
        # first), and the old plots already chosen
        self.deletes_done: Dict[str, int] = {hs.name: hs.replot.deletes_last_hour
                                             for hs in state.hosts}
        self.taken: set = set()
        self.drives: List[_Drive] = []
        self.by_dir: Dict[Tuple[str, str], _Drive] = {}
        self.index: Dict[str, PathIndex] = {}
        self.by_address: Dict[str, List[_Drive]] = {}
        self.receiving: Dict[str, str] = {}        # plot name -> where it is arriving
        self.holding: Dict[str, List[_Drive]] = {}  # plot name -> drives with an idle partial
        model = farm_model(state, hosts) if model is None else model
        for d in model.drives:
            drive = _Drive(d.host, d.device, d.dirs[0], d.room, len(self.drives))
            drive.dirs = list(d.dirs)
            drive.resolved = dict(d.resolved)
            drive.model = d
            for path in set(d.resolved.values()) | set(d.dirs):
                drive.held.update(self.ledger.held.get((d.host, path), {}))
            drive.room -= sum(drive.held.values())   # theirs until they arrive
            self.drives.append(drive)
            self.by_address.setdefault(hosts[d.host].address, []).append(drive)
        for name, host in hosts.items():
            hs = by_name.get(name)
            if not host.is_harvester or hs is None or not hs.reachable:
                continue
            self.index[name] = PathIndex([d.path for d in hs.dirs if d.kind == "farm"]
                                         + [d.resolved for d in hs.dirs
                                            if d.kind == "farm" and d.resolved]
                                         + list(host.farm_dirs))
            configured = PathIndex(host.farm_dirs)
            for drive in (x for x in self.drives if x.host == name):
                for path, real in drive.resolved.items():
                    for p in (path, real, configured.find(path)):
                        if p:
                            self.by_dir[(name, posixpath.normpath(p))] = drive
            for c in hs.conflicts:
                drive = self.find(name, posixpath.dirname(c.path))
                if drive is not None:
                    drive.conflicts[_base(c.final_name)] = f"{name}:{c.path}: {c.detail}"
            for p in hs.partials:
                drive = self.find(name, posixpath.dirname(p.path))
                if drive is None:
                    continue
                if p.receiving:
                    drive.busy = True
                    drive.arriving.append(_base(p.final_name))
                    self.receiving[_base(p.final_name)] = f"{name}:{posixpath.dirname(p.path)}"
                else:
                    drive.partials[_base(p.final_name)] = (p.path, p.size_bytes)
                    self.holding.setdefault(_base(p.final_name), []).append(drive)
        self.settled = farm_settled(state, hosts)     # no room will come by itself
        self.idle: List[Tuple[tuple, _Drive]] = []
        self.all_rooms: List[int] = []
        self._roomiest: Dict[tuple, str] = {}

    def landing(self, drive: _Drive, name: str) -> Optional[str]:
        """The first dir of `drive` where plot `name` would not be replaceable
        (no replot rule of its harvester matches it there); None: none is.  A
        new plot never goes where the next one could replace it."""
        host = self.hosts[drive.host]
        if not host.replot:
            return drive.dirs[0]
        return next((d for d in drive.dirs if replot.new_plot_matches(host, d, name) is None),
                    None)

    def refused_by_rules(self, drive: _Drive, name: str) -> str:
        """Why `drive` takes no `name`: the rule it would match there."""
        host = self.hosts[drive.host]
        return (f"{drive.label()}: {name} would match "
                f"{replot.new_plot_matches(host, drive.dirs[0], name)} there")

    def find(self, host: str, path: str) -> Optional[_Drive]:
        d = self.by_dir.get((host, posixpath.normpath(path)))
        if d is None and host in self.index:
            found = self.index[host].find(path)
            d = self.by_dir.get((host, posixpath.normpath(found))) if found else None
        return d

    def room_for(self, drive: _Drive, name: str) -> int:
        """The drive's room for plot `name` (with the room made for it)."""
        return drive.room + drive.held.get(name, 0)

    def sending(self, drive: _Drive, remaining: int, plotter: str) -> None:
        """`plotter`'s runner is (or will be) writing `remaining` more bytes to drive."""
        drive.busy = True
        drive.room -= remaining
        drive.owner = plotter if drive.owner in (None, plotter) else ""

    def seal(self, named=()) -> None:
        """Index the drives once the transfers already in flight are counted
        (`named`: the plots they send; a drive receiving any other has a
        writer no runner of ours is, and takes no queue)."""
        for d in self.drives:
            if any(n not in named for n in d.arriving):
                d.owner = ""
        self.idle = sorted((d.key, d) for d in self.drives if not d.busy)
        self.all_rooms = sorted(d.room for d in self.drives)
        self.inbound: Dict[str, int] = {}
        for d in self.drives:
            if d.busy:
                self.inbound[d.host] = self.inbound.get(d.host, 0) + 1

    def inbound_full(self, drive: _Drive) -> bool:
        """Its harvester writes as many drives at once as max_inbound_transfers allows."""
        limit = self.hosts[drive.host].max_inbound_transfers
        return bool(limit) and self.inbound.get(drive.host, 0) >= limit

    def add(self, drive: _Drive, need: int) -> None:
        """A plot joins the queue of a drive already being written."""
        self.all_rooms.remove(drive.room)
        drive.room -= need
        bisect.insort(self.all_rooms, drive.room)

    def take(self, drive: _Drive, need: int, plotter: str) -> None:
        drive.owner = plotter if not drive.busy else ""
        if not drive.busy:
            i = bisect.bisect_left(self.idle, (drive.key,))     # keys are unique (order)
            del self.idle[i]
            self.inbound[drive.host] = self.inbound.get(drive.host, 0) + 1
        self.all_rooms.remove(drive.room)
        drive.room -= need
        drive.busy = True
        bisect.insort(self.all_rooms, drive.room)

    def best(self, need: int, fill: str, name: str = "") -> Optional[_Drive]:
        """The idle drive `fill` prefers among all with room for `need` (and
        no conflict for plot `name`)."""
        if not self.idle or self.idle[-1][0][0] < need:
            return None
        if fill == "pack":
            i = bisect.bisect_left(self.idle, ((need, -len(self.drives)),))
            while i < len(self.idle):
                room = self.idle[i][0][0]
                j = i
                while j + 1 < len(self.idle) and self.idle[j + 1][0][0] == room:
                    j += 1                  # same room: the first in inventory order
                for k in range(j, i - 1, -1):
                    if self._takes(self.idle[k][1], name):
                        return self.idle[k][1]
                i = j + 1
            return None
        for key, drive in reversed(self.idle):
            if key[0] < need:
                return None
            if self._takes(drive, name):
                return drive
        return None

    def _takes(self, drive: _Drive, name: str) -> bool:
        return name not in drive.conflicts and self.landing(drive, name) is not None \
            and (drive.busy or not self.inbound_full(drive))

    def refusals(self, need: int, name: str, drives=None) -> List[str]:
        """The idle drives with room that a replot rule keeps `name` off."""
        pool = drives if drives is not None else [d for _, d in self.idle]
        return [self.refused_by_rules(d, name) for d in pool
                if not d.busy and d.room >= need and name not in d.conflicts
                and self.landing(d, name) is None]

    def any_room(self, need: int) -> bool:
        return bool(self.all_rooms) and self.all_rooms[-1] >= need

    def roomiest(self, drives=None) -> str:
        """'host:dir (free)' of the drive with most room: what a too-big plot missed."""
        def label(pool):
            d = max(pool, key=lambda d: (d.room, -d.order))
            return f"{d.label()} ({human_bytes(max(d.room, 0))})"
        if drives is not None:              # transfer: local, one machine's few drives
            return label(drives)
        top = self.all_rooms[-1]
        if top not in self._roomiest:       # one scan per distinct answer, not per plot
            self._roomiest[top] = label(self.drives)
        return self._roomiest[top]


DEFAULT_RATE = 100e6        # bytes/s a drive is taken to write before one is measured


def drive_rate(host: Host, hs: HostState) -> float:
    """Bytes/s the plotter's transfers make: measured on those in flight
    (rsync's own progress over their time), else its bandwidth limit, else
    DEFAULT_RATE; never above the limit."""
    cap = host.transfer_bwlimit_kbps * 1024.0 or None
    seen = [t.bytes_done / (hs.host_time - t.started_at) for t in hs.transfers
            if t.status == "running" and t.bytes_done > 0 and t.started_at
            and hs.host_time - t.started_at >= 1.0]
    rate = sum(seen) / len(seen) if seen else (cap or DEFAULT_RATE)
    return min(rate, cap) if cap else rate


def arrival_rate(host: Host, hs: HostState) -> float:
    """Bytes/s of plots the plotter made lately: those still on it whose
    mtime lies within the queue's span, over the time they took to come."""
    span = queue_span_s(host)
    recent = [p for p in hs.plots if hs.host_time - p.mtime <= span]
    if not recent:
        return 0.0
    took = hs.host_time - min(p.mtime for p in recent)
    return sum(p.size_bytes for p in recent) / max(took, host.polling_time_s)


def queue_span_s(host: Host) -> float:
    """How much transfer time one drive's queue holds: transfer_queue_s, but
    never less than two passes (the next pass refills it before it drains)."""
    return max(host.transfer_queue_s, 2 * host.polling_time_s)


class _Lanes:
    """One plotter's drives: each written by its runner, through a queue the
    passes refill (`transfer_queue_s`; 0: one plot per drive per pass).  It
    writes as many drives at once as its plots arrive faster than one takes
    them (max_transfers_per_plotter: at most that many, 0: as many as that
    needs), and a drive's queue holds queue_span_s of transfer, at least one
    plot."""

    def __init__(self, host: Host, hs: HostState):
        self.name = host.name
        self.queued = host.transfer_queue_s > 0
        self.limit = host.max_transfers_per_plotter
        self.own: Dict[_Drive, int] = {}        # drive -> bytes still to send there
        self.dir_of: Dict[_Drive, str] = {}     # drive -> the dir its queue writes into
        self.elsewhere: set = set()             # lanes to drives not known this pass
        self.plots = 0                          # in flight, and started this pass
        rate = drive_rate(host, hs)
        self.cap = int(rate * queue_span_s(host))
        self.want = self.limit or max(1, -(-int(arrival_rate(host, hs)) // max(int(rate), 1)))

    def sending(self, drive: Optional[_Drive], left: int, where=None) -> None:
        """A plot on its way (`where`: its (harvester, dir)), or placed this pass."""
        self.plots += 1
        if drive is not None:
            self.own[drive] = self.own.get(drive, 0) + left
            if where is not None:
                self.dir_of.setdefault(drive, where[1])
        elif where is not None:
            self.elsewhere.add(where)

    @property
    def lanes(self) -> int:
        return len(self.own) + len(self.elsewhere)

    def may_open(self) -> bool:
        """Another drive may be begun for this plotter."""
        if not self.queued:
            return not self.limit or self.plots < self.limit
        return self.lanes < self.want

    def join(self, farm: "_Farm", name: str, size: int, candidates) -> Optional[_Drive]:
        """The drive of its own whose queue the plot joins (least behind
        first): one only its runner writes, with room, under its cap."""
        if not self.queued:
            return None
        fits = [d for d, left in self.own.items()
                if d.owner == self.name and (left == 0 or left + size <= self.cap)
                and farm.room_for(d, name) >= size and name not in d.conflicts
                and replot.new_plot_matches(farm.hosts[d.host], self.dir_of[d], name) is None
                and (candidates is None or d in candidates)]
        return min(fits, key=lambda d: (self.own[d], d.order)) if fits else None

    def busy(self) -> str:
        if not self.queued:
            return f"plotter busy: {self.plots}/{self.limit} transfers"
        return (f"plotter busy: its {self.lanes} drive(s) at once have their queues full "
                f"({human_bytes(self.cap)} each)")


def _effective(transfers) -> Dict[str, Transfer]:
    """plot path -> the transfer that counts (running, else copied, else failed)."""
    out: Dict[str, Transfer] = {}
    for t in transfers:
        cur = out.get(t.plot)
        if cur is None or _ORDER.get(t.status, 3) < _ORDER.get(cur.status, 3):
            out[t.plot] = t
    return out


GB = 1_000_000_000      # plotman's unit for "1000 GB free"


def dst_priority(phase: Optional[tuple], free_bytes: int, n_plots: int) -> int:
    """plotman's archive.compute_priority: higher is emptied first.  `phase`
    is the furthest phase of the jobs heading to the dir (None: unknown,
    ignored, as plotman ignores an unknown phase)."""
    priority = 50
    if phase is not None:       # don't read from a drive about to be written
        if phase == (3, 4):
            priority -= 4
        elif phase == (3, 5):
            priority -= 8
        elif phase == (3, 6):
            priority -= 16
        elif phase >= (3, 7):
            priority -= 32
    gb_free = free_bytes / GB
    if gb_free < 1000:          # a drive getting full comes first
        priority += 1 + int((1000 - gb_free) / 100)
    if gb_free < 500:
        priority += 1 + int((500 - gb_free) / 100)
    return priority + n_plots


def furthest_phases(host: Host, hs: HostState) -> Dict[str, Optional[tuple]]:
    """dst dir -> the furthest phase of the jobs heading there (plotman's
    dstdirs_to_furthest_phase: an unknown phase counts as furthest)."""
    index = PathIndex(host.dst_dirs)
    out: Dict[str, Optional[tuple]] = {}
    for j in hs.jobs:
        d = index.find(j.dst_dir)
        if d is None:
            continue
        if j.phase is None or d in out and out[d] is None:
            out[d] = None
        elif d not in out or out[d] < j.phase:
            out[d] = j.phase
    return out


def _priority(host: Host, hs: HostState, plots) -> List[Plot]:
    """The plotter's plots in plotman's archive order (see the module doc)."""
    index = PathIndex(host.dst_dirs)
    dirs = index.dirs(hs.dirs)
    furthest = furthest_phases(host, hs)
    heading: Dict[str, int] = {}
    for j in hs.jobs:
        d = index.find(j.dst_dir)
        if d is not None:
            heading[d] = heading.get(d, 0) + expected_plot_bytes(j.k, j.compression)
    counts: Dict[Optional[str], int] = {}
    for p in plots:
        d = index.find(posixpath.dirname(p.path))
        counts[d] = counts.get(d, 0) + 1
    rank: Dict[Optional[str], tuple] = {}
    for d, n in counts.items():
        info = dirs.get(d) if d is not None else None
        free = info.free_bytes if info is not None else 0
        cramped = d in heading and info is not None and free < heading[d]
        rank[d] = (0 if cramped else 1,
                   -dst_priority(furthest.get(d, (0, 0)), free, n) if info is not None else 0)

    def key(p: Plot):
        return rank[index.find(posixpath.dirname(p.path))] + (p.mtime, p.path)
    return sorted(plots, key=key)


def archive_order(host: Host, hs: HostState) -> List[Plot]:
    """The plotter's waiting plots in the order `archive` sends them."""
    return _priority(host, hs, hs.plots)


def dst_ranks(host: Host, hs: HostState) -> Dict[str, int]:
    """dst dir -> its archive rank (1 = its plots go first), read off the
    archiver's own plot order: what the dst table shows."""
    index = PathIndex(host.dst_dirs)
    out: Dict[str, int] = {}
    for p in archive_order(host, hs):
        d = index.find(posixpath.dirname(p.path))
        if d is not None and d not in out:
            out[d] = len(out) + 1
    return out


def _local_drives(farm: _Farm, host: Host) -> List[_Drive]:
    own = [d for d in farm.drives if d.host == host.name]
    return own + [d for d in farm.by_address.get(host.address, ()) if d.host != host.name]


def archive(state: FleetState, hosts: Mapping[str, Host], model: Optional[Farm] = None,
            checking: FrozenSet[Tuple[str, str]] = frozenset()) -> ArchiveDecision:
    """Where this pass sends, promotes and cleans (the module's docstring);
    `model`: the pass's farm, when it was computed already; `checking`:
    (plotter, plot) whose proof check begins this pass (checker.py
    checked_now: the first of each check runner).  Those go to a
    drive's queue now, to be copied the moment their check passes (the
    runner waits for it, agent/launch/transfer.py gate), not a pass later;
    never where old plots would make their room (that is for a plot that
    passed), never confirmed as a copy already whole."""
    by_name = {hs.name: hs for hs in state.hosts}
    plotters = [(h, by_name[n]) for n, h in hosts.items()
                if h.is_plotter and n in by_name and by_name[n].reachable]
    present = {h.name: {_base(p.path) for p in hs.plots} |
               {_base(t.plot) for t in hs.transfers if t.in_flight}
               for h, hs in plotters}
    farm = _Farm(state, hosts, by_name, model, replot.ledger(state, hosts, present))
    any_harvester = any(h.is_harvester for h in hosts.values())
    asked = any(hs.name in hosts and hosts[hs.name].is_harvester for hs in state.hosts)
    transfers, promotes, cleans, waits, notes = [], [], [], [], []
    # What is already moving: busy drives, room spoken for, plotter slots.
    lanes: Dict[str, _Lanes] = {}
    effective: Dict[str, Dict[str, Transfer]] = {}
    named = set()                   # plot names a running transfer is sending
    for host, hs in plotters:
        # A copied or failed record whose source is gone is history, not work.
        present = {p.path for p in hs.plots}
        eff = effective[host.name] = {
            path: t for path, t in _effective(hs.transfers).items()
            if t.in_flight or path in present}
        lanes[host.name] = lane = _Lanes(host, hs)
        for t in eff.values():
            if t.in_flight:
                named.add(_base(t.plot))
                drive = farm.find(t.to_host, t.to_dir)
                left = max(0, t.size_bytes - t.bytes_done)
                if drive is not None:
                    farm.sending(drive, left, host.name)
                lane.sending(drive, left, (t.to_host, t.to_dir))
    farm.seal(named)

    queues: List[Tuple[Host, HostState, List[Tuple[Plot, Optional[Transfer]]]]] = []
    waiting_names = set()
    for host, hs in plotters:
        eff = effective[host.name]
        own_farm = PathIndex(host.farm_dirs)
        checked = set()             # plots whose copy is checked (promoted) this pass
        for t in eff.values():
            if t.status != "copied":
                continue
            verdict = _copied(t, host, hs, by_name, farm)
            if isinstance(verdict, Promote):
                promotes.append(verdict)
                checked.add(t.plot)
            elif verdict is not None:
                waits.append(verdict)
                checked.add(t.plot)
        queue = []
        for p in _priority(host, hs, hs.plots):
            if own_farm.find(posixpath.dirname(p.path)):
                continue                # already farmed where it is
            name = _base(p.path)
            if p.error:     # a header naming another plot, short, not a regular file:
                # the farmer's to look at (i22's plot check: quarantine)
                waits.append(Wait(host.name, name, f"not archived: {p.error}",
                                  blocked=True, kind=WaitKind.NOT_ARCHIVED))
                continue
            waiting_names.add(name)
            if not p.proven and (host.name, p.path) not in checking:
                continue                # its proof check first (checker.py says why)
            if p.path in checked:
                continue
            t = eff.get(p.path)
            if t is not None and t.in_flight:
                continue
            if t is not None and t.status == "failed" and t.fault == "drive":
                note = _note(host, t, by_name)
                if note is not None:
                    notes.append(note)
                    waits.append(Wait(host.name, name, f"transfer to {t.to_host}:{t.to_dir} "
                                                       f"failed: {t.error}; the drive's record "
                                                       f"comes first", kind=WaitKind.IN_TRANSFER))
                    continue
            full = _full_copy(farm, p, host) if p.proven else None
            if full is not None:
                promotes.append(full)
                continue
            queue.append((p, t))
        if queue and any_harvester:
            queues.append((host, hs, queue))

    for name, host in hosts.items():
        hs = by_name.get(name)
        if host.is_plotter and hs is not None and not hs.reachable:
            # its plots and transfers are unknown this pass: say so, the rest go on
            waits.append(Wait(name, "plots", f"not archived this pass: unreachable: "
                                             f"{hs.error or 'no answer'}",
                              kind=WaitKind.UNREACHABLE))
    transfers, placed_waits = _assign(queues, farm, lanes, by_name,
                                      "no reachable harvester" if asked
                                      else "no harvester in this run")
    waits += placed_waits

    all_answered = all(n in by_name and by_name[n].reachable
                       for n, h in hosts.items() if h.is_plotter)
    for name, host in hosts.items():
        hs = by_name.get(name)
        if not host.is_harvester or hs is None or not hs.reachable:
            continue
        for p in hs.partials:
            final = _base(p.final_name)
            if p.receiving:
                continue
            drive = farm.find(name, posixpath.dirname(p.path))
            if drive is not None and final in drive.conflicts:
                cleans.append(CleanPartial(name, p.path, f"{final} stands there already with "
                                                         f"other bytes: sent elsewhere"))
            elif all_answered and final not in waiting_names and final not in named:
                cleans.append(CleanPartial(name, p.path,
                                           f"stale: {final} waits on no plotter and no "
                                           f"transfer is sending it"))
    return ArchiveDecision(tuple(transfers), tuple(promotes), tuple(cleans), tuple(waits),
                           tuple(notes), tuple(sorted(farm.ledger.gone.items())))


def _note(host: Host, t: Transfer, by_name) -> Optional[NoteDriveFailure]:
    """The drive's record still lacks this failure: tell its harvester."""
    target = by_name.get(t.to_host)
    if target is None or not target.reachable:
        return None
    key = failure_key(host.name, t)
    if any(f.key == key for f in target.drive_failures):
        return None
    plotter = by_name[host.name]
    at = target.host_time
    if t.ended_at and plotter.host_time and target.host_time:
        at = t.ended_at - plotter.host_time + target.host_time   # the harvester's clock
    return NoteDriveFailure(t.to_host, t.to_dir, key, at, t.error or "transfer failed",
                            t.fatal, host.name, t.plot)


def _full_copy(farm: _Farm, plot: Plot, host: Host) -> Optional[Promote]:
    """An idle partial at least as long as the plot: rsync would skip it
    (--append), so its bytes are checked instead of trusted."""
    name = _base(plot.path)
    for drive in farm.holding.get(name, ()):
        path, size = drive.partials[name]
        if size >= plot.size_bytes and name not in drive.conflicts:
            return Promote(drive.host, path, plot.size_bytes, host.name, plot.path,
                           f"a full-length copy is already on {drive.label()}: its bytes "
                           f"are compared first")
    return None


def _copied(t: Transfer, host: Host, hs: HostState, by_name, farm: _Farm):
    """A copied transfer: the Promote that checks it, a Wait, or None when its
    copy is short (something cut it after rsync finished): sent again."""
    name = _base(t.plot)
    src = next((x for x in hs.plots if x.path == t.plot), None)
    size = t.size_bytes or (src.size_bytes if src is not None else 0)
    target = by_name.get(t.to_host)
    if target is None or not target.reachable:
        why = target.error if target is not None else "not in this run"
        return Wait(host.name, name, f"copied to {t.to_host}, which is unreachable: {why}",
                    kind=WaitKind.IN_TRANSFER)
    drive = farm.find(t.to_host, t.to_dir)
    mine = [p for p in target.partials if _base(p.final_name) == name]
    # the partial on the drive it was sent to first (an older one may linger elsewhere)
    mine.sort(key=lambda p: farm.find(t.to_host, posixpath.dirname(p.path)) is not drive)
    for p in mine:
        if p.receiving:
            return Wait(host.name, name, f"copied, but {t.to_host} still shows it receiving",
                        kind=WaitKind.IN_TRANSFER)
        if p.size_bytes < size:
            return None
        # a plot handed over as its check began learns its verdict only now:
        # one not checked (or released) says so where it reaches the farm
        why = ("copied" if src is None or src.check is None or src.check.status == "passed"
               else f"copied; {src.check.summary()}")
        return Promote(t.to_host, p.path, size, host.name, t.plot, why, sent=True)
    # No partial: a controller died between promote and source removal, or the
    # promote is still to come.  Promote is idempotent on the harvester: it
    # confirms a final file with the same bytes, and only that lets the source go.
    to_dir = (drive.resolved.get(t.to_dir) if drive is not None else None) or t.to_dir
    return Promote(t.to_host, posixpath.join(to_dir, name + PARTIAL_SUFFIX), size,
                   host.name, t.plot, "copied; confirming the final file")


def _assign(queues, farm: _Farm, lanes: Dict[str, "_Lanes"], by_name, no_farm: str
            ) -> Tuple[List[StartTransfer], List[Wait]]:
    """Round-robin over plotters, each in its priority order, one plot a turn."""
    transfers, waits = [], []
    pos = [0] * len(queues)
    live = list(range(len(queues)))
    while live:
        still = []
        for qi in live:
            host, hs, queue = queues[qi]
            lane = lanes[host.name]
            if not lane.queued and not lane.may_open():
                for p, _ in queue[pos[qi]:]:
                    waits.append(Wait(host.name, _base(p.path), lane.busy(),
                                      kind=WaitKind.PLOTTER_BUSY))
                continue
            plot, failed = queue[pos[qi]]
            pos[qi] += 1
            verdict = _place(host, plot, failed, farm, no_farm, hs.host_time, lane)
            if isinstance(verdict, Wait):
                waits.append(verdict)
            else:
                drive, to_dir, need, why = (verdict.drive, verdict.to_dir, verdict.need,
                                            verdict.reason)
                if verdict.joins:
                    farm.add(drive, need)
                else:
                    farm.take(drive, need, host.name)
                lane.sending(drive, need, (drive.host, to_dir))
                local = host.transfer == "local"
                if verdict.deletions:
                    farm.deletes_done[drive.host] = (farm.deletes_done.get(drive.host, 0)
                                                     + len(verdict.deletions))
                    farm.taken.update(d.path for d in verdict.deletions)
                if not plot.proven:
                    why += "; sent once its proof check passes"
                elif plot.check.status != "passed":
                    why += f"; {plot.check.summary()}"     # not checked, or released
                transfers.append(StartTransfer(
                    host.name, plot.path, plot.size_bytes, drive.host, to_dir,
                    "local" if local else "ssh", why,
                    dest_dir=drive.resolved.get(to_dir) or to_dir,
                    fsync=_fsync(hs, by_name.get(drive.host), local),
                    deletions=verdict.deletions, plot_id=plot.plot_id))
            if pos[qi] < len(queue):
                still.append(qi)
        live = still
    return transfers, waits


@dataclass(frozen=True)
class _Placement:
    drive: "_Drive"
    to_dir: str
    need: int               # bytes it will take there (less when resuming)
    reason: str
    deletions: tuple = ()   # replotting: the old plots that make its room
    joins: bool = False     # it joins the queue of a drive its plotter already writes


def _room_made(farm: _Farm, name: str, size: int, candidates) -> Optional[_Placement]:
    """A plot whose room replotting made earlier goes there first."""
    if name not in farm.ledger.sets:
        return None
    where, s = farm.ledger.sets[name]
    drive = farm.find(where, s.dir)
    if drive is None or drive.busy or name in drive.conflicts or \
            (candidates is not None and drive not in candidates):
        return None
    to_dir = next((d for d, real in drive.resolved.items() if real == s.dir), drive.dirs[0])
    need = size - drive.partials.get(name, ("", 0))[1]
    if farm.room_for(drive, name) < need:
        return None
    return _Placement(drive, to_dir, need, f"replot: the room made for it on {drive.label()} "
                                           f"({len(s.deletions)} old plot(s) deleted earlier)")


def _replace_old(farm: _Farm, plot: Plot, candidates):
    """core/replot.py's choice among the idle drives, or why there is none."""
    name = _base(plot.path)
    options = []
    bound = farm.find(*plot.bound_to) if plot.bound_to else None
    if plot.bound_to and name not in farm.ledger.sets and (bound is None or bound.busy):
        where = ":".join(plot.bound_to)
        return (f"bound to {where}, where deletions were begun for it, which cannot take it "
                f"now: nothing is deleted for it elsewhere")
    for d in (candidates if candidates is not None else farm.drives):
        if d.busy or name in d.conflicts or d.model is None or (bound and d is not bound):
            continue
        m = d.model
        need = plot.size_bytes - d.partials.get(name, ("", 0))[1]
        options.append(replot.Option(d, farm.hosts[d.host], farm.landing(d, name) or d.dirs[0],
                                     need, d.room,
                                     m.free_bytes < m.reserve_bytes, m.old, m.stopped, d.order))
    return replot.choose(name, options, farm.ledger, farm.deletes_done, farm.taken)


def _place(host: Host, plot: Plot, failed: Optional[Transfer], farm: _Farm, no_farm: str,
           host_time: float, lane: _Lanes):
    """Where this plot goes (a _Placement), or the Wait saying why it stays."""
    name = _base(plot.path)
    size = plot.size_bytes

    def stay(reason: str) -> Wait:
        return Wait(host.name, name, reason, kind=WaitKind.NO_DRIVE)

    if name in farm.receiving:      # e.g. sent by hand or by a plotter that lost track
        return stay(f"{farm.receiving[name]} is receiving it already")
    local = host.transfer == "local"
    candidates = _local_drives(farm, host) if local else None
    if failed is None and plot.bound_to is None and not lane.may_open():
        # as many drives as it needs are being written: join one's queue
        join = lane.join(farm, name, size, candidates)
        if join is None:
            return Wait(host.name, name, lane.busy(), kind=WaitKind.PLOTTER_BUSY)
        return _Placement(join, lane.dir_of[join], size,
                          f"queued for {join.label()} behind "
                          f"{human_bytes(lane.own[join])} still to send", joins=True)
    if failed is not None:
        # back to the same drive to resume there; only a harvester that is
        # merely unreachable is waited for, and only for a while: a drive gone
        # from a reachable harvester, one without room any more, or a harvester
        # that stays down would hold the plot (and, by backpressure, plotting)
        drive = farm.find(failed.to_host, failed.to_dir)
        if drive is not None and (name in drive.conflicts or
                                  replot.new_plot_matches(farm.hosts[drive.host],
                                                          failed.to_dir, name)):
            drive = None            # (a rule added since would make it replaceable there)
        where = f"{failed.to_host}:{failed.to_dir}"
        if drive is None and failed.to_host not in farm.index:
            down_s = host_time - failed.ended_at if failed.ended_at and host_time else 0.0
            if down_s < REROUTE_AFTER_S:
                return stay(f"retry to {where} waits: {failed.to_host} unreachable")
        if drive is not None:
            need = size - drive.partials.get(name, ("", 0))[1]
            if drive.busy:
                return stay(f"retry to {where} waits: drive busy")
            if farm.room_for(drive, name) >= need:
                return _Placement(drive, failed.to_dir, need,
                                  f"retry after failure: {failed.error or 'transfer failed'}")
            drive = None            # no room there any more: elsewhere
    made = _room_made(farm, name, size, candidates)
    if made is not None:
        return made
    if not farm.drives or (local and not candidates):
        return stay("no reachable harvester on this machine (transfer: local)"
                    if local and farm.drives else no_farm)
    # A drive holding a partial of this plot resumes it.
    for drive in farm.holding.get(name, ()):
        if (not local or drive in candidates) and not drive.busy and name not in drive.conflicts:
            path, done = drive.partials[name]
            if replot.new_plot_matches(farm.hosts[drive.host], posixpath.dirname(path), name):
                continue
            need = size - done
            if drive.room >= need:
                return _Placement(drive, posixpath.dirname(path), need,
                                  f"resume {human_bytes(done)} already on {drive.label()}")
    if local:
        fits = [d for d in candidates if d.room >= size and farm._takes(d, name)]
        idle = [d for d in fits if not d.busy]
        pick = None
        if idle:
            pick = (min(idle, key=lambda d: (d.room, d.order)) if host.fill == "pack"
                    else max(idle, key=lambda d: (d.room, -d.order)))
        any_room = bool(fits)
    else:
        pick = farm.best(size, host.fill, name)
        any_room = farm.any_room(size)
    if pick is None and failed is None and plot.bound_to is None:
        join = lane.join(farm, name, size, candidates)     # no drive free: a queue then
        if join is not None:
            return _Placement(join, lane.dir_of[join], size,
                              f"queued for {join.label()} behind "
                              f"{human_bytes(lane.own[join])} still to send", joins=True)
    refused = farm.refusals(size, name, candidates) if pick is None and any_room else []
    if refused and not any(d.busy and d.room >= size and farm.landing(d, name)
                           for d in (candidates if local else farm.drives)):
        any_room = False            # room only where the plot would be replaceable
    if pick is None and not any_room:
        # old plots give way only to a plot that passed its proof check: not
        # to one that could not be checked, nor to a bad one the farmer released
        choice = (_replace_old(farm, plot, candidates) if plot.check is not None
                  and plot.check.status == "passed" else
                  f"nothing is deleted for a plot whose proof check did not pass "
                  f"({plot.check.summary() if plot.check else 'not checked'})")
        if isinstance(choice, replot.Choice):
            d = choice.drive
            return _Placement(d, choice.to_dir, size - d.partials.get(name, ("", 0))[1],
                              choice.reason, choice.deletions)
    if pick is None:
        if any_room:
            return stay("all drives busy")
        why = f"; replot: {choice}" if choice else ""
        if refused:                 # the farmer's rules, not the drives, keep it waiting
            reason = ("no drive where it may land: a new plot never goes where a replot "
                      "rule makes it replaceable: " + "; ".join(refused[:3]) + why)
        else:
            reason = (f"no drive with room for {human_bytes(size)} (+ reserve); most room: "
                      f"{farm.roomiest(candidates)}{why}")
        # no drive has room and replot made none: while the farm cannot make
        # room by itself either, only the farmer can (a run waiting may end)
        return Wait(host.name, name, reason, blocked=farm.settled, kind=WaitKind.NO_DRIVE)
    return _Placement(pick, farm.landing(pick, name), size,
                      f"{host.fill}: {pick.label()} has {human_bytes(pick.room)} free "
                      f"(after reserve)")
