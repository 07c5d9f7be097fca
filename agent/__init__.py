"""plotfleet agent: the tiny program the controller pushes to every host.

A leaf: stdlib + psutil only, Python 3.8+, imports nothing from orchestrator.

Run as `python3 -m agent serve` (from the deployed folder, which is on
sys.path): it reads one JSON request per line on stdin and writes one JSON
response per line on stdout, until stdin closes (or its parent goes, or
SIGTERM); a request still stuck then is left GRACE_S later (watchdog.py).

    request:  {"id": 7, "op": "snapshot", "timeout_s": 29.0, ...arguments}
    response: {"id": 7, "ok": true, "result": {...}}
              {"id": 7, "ok": false, "code": "refused", "error": "one line"}

`timeout_s` (optional) is how long the controller waits for the answer; the
agent's deadline is the request's arrival on its own monotonic clock plus
that (no clocks compared across machines).  A request taken up after its
deadline, or whose wait for the host lock reaches it, is not carried out.
Every op's arguments and their types are declared in protocol.py: an
unknown, missing or mistyped argument (or an unknown key in config, limits
or ssh) is refused, never dropped.  hello answers the protocol version; the
controller redeploys an agent that speaks another.
Error codes: refused (an op said no), bad_request (not a JSON object, bad
arguments), unknown_op, deadline_expired (nothing was done), internal, and
the ops' own (vanished, mismatch, conflict, exists, busy, no_room,
drive_error, unreadable).

Layout: serve.py (this loop) and protocol.py (the ops declared); facts/
(what a snapshot reads); ops/ (what a request changes); launch/ (the
detached chiapos launcher and transfer runner).
start_job may carry `request_id`: it is carried out at most once per id on
this machine; asked again, it answers {..., "replayed": true} with what it
did the first time (ids in ~/.plotfleet/carried-out.json, pruned).

Every request that touches files carries `config`, the host's dirs:
    {"tmp_dirs": [..], "tmp2_dir": str|null, "dst_dirs": [..],
     "log_dir": str|null, "farm_dirs": [..], "stall_after_s": float,
     "dead_keep_s": float, "kill_quiet_s": float, "clean_quiet_s": float}
Paths may start with `~` (expanded here).  The agent refuses to touch any
path outside these dirs.

ops:
  hello            -> {"version": str, "python": str, "pid": int, "started_at": float,
                       "psutil": str}
  end_agent {pid, started_at}   (an agent this controller gave up on: only
                   that process, only if it runs `-m agent serve` as this
                   user; SIGTERM) -> {"ended": bool}
  snapshot {config}
                   -> {"host_time": float, "jobs": [...], "dirs": [...],
                       "plots": [...], "transfers": [...], "partials": [...],
                       "dead": [...], "failures": {count, last_error, last_at,
                       last_log, reset_at}}
                      (field names as in orchestrator/model.py dataclasses)
  start_job {config, argv: [..], plotter, k, tmp_dir, dst_dir, request_id,
             limits: {global_max_jobs, tmpdir_max_jobs, global_stagger_s}}
                   -> {"pid": int, "log_file": str}
                      or ok=false with the limit that no longer holds
  suspend {config, pid, started_at} / resume {config, pid, started_at}
                   -> {"pid": int, "state": str}
                      (started_at, as the snapshot reported it: a pid now held
                      by a later process is refused)
  kill {config, plot_id|null, pid|null, started_at}
                   -> {"removed": [paths], "freed_bytes": int}
                      (pid: end the job, then remove its plot id's temp files;
                      its id, when unknown, from the files it holds open.
                      no pid: a dead job's files, refused while a process
                      holds one or one changed within kill_quiet_s)
  clean_dead {config, plot_id, log_file}
                   -> {"removed": [paths], "freed_bytes": int}
                      (a failed job's files named for its plot id, in the tmp
                      dirs its log names, none held open, none changed within
                      clean_quiet_s)
  reset_failures {config}                  -> {"reset_at": float}
  start_transfer {config, plot, to_host, to_dir, dest_dir, fsync, mode: "ssh"|"local",
                  ssh: {host, port, user, key, known_hosts}, bwlimit_kbps, farm_dirs}
                   -> {"pid": int}
                      (dest_dir: to_dir as the harvester resolved it; a local
                      copy goes only into one of farm_dirs, the harvester's)
  digest {config, path, spec: {edge, block, offsets, full_below}}
                   -> {"size", "sha256", "method": "full"|"sampled", "bytes_read",
                       "header": {format, plot_id, k, version}, "header_error"}
                      (a plot in a dst dir, or a plot or temp file in a farm
                      dir; plotfile.py says what is read)
  promote {config, partial, expect: {size, sha256, method, spec}}
                   (harvester: the temp file gets its final name only when its
                   digest matches the source's and its header its name; data
                   fsynced before, the dir entry after the rename.  A
                   mismatching copy is removed (code "mismatch"); a final name
                   already there with the same bytes confirms ("already":
                   true), with other bytes is a conflict (code "conflict",
                   recorded, never deleted); no file at all: code "vanished")
                   -> the final file's digest + {"path", "size_bytes", "already"}
  remove_plot {config, plot, proof: {size, sha256, method, spec}}  (plotter: the
                   source goes only when its own digest equals the copy's;
                   code "mismatch" otherwise) -> {"removed": str, "size_bytes": int}
  clean_partial {config, partial}          -> {"removed": str}
  reserve_drive {config, to_dir, plot, size_bytes, reserve_bytes}
                   (harvester: claim the drive of to_dir for this plot before
                   the plotter sends it; codes: drive_error (the dir cannot
                   take files), exists (a file holds the final name), busy
                   (another plot on its way), no_room) -> {"drive": str}
  note_drive_failure {config, to_dir, key, at, error, fatal, plot}
                   (harvester: a transfer into to_dir failed by the drive's
                   fault; kept once per key in drive-health.json, ends that
                   plot's claim) -> {"recorded": bool}
  read_log {config, path, offset, max_bytes} -> {"data": str, "offset": int, "size": int}
  list_logs {config}                       -> {"logs": [{"path", "size", "mtime"}]}
  guard_room {config, plot_bytes}  (every plot-all pass: multi-plot jobs whose
                   dst cannot take their plot are suspended, the ones the agent
                   suspended that fit again resumed; ops/room.py)
                   -> {"suspended": [{pid, plot_id, dst_dir, reason}], "resumed": [..]}
  read_plotman_config {path}  (a *.yaml file, default plotman's own config
                   path; read only) -> {"path": str, "text": str}
start_job also takes `nice` (the job's niceness, plotman's 15).  Snapshot jobs
carry `count` (plots asked for, 0: no end), `plots_done` (from the log) and
`paused` (why the agent suspended it for room, else null); `phase` is null
while no line of the job's log was read.

Notes on the answers (agent/facts/snapshot.py, agent/ops/):
  - every configured dir is probed first, each in its own thread, for
    dir_timeout_s (probe.py): dirs[].error / error_code say why a dir cannot
    take files (missing, not_dir, read_only, not_writable, not_mounted,
    not_responding, set_aside with set_aside_until, unreadable); nothing
    else touches a dir that is not responding.  dirs[].resolved is the path
    as this host resolves it; dirs[].mount and dirs[].disk name the mount it
    is on (from /proc/self/mountinfo; `device` stays the number).
  - plots[].error: the file's header names another plot (or it is unreadable).
  - conflicts: final names on farm dirs recorded as holding other bytes;
    drive_failures: [{dir, key}] in the drives' records; rsync_version.
  - transfers[].fault (drive | plotter | network | unknown), fatal and
    error (rsync's most specific line) for a failed transfer.
  - dirs[].path is the configured spelling (e.g. "~/tmp"); a job's tmp_dir,
    tmp2_dir and dst_dir are given in that spelling when they are one of the
    configured dirs, as printed on its command line otherwise.  File paths
    (plots, logs, partials, temp files) are absolute and resolved.
  - Only jobs whose tmp or dst dir lies inside the configured dirs, and only
    transfers whose source plot does, are reported (hosts may share a machine).
  - plots are the *.plot files of dst dirs; farm dirs report plot_count,
    plot_bytes and plot_kinds ([[k, level, format, count, median size]])
    instead.  Jobs and plots carry compress (level, 0: uncompressed) and
    compress_format (bladebit | gigahorse | null): agent/facts/compression.py.
  - A `chia plotters bladebit|madmax` job is its plotter binary (pid) with
    its Python parent as wrapper_pid, whose start and log it has.
  - dead lists failed jobs (agent/failures.py): unfinished logs that no job
    writes and no process holds open, with the log's own error line, while
    they have temp files and dead_keep_s after; failures counts those in a
    row, newest first, back to a finished plot or the reset marker
    (~/.plotfleet/failures/<log dir hash>.reset).
  - Transfer and lock state lives in ~/.plotfleet (transfers/<plot>.json,
    host.lock, carried-out.json); a partial counts as receiving while an rsync has it open or
    names it, or while an `rsync --server` pair (generator + receiver) holding
    no partial open works in the partial's dir and it changed < 60 s ago (with
    --protect-args a server does not name its file).
"""

from .protocol import PROTOCOL_VERSION  # noqa: E402,F401  (checked at connect)
