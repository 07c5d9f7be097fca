"""Job logs read on request (logs, analyze)."""
import os
from typing import Optional

from ..facts.procs import held_open
from .common import ActionError, _log_dir, check_inside
from ..protocol import op
from ..vocab import wire


@op(wire.ReadLogReply)
def read_log(agent, config: wire.Config, path: str, offset: Optional[int] = 0,
             max_bytes: Optional[int] = 65536):
    """Up to max_bytes (at most 4 MiB) of a log of log_dir from `offset`."""
    p = check_inside(path, [_log_dir(config)])
    offset, max_bytes = max(0, int(offset or 0)), min(max(1, int(max_bytes or 65536)), 4 << 20)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(min(offset, size))
            data = f.read(max_bytes)
    except OSError as e:
        raise ActionError("cannot read %s: %s" % (p, e.strerror))
    return {"data": data.decode("utf-8", "replace"), "offset": min(offset, size) + len(data),
            "size": size}


@op(wire.ListLogsReply)
def list_logs(agent, config: wire.Config):
    """Every *.log of log_dir; `live` when a job still writes it (a job's
    log, or a file some process holds open)."""
    d = _log_dir(config)
    out = []
    live = {j["log_file"] for j in agent.all_jobs()[0] if j["log_file"]}
    held = held_open([d])
    try:
        for e in sorted(os.scandir(d), key=lambda e: e.name):
            if e.name.endswith(".log") and e.is_file():
                st = e.stat()
                path = os.path.join(d, e.name)
                out.append({"path": path, "size": st.st_size, "mtime": st.st_mtime,
                            "live": path in live or path in held})
    except OSError:
        pass
    return {"logs": out}
