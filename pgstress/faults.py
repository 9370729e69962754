"""Turning an exception into a result status and a one-line, password-free message."""

from __future__ import annotations

from dataclasses import dataclass

from pgstress.config import scrub
from pgstress.payloads import VerifyError

OK = "OK"
DB_LIMIT = "DB_LIMIT"
TIMEOUT = "TIMEOUT"
CONNECTION_LOST = "CONNECTION_LOST"
CLIENT_MEMORY = "CLIENT_MEMORY"
VERIFY_FAILED = "VERIFY_FAILED"
ERROR = "ERROR"
STATUSES = (OK, DB_LIMIT, TIMEOUT, CONNECTION_LOST, CLIENT_MEMORY, VERIFY_FAILED, ERROR)

_LIMIT_MESSAGES = (
    "invalid memory alloc request size",
    "exceeds the maximum",
    "cannot enlarge string buffer",
    "out of memory",
)
_CONNECTION_MESSAGES = (
    "server closed the connection",
    "connection is closed",
    "connection was closed",
    "connection has been closed",
    "terminating connection",
    "the connection is lost",
    "consuming input failed",
    "connection reset",
    "broken pipe",
)
_CONNECTION_EXCEPTIONS = {
    "ConnectionDoesNotExistError",
    "InterfaceError",
    "ConnectionResetError",
    "BrokenPipeError",
    "ConnectionRefusedError",
}


class ClientMemoryGuard(Exception):
    """A level was not run because its estimated client memory would pass the limit."""


@dataclass(frozen=True)
class Fault:
    status: str
    message: str


def sqlstate_of(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) and state else None


def classify(exc: BaseException, *secrets: str | None) -> Fault:
    """The spec's failure class of an exception from either driver, and its message."""
    state = sqlstate_of(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()
    suffix = f" [SQLSTATE {state}]" if state else ""
    message = scrub(f"{type(exc).__name__}: {text}{suffix}", *secrets)

    if isinstance(exc, MemoryError | ClientMemoryGuard):
        status = CLIENT_MEMORY
    elif isinstance(exc, VerifyError):
        status = VERIFY_FAILED
    elif state == "57014" or "statement timeout" in lowered:
        status = TIMEOUT
    elif state is not None and (state.startswith("54") or (state == "XX000" and _is_limit(lowered))):
        status = DB_LIMIT
    elif _is_connection_state(state) or _is_connection_loss(exc, lowered):
        status = CONNECTION_LOST
    elif state is None and _is_limit(lowered):
        status = DB_LIMIT
    else:
        status = ERROR
    return Fault(status, message)


def _is_connection_state(state: str | None) -> bool:
    return state is not None and (state.startswith("08") or state in {"57P01", "57P02", "57P03"})


def _is_limit(lowered: str) -> bool:
    return any(marker in lowered for marker in _LIMIT_MESSAGES)


def _is_connection_loss(exc: BaseException, lowered: str) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _CONNECTION_EXCEPTIONS:
        return True
    if "OperationalError" in names and sqlstate_of(exc) is None:
        return True
    return any(marker in lowered for marker in _CONNECTION_MESSAGES)
