"""The errors a user sees as one line (never a traceback)."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, else its type's name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class UserError(Exception):
    """Bad input: inventory, flags, templates.  Exit status 2, nothing changed."""
    exit_code = 2


class InventoryError(UserError):
    """`file: host NAME: key must be ..., got ...`"""

    def __init__(self, source, host, key, problem):
        where = f"{source}: host {host}: " if host else f"{source}: "
        super().__init__(f"{where}{key} {problem}" if key else f"{where}{problem}")
        self.source, self.host, self.key = source, host, key


class SessionError(Exception):
    """A host could not be reached or its agent failed; its row says why."""


class AgentError(Exception):
    """The agent answered ok=false (a refusal with a one-line reason)."""
