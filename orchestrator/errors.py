"""The errors a user sees as one line (never a traceback)."""
from agent.vocab import wire
from agent.vocab.wire import ErrorCode
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
    """A host could not be reached or its agent failed; its row says why.
    Callers tell the kinds apart by type, never by the message."""


class HostKeyRefused(SessionError):
    """The host's key is not in known_hosts and host_key_checking is on."""


class BastionFailed(SessionError):
    """A ProxyJump hop failed; the message names it.  `transient` as the
    hop's own error was (a refused bastion key or login is final)."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class LostReply(SessionError):
    """A request went out and no answer came back (timeout, channel lost): it
    may or may not have been carried out.  Asking again with the same
    request_id finds out without doing it twice."""


class AgentExited(LostReply):
    """The agent's process ended (or never started) before it answered its
    hello: its deployed files may be broken, not the link.  (One that ends
    later leaves a plain LostReply: that request may have been carried out.)"""


class BadReply(LostReply):
    """The agent answered something that is not the declared reply (not
    JSON, not a response object, another request's id, a reply lacking a
    field of agent/vocab/wire.py's dataclass)."""


class AgentError(Exception):
    """The agent answered ok=false: a one-line reason and a code
    (agent/vocab/wire.py's ErrorCode) saying what kind of refusal it is, so
    no caller matches on the message."""

    def __init__(self, message: str, code=ErrorCode.REFUSED):
        super().__init__(message)
        self.code = wire.code(code)
