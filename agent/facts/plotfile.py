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

Headers (checked against the file name: a file that calls itself another
plot is not that plot):
  v1 (chiapos, `chia plots create`, madmax): "Proof of Space Plot" (19 bytes),
     plot id (32), k (1), format description length (2, big-endian) + text,
     memo length (2) + memo
  v2 (bladebit, compressed plots; bladebit's PlotWriter::BeginPlotInternal):
     "PLOT" (4: the uint32 0x544F4C50 little-endian), version (4,
     little-endian, 2), plot id (32), k (1), memo length (2, big-endian) +
     memo, flags (4, little-endian; bit 0: compressed), compression level
     (1, only when compressed), table pointers ...
  A v1 plot is uncompressed (level 0).
Another format (Gigahorse's, say) skips the header check; digests still apply.
"""
import hashlib
import os
import struct

from . import compression
from .disks import PARTIAL_SUFFIX, parse_plot_name

V1_MAGIC = b"Proof of Space Plot"
V2_MAGIC = b"PLOT"
V2_COMPRESSED = 1
HEADER_BYTES = 256      # a v2 header up to its level: 44 + memo (at most 128) + 5
DECLARED_BYTES = 1024   # ... and on to its table pointers and sizes (v1: 80, v2: 160 more)
READ_CHUNK = 1 << 20


def read_header(data):
    """{"format", "plot_id", "k", "version", "compress", "compress_format"}
    from a file's first bytes; "format" None when the agent does not know it
    (and "compress" None when the header is cut before the level)."""
    if data[:len(V1_MAGIC)] == V1_MAGIC and len(data) >= 52:
        return {"format": "v1", "plot_id": data[19:51].hex(), "k": data[51], "version": 1,
                "compress": 0, "compress_format": None}
    if data[:4] == V2_MAGIC and len(data) >= 41:
        version = struct.unpack("<I", data[4:8])[0]
        level = None
        if len(data) >= 43:
            memo_end = 43 + struct.unpack(">H", data[41:43])[0]
            if len(data) >= memo_end + 4:
                flags = struct.unpack("<I", data[memo_end:memo_end + 4])[0]
                if not flags & V2_COMPRESSED:
                    level = 0
                elif len(data) > memo_end + 4:
                    level = data[memo_end + 4]
        lvl, fmt = compression.from_level(level, compression.BLADEBIT)
        return {"format": "v2", "plot_id": data[8:40].hex(), "k": data[40],
                "version": version, "compress": None if level is None else lvl,
                "compress_format": fmt}
    return {"format": None, "plot_id": None, "k": None, "version": None,
            "compress": None, "compress_format": None}


# -- what the file itself declares about its length (the v1 and bladebit
# specs move to agent/vocab/ with the other format knowledge) ------------------

C1_INTERVAL = 10000         # chiapos kCheckpoint1Interval: f7 entries per C1 entry / C3 park


def c3_park_bytes(k):
    """chiapos EntrySizes::CalculateC3Size: one C3 park."""
    return 10000 if k < 20 else 3000     # ByteAlign(8 * 10000) / 8; ByteAlign(2.4 * 10000) / 8


def declared_size(data):
    """(least bytes the file must hold, how that was read) from a plot's first
    bytes, or None when its format (or a cut header) says nothing.

    v1 (chiapos' phase4.hpp, also madmax and bladebit's v1): after the memo,
    ten big-endian table pointers P1..P7, C1, C2, C3; C1 holds one k-bit
    (byte-aligned) entry per C3 park plus a 0 terminator, so the C3 table is
    (C2 - C1) / entry - 1 parks of c3_park_bytes(k), and the file ends with
    it.  The last park may be written short (when no deltas are left), so
    the least is the start of that park plus its 2-byte length.
    v2 (bladebit's PlotWriter: ten big-endian pointers then ten
    little-endian table sizes after flags and level): the furthest table end.
    Pointers of a plot whose writer never finished are zero: None."""
    try:
        if data[:len(V1_MAGIC)] == V1_MAGIC:
            k = data[51]
            at = 54 + struct.unpack(">H", data[52:54])[0]
            at += 2 + struct.unpack(">H", data[at:at + 2])[0]
            ptrs = struct.unpack(">10Q", data[at:at + 80])
            if not all(ptrs) or list(ptrs) != sorted(ptrs):
                return None
            entry = (k + 7) // 8
            parks = (ptrs[8] - ptrs[7]) // entry - 1
            if parks < 1:
                return None
            least = ptrs[9] + (parks - 1) * c3_park_bytes(k) + 2
            return least, "its C3 table: %d parks from byte %d" % (parks, ptrs[9])
        if data[:4] == V2_MAGIC:
            at = 43 + struct.unpack(">H", data[41:43])[0]
            flags = struct.unpack("<I", data[at:at + 4])[0]
            at += 4 + (1 if flags & V2_COMPRESSED else 0)
            ptrs = struct.unpack(">10Q", data[at:at + 80])
            sizes = struct.unpack("<10Q", data[at + 80:at + 160])
            if not any(sizes):
                return None
            end, table = max((p + n, i) for i, (p, n) in enumerate(zip(ptrs, sizes)))
            return end, "its table %d ends at byte %d" % (table + 1, end)
    except (struct.error, IndexError):
        return None
    return None


def size_problem(size, data):
    """One line when a file of `size` bytes is shorter than its header
    declares (a cut copy, a torn write), else None.  Only the file's own
    declaration counts: room estimates never call a plot short."""
    declared = declared_size(data)
    if declared is None or size >= declared[0]:
        return None
    return "short: %d bytes, its header declares at least %d (%s)" % (
        size, declared[0], declared[1])


def header_problem(path, header):
    """One line when the header contradicts the file name, else None (also
    None for a format the agent does not know)."""
    if header["format"] is None:
        return None
    name = os.path.basename(path)
    if name.endswith(PARTIAL_SUFFIX):
        name = name[:-len(PARTIAL_SUFFIX)]
    k, plot_id = parse_plot_name(name)
    if plot_id is None:
        return None
    if header["plot_id"] != plot_id or header["k"] != k:
        return "header says k%s id %s, name says k%d id %s" % (
            header["k"], header["plot_id"][:16], k, plot_id[:16])
    return None


def check_header(path):
    """header_problem of the file at `path` (OSError when unreadable)."""
    return inspect(path)[0]


def inspect(path):
    """(header_problem or size_problem, (level, format)) of the file at
    `path`: the level its header tells, else its name's (OSError when
    unreadable)."""
    with open(path, "rb") as f:
        head = f.read(DECLARED_BYTES)
        size = os.fstat(f.fileno()).st_size
    header = read_header(head)
    if header["compress"] is not None:
        level = (header["compress"], header["compress_format"])
    else:
        level = compression.from_name(os.path.basename(path))
    return header_problem(path, header) or size_problem(size, head), level


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
        head = f.read(DECLARED_BYTES)
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
            "header": read_header(head), "size_problem": size_problem(size, head)}


def same(a, b):
    """Do two digests (one per host, same spec) show the same bytes?  When
    not, what differs, in words."""
    if a["size"] != b["size"]:
        return False, "size %d != %d" % (a["size"], b["size"])
    if a["sha256"] != b["sha256"]:
        return False, "content differs (%s digest, same size %d)" % (a["method"], a["size"])
    return True, None


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
