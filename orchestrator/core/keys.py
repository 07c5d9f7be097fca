"""Every inventory key plotfleet reads, in one table.

Each Key says its kind, default, limits and meaning; inventory.py validates
by it and fills unset keys from it, and `plotfleet keys` prints it.  It is
the one place a default is read from: the parts of core/state.py's Host take
theirs from FIELD_DEFAULTS, the controller's settings from KEYS.  The four
thresholds the agent also applies to a request that leaves them out are
written in agent/vocab/wire.py's CONFIG_DEFAULTS, and taken from there.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from agent.vocab.plotters import PLOTTERS
from agent.vocab.wire import CONFIG_DEFAULTS

ANY = ("plotter", "harvester")
PLOTTER = ("plotter",)
HARVESTER = ("harvester",)
CONTROLLER = ("controller",)    # read from all.vars only, into Inventory.controller
# kinds of the controller-wide keys (all.vars only: refused on a group or host)
CONTROLLER_KINDS = ("all_urls", "all_log", "all_int", "all_float", "all_str", "all_date")
# kinds that set no Host field of their own
NO_FIELD = ("ssh_args", "group_int") + CONTROLLER_KINDS
KINDS = {           # kind -> what the reference calls it
    "int": "integer", "float": "number", "bool": "true/false", "str": "string",
    "choice": "choice", "port": "port", "connection": "choice",
    "path_list": "list of paths", "remote_path": "path (on the host)",
    "device_list": "list of GPU numbers",
    "controller_path": "path (controller)", "overrides": "mapping",
    "ssh_args": "ssh arguments", "group_int": "integer (group var)",
    "all_urls": "apprise URL or list", "all_log": "path (controller) or false",
    "all_int": "integer", "all_float": "number", "all_str": "string",
    "replot_rules": "list of rules", "all_date": "date YYYY-MM-DD",
}


@dataclass(frozen=True)
class Key:
    name: str
    kind: str                               # one of KINDS
    default: object = dataclasses.field(hash=False)    # when unset (None: not set)
    doc: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Optional[Tuple[str, ...]] = None
    field: Optional[str] = None             # Host field, when not `name`
    roles: Tuple[str, ...] = ANY            # hosts it matters for
    required: bool = False                  # for each of its roles
    per_tmp_dir: bool = False               # may be set in tmp_overrides too

    @property
    def controller(self) -> bool:
        """A controller-wide key: all.vars only, not a host's."""
        return self.kind in CONTROLLER_KINDS

    @property
    def attr(self) -> Optional[str]:
        """The Host field it sets (None: none directly)."""
        return None if self.kind in NO_FIELD else self.field or self.name


def _int(name, default, doc, minimum, **kw):
    return Key(name, "int", default, doc, minimum=minimum, **kw)


def _float(name, default, doc, minimum, **kw):
    return Key(name, "float", default, doc, minimum=minimum, **kw)


_SSH_ARGS = ("ssh arguments; plotfleet honours -o UserKnownHostsFile,"
             " -o StrictHostKeyChecking=no and -o ProxyJump (or -J)")

