"""Configured dirs: space, device, finished plots, partial transfers."""
import os
import stat
import re

from ..vocab import compression, formats, names
from ..vocab.names import PARTIAL_SUFFIX  # noqa: F401  (the one temp name rule)
KINDS = ("tmp", "tmp2", "dst", "log", "farm")


# Configured dirs whose last probe got no answer (probe.py): nothing but the
# probe touches them, so one dead mount cannot hang the agent.
UNRESPONSIVE = frozenset()


def set_unresponsive(paths):
    global UNRESPONSIVE
    UNRESPONSIVE = frozenset(os.path.normpath(os.path.expanduser(p)) for p in paths)


def responsive(path):
    """False for a path in or below a dir that is not responding."""
    p = os.path.normpath(os.path.expanduser(path))
    return not any(p == d or p.startswith(d.rstrip(os.sep) + os.sep) for d in UNRESPONSIVE)


def expand(path):
    """The path as this host resolves it (`~`, symlinks); a path on a dir
    that is not responding is only normalised (realpath would hang)."""
    if not responsive(path):
        return os.path.normpath(os.path.expanduser(path))
    return os.path.realpath(os.path.expanduser(path))


def config_dirs(config):
    """[(kind, configured path, expanded path)] in config order; a dir may
    appear under two kinds.  Dirs are reported under their configured
    spelling so the controller can match them to its inventory."""
    c = config or {}
    out = [("tmp", p) for p in c.get("tmp_dirs") or ()]
    if c.get("tmp2_dir"):
        out.append(("tmp2", c["tmp2_dir"]))
    out += [("dst", p) for p in c.get("dst_dirs") or ()]
    if c.get("log_dir"):
        out.append(("log", c["log_dir"]))
    out += [("farm", p) for p in c.get("farm_dirs") or ()]
    return [(k, p, expand(p)) for k, p in out]


def configured_paths(config):
    """Every configured dir, `~` expanded, nothing resolved: what is probed."""
    c = config or {}
    out = list(c.get("tmp_dirs") or ()) + list(c.get("dst_dirs") or ())
    out += [c[k] for k in ("tmp2_dir", "log_dir") if c.get(k)]
    out += list(c.get("farm_dirs") or ())
    return [os.path.normpath(os.path.expanduser(p)) for p in out]


def device_of(path):
    """st_dev of `path`, or None (gone, unreadable, or on a dir not responding)."""
    if not responsive(path):
        return None
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def farm_dirs_on(config, dev):
    """The host's farm dirs (resolved) on device `dev`: one drive, however
    many dirs it has."""
    return [d for d in dict.fromkeys(dirs_of(config, "farm")) if device_of(d) == dev]


def dirs_of(config, *kinds):
    return [r for k, _, r in config_dirs(config) if k in kinds]


def inside(path, dirs):
    """True if `path` (expanded) is one of `dirs` or below one."""
    p = expand(path)
    return any(p == d or p.startswith(d.rstrip(os.sep) + os.sep) for d in dirs)


def dir_info(path, kind, probed, mount=(None, None)):
    """The snapshot's entry for one configured dir, from its probe and the
    (mount point, disk) it is on."""
    return {"path": path, "kind": kind, "resolved": probed["real"],
            "mount": mount[0], "disk": mount[1],
            "total_bytes": probed["total_bytes"], "free_bytes": probed["free_bytes"],
            "device": "" if probed["st_dev"] is None else str(probed["st_dev"]),
            "plot_count": 0, "plot_bytes": 0, "plot_kinds": [], "error": probed["error"],
            "error_code": probed["error_code"], "set_aside_until": None}


ROOT_FS_ERROR = "not mounted: on the root filesystem"


def unmounted_farm(st_dev, config):
    """Why a farm dir must not take plots, with require_mounted_farm set (the
    default): it sits on the root filesystem, so its drive is not mounted."""
    if (config or {}).get("require_mounted_farm", True) is False or st_dev is None:
        return None
    try:
        return ROOT_FS_ERROR if st_dev == os.stat("/").st_dev else None
    except OSError:
        return None


def _files_ending(path, suffix):
    """(name, stat) of the regular files directly in `path` named *suffix;
    files that vanish mid-scan and unreadable dirs are skipped, not fatal."""
    if not responsive(path):
        return
    try:
        it = os.scandir(path)
    except OSError:
        return
    with it:
        for e in it:
            if not e.name.endswith(suffix):
                continue
            try:
                if e.is_file(follow_symlinks=False):
                    yield e.name, e.stat(follow_symlinks=False)
            except OSError:
                continue


