"""The detached proof check of one plot: `python -m agent check SPEC_JSON`.

A plot copied byte for byte is still worthless if it was bad from the
start (GPU plotters make such plots: bladebit #403, #418).  So before a plot
is archived its plotter asks the prover itself for proofs:

- v1 plots (chiapos' header, bladebit's v2 header): chiapos' DiskProver,
  `challenges` challenges derived from the plot id (the same plot gets the
  same challenges, a re-check fresh ones); every quality found is fetched as
  a full proof and validated with chiapos' Verifier.  Any exception of the
  prover fails the plot, in the prover's own words ("Invalid size for
  deltas: 47187").  A ratio of valid proofs per challenge below `min_ratio`
  is checked once more with fresh challenges, and fails the plot only if
  the second round is as poor: good plots vary (a few percent of fresh k18
  plots give under 0.7), `chia plots check` itself fails only 0 proofs.
- plots chiapos cannot read (Gigahorse's format, or no chiapos here):
  `command`, a template such as `bladebit_cuda check -n {n} {path}`, whose
  summary line is read (bladebit's "N / M (x%) valid proofs found", chia's
  "Proofs N / M"); without one, or when it cannot run or says nothing
  readable, the plot is "not checked" with the reason, never blocked.

The record, ~/.plotfleet/checks/<key>.json, goes running -> passed | failed
| not_checked, with the ratio, the prover's error, the seconds taken and the
bytes read (the process's rchar: what a check costs next to a full read).
The record also counts the read calls, what a check costs on a disk that
seeks.  It runs at nice 19 and idle I/O priority: a check never slows the plotting
or the copies around it.
"""
import hashlib
import json
import os
import re
import resource
import shlex
import struct
import subprocess
import sys
import time

from ..facts import checks, plotfile
from .. import statefile
from ..vocab import compression

COMMAND_TIMEOUT_S = 3600.0
# summaries of the check tools a farmer may name in check_command
_SUMMARIES = (
    # bladebit's `check` (src/commands/CmdPlotCheck.cpp):
    #   "%llu / %llu (%.2lf%%) valid proofs found."
    re.compile(r"(\d+)\s*/\s*(\d+)\s*\([\d.]+%\)\s*valid proofs found"),
    # `chia plots check` (chia/plotting/check_plots.py): "Proofs 27 / 30, 0.9"
    re.compile(r"Proofs\s+(\d+)\s*/\s*(\d+)"),
)


def challenges(plot_id, round_, n):
    """`n` challenges from the plot id; each round a fresh set."""
    return [hashlib.sha256(b"plotfleet check" + plot_id + struct.pack(">II", round_, i)).digest()
            for i in range(n)]


def cpu_seconds():
    """CPU time this process used so far (at nice 19 its wall time says more
    about the host's load than about the check)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def io_counts():
    """(bytes read, read calls) of this process so far: /proc/self/io's
    rchar (page cache hits included) and syscr; (0, 0) where there is none."""
    got = {}
    try:
        with open("/proc/self/io") as f:
            for line in f:
                key, _, value = line.partition(":")
                got[key] = int(value)
    except (OSError, ValueError):
        pass
    return got.get("rchar", 0), got.get("syscr", 0)


class ProverError(Exception):
    """The prover raised: the plot fails, in the prover's own words."""


def prove_v1(path, round_, n):
    """Valid full proofs found over `n` challenges of `round_` (ProverError
    when the prover raises)."""
    from chiapos import DiskProver, Verifier
    try:
        prover = DiskProver(str(path))
        verifier = Verifier()
        plot_id, k = prover.get_id(), prover.get_size()
        found = 0
        for ch in challenges(plot_id, round_, n):
            for i, quality in enumerate(prover.get_qualities_for_challenge(ch)):
                proof = prover.get_full_proof(ch, i)
                if verifier.validate_proof(plot_id, k, ch, proof) == quality:
                    found += 1
    except Exception as e:          # the prover's own words, whatever it raises
        raise ProverError(_words(e))
    return found


def prove_v2(path, round_, n, n_full):
    """Qualities found over `n` challenges of `round_` in a PoS2 plot (or
    group), the first `n_full` of them solved into full proofs and validated
    (each costs seconds of CPU at k28: a sample, not all).  ProverError when
    the prover raises or a full proof does not validate."""
    import chia_rs
    try:
        prover = chia_rs.Prover(str(path))
        k, strength = prover.size(), prover.get_strength()
        group, meta = prover.plot_group_id(), prover.get_meta_group()
        found, full = 0, 0
        for i, ch in enumerate(challenges(bytes(group), round_, n)):
            chains = prover.get_qualities_for_challenge(ch)
            found += len(chains)
            for c in chains[:max(0, n_full - full)]:
                proof = chia_rs.solve_proof(c.chain, prover.plot_id_for_index(c.plot_index),
                                            strength, k)
                quality = chia_rs.validate_proof_v2(group, c.plot_index, k, strength, meta, ch,
                                                    proof)
                if quality is None or bytes(quality) != bytes(c.chain.get_string(strength)):
                    raise ProverError("the full proof of challenge %d does not validate" % i)
                full += 1
    except ProverError:
        raise
    except Exception as e:          # the prover's own words, whatever it raises
        raise ProverError(_words(e))
    return found


