"""Plot formats: one spec each, the single place that reads a format's header.

A spec says what a plot of that format is called (`suffix`), how its header
starts (`magic`), what the header holds (`read`: the first bytes -> a dict),
how many plots one file holds (`plots`), and how long the file says it is
(`extent(header, read_at, size)`: the declared length, or (least, most or
None) where a format's writer may end it a little short or pad it; 0 while its writer is
not done, None when the file cannot hold what its header declares; the spec's
`extent` is None for a format whose length is not known here).  A file whose
format has no readable header still gets every digest check.

Headers (checked against the file name: a file that calls itself another
plot is not that plot):
  v1 (chiapos, `chia plots create`, madmax): "Proof of Space Plot" (19 bytes),
     plot id (32), k (1), format description length (2, big-endian) + text,
     memo length (2) + memo.  Uncompressed (level 0).
  bladebit (compressed plots; bladebit's PlotWriter::BeginPlotInternal):
     "PLOT" (4: the uint32 0x544F4C50 little-endian), version (4,
     little-endian, 2), plot id (32), k (1), memo length (2, big-endian) +
     memo, flags (4, little-endian; bit 0: compressed), compression level
     (1, only when compressed), table pointers ...
  gigahorse: its own, not read here.
  pos2 (`*.plot2`) and pos2 groups (`*.gplot`), as chia_rs 0.53 writes them
     (chia-pos2's PlotGroupFile, FORMAT_VERSION 2; the Header struct is packed):
       0  magic "PoS2" (4; "pos2" in older writers: any case is accepted)
       4  version (1)
       5  plot group id (32; not the name's plot id, which derives from it)
      37  k (1)
      38  strength (1)
      39  group size (2, little-endian): the plots the file holds
      41  meta group (1)
      42  chunk index offset (8, little-endian): written last (0 while the
          plotter still writes), where the chunk index starts
      50  memo length (1) + memo, then the chunks
     The chunk index, at the end of the file, holds the size of each of the
     2^(k-6) chunks, Rice-coded (gsz_encode).  The file's extent is the index
     offset plus the bits those sizes take, rounded up to bytes; and the
     sizes add up to the index offset minus where the chunks start.
  drplot (DrPlotter): not read here; counted, never touched.
"""
import struct
from collections import namedtuple

from . import compression, names

HEADER_BYTES = 512      # enough for every header's fixed part and memo

PlotFormat = namedtuple("PlotFormat", "name suffix magic read plots extent")


def _unknown():
    return {"format": None, "plot_id": None, "k": None, "version": None,
            "compress": None, "compress_format": None}


def _read_v1(data):
    if len(data) < 52:
        return None
    return {"format": "v1", "plot_id": data[19:51].hex(), "k": data[51], "version": 1,
            "compress": 0, "compress_format": None}


def _read_bladebit(data):
    if len(data) < 41:
        return None
    version = struct.unpack("<I", data[4:8])[0]
    level = None
    if len(data) >= 43:
        memo_end = 43 + struct.unpack(">H", data[41:43])[0]
        if len(data) >= memo_end + 4:
            flags = struct.unpack("<I", data[memo_end:memo_end + 4])[0]
            if not flags & 1:
                level = 0
            elif len(data) > memo_end + 4:
                level = data[memo_end + 4]
    lvl, fmt = compression.from_level(level, compression.BLADEBIT)
    return {"format": "v2", "plot_id": data[8:40].hex(), "k": data[40],
            "version": version, "compress": None if level is None else lvl,
            "compress_format": fmt}


POS2_FIXED = 51


def _read_pos2(data):
    if len(data) < POS2_FIXED:
        return None
    group_size, meta_group, index_at, memo_len = struct.unpack("<HBQB", data[39:51])
    return {"format": "pos2", "plot_id": data[5:37].hex(), "k": data[37], "version": data[4],
            "strength": data[38], "group_size": group_size, "meta_group": meta_group,
            "chunk_index_offset": index_at, "chunks_pos": POS2_FIXED + memo_len,
            "compress": data[38], "compress_format": compression.POS2}


