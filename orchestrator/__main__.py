"""`python -m orchestrator <task>`: the plotfleet console script without installing."""
from orchestrator.cli import main

main()
