"""Real PoS2 plots, made by plotfleet's own pos2 launcher through chia_rs
(PyPI, >= 0.53): `python -m agent plot-pos2`, about a second at k=18."""
import os
import subprocess
import sys
from pathlib import Path

from tests.cli import REPO


def make_v2(dst, k=18, strength=2, tmp=None, count=1):
    """Run the launcher; returns (new .plot2 paths, its log text)."""
    dst = Path(dst)
    tmp = Path(tmp or dst)
    before = set(os.listdir(dst))
    r = subprocess.run([sys.executable, "-m", "agent", "plot-pos2", "-k", str(k),
                        "-s", str(strength), "-t", str(tmp), "-d", str(dst), "-n", str(count)],
                       capture_output=True, text=True, cwd=REPO, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stdout + r.stderr
    made = sorted(dst / n for n in set(os.listdir(dst)) - before if n.endswith(".plot2"))
    return made, r.stdout + r.stderr


class V2Cache:
    """k=18 v2 plots made once per session; .get(n) -> n distinct paths."""

    def __init__(self, base):
        self.base = Path(base)
        self.made = []

    def get(self, n):
        while len(self.made) < n:
            got, _ = make_v2(self.base, count=n - len(self.made))
            self.made += got
        return self.made[:n]
