"""`python -m orchestrator <task>`: the plotfleet console script without installing."""
from orchestrator.main import main

main()
