"""`python -m agent serve | snapshot --config JSON | plot-chiapos ... | plot-pos2 ... |
transfer SPEC | check SPEC`"""
import json
import sys

USAGE = ("usage: python -m agent serve | snapshot --config JSON | plot-chiapos ... | "
         "plot-pos2 ... | transfer SPEC | check SPEC")


def main(argv):
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "serve":
        from .serve import serve
        return serve()
    if cmd == "snapshot":
        from .facts.snapshot import Agent
        try:
            config = json.loads(rest[rest.index("--config") + 1]) if "--config" in rest else {}
        except (ValueError, IndexError) as e:
            print("snapshot: bad --config: %s" % e, file=sys.stderr)
            return 2
        print(json.dumps(Agent().snapshot(config)))
        return 0
    if cmd == "plot-chiapos":
        from .launch.chiapos import main as plot
        return plot(rest)
    if cmd == "check":
        from .launch.check import run as check
        if len(rest) != 1:
            print("check: needs one JSON spec", file=sys.stderr)
            return 2
        return check(rest[0])
    if cmd == "plot-pos2":
        from .launch.pos2 import main as plot
        return plot(rest)
    if cmd == "transfer":
        from .launch.transfer import run
        if len(rest) != 1:
            print("transfer: needs one JSON spec", file=sys.stderr)
            return 2
        return run(rest[0])
    print(USAGE, file=sys.stderr)
    return 2


sys.exit(main(sys.argv[1:]))
