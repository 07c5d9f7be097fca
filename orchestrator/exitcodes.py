"""Every exit status plotfleet gives, in one place (README "Exit codes"
lists the same table; tests/test_cli_manners.py pins both)."""

OK = 0
FAILED = 1          # an action failed on a host, a `--plots N` run can make no
                    # further progress, a service/notify step failed, the reader of
                    # stdout left (broken pipe), or the farmer said no
USAGE = 2           # bad inventory, flag or task: one line on stderr, nothing changed
UNREACHABLE = 4     # a host could not be reached (as Ansible); the others are shown
INTERRUPTED = 130   # Ctrl-C (128 + SIGINT): jobs and transfers keep running on the hosts

TABLE = (
    (OK, "done"),
    (FAILED, "an action failed, a `--plots N` run cannot go on, or stdout's reader left"),
    (USAGE, "bad inventory, flag or task: one line on stderr, nothing changed"),
    (UNREACHABLE, "a host could not be reached; the others are shown as usual"),
    (INTERRUPTED, "interrupted (Ctrl-C); what was started keeps running on the hosts"),
)
