"""Which mount a dir is on, by name: its mount point and its disk (`/mnt/hdd07`,
`sdh1`), read from /proc/self/mountinfo, which never touches the dirs
themselves (a dead mount answers here too).  A farmer knows drives by these
names, not by device numbers."""
import os
import re

MOUNTINFO = "/proc/self/mountinfo"
_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field):
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def table(path=MOUNTINFO):
    """[(mount point, source)] of this machine's mounts ([] when unknown)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if not sep or len(fields) < 5 or len(rest) < 2:
            continue
        out.append((_unescape(fields[4]), _unescape(rest[1])))
    return out


def disk_name(source):
    """`/dev/sdh1` -> `sdh1`; `/dev/mapper/vg-hdd07` -> `vg-hdd07`; others as they are."""
    return os.path.basename(source) if source.startswith("/dev/") else source


def where(real_path, mounts):
    """(mount point, disk) of the mount holding `real_path`, or (None, None).
    The last of equal mount points wins: it is the one on top."""
    best = None
    for point, source in mounts:
        if real_path == point or real_path.startswith(point.rstrip("/") + "/"):
            if best is None or len(point) >= len(best[0]):
                best = (point, source)
    return (best[0], disk_name(best[1])) if best else (None, None)
