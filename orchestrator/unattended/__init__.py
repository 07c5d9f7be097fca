"""What a pass leaves behind for a farmer who is not watching: its events in
the application log (applog.py) and alerts where the farmer is (notify.py,
from core/alerts.py's conditions).  Both observe the loop's PassResult
(plotloop.Loop); neither touches a host."""
from __future__ import annotations

import os
from typing import Mapping


class Unattended:
    """The application log and the notifier, as one observer of the loop.
    Neither may ever stop plotting: both swallow their own failures (the log
    records a failed send).  Under --check nothing is recorded and nothing
    is sent."""

    def __init__(self, controller, check: bool = False, hosts: Mapping = None):
        from orchestrator.unattended.applog import AppLog
        from orchestrator.unattended.notify import Notifier
        self.check = check
        self.controller = controller
        self.hosts = hosts or {}
        self.log = AppLog(controller)
        self.notifier = Notifier(controller.notify,
                                 state_path=os.path.join(controller.state_dir, "alerts.json"),
                                 log=lambda line: self.log.note("notify_failed", line,
                                                                failed=True))

    def after(self, result, hosts: Mapping = None) -> None:
        """Record one pass (core/result.PassResult) and send what it changed."""
        if self.check:
            return
        self.log.record(result)
        self.notifier.after_pass(result, self.hosts if hosts is None else hosts, self.controller)

    __call__ = after

    def close(self) -> None:
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