SECTIONS: Tuple[Tuple[str, Tuple[Key, ...]], ...] = (
    ("connection", (
        Key("ansible_host", "str", None, "address to connect to (unset: the host's name)",
            field="address"),
        Key("ansible_port", "port", 22, "SSH port", minimum=1, maximum=65535, field="port"),
        Key("ansible_user", "str", None, "SSH user (unset: ssh's own)", field="user"),
        Key("ansible_ssh_private_key_file", "controller_path", None, "SSH private key",
            field="key_file"),
        Key("ansible_connection", "connection", "ssh",
            "ssh (paramiko, smart: ssh too) or local: this machine, no SSH",
            choices=("ssh", "local"), field="connection"),
        Key("ansible_python_interpreter", "str", "python3",
            "python command on the host (auto*: python3; local: the controller's own)",
            field="python"),
        Key("ansible_ssh_common_args", "ssh_args", None, _SSH_ARGS),
        Key("ansible_ssh_extra_args", "ssh_args", None, _SSH_ARGS),
        Key("ansible_group_priority", "group_int", 1,
            "a group var: merge order of groups at equal depth, as in Ansible", roles=()),
        Key("host_key_checking", "bool", True, "check host keys against known_hosts"),
        Key("known_hosts_file", "controller_path", None,
            "known_hosts to check against (unset: ssh's own)"),
        Key("proxy_jump", "str", None, "bastions to jump through, user@host:port,... each"
            " host key checked (unset: -o ProxyJump in ssh args, else ~/.ssh/config's)"),
        _float("connect_timeout_s", 10.0, "seconds an SSH connection may take", 0.1),
        _float("request_timeout_s", 30.0, "seconds an agent's answer is waited for", 0.5),
    )),
    ("plotting", (
        Key("tmp_dirs", "path_list", (), "temp dirs jobs plot in", roles=PLOTTER,
            required=True),
        Key("tmp2_dir", "remote_path", None, "second temp dir (-2)", roles=PLOTTER),
        Key("dst_dirs", "path_list", (), "where finished plots wait to be archived"
            " (unset: tmp2_dir, else each job's tmp dir, as in plotman)", roles=PLOTTER),
        Key("log_dir", "remote_path", None, "one log per job", roles=PLOTTER, required=True),
        Key("plotter", "choice", "chia", "the plotting program",
            choices=tuple(PLOTTERS), roles=PLOTTER),
        _int("k", 32, "plot size (each plotter takes its own range)", 1, maximum=50,
             roles=PLOTTER),
        _int("threads", 2, "threads per job", 1, roles=PLOTTER),
        _int("buckets", 128, "sort buckets (unset with chiapos: the most its k takes)", 1,
             roles=PLOTTER),
        _int("buffer", 3389, "memory buffer per job, MiB", 1, field="buffer_mib",
             roles=PLOTTER),
        Key("farmer_key", "str", None, "farmer public key", roles=PLOTTER),
        Key("pool_key", "str", None, "pool public key (or pool_contract)", roles=PLOTTER),
        Key("pool_contract", "str", None, "pool contract address (or pool_key)",
            roles=PLOTTER),
        _int("count", 1, "plots per job (-n); 0: without end (the plotter then keeps"
             " global_max_jobs such jobs running, 0 meaning one; each plot archived as it"
             " lands, the job suspended while its dst has no room)", 0, roles=PLOTTER),
        Key("bladebit_mode", "choice", "ramplot", "how bladebit plots",
            choices=("ramplot", "diskplot", "cudaplot"), roles=PLOTTER),
        _int("compress", 0, "compression level (bladebit 0-7, 9; gigahorse 1-20)", 0,
             roles=PLOTTER),
        _int("strength", 2, "PoS2 plot strength (plotter pos2): 2 to k-3; each step "
             "doubles the plotting time", 2, roles=PLOTTER),
        Key("executable", "str", None, "the plotter's program: a path to chia, chia_plot, "
            "bladebit, bladebit_cuda or cuda_plot_k32 (unset: found on PATH)", roles=PLOTTER),
        _int("cuda_device", None, "GPU to plot on (bladebit cudaplot --device, "
             "gigahorse -g; unset: the plotter's 0)", 0, roles=PLOTTER),
        Key("cuda_devices", "device_list", (), "GPUs to plot on, one job on each, pinned "
            "with the plotter's own flag (bladebit cudaplot --device, gigahorse -g); "
            "cuda_device is the one-GPU form: set one of them", roles=PLOTTER),
        Key("disk_128", "bool", False, "bladebit cudaplot --disk-128 (128 GiB RAM, uses "
            "tmp_dirs)", roles=PLOTTER),
        Key("disk_16", "bool", False, "bladebit cudaplot --disk-16 (16 GiB RAM, uses "
            "tmp_dirs)", roles=PLOTTER),
        Key("nobitfield", "bool", False, "chia plots create -e: plot without bitfield",
            roles=PLOTTER),
        Key("exclude_final_dir", "bool", False, "chia plots create -x: do not add the dst "
            "dir to chia's harvester config", roles=PLOTTER),
        _int("n_buckets3", None, "madmax -v: buckets for phases 3 and 4 (unset: madmax's)",
             16, maximum=65536, roles=PLOTTER),
        _int("rmulti2", None, "madmax -K: thread multiplier for phase 2 (unset: madmax's)",
             1, roles=PLOTTER),
        Key("plotter_command", "str", None,
            "Jinja2 template replacing the plot command (rendered per job)", roles=PLOTTER),
    )),
    ("scheduling", (
        _int("global_max_jobs", 0, "jobs at once on the plotter (0: no limit)", 0,
             roles=PLOTTER),
        _float("global_stagger_m", 30.0, "minutes between job starts on the plotter", 0,
               roles=PLOTTER),
        _int("tmpdir_max_jobs", 3, "jobs at once per tmp dir", 0, roles=PLOTTER,
             per_tmp_dir=True),
        _int("tmpdir_stagger_phase_major", 2, "stagger phase (major) per tmp dir", 0,
             roles=PLOTTER, per_tmp_dir=True),
        _int("tmpdir_stagger_phase_minor", 1, "stagger phase (minor) per tmp dir", 0,
             roles=PLOTTER, per_tmp_dir=True),
        _int("tmpdir_stagger_phase_limit", 1, "jobs a tmp dir may have before that phase", 1,
             roles=PLOTTER, per_tmp_dir=True),
        Key("tmp_overrides", "overrides", {},
            "tmp dir -> its own tmpdir_max_jobs, tmpdir_stagger_phase_*", roles=PLOTTER),
        _float("polling_time_s", 20.0, "seconds between plot-all passes at most: a pass comes "
               "sooner (1 s after the last) when a plotter has news: a plot landed, a check "
               "or a transfer ended", 0.1, roles=PLOTTER),
        _int("nice", 15, "niceness jobs run at (plotman's 15)", -20, maximum=19,
             roles=PLOTTER),
        _float("stall_after_m", CONFIG_DEFAULTS["stall_after_s"] / 60,
               "a job whose log is silent this long is stalled", 0.1,
               roles=PLOTTER),
    )),
    ("failed jobs", (
        _int("max_failures", 2, "failed jobs in a row before the plotter backs off", 1,
             roles=PLOTTER),
        _float("failure_backoff_m", 60.0, "then no new job for this long", 0, roles=PLOTTER),
        _float("clean_after_m", 5.0, "a failed job's temp files go once they rest this long",
               0, roles=PLOTTER),
        _float("kill_after_m", 1.0, "kill of a dead job: its files must rest this long", 0,
               roles=PLOTTER),
        _float("dead_keep_h", 24.0, "a dead job without leftovers stays listed this long",
               0.01, roles=PLOTTER),
    )),
    ("transfers", (
        Key("transfer", "choice", "ssh", "how plots reach harvesters: rsync over ssh, or local",
            choices=("ssh", "local"), roles=PLOTTER),
        Key("transfer_ssh_key", "remote_path", None, "SSH key the plotter's rsync uses",
            roles=PLOTTER),
        Key("transfer_known_hosts", "remote_path", None, "known_hosts the plotter's rsync uses",
            roles=PLOTTER),
        _int("transfer_bwlimit_kbps", 0, "rsync bandwidth limit, KiB/s (0: unlimited)", 0,
             roles=PLOTTER),
        _int("max_transfers_per_plotter", 0, "drives one plotter sends to at once, each "
             "with its queue (0: as many as its waiting plots need to leave within one "
             "polling_time_s)", 0, roles=PLOTTER),
        _float("transfer_queue_s", 120.0, "seconds of transfer (at the drive's measured "
               "rate) handed to a plotter's runner for one drive at a time; it sends them "
               "back to back, without waiting for a pass (never less than one plot, nor "
               "than two polling_time_s; 0: one plot per drive per pass)", 0, roles=PLOTTER),
        _int("batch_bytes", 8 << 30, "plots queued for one drive that add up to this go in "
             "one rsync run (one SSH channel), each still under its own partial name", 0,
             roles=PLOTTER),
    )),
    ("proof checks", (
        _int("check_challenges", 30, "challenges a new v1 plot's check asks the prover "
             "(chiapos DiskProver + Verifier) before it is archived", 1, maximum=10000,
             roles=PLOTTER),
        _float("check_min_ratio", 0.3, "valid proofs per challenge below which a plot is "
               "checked once more, then quarantined (any prover error quarantines it)", 0,
               maximum=10, roles=PLOTTER),
        _int("check_challenges_v2", 4, "full proofs a new PoS2 plot's check fetches (its "
             "qualities are checked for check_challenges challenges)", 0, maximum=1000,
             roles=PLOTTER),
        Key("check_command", "str", None, "checks the plots chiapos cannot read, e.g. "
            "'bladebit_cuda check -n {n} {path}' (its 'N / M valid proofs' line is read; "
            "unset: such plots are archived as 'not checked')", roles=PLOTTER),
        _int("check_parallel", 1, "proof checks at once on a plotter (nice 19, idle I/O)",
             1, maximum=64, roles=PLOTTER),
    )),
    ("harvesting", (
        Key("farm_dirs", "path_list", (), "drives plots are archived to", roles=HARVESTER,
            required=True),
        Key("fill", "choice", "spread", "spread: the drive with most room; pack: fullest first",
            choices=("spread", "pack"), roles=HARVESTER),
        _int("farm_reserve_bytes", 0, "bytes kept free on each farm drive", 0,
             roles=HARVESTER),
        Key("require_mounted_farm", "bool", True, "refuse farm dirs on the root filesystem",
            roles=HARVESTER),
        _float("drive_cooldown_m", CONFIG_DEFAULTS["drive_cooldown_s"] / 60,
               "a drive set aside gets nothing for this long", 0,
               roles=HARVESTER),
        _int("max_inbound_transfers", 0, "drives of the harvester written at once (its "
             "NIC's share; 0: no limit; one writer per drive always)", 0, roles=HARVESTER),
        _float("drive_fail_window_m", CONFIG_DEFAULTS["drive_fail_window_s"] / 60,
               "two failed transfers this close: set aside", 0,
               roles=HARVESTER),
    )),
    ("replotting", (
        Key("replot", "replot_rules", (), "rules naming the farm plots a new plot may replace,"
            " each a mapping whose conditions all hold: k_below, compression_below (with"
            " compression_format for compressed plots), format: v1, made_before: YYYY-MM-DD"
            " (in the past), glob, pool: solo; a rule matching the plots a plotter makes now"
            " is refused (unset: nothing is replaced)", roles=HARVESTER),
        _int("replot_max_deletes_per_hour", 60, "plots replotting may delete per hour on the"
             " harvester, counted from its own records", 0, roles=HARVESTER),
    )),
    ("dirs", (
        Key("create_dirs", "bool", False, "make missing dirs (demos; never for mounts)"),
        _float("dir_timeout_s", CONFIG_DEFAULTS["dir_timeout_s"],
               "a dir silent this long is not responding", 0.1),
    )),
    ("controller (all.vars only)", (
        Key("notify", "all_urls", None,
            "apprise URL, or a list of them, that alerts go to (unset: none)",
            roles=CONTROLLER),
        Key("app_log", "all_log", "~/.plotfleet/plotfleet.log",
            "the controller's JSON-lines log of every pass's events (relative: to the"
            " inventory; false: none)", roles=CONTROLLER),
        Key("app_log_max_bytes", "all_int", 10 * 2 ** 20, "app_log is rotated at this size",
            minimum=4096, roles=CONTROLLER),
        Key("app_log_backups", "all_int", 5, "rotated app_log files kept (0: emptied instead)",
            minimum=0, roles=CONTROLLER),
        Key("alert_host_down_m", "all_float", 10.0,
            "alert when a host is unreachable this many minutes", minimum=0,
            roles=CONTROLLER),
        Key("alert_farm_free_plots", "all_int", 10,
            "alert when the farm has room for this few plots", minimum=0, roles=CONTROLLER),
        Key("serve_token", "all_str", None, "token the web server asks for (unset: none)",
            roles=CONTROLLER),
        Key("replot_deadline", "all_date", None, "the date old plots must be gone by (the"
            " replot wave's views say on track or behind; unset: no deadline)",
            roles=CONTROLLER),
    )),
)
KEYS: Dict[str, Key] = {k.name: k for _, keys in SECTIONS for k in keys}

