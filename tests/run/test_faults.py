"""classify(): the status class of any failure, and with the value's size, which limit a failure is and
by how much the value passed it.

Pure logic on the drivers' own exception classes and messages (as bench/real_limits.py sees them); the real
server refusing is in faults/test_statement_faults.py (jsonb, imitated) and bench/real_limits.py (both real).
"""

from __future__ import annotations

import psycopg
import psycopg.errors
import pytest

from pgstress.rows import CONNECTION_LOST, DB_LIMIT, ERROR
from pgstress.run.faults import MAX_ALLOC, classify
from pgstress.workload.payloads import VerifyError

JSONB_MESSAGE = "total size of jsonb array elements exceeds the maximum of 268435455 bytes"
DROPPED = "consuming input failed: server closed the connection unexpectedly This probably means the server" \
          " terminated abnormally before or while processing the request."


class ConnectionDoesNotExistError(Exception):
    """asyncpg's class of that name, as it reaches classify (matched by name, SQLSTATE 08003)."""

    sqlstate = "08003"


class FakeDriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (FakeDriverError("total size of jsonb array elements exceeds the maximum of 268435455 bytes", "54000"),
         "DB_LIMIT"),
        (FakeDriverError("invalid memory alloc request size 1073741824", "XX000"), "DB_LIMIT"),
        (FakeDriverError("some internal error", "XX000"), "ERROR"),
        (FakeDriverError("canceling statement due to statement timeout", "57014"), "TIMEOUT"),
        (FakeDriverError("terminating connection due to administrator command", "57P01"), "CONNECTION_LOST"),
        (FakeDriverError("server closed the connection unexpectedly", None), "CONNECTION_LOST"),
        (FakeDriverError("new row violates check constraint", "23514"), "ERROR"),
        (MemoryError(), "CLIENT_MEMORY"),
        (VerifyError("content hash differs"), "VERIFY_FAILED"),
        (ValueError("boom"), "ERROR"),
    ],
)
def test_classify(exc: BaseException, status: str) -> None:
    fault = classify(exc)
    assert fault.status == status
    assert "\n" not in fault.message
    if getattr(exc, "sqlstate", None):
        assert f"SQLSTATE {exc.sqlstate}" in fault.message  # type: ignore[attr-defined]


def test_jsonb_limit_names_the_limit_and_the_excess() -> None:
    fault = classify(psycopg.errors.ProgramLimitExceeded(JSONB_MESSAGE), value_size=300_000_000)
    assert fault.status == DB_LIMIT
    assert fault.message.startswith("jsonb limit: a document's array elements may total at most 268,435,455 bytes")
    assert "this value was 300,000,000 bytes of JSON text, about 345,210,000 bytes as jsonb" in fault.message
    assert "76,774,545 bytes (28.6%) over it" in fault.message
    assert fault.message.endswith(f"ProgramLimitExceeded: {JSONB_MESSAGE} [SQLSTATE 54000]")


def test_jsonb_limit_without_a_size_still_names_the_limit() -> None:
    fault = classify(psycopg.errors.ProgramLimitExceeded(JSONB_MESSAGE))
    assert fault.status == DB_LIMIT
    assert fault.message.startswith(
        "jsonb limit: a document's array elements may total at most 268,435,455 bytes (256.00 MiB); ProgramLimit"
    )


def test_dropped_connection_with_a_value_past_1_gib_is_the_message_limit() -> None:
    fault = classify(psycopg.OperationalError(DROPPED), value_size=MAX_ALLOC + 77)
    assert fault.status == DB_LIMIT
    assert fault.message.startswith("1 GiB message limit: the server drops the connection")
    assert "this value alone was 1,073,741,900 bytes (1,024.00 MiB), 77 bytes (0.0%) over it" in fault.message
    assert "OperationalError: consuming input failed" in fault.message


def test_dropped_connection_just_under_1_gib_is_still_the_message_limit() -> None:
    """Values from ~1,073,741,785 bytes already drop the connection (the message has other fields too)."""
    fault = classify(psycopg.OperationalError(DROPPED), value_size=1_073_741_790)
    assert fault.status == DB_LIMIT
    assert "33 bytes (0.0%) under it" in fault.message


def test_asyncpg_style_loss_past_1_gib_is_the_message_limit() -> None:
    fault = classify(ConnectionDoesNotExistError("connection was closed in the middle of operation"),
                     value_size=MAX_ALLOC + 1000)
    assert fault.status == DB_LIMIT


def test_dropped_connection_with_a_small_value_is_a_lost_connection() -> None:
    fault = classify(psycopg.OperationalError(DROPPED), value_size=50_000_000)
    assert fault.status == CONNECTION_LOST
    assert fault.message.startswith("OperationalError: consuming input failed")


def test_invalid_alloc_request_names_the_request() -> None:
    error = psycopg.errors.InternalError_("invalid memory alloc request size 1073741828")
    fault = classify(error, value_size=1_073_741_800)
    assert fault.status == DB_LIMIT
    assert fault.message.startswith(
        "1 GiB allocation limit (MaxAllocSize 1,073,741,823 bytes): the server asked for 1,073,741,828 bytes,"
        " 5 bytes (0.0%) over it, for a value of size 1,073,741,800 bytes"
    )
    assert fault.message.endswith("[SQLSTATE XX000]")


def test_string_buffer_limit() -> None:
    error = psycopg.errors.ProgramLimitExceeded(
        "out of memory DETAIL: Cannot enlarge string buffer containing 1073741800 bytes by 100 more bytes."
    )
    fault = classify(error, value_size=1_073_741_900)
    assert fault.status == DB_LIMIT
    assert fault.message.startswith("1 GiB string buffer limit (MaxAllocSize 1,073,741,823 bytes): the value was")


def test_unrelated_errors_are_not_blamed_on_the_size() -> None:
    fault = classify(psycopg.errors.UndefinedTable('relation "x" does not exist'), value_size=MAX_ALLOC + 1)
    assert fault.status == ERROR


def test_a_silent_memory_error_says_what_happened() -> None:
    fault = classify(MemoryError())
    assert fault.message == "MemoryError: the client could not allocate memory"


def test_passwords_are_scrubbed_from_a_diagnosis() -> None:
    error = psycopg.errors.ProgramLimitExceeded(JSONB_MESSAGE + " for user with password=hunter2-secret")
    fault = classify(error, "hunter2-secret", value_size=300_000_000)
    assert "hunter2-secret" not in fault.message
