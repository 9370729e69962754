"""Turning an exception into a result status and a one-line, password-free message."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pgstress.redaction import scrub
from pgstress.rows import CLIENT_MEMORY, CONNECTION_LOST, DB_LIMIT, ERROR, TIMEOUT, VERIFY_FAILED, Status
from pgstress.workload.payloads import VerifyError

# PostgreSQL's limits on one value, in bytes (jsonb's own, 268,435,455, is read from its error message).
MAX_ALLOC = 1_073_741_823  # MaxAllocSize (1 GiB - 1): one allocation, one field, one protocol message
# A value this close to MaxAllocSize leaves no room for the rest of its protocol message (the largest
# bytea insertable as a psycopg parameter was 1,073,741,763 bytes); the server then drops the connection.
MESSAGE_HEADROOM = 4096
# jsonb's binary form of the spec's epochs is this many times their JSON text (measured on PostgreSQL 15
# and 18: pg_column_size(text::jsonb) / octet_length(text) = 1.1507 at 1k, 20k and 100k epochs).
JSONB_BYTES_PER_TEXT_BYTE = 1.1507

_JSONB_MAXIMUM = re.compile(r"jsonb .*exceeds the maximum of (\d+) bytes")
_ALLOC_REQUEST = re.compile(r"invalid memory alloc request size (\d+)")

_LIMIT_MESSAGES = (
    "invalid memory alloc request size",
    "exceeds the maximum",
    "cannot enlarge string buffer",
)
# libpq's own messages when the client cannot allocate (no SQLSTATE: they never reached the server): e.g.
# "out of memory for query result", "cannot allocate memory for input buffer". The server's out-of-memory
# error carries SQLSTATE 53200 and is not one of these.
_CLIENT_ALLOCATION_MESSAGES = ("out of memory", "cannot allocate memory")
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
    # asyncpg, on a pooled connection whose server session was ended (an administrator's
    # pg_terminate_backend) while it sat idle: its protocol is stuck in the error state
    "cannot switch to state",
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
    status: Status
    message: str


def sqlstate_of(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) and state else None


def classify(exc: BaseException, *secrets: str | None, value_size: int | None = None) -> Fault:
    """The spec's failure class of an exception from either driver, and its message.

    `value_size` is the encoded value's size in bytes when it is known: a failure that coincides
    with one of PostgreSQL's size limits is then DB_LIMIT, and the message says which limit and
    by how much the value passed it.
    """
    state = sqlstate_of(exc)
    text = " ".join(str(exc).split()) or _silent_exception_text(exc)
    lowered = text.lower()
    suffix = f" [SQLSTATE {state}]" if state else ""
    message = scrub(f"{type(exc).__name__}: {text}{suffix}", *secrets)

    diagnosis = diagnose_size_limit(exc, lowered, value_size)
    if diagnosis is not None:
        return Fault(DB_LIMIT, scrub(f"{diagnosis}; {message}", *secrets))
    if isinstance(exc, MemoryError | ClientMemoryGuard) or (state is None and _is_client_allocation(lowered)):
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


def _silent_exception_text(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "the client could not allocate memory"
    return "(no message)"


def _is_connection_state(state: str | None) -> bool:
    return state is not None and (state.startswith("08") or state in {"57P01", "57P02", "57P03"})


def _is_client_allocation(lowered: str) -> bool:
    return any(marker in lowered for marker in _CLIENT_ALLOCATION_MESSAGES)


def _is_limit(lowered: str) -> bool:
    return any(marker in lowered for marker in _LIMIT_MESSAGES)


def _is_connection_loss(exc: BaseException, lowered: str) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _CONNECTION_EXCEPTIONS:
        return True
    if "OperationalError" in names and sqlstate_of(exc) is None:
        return True
    return any(marker in lowered for marker in _CONNECTION_MESSAGES)


def _mib(n_bytes: float) -> str:
    return f"{n_bytes / 1048576:,.2f} MiB"


def _over(value: float, limit: int) -> str:
    excess = value - limit
    word = "over" if excess > 0 else "under"
    return f"{abs(excess):,.0f} bytes ({abs(excess) / limit:.1%}) {word} it"


def diagnose_size_limit(exc: BaseException, lowered: str, value_size: int | None) -> str | None:
    """Which of PostgreSQL's size limits this failure is, and by how much the value passed it.

    None when the failure is not a size limit, or is one only an unknown size could explain.
    """
    state = sqlstate_of(exc)
    size = f"{value_size:,} bytes ({_mib(value_size)})" if value_size is not None else "unknown"
    if (found := _JSONB_MAXIMUM.search(lowered)) is not None:
        limit = int(found.group(1))
        text = f"jsonb limit: a document's array elements may total at most {limit:,} bytes ({_mib(limit)})"
        if value_size is None:
            return text
        estimate = value_size * JSONB_BYTES_PER_TEXT_BYTE
        return (
            f"{text}; this value was {value_size:,} bytes of JSON text, about {estimate:,.0f} bytes as jsonb"
            f" ({JSONB_BYTES_PER_TEXT_BYTE}x the text), {_over(estimate, limit)}"
        )
    if (found := _ALLOC_REQUEST.search(lowered)) is not None:
        requested = int(found.group(1))
        return (
            f"1 GiB allocation limit (MaxAllocSize {MAX_ALLOC:,} bytes): the server asked for {requested:,} bytes,"
            f" {_over(requested, MAX_ALLOC)}, for a value of size {size}"
        )
    if "cannot enlarge string buffer" in lowered:
        text = f"1 GiB string buffer limit (MaxAllocSize {MAX_ALLOC:,} bytes)"
        return f"{text}: the value was {size}, {_over(value_size, MAX_ALLOC)}" if value_size is not None else text
    if value_size is None:
        return None
    lost = _is_connection_state(state) or (state is None and _is_connection_loss(exc, lowered))
    if lost and value_size >= MAX_ALLOC - MESSAGE_HEADROOM:
        return (
            f"1 GiB message limit: the server drops the connection (no SQLSTATE) when one protocol message passes"
            f" MaxAllocSize ({MAX_ALLOC:,} bytes); this value alone was {size}, {_over(value_size, MAX_ALLOC)}"
        )
    if state is not None and state.startswith("54"):
        return f"program limit exceeded for a value of size {size}"
    return None