def _words(e):
    text = str(e).strip().splitlines()
    return text[0] if text and text[0] else type(e).__name__


def parse_summary(text):
    """(proofs, challenges) from a check tool's output: its last summary line."""
    found = None
    for line in (text or "").splitlines():
        for rx in _SUMMARIES:
            m = rx.search(line)
            if m:
                found = (int(m.group(1)), int(m.group(2)))
    return found


def command_argv(template, path, n):
    """The check tool's argv: the template split like a shell would, then
    {n} and {path} filled in each word (the path stays one word)."""
    return [w.replace("{n}", str(n)).replace("{path}", path) for w in shlex.split(template)]


class NotChecked(Exception):
    """The plot could not be checked: why (it is archived as before)."""


def run_command(template, path, n):
    """(proofs, challenges) from the farmer's check tool, or NotChecked."""
    try:
        argv = command_argv(template, path, n)
    except ValueError as e:
        raise NotChecked("check_command %r: %s" % (template, e))
    if not argv:
        raise NotChecked("check_command is empty")
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        raise NotChecked("check_command: %s: not found" % argv[0])
    except subprocess.TimeoutExpired:
        raise NotChecked("check_command: %s gave no answer in %ds" % (argv[0], COMMAND_TIMEOUT_S))
    except OSError as e:
        raise NotChecked("check_command: %s: %s" % (argv[0], e.strerror or e))
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        last = [line.strip() for line in out.splitlines() if line.strip()]
        raise NotChecked("check_command: %s exited %d%s" % (
            argv[0], proc.returncode, (": " + last[-1][:200]) if last else ""))
    summary = parse_summary(out)
    if summary is None or summary[1] <= 0:
        raise NotChecked("check_command: no summary in %s's output (expected 'N / M ... valid "
                         "proofs found' or 'Proofs N / M')" % argv[0])
    return summary


def method_for(path, have):
    """(the prover that checks this plot: "chiapos" | "chia_rs", None), or
    (None, why no prover here can); `have(module)` says which are installed.
    A `.plot` whose header no format here reads is chiapos' to judge unless
    its name says it is Gigahorse's (a torn v1 header fails in chiapos' words,
    "Invalid plot header magic"); OSError when the file cannot be read."""
    with open(path, "rb") as f:
        header = plotfile.read_header(f.read(plotfile.HEADER_BYTES))
    name = os.path.basename(path)
    v1_name = name.endswith(".plot") and compression.from_name(name)[1] != compression.GIGAHORSE
    if header["format"] in ("v1", "bladebit") or (header["format"] is None and v1_name):
        if have("chiapos"):
            return "chiapos", None
        return None, "chiapos is not installed on this host"
    if header["format"] == "pos2":
        if have("chia_rs"):
            return "chia_rs", None
        return None, "chia_rs (>= 0.53, with its PoS2 Prover) is not installed on this host"
    return None, "chiapos cannot read this plot's format"


def plots_in_file(path):
    """How many plots the file holds (a PoS2 group: its header's group size)."""
    try:
        with open(path, "rb") as f:
            return int(plotfile.read_header(f.read(plotfile.HEADER_BYTES)).get("group_size") or 1)
    except (OSError, TypeError, ValueError):
        return 1


def level_of(path):
    """(k, compression level, its format) from the plot's header, else its name."""
    try:
        with open(path, "rb") as f:
            h = plotfile.read_header(f.read(plotfile.HEADER_BYTES))
    except OSError:
        h = {"k": None, "compress": None, "compress_format": None}
    if h.get("compress") is None:
        level, fmt = compression.from_name(os.path.basename(path))
        return h.get("k"), level, fmt
    return h.get("k"), h["compress"], h["compress_format"]


def _have(module):
    """Whether this host's Python has the prover `module` (chia_rs: with PoS2's Prover)."""
    try:
        m = __import__(module)
    except ImportError:
        return False
    return module != "chia_rs" or hasattr(m, "Prover")


