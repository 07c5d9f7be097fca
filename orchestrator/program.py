"""plotfleet's own command-line manners on invoke's parser.

invoke parses and runs the tasks (cli.py); this gives the program plotfleet's
face: `--help` lists the tasks by group (run, look, act, migrate) with the
common flags, and none of invoke's core options, which do nothing here
(`--pty`, `--dry`, `--echo`, ...; still parsed, never shown); a task's help
names its positionals as the usage line takes them and each value by what it
is (`--plots=N`, not `--plots=STRING`); a mistyped task or flag is one line
with the nearest ones (`did you mean status?`), exit 2; `--version` is
`plotfleet <version>` from the package's metadata.
"""
from __future__ import annotations

import difflib
import inspect
import os
import re
import sys
from typing import Dict, Iterable, List, Optional

from invoke import Exit, Program
from invoke.parser import ParseError

from orchestrator import exitcodes

# what each flag's value is, for help (invoke would say STRING for all)
METAVARS = {
    "inventory": "PATH", "limit": "PATTERN", "plots": "N", "serve": "HOST:PORT",
    "refresh": "SECONDS", "since": "AGE", "host": "HOST", "path": "PATH", "name": "NAME",
    "wheelhouse": "DIR", "logs": "DIR", "plot-id": "PLOT_ID", "plot_id": "PLOT_ID",
    "action": "ACTION",
}
_UNKNOWN = re.compile(r"No idea what '(.*)' is!")


def version() -> str:
    """The installed package's version; in a checkout not installed, its
    pyproject.toml's (the same metadata, before it is built)."""
    from importlib import metadata
    try:
        return metadata.version("plotfleet")
    except metadata.PackageNotFoundError:
        pass
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "pyproject.toml")
    try:
        with open(here, encoding="utf-8") as f:
            m = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M)
    except OSError:
        m = None
    return m.group(1) if m else "unknown"


def _doc_line(task) -> str:
    doc = inspect.getdoc(task.body) or ""
    return doc.splitlines()[0] if doc else ""


def suggest(word: str, choices: Iterable[str]) -> str:
    """` (did you mean status?)`, or "" when nothing is close."""
    near = difflib.get_close_matches(word, list(choices), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(near)}?)" if near else ""


class PlotfleetProgram(Program):
    def __init__(self, namespace, groups, common_help: Dict[str, str]):
        super().__init__(namespace=namespace, name="plotfleet", binary="plotfleet",
                         version=version())
        self.groups = groups
        self.common_help = common_help

    # -- argv ----------------------------------------------------------------
    def run(self, argv: Optional[List[str]] = None, exit: bool = True) -> None:
        super().run(self._help_first(list(argv if argv is not None else sys.argv)), exit)

    def _help_first(self, argv: List[str]) -> List[str]:
        """`plotfleet TASK --help` as `plotfleet --help TASK`: invoke would feed
        --help to a task's missing positional (kill, logs) and run the task."""
        args = argv[1:]
        if args and args[0] in self.namespace.task_names and ("--help" in args or "-h" in args):
            return [argv[0], "--help", args[0]]
        return argv

    # -- mistakes: one line, exit 2, the nearest names -----------------------
    def _mistake(self, e: ParseError):
        m = _UNKNOWN.search(str(e))
        hint = ""
        if m:
            word = m.group(1)
            if word.startswith("-"):
                ctx = getattr(e, "context", None)
                flags = [f for a in (ctx.args.values() if ctx is not None else ())
                         for f in a.names for f in (("--" if len(f) > 1 else "-") + f,)]
                hint = suggest(word, flags)
            else:
                hint = suggest(word, self.namespace.task_names)
            hint = hint or "; `plotfleet --help` lists the tasks"
        return Exit(f"plotfleet: {e}{hint}", code=exitcodes.USAGE)

    def parse_core(self, argv):
        try:
            super().parse_core(argv)
        except ParseError as e:
            raise self._mistake(e)

    def parse_tasks(self):
        try:
            super().parse_tasks()
        except ParseError as e:
            # a positional its task marks optional (import-plotman [FILE]),
            # left out at the end of the line: given as "" (invoke has no optional ones)
            ctx = getattr(e, "context", None)
            missing = ctx.missing_positional_args if ctx is not None else []
            if missing and all(getattr(a, "optional", False) for a in missing) \
                    and "" not in self.core.unparsed[-1:]:
                self.core.unparsed.append("")
                return self.parse_tasks()
            raise self._mistake(e)

    def parse_cleanup(self):
        try:
            super().parse_cleanup()
        except ParseError as e:
            raise self._mistake(e)

    # -- help ----------------------------------------------------------------
    def print_version(self) -> None:
        print(f"plotfleet {self.version}")

    def print_help(self) -> None:
        print("Usage: plotfleet TASK [--options]    (plotfleet TASK --help: its options)")
        width = max(len(t.name) for _, tasks in self.groups for t in tasks) + 2
        for group, tasks in self.groups:
            print(f"\n{group}:")
            for t in tasks:
                print(f"  {t.name:<{width}}{_doc_line(t)}")
        print("\ncommon flags:")
        flags = {"inventory": "-i PATH, --inventory=PATH", "limit": "-l PATTERN, --limit=PATTERN",
                 "json": "-j, --json", "check": "-c, --check"}
        for key, flag in flags.items():
            print(f"  {flag:<30}{self.common_help[key]}")
        print(f"  {'--strict':<30}keys plotfleet does not know in the inventory are an "
              "error, not a warning")
        print(f"  {'-h, --help [TASK]':<30}this help, or a task's")
        print(f"  {'-V, --version':<30}plotfleet's version")
        print("\nexit codes: " + "; ".join(f"{code} {what.split(':')[0].split(';')[0]}"
                                          for code, what in exitcodes.TABLE))

    def print_task_help(self, name: str) -> None:
        ctx = self.parser.contexts[name]
        task = self.collection[name]
        positional = [a for a in ctx.positional_args]
        # kill/suspend/resume: a plot id, or --all instead
        usage = " ".join(f"[{_metavar(a)}]" if "--all" in ctx.flags or getattr(a, "optional", 0)
                         else _metavar(a) for a in positional)
        print(f"Usage: plotfleet {name}{' ' + usage if usage else ''} [--options]\n")
        doc = inspect.getdoc(task.body) or ""
        for line in doc.splitlines():
            print(f"  {line}" if line.strip() else "")
        opts = [a for a in ctx.flags.values() if not a.positional]
        seen, rows = set(), []
        for a in sorted(opts, key=lambda a: a.name):
            if id(a) not in seen:
                seen.add(id(a))
                rows.append((_flag_text(a), a.help or ""))
        w = max([len(f) for f, _ in rows] + [len(_metavar(a)) for a in positional] + [20]) + 2
        if positional:
            print("\narguments:")
            for a in positional:
                print(f"  {_metavar(a):<{w}}{a.help or ''}")
        if rows:
            print("\noptions:")
            for flag, text in rows:
                print(f"  {flag:<{w}}{text}")


def _metavar(arg) -> str:
    return METAVARS.get(arg.name, arg.name.upper().replace("-", "_"))


def _flag_text(arg) -> str:
    """`-p N, --plots=N` (a flag with a value), `-o, --once` (a switch)."""
    names = sorted(arg.names, key=len)
    value = arg.kind is not bool
    out = []
    for n in names:
        if len(n) == 1:
            out.append(f"-{n} {_metavar(arg)}" if value else f"-{n}")
        else:
            out.append(f"--{n}={_metavar(arg)}" if value else f"--{n}")
    return ", ".join(out)
