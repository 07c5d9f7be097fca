"""The errors a user sees as one line (never a traceback)."""
from orchestrator import exitcodes


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, else its type's name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class UserError(Exception):
    """Bad input: inventory, flags, templates.  Exit status 2, nothing changed."""
    exit_code = exitcodes.USAGE


class InventoryError(UserError):
    """`file: host NAME: key must be ..., got ...`"""

    def __init__(self, source, host, key, problem):
        where = f"{source}: host {host}: " if host else f"{source}: "
        super().__init__(f"{where}{key} {problem}" if key else f"{where}{problem}")
        self.source, self.host, self.key = source, host, key


class SessionError(Exception):
    """A host could not be reached or its agent failed; its row says why."""


class LostReply(SessionError):
    """A request went out and no answer came back (timeout, channel lost): it
    may or may not have been carried out.  Asking again with the same
    request_id finds out without doing it twice."""


class AgentError(Exception):
    """The agent answered ok=false: a one-line reason and a code saying what
    kind of refusal it is (refused, bad_request, unknown_op, deadline_expired,
    internal), so no caller matches on the message."""

    def __init__(self, message: str, code: str = "refused"):
        super().__init__(message)
        self.code = code
