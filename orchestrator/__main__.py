"""`python -m orchestrator <task>`: the plotfleet console script without installing."""
from orchestrator.serve.instant import main

main()
