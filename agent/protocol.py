"""The agent's protocol: every op, its arguments and their types, declared.

A request with an argument the op does not take, without one it needs, or
with one of the wrong type is refused (code bad_request) before anything is
done; nothing is dropped silently.  So are unknown keys in the dicts whose
keys steer what the agent does: `config` (a typo there would quietly turn
off a check), `limits` and `ssh`.  The controller checks PROTOCOL_VERSION
in the hello at connect; a mismatch redeploys the agent.
"""
PROTOCOL_VERSION = 2

CONFIG_KEYS = frozenset((
    "tmp_dirs", "tmp2_dir", "dst_dirs", "log_dir", "farm_dirs", "stall_after_s",
    "dead_keep_s", "kill_quiet_s", "clean_quiet_s", "create_dirs", "require_mounted_farm",
    "drive_cooldown_s", "drive_fail_window_s", "dir_timeout_s"))
LIMIT_KEYS = frozenset(("global_max_jobs", "tmpdir_max_jobs", "global_stagger_s"))
SSH_KEYS = frozenset(("host", "port", "user", "key", "known_hosts"))

_TYPES = {"str": (str,), "int": (int,), "num": (int, float), "bool": (bool,),
          "list": (list,), "dict": (dict,)}


class Arg:
    __slots__ = ("kind", "required", "keys")

    def __init__(self, kind, required=True, keys=None):
        self.kind, self.required, self.keys = kind, required, keys

    def problem(self, name, value):
        """Why `value` is not a good `name`, or None."""
        if value is None:
            return None if not self.required else "%s is required" % name
        ok = isinstance(value, _TYPES[self.kind])
        if self.kind in ("int", "num") and isinstance(value, bool):
            ok = False
        if not ok:
            return "%s must be %s, got %s" % (name, self.kind, type(value).__name__)
        if self.keys is not None:
            unknown = sorted(set(value) - self.keys)
            if unknown:
                return "%s has unknown keys: %s" % (name, ", ".join(unknown))
        return None


def opt(kind, keys=None):
    return Arg(kind, required=False, keys=keys)


CONFIG = Arg("dict", keys=CONFIG_KEYS)
OPS = {
    "hello": {},
    "end_agent": {"pid": Arg("int"), "started_at": Arg("num")},
    "snapshot": {"config": CONFIG},
    "start_job": {"config": CONFIG, "argv": Arg("list"), "plotter": opt("str"),
                  "k": opt("int"), "tmp_dir": Arg("str"), "dst_dir": Arg("str"),
                  "limits": opt("dict", LIMIT_KEYS), "request_id": opt("str"),
                  "nice": opt("int")},
    "suspend": {"config": CONFIG, "pid": Arg("int"), "started_at": opt("num")},
    "resume": {"config": CONFIG, "pid": Arg("int"), "started_at": opt("num")},
    "kill": {"config": CONFIG, "plot_id": opt("str"), "pid": opt("int"),
             "started_at": opt("num")},
    "clean_dead": {"config": CONFIG, "plot_id": Arg("str"), "log_file": Arg("str")},
    "reset_failures": {"config": CONFIG},
    "start_transfer": {"config": CONFIG, "plot": Arg("str"), "to_host": opt("str"),
                       "to_dir": Arg("str"), "dest_dir": opt("str"), "fsync": opt("bool"),
                       "mode": opt("str"), "ssh": opt("dict", SSH_KEYS),
                       "bwlimit_kbps": opt("int"), "farm_dirs": opt("list")},
    "digest": {"config": CONFIG, "path": Arg("str"), "spec": Arg("dict")},
    "promote": {"config": CONFIG, "partial": Arg("str"), "expect": Arg("dict")},
    "remove_plot": {"config": CONFIG, "plot": Arg("str"), "proof": Arg("dict")},
    "clean_partial": {"config": CONFIG, "partial": Arg("str")},
    "reserve_drive": {"config": CONFIG, "to_dir": Arg("str"), "plot": Arg("str"),
                      "size_bytes": Arg("int"), "reserve_bytes": opt("int")},
    "note_drive_failure": {"config": CONFIG, "to_dir": Arg("str"), "key": Arg("str"),
                           "at": Arg("num"), "error": Arg("str"), "fatal": opt("bool"),
                           "plot": opt("str")},
    "read_log": {"config": CONFIG, "path": Arg("str"), "offset": opt("int"),
                 "max_bytes": opt("int")},
    "list_logs": {"config": CONFIG},
    "read_plotman_config": {"path": opt("str")},
    "guard_room": {"config": CONFIG, "plot_bytes": opt("int")},
    "start_check": {"config": CONFIG, "plot": Arg("str"), "settings": opt("dict"),
                    "max_running": opt("int")},
    "start_drive_check": {"config": CONFIG, "farm_dir": Arg("str"), "sample": opt("int"),
                          "settings": opt("dict")},
    "read_checks": {"config": CONFIG, "plots": Arg("list")},
    "quarantine_plot": {"config": CONFIG, "plot": Arg("str"), "reason": Arg("str")},
    "release_plot": {"config": CONFIG, "plot": Arg("str"), "delete": opt("bool")},
}


def check(op, args):
    """One line saying what is wrong with these arguments for `op`, or None."""
    spec = OPS[op]
    unknown = sorted(set(args) - set(spec))
    if unknown:
        return "%s takes no argument %s" % (op, ", ".join(unknown))
    for name, arg in spec.items():
        why = arg.problem(name, args.get(name))
        if why:
            return "%s: %s" % (op, why)
    return None
