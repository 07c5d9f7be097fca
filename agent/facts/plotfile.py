"""What a plot file is, read from its bytes: header and digests.

Size alone proves nothing about a copy (a torn write can leave a partial of
exactly the right length), so a copy is compared by content: both hosts
compute `digest` over the same ranges and the controller compares.  The
ranges come from a spec the controller draws anew for each check:

    {"edge": bytes at each end, "block": bytes per sampled block,
     "offsets": [random ints], "full_below": files smaller than this are
     hashed whole}

A file at least `full_below` long is hashed over its first and last `edge`
bytes and one `block` at each offset (taken modulo the room left), so a
copy that differs anywhere the controller happened to look, or at its ends
(where a cut-off transfer leaves its zeros), or in length, differs here.

Headers and what they declare are read by the format specs, agent/vocab/formats.py.
"""
import hashlib
import os
import struct

from ..vocab import compression
from ..vocab.digest import same  # noqa: F401  (compared where digests are)
from ..vocab.formats import HEADER_BYTES, extent_problem, header_problem, read_header

READ_CHUNK = 1 << 20


def check_header(path):
    """header_problem of the file at `path` (OSError when unreadable)."""
    return inspect(path)[0]


def _reader(f):
    def read_at(offset, n):
        f.seek(offset)
        return f.read(n)
    return read_at


def inspect(path):
    """(problem, (level, format)) of the file at `path`: its header
    contradicting its name, or the file not as long as its header declares;
    the level its header tells, else its name's (OSError when unreadable)."""
    with open(path, "rb") as f:
        header = read_header(f.read(HEADER_BYTES))
        problem = header_problem(path, header) or extent_problem(
            header, _reader(f), os.fstat(f.fileno()).st_size)
    if header["compress"] is not None:
        level = (header["compress"], header["compress_format"])
    else:
        level = compression.from_name(os.path.basename(path))
    return problem, level


def extent_error(path):
    """One line when the file at `path` is not as long as its header declares
    (a torn copy with a whole header), else None (OSError when unreadable)."""
    with open(path, "rb") as f:
        header = read_header(f.read(HEADER_BYTES))
        return extent_problem(header, _reader(f), os.fstat(f.fileno()).st_size)


def _ranges(size, spec):
    if size < int(spec.get("full_below", 0)):
        return None                          # hash it whole
    edge = min(int(spec["edge"]), size)
    block = min(int(spec["block"]), size)
    out = [(0, edge), (size - edge, edge)]
    room = max(size - block, 0) + 1
    out += [(int(o) % room, block) for o in spec.get("offsets") or ()]
    return out


def digest(path, spec):
    """{"size", "sha256", "method": "full"|"sampled", "bytes_read", "header"}
    of the file at `path` under `spec` (OSError when unreadable)."""
    h = hashlib.sha256()
    read = 0
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(HEADER_BYTES)
        f.seek(0)
        ranges = _ranges(size, spec)
        h.update(struct.pack("<Q", size))
        if ranges is None:
            while True:
                chunk = f.read(READ_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                read += len(chunk)
        else:
            for off, n in ranges:
                f.seek(off)
                chunk = f.read(n)
                h.update(struct.pack("<QQ", off, len(chunk)))
                h.update(chunk)
                read += len(chunk)
    return {"size": size, "sha256": h.hexdigest(),
            "method": "full" if ranges is None else "sampled", "bytes_read": read,
            "header": read_header(head)}


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path):
    """Make a rename in `path` durable (the entry, not only the data)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
