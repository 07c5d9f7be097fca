"""Read a host's plotman.yaml for `plotfleet import-plotman` (read only).

The one op that reads a file outside the configured dirs, so it is narrow:
only a regular file named *.yaml or *.yml (and so named where a
symlink leads), at most MAX_BYTES, returned as
text; nothing is written.  Without a path it reads plotman's own default,
appdirs.user_config_dir("plotman") + "/plotman.yaml": $XDG_CONFIG_HOME (or
~/.config)/plotman on Linux, ~/Library/Application Support/plotman on macOS.
"""
import os
import sys
from typing import Optional

from .common import ActionError
from ..protocol import op
from ..vocab import wire
from ..vocab.wire import ErrorCode

MAX_BYTES = 1 << 20


def default_path():
    if sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(base, "plotman", "plotman.yaml")


@op(wire.PlotmanConfigReply)
def read_plotman_config(agent, path: Optional[str] = None):
    """A plotman.yaml (default: plotman's own path), read only; see above."""
    path = os.path.expanduser(path) if path else default_path()
    # the name rule holds for what a symlink points at too: a plotman.yaml
    # linked to /etc/shadow is not read
    real = os.path.realpath(path)
    for name in (path, real):
        if not name.endswith((".yaml", ".yml")):
            raise ActionError("%s is not a .yaml file" % name if name == path else
                              "%s links to %s, not a .yaml file" % (path, real), code=ErrorCode.BAD_REQUEST)
    try:
        st = os.stat(path)
    except OSError as e:
        raise ActionError("cannot read %s: %s" % (path, e.strerror), code=ErrorCode.MISSING)
    if not os.path.isfile(path):
        raise ActionError("%s is not a file" % path, code=ErrorCode.BAD_REQUEST)
    if st.st_size > MAX_BYTES:
        raise ActionError("%s is %d bytes, more than a config (%d)" % (
            path, st.st_size, MAX_BYTES), code=ErrorCode.REFUSED)
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_BYTES).decode("utf-8", "replace")
    except OSError as e:
        raise ActionError("cannot read %s: %s" % (path, e.strerror), code=ErrorCode.MISSING)
    return {"path": os.path.abspath(path), "text": text}