# per plotter, from the one PLOTTERS table: (least, most, why)
BUCKETS = {name: p.buckets for name, p in PLOTTERS.items() if p.buckets}
K_RULES = {name: p.k for name, p in PLOTTERS.items()}
CONTROLLER_KEYS = tuple(n for n, k in KEYS.items() if k.controller)
# Host field -> its default (core/state.py's Host parts take theirs from here)
FIELD_DEFAULTS = {k.attr: k.default for k in KEYS.values() if k.attr}


def limits(key: Key) -> str:
    """What validation allows, as one short line ('' if anything of its kind)."""
    parts = []
    if key.choices:
        parts.append(" | ".join(key.choices))
    if key.minimum is not None and key.maximum is not None:
        parts.append(f"{key.minimum}..{key.maximum}")
    elif key.minimum is not None:
        parts.append(f">= {key.minimum}")
    if key.name == "k":
        parts.append(", ".join(f"{p} {lo}" + ("" if hi == lo else "+")
                               for p, (lo, hi, _) in K_RULES.items()))
    if key.name == "buckets":
        parts.append(", ".join(f"{p} {lo}..{hi}" for p, (lo, hi, _) in BUCKETS.items()))
    return "; ".join(parts)


def reference() -> list:
    """Every key as a JSON-ready dict, in table order."""
    return [{"name": k.name, "section": section, "type": k.kind, "default": k.default,
             "minimum": k.minimum, "maximum": k.maximum,
             "choices": list(k.choices) if k.choices else None, "limits": limits(k),
             "field": k.attr, "roles": list(k.roles), "required": k.required,
             "per_tmp_dir": k.per_tmp_dir, "doc": k.doc}
            for section, keys in SECTIONS for k in keys]