def not_regular(path, suffix=names.SUFFIXES):
    """[(path, what it is)] of the entries directly in `path` named *suffix
    that are not regular files: shown, never taken for plots."""
    if not responsive(path):
        return []
    out = []
    try:
        with os.scandir(path) as it:
            for e in it:
                if not e.name.endswith(suffix):
                    continue
                try:
                    if not e.is_file(follow_symlinks=False):
                        out.append((os.path.join(path, e.name), file_kind(e.path)))
                except OSError:
                    continue
    except OSError:
        pass
    return out


def file_kind(path):
    """"a symlink to X", "a directory", "a device"...: what a path is, in words."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return "unreadable: %s" % (e.strerror or e)
    if stat.S_ISLNK(st.st_mode):
        try:
            return "a symlink to %s" % os.readlink(path)
        except OSError:
            return "a symlink"
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISFIFO, "a fifo"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(st.st_mode):
            return what
    return "not a regular file"


_HEADERS = {}       # path -> ((size, mtime), PoS2 header or None): read once per version


def _pos2_header(path, st):
    version = (st.st_size, st.st_mtime)
    seen = _HEADERS.get(path)
    if seen is None or seen[0] != version:
        try:
            with open(path, "rb") as f:
                h = formats.read_header(f.read(formats.HEADER_BYTES))
        except OSError:
            h = None
        if len(_HEADERS) > 20000:
            _HEADERS.clear()
        seen = _HEADERS[path] = (version, h if h and h["format"] == "pos2" else None)
    return seen[1]


def plots_in(path, moved_only=False):
    """Finished plots directly in `path`, of every format (`moved_only`: the
    formats plotfleet archives, for dst dirs).  "plots" is how many plots the
    file holds (a PoS2 group, from its header); a PoS2 plot's strength is its
    level (compression.POS2)."""
    out = []
    for name, st in _files_ending(path, names.SUFFIXES):
        p = names.parse(name)
        if p is None or (moved_only and p.format not in names.MOVED):
            continue
        full = os.path.join(path, name)
        k, count = p.k, 1
        level, fmt = compression.from_name(name)
        if p.format in ("pos2", "pos2_group"):
            h = _pos2_header(full, st)
            level, fmt = (h["strength"] if h else 0), compression.POS2
            count = max(h["group_size"], 1) if h else 1
        elif p.format == "drplot":
            k = 32          # DrPlotter makes k32 plots; its name says only its level
        out.append({"path": full, "size_bytes": st.st_size, "k": k,
                    "plot_id": p.plot_id, "mtime": st.st_mtime, "format": p.format,
                    "plots": count, "compress": level, "compress_format": fmt})
    return out


def plot_kinds(plots):
    """[[k, level, format, count, median size of one plot]] of plots (what a
    farm dir holds, by kind): the controller learns sizes it has no table for."""
    groups = {}
    for p in plots:
        n = p.get("plots") or 1
        groups.setdefault((p["k"], p["compress"], p["compress_format"]), []).extend(
            [p["size_bytes"] // n] * n)
    out = []
    for (k, level, fmt), sizes in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1],
                                                                        g[0][2] or "")):
        sizes.sort()
        out.append([k, level, fmt, len(sizes), sizes[len(sizes) // 2]])
    return out


def partials_in(path):
    """[(path, final_name, size, mtime)] of transfer temp files in a farm dir."""
    return [(os.path.join(path, name), name[:-len(PARTIAL_SUFFIX)], st.st_size, st.st_mtime)
            for name, st in _files_ending(path, PARTIAL_SUFFIX)]


HEX64 = re.compile(r"[0-9a-f]{64}")


def _id_files(dirs):
    """(path, name, size) of the regular files in `dirs` named with a plot id,
    never a finished plot; files that vanish mid-scan are skipped."""
    for d in dict.fromkeys(dirs):
        if not responsive(d):
            continue
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                n = e.name
                if names.is_plot(n) or not HEX64.search(n):
                    continue
                try:
                    if e.is_file(follow_symlinks=False):
                        yield os.path.join(d, n), n, e.stat(follow_symlinks=False).st_size
                except OSError:
                    continue


def files_with_id(dirs, plot_id, want=None):
    """{path: size} of files in `dirs` whose name contains `plot_id`
    (never a finished *.plot); `want(name)` may narrow further."""
    return {path: size for path, name, size in _id_files(dirs)
            if plot_id in name and (want is None or want(name))}


def temp_bytes_by_id(dirs):
    """{plot_id: (bytes, [paths])} over all id-named temp files in `dirs`
    (one pass per snapshot, however many jobs share the dirs)."""
    out = {}
    for path, name, size in _id_files(dirs):
        pid = HEX64.search(name).group(0)
        b, paths = out.get(pid, (0, []))
        paths.append(path)
        out[pid] = (b + size, paths)
    return out
