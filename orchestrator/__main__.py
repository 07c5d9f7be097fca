"""`python -m orchestrator <task>`: the plotfleet console script without installing."""
from .cli import main

main()
