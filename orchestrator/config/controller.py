"""The controller's own settings: the inventory's controller-wide keys.

They configure the controller, not a host, so they are read from the
inventory's `all` vars only (set on a group or a host, any of them is an
inventory error).  inventory.py checks and types them by the key table
(orchestrator/core/keys.py, section "controller (all.vars only)") and
gives them as `Inventory.controller`; the defaults here are the table's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Tuple

from orchestrator.core.keys import KEYS


def default_app_log() -> str:
    return os.path.abspath(os.path.expanduser(KEYS["app_log"].default))


@dataclass(frozen=True)
class ControllerConfig:
    notify: Tuple[str, ...] = ()                    # apprise URLs
    app_log: Optional[str] = field(default_factory=default_app_log)  # absolute; None: off
    app_log_max_bytes: int = KEYS["app_log_max_bytes"].default
    app_log_backups: int = KEYS["app_log_backups"].default
    alert_host_down_m: float = KEYS["alert_host_down_m"].default
    alert_farm_free_plots: int = KEYS["alert_farm_free_plots"].default
    serve_token: Optional[str] = KEYS["serve_token"].default
    replot_deadline: Optional[str] = None           # YYYY-MM-DD

    @property
    def state_dir(self) -> str:
        """Where the controller keeps what must survive a restart: beside the
        application log (with the log off, the default log's dir)."""
        return os.path.dirname(self.app_log or default_app_log())