# Rice coding of the chunk sizes (chia-pos2 ChunkCompressor.hpp gsz_*): each
# size is stored as its difference from (g * 60301) >> 8, g the group size:
# a sign bit, then r (rice bits), then the quotient in unary (ones ended by a
# zero), all least significant bit first.
def _isqrt(n):
    r = int(n ** 0.5)
    while r * r > n:
        r -= 1
    while (r + 1) * (r + 1) <= n:
        r += 1
    return r


def _round_log2(n):
    if n <= 1:
        return 0
    f = n.bit_length() - 1
    return f if n * n < (1 << (2 * f + 1)) else f + 1


def pos2_index_extent(header, index):
    """(bytes the chunk index takes, sum of chunk sizes) decoded from the
    index bytes, or None when they do not hold a whole index."""
    g, k = header["group_size"], header["k"]
    if g < 1 or not 18 <= k <= 40:
        return None
    rice = _round_log2(max(_isqrt(357 * g), 1))
    rmask = (1 << rice) - 1
    expected = (g * 60301) >> 8
    acc, have, used, at, total = 0, 0, 0, 0, 0      # bit window, its bits, bits consumed
    end = len(index)
    for _ in range(1 << (k - 6)):
        if have < 1 + rice:
            if at >= end and have < 1 + rice:
                return None
            acc |= int.from_bytes(index[at:at + 8], "little") << have
            have += 8 * len(index[at:at + 8])
            at += 8
            if have < 1 + rice:
                return None
        sign, r = acc & 1, (acc >> 1) & rmask
        acc >>= 1 + rice
        have -= 1 + rice
        used += 1 + rice
        q = 0
        while True:             # the quotient: ones up to a zero
            ones = (~acc & (acc + 1)).bit_length() - 1
            if ones < have:
                q += ones
                acc >>= ones + 1
                have -= ones + 1
                used += ones + 1
                break
            q += have
            used += have
            acc, have = 0, 0
            if at >= end or q > 64:
                return None
            acc = int.from_bytes(index[at:at + 8], "little")
            have = 8 * len(index[at:at + 8])
            at += 8
        mag = (q << rice) | r
        size = expected - mag if sign else expected + mag
        if size < 1:
            return None
        total += size
    return (used + 7) // 8, total


def _pos2_extent(header, read_at, size):
    """The length a finished PoS2 file declares; 0 when its header says it is
    still being written (the index offset is written last), None when its
    index cannot be read whole (a torn file)."""
    at = header["chunk_index_offset"]
    if at == 0:
        return 0
    if at <= header["chunks_pos"] or at >= size:
        return None
    # at most 16 bytes an entry (a real index takes about 1.3)
    got = pos2_index_extent(header, read_at(at, min(size - at, 16 << (header["k"] - 6))))
    if got is None or header["chunks_pos"] + got[1] != at:
        return None
    return at + got[0]


# -- v1 and bladebit: the length their header declares ---------------------

DECLARED_BYTES = 1024   # a v1 or bladebit header with its table pointers (and sizes)


def c3_park_bytes(k):
    """chiapos EntrySizes::CalculateC3Size: one C3 park (kCheckpoint1Interval
    = 10000 entries; 8 bits each below k 20, else kC3BitsPerEntry 2.4)."""
    return 10000 if k < 20 else 3000


def _v1_extent(header, read_at, size):
    """chiapos' phase4.hpp (madmax and bladebit's v1 write the same layout):
    after the memo, ten big-endian table pointers P1..P7, C1, C2, C3.  C1
    holds one byte-aligned k-bit entry per C3 park plus a 0 terminator, so
    the C3 table, which ends the file, is (C2 - C1) / entry - 1 parks.  The
    last park may be written short (no deltas left after the last C1
    entry): the least is that park's start plus its 2-byte length.  0 while
    the pointers are not written yet, None when they make no sense; else
    (least, None): no upper bound (bytes past the C3 table are never read)."""
    data = read_at(0, DECLARED_BYTES)
    try:
        k = data[51]
        at = 54 + struct.unpack(">H", data[52:54])[0]
        at += 2 + struct.unpack(">H", data[at:at + 2])[0]
        ptrs = struct.unpack(">10Q", data[at:at + 80])
    except (struct.error, IndexError):
        return None
    if not ptrs[9]:
        return 0
    entry = (k + 7) // 8
    parks = (ptrs[8] - ptrs[7]) // entry - 1
    if list(ptrs) != sorted(ptrs) or ptrs[0] < at + 80 or parks < 1:
        return None
    return ptrs[9] + (parks - 1) * c3_park_bytes(k) + 2, None


