"""How a copy is compared with its source: the digest spec the controller
draws for each check (agent/facts/plotfile.py computes it on both hosts).

Offsets are drawn afresh, from the OS's randomness, for every check, so no
copy can be made (or torn) to pass by matching fixed places.  Files under
FULL_BELOW are hashed whole: cheap at that size, and exact.  Above it, a
check reads 2 x EDGE + BLOCKS x BLOCK per side: 6 MiB for any plot, which
is about 0.03 s of sequential reading on a 250 MB/s drive, plus one seek
per block (about 0.5 s on a spinning disk for 64 blocks).
"""
import random

EDGE = 1 << 20              # the first and the last MiB: where a cut copy shows
BLOCK = 64 << 10
BLOCKS = 64
FULL_BELOW = 64 << 20

_random = random.SystemRandom()


def spec(blocks: int = BLOCKS) -> dict:
    return {"edge": EDGE, "block": BLOCK, "full_below": FULL_BELOW,
            "offsets": [_random.getrandbits(62) for _ in range(blocks)]}


def expect(source: dict, spec: dict) -> dict:
    """What a copy must show: the source's digest under the same spec."""
    return {"size": source["size"], "sha256": source["sha256"], "method": source["method"],
            "spec": spec}
