"""`invoke <task>` from a checkout: the same collection as the `plotfleet` script."""
from orchestrator.cli import ns  # noqa: F401