def _bladebit_extent(header, read_at, size):
    """bladebit's PlotWriter (CmdEndPlot): ten big-endian table pointers, then
    ten little-endian table sizes, after flags and level; the file ends with
    its furthest table (written in whole blocks: bytes past it are padding,
    no upper bound).  0 while the sizes are not written yet."""
    data = read_at(0, DECLARED_BYTES)
    try:
        at = 43 + struct.unpack(">H", data[41:43])[0]
        flags = struct.unpack("<I", data[at:at + 4])[0]
        at += 4 + (1 if flags & 1 else 0)
        ptrs = struct.unpack(">10Q", data[at:at + 80])
        sizes = struct.unpack("<10Q", data[at + 80:at + 160])
    except (struct.error, IndexError):
        return None
    if not any(sizes):
        return 0
    return max(p + n for p, n in zip(ptrs, sizes)), None


FORMATS = {f.name: f for f in (
    PlotFormat("v1", ".plot", b"Proof of Space Plot", _read_v1, lambda h: 1, _v1_extent),
    PlotFormat("bladebit", ".plot", b"PLOT", _read_bladebit, lambda h: 1, _bladebit_extent),
    PlotFormat("gigahorse", ".plot", None, None, lambda h: 1, None),
    PlotFormat("pos2", ".plot2", b"pos2", _read_pos2, lambda h: h["group_size"], _pos2_extent),
    PlotFormat("pos2_group", ".gplot", b"pos2", _read_pos2, lambda h: h["group_size"],
               _pos2_extent),
    PlotFormat("drplot", ".drplot", None, None, lambda h: 1, None),
)}


def read_header(data):
    """{"format", "plot_id", "k", "version", "compress", "compress_format", ...}
    from a file's first bytes; "format" None when no format here reads it
    (and "compress" None when the header is cut before the level)."""
    for f in FORMATS.values():
        if not (f.magic and f.read):
            continue
        head = data[:len(f.magic)]
        if head == f.magic or (f.name.startswith("pos2") and head.lower() == f.magic):
            got = f.read(data)
            if got is not None:
                return got
    return _unknown()


# read_header's "format" -> its spec
_BY_HEADER = {"v1": "v1", "v2": "bladebit", "pos2": "pos2"}


def extent_problem(header, read_at, size):
    """One line when a file of `size` bytes is not as long as its header
    declares (a torn or unfinished file under a plot's name), else None (also
    None for a format whose extent is not read here)."""
    spec = FORMATS.get(_BY_HEADER.get(header["format"]))
    if spec is None or spec.extent is None:
        return None
    declared = spec.extent(header, read_at, size)
    if declared == 0:
        return "unfinished: its header does not yet say where it ends (its writer never finished it)"
    if declared is None:
        return "torn: %d bytes cannot hold what its header declares" % size
    least, most = declared if isinstance(declared, tuple) else (declared, declared)
    if size < least:
        return "short: %d bytes, its header declares %s%d" % (
            size, "" if least == most else "at least ", least)
    if most is not None and size > most:
        return "%d bytes, its header declares %d" % (size, most)
    return None


def header_problem(path, header):
    """One line when the header contradicts the file name, else None (also
    None for a format not read here).  A PoS2 header holds its group's id,
    which the name's plot id only derives from: there only k is compared."""
    if header["format"] is None:
        return None
    p = names.parse(path)
    if p is None:
        return None
    if header["format"] == "pos2":
        if p.format not in ("pos2", "pos2_group"):
            return "a PoS2 header under a %s name" % (p.suffix,)
        if header["k"] != p.k:
            return "header says k%s, name says k%d" % (header["k"], p.k)
        return None
    if p.format != "v1":
        return "a %s header under a %s name" % (header["format"], p.suffix)
    if header["plot_id"] != p.plot_id or header["k"] != p.k:
        return "header says k%s id %s, name says k%d id %s" % (
            header["k"], header["plot_id"][:16], p.k, p.plot_id[:16])
    return None
