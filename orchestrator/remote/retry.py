"""The one retry policy: bounded attempts, exponential backoff with jitter.

Only errors that a second try can cure are retried (refused or reset TCP,
timeouts, a banner cut short by a busy sshd).  A wrong key, a refused host key
or a host key mismatch fails at once: retrying those only delays the message.
"""
from __future__ import annotations

import socket

import paramiko
from tenacity import (retry_if_exception, stop_after_attempt, stop_after_delay,
                      wait_exponential_jitter, Retrying)

from orchestrator.errors import BastionFailed, HostKeyRefused

# never worth a second try
_FINAL = (paramiko.AuthenticationException, paramiko.BadHostKeyException,
          paramiko.PasswordRequiredException)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, BastionFailed):
        return exc.transient
    if isinstance(exc, (HostKeyRefused,) + _FINAL):
        return False
    return isinstance(exc, (OSError, EOFError, socket.timeout, paramiko.SSHException))


def retrying(attempts: int = 3, max_total_s: float = 30.0,
             initial_s: float = 0.2, max_wait_s: float = 2.0) -> Retrying:
    """`for attempt in retrying(): with attempt: connect()` — the last error is re-raised."""
    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_total_s),
        wait=wait_exponential_jitter(multiplier=initial_s, max=max_wait_s, jitter=initial_s),
        reraise=True,
    )


def call(fn, *args, attempts: int = 3, max_total_s: float = 30.0, **kwargs):
    """fn(*args, **kwargs) under the policy."""
    return retrying(attempts, max_total_s)(fn, *args, **kwargs)
