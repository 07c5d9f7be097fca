"""Why an rsync failed, and whose fault it is, from what it printed.

rsync's own last words are generic ("rsync error: some files/attrs were not
transferred (see previous errors) (code 23) at main.c(1338)"), and its exit
code says little more.  The line that helps a farmer is the specific one
before it, e.g. `rsync: [receiver] open "/farm3/x.plot.plotfleet-tmp"
failed: Read-only file system (30)`.  That line also tells whose problem it
is, which decides whether a harvester drive is set aside:

  drive     the receiving side could not write the target (a [receiver] or
            [generator] line with an errno, or, from rsync < 3.2 which tags
            no side, an errno line naming the target dir).  fatal when the
            errno is out of space, read-only, permission denied or quota.
  plotter   the plotter's own side: its key refused, a host key it does not
            know, its source unreadable, an option its rsync lacks.
  network   the harvester could not be reached or the connection dropped.
  unknown   anything else; never counted against a drive.
"""
import re

# errno numbers as rsync prints them (Linux): ENOSPC, EROFS, EACCES, EDQUOT
FATAL_ERRNOS = {28, 30, 13, 122}
ERRNO_LINE = re.compile(r"^rsync(?:: | error: )(?:\[(\w+)\] )?(.*\((\d+)\))\s*$")
PLOTTER_SSH = ("Permission denied (publickey", "Host key verification failed",
               "Too many authentication failures", "Load key", "no such identity",
               "REMOTE HOST IDENTIFICATION HAS CHANGED")
NETWORK = ("Connection refused", "Connection timed out", "No route to host",
           "Could not resolve hostname", "Connection reset", "Connection closed by",
           "Broken pipe", "connection unexpectedly closed", "Network is unreachable",
           "timed out", "error in rsync protocol data stream")


BEGUN = "plotfleet-begun "      # the runner's --out-format: a batch's file, as it begins
PROGRESS = re.compile(r"^[\d,]+\s+\d+%")     # --info=progress2's lines


# rsync's messages go to stderr while its progress (no newline after the
# last \r-update) goes to stdout: in one log they share a line
_GLUED = re.compile(r"(?=rsync(?: error| warning)?: )")


def _lines(text):
    out = []
    for raw in _GLUED.sub("\n", text.replace("\r", "\n")).split("\n"):
        line = raw.strip()
        if line:
            out.append(line)
    return out


def classify(text, exit_code, to_dir=""):
    """{"error": the most specific line, "fault": drive|plotter|network|unknown,
    "fatal": bool} of one failed rsync's output."""
    lines = _lines(text)
    target = (to_dir or "").rstrip("/") + "/"
    closing = next((l for l in reversed(lines) if l.startswith("rsync error:")), None)
    for line in lines:
        if line.startswith("rsync error:"):
            continue
        m = ERRNO_LINE.match(line)
        if not m:
            continue
        side, errno = (m.group(1) or "").lower() or None, int(m.group(3))
        if "unknown option" in line:
            return {"error": line, "fault": "plotter", "fatal": False}
        if side in ("receiver", "generator") or (side is None and to_dir and target in line):
            return {"error": line, "fault": "drive", "fatal": errno in FATAL_ERRNOS}
        if side == "sender":
            return {"error": line, "fault": "plotter", "fatal": False}
    for line in lines:
        if "unknown option" in line or "syntax or usage error" in line:
            return {"error": line, "fault": "plotter", "fatal": False}
        if any(s in line for s in PLOTTER_SSH):
            return {"error": line, "fault": "plotter", "fatal": False}
    for line in lines:
        if any(s in line for s in NETWORK):
            return {"error": line, "fault": "network", "fatal": False}
    if exit_code == 255:
        return {"error": closing or lines[-1] if lines else "ssh failed (exit code 255)",
                "fault": "network", "fatal": False}
    if exit_code < 0:           # killed (subprocess's -N): its last words are progress
        return {"error": "rsync killed by signal %d" % -exit_code, "fault": "unknown",
                "fatal": False}
    said = [l for l in lines if not PROGRESS.match(l) and not l.startswith(BEGUN)]
    return {"error": closing or (said[-1] if said else "rsync exit code %d" % exit_code),
            "fault": "unknown", "fatal": False}