def decide(rounds, min_ratio):
    """(status, ratio) of the last round's (proofs, challenges): a round
    below min_ratio is followed by one more, so a plot fails only when two
    sets of challenges found it that poor."""
    proofs, n = rounds[-1]
    ratio = proofs / float(n) if n else 0.0
    return ("passed" if ratio >= min_ratio else "failed"), ratio


def check(spec, path):
    """The check's result fields (status, method, ratio, error, rounds)."""
    n = int(spec.get("challenges") or 30)
    min_ratio = float(spec.get("min_ratio") if spec.get("min_ratio") is not None else 0.3)
    command = spec.get("command")
    try:
        method, why = method_for(path, _have)
    except OSError as e:        # the prover could not open it either
        return {"status": "failed", "method": None, "error": "cannot read: %s"
                % (e.strerror or e)}
    if method is None and not command:
        return {"status": "not_checked", "method": None, "error": why}
    if method == "chiapos":
        prove = lambda r: prove_v1(path, r, n)     # noqa: E731
    elif method == "chia_rs":
        n_full = int(spec.get("challenges_v2") if spec.get("challenges_v2") is not None else 4)
        per = plots_in_file(path)       # a group answers for each of its plots
        prove = lambda r: (prove_v2(path, r, n, n_full), n * per)   # noqa: E731
    else:
        prove = lambda r: run_command(command, path, n)     # noqa: E731
    rounds = []
    try:
        for r in range(2):
            got = prove(r)
            rounds.append(got if isinstance(got, tuple) else (got, n))
            status, ratio = decide(rounds, min_ratio)
            if status == "passed":
                break
    except ProverError as e:
        return {"status": "failed", "method": method or "command", "error": str(e),
                "rounds": rounds}
    except NotChecked as e:
        return {"status": "not_checked", "method": "command", "error": str(e),
                "rounds": rounds}
    status, ratio = decide(rounds, min_ratio)
    out = {"status": status, "method": method or "command", "ratio": round(ratio, 4),
           "proofs": rounds[-1][0], "challenges": rounds[-1][1], "rounds": rounds,
           "error": None}
    if status == "failed":
        out["error"] = "%d valid proofs in %d challenges (ratio %.2f, min %.2f), twice" % (
            rounds[-1][0], rounds[-1][1], ratio, min_ratio)
    return out


def low_priority():
    """nice 19 and the idle I/O class: the check takes what nothing else wants."""
    try:
        os.nice(19 - os.nice(0))
    except OSError:
        pass
    try:
        import psutil
        psutil.Process().ionice(psutil.IOPRIO_CLASS_IDLE)
    except Exception:       # no ionice on this platform: nice alone
        pass


def write_record(path, **fields):
    """The check record of the plot at `path` (its size and mtime now, so
    a file made again under that name is not taken for this one)."""
    try:
        st = os.stat(path)
        rec = {"plot": path, "size_bytes": st.st_size, "mtime": st.st_mtime}
    except OSError:
        rec = {"plot": path}
    rec.update(fields)
    state_file = checks.record_path(path)
    os.makedirs(os.path.dirname(state_file), exist_ok=True)
    statefile.write(state_file, rec)


def run(spec_json):
    """Check each of spec["plots"] in turn (one drive's plots at a time for
    `plotfleet check`; one new plot on a plotter)."""
    spec = json.loads(spec_json)
    low_priority()
    for path in spec["plots"]:
        base = dict(pid=os.getpid(), started_at=time.time(),
                    attempts=(spec.get("attempts") or {}).get(path, 1))
        write_record(path, status="running", **base)
        before, t0, cpu0 = io_counts(), time.monotonic(), cpu_seconds()
        try:
            result = check(spec, path)
        except Exception as e:      # a bug here must not leave "running" forever
            result = {"status": "not_checked", "method": None,
                      "error": "check crashed: %s: %s" % (type(e).__name__, _words(e))}
        after = io_counts()
        if result["status"] == "passed":
            try:
                checks.note_passed(path, os.stat(path).st_mtime)
            except OSError:
                pass
        cost = dict(seconds=round(time.monotonic() - t0, 3), bytes_read=after[0] - before[0],
                    reads=after[1] - before[1], cpu_seconds=round(cpu_seconds() - cpu0, 3),
                    finished_at=time.time())
        write_record(path, **dict(base, **dict(cost, **result)))
        k, level, fmt = level_of(path)
        try:
            checks.add_history(dict(cost, plot=path, k=k, compress=level, compress_format=fmt,
                                    **{x: result.get(x) for x in ("status", "method", "ratio",
                                                                  "error")}))
        except OSError:
            pass
    try:                            # no longer at work (a dead runner's is dropped anyway)
        os.remove(os.path.join(checks.runners_dir(), "%d.json" % os.getpid()))
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
