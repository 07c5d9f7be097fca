"""The `plotfleet` entry point (and `python -m orchestrator`): the instant
answer of a running controller first (serve/instant.py, standard library
only, so `status` costs no fabric import), then the CLI (cli.py)."""
from __future__ import annotations

import sys


def main() -> None:
    from orchestrator.serve import instant
    code = instant.try_answer(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from orchestrator.cli import run
    run(sys.argv)


if __name__ == "__main__":
    main()
