"""The server goes away: stopped in the middle of an insert, restarted between iterations, or not
there at all when the run starts."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg
import pytest
from helpers import (
    ASYNC,
    TINY_RAMP,
    PrivateServer,
    RampMode,
    add_insert_trigger,
    assert_report_breaking,
    create_pgstress_table,
    read_csv,
    wait_until,
)

from pgstress.db import asyncpg_adapter
from pgstress.run.async_mode import AsyncDriver


def _sleeping_insert(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'").fetchone()
    return bool(found and found[0])


@pytest.mark.parametrize("shutdown", ["fast", "immediate"])
def test_server_stopped_mid_insert(private_server: PrivateServer, ramp_mode: RampMode, run_cli, tmp_path: Path,
                                   shutdown: str) -> None:
    """Iteration 2's inserts are inside the server (held by a trigger) when pg_ctl stops the server."""
    with psycopg.connect(private_server.dsn, autocommit=True) as conn:
        create_pgstress_table(conn, "stress_records", "bson")
        hold_iteration_2 = "IF NEW.epochs = 2000 THEN PERFORM pg_sleep(120); END IF; RETURN NEW;"
        add_insert_trigger(conn, "stress_records", hold_iteration_2)

    def stop_when_the_insert_is_inside() -> None:
        wait_until(lambda: _sleeping_insert(private_server.dsn), "iteration 2's insert to reach the server")
        private_server.stop(shutdown)

    stopper = threading.Thread(target=stop_when_the_insert_is_inside)
    stopper.start()
    try:
        result = run_cli(*ramp_mode.argv(), "--dsn", private_server.dsn, "--payload-format", "bson",
                         "--start-epochs", "1000", "--end-epochs", "5000", "--step-epochs", "1000",
                         "--memory-trace", "off")
    finally:
        stopper.join(timeout=120)

    assert result.code == 0, result.err
    assert not private_server.running()
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "CONNECTION_LOST", "CONNECTION_LOST", "CONNECTION_LOST"]
    ramp_mode.assert_intact_ok(rows[0])
    lost = rows[1]
    ramp_mode.assert_failed(lost, "CONNECTION_LOST", ramp_mode.concurrency)  # every record of the level was held
    ramp_mode.assert_nothing_written(lost)
    assert float(lost[ramp_mode.size_column]) > float(rows[0][ramp_mode.size_column])  # the size that was being sent
    # after the stop every reconnect fails, refused or turned away by a server still shutting down
    # (async: before any record of the level is sent)
    for row in rows[2:]:
        cause = ramp_mode.assert_failed(row, "CONNECTION_LOST", None).lower()
        gone = ("connection", "cannot reach the server", "the database system is shutting down [sqlstate 57p03]")
        assert any(reason in cause for reason in gone), cause
    report = assert_report_breaking(tmp_path / "report.md", 2, 2000, "CONNECTION_LOST", lost["error"][:40])
    assert "stopped after 3 consecutive failed iterations" in report
    assert "breaking point: iteration 2" in result.out


def test_server_restarted_between_iterations(private_server: PrivateServer, ramp_mode: RampMode, hooks, run_cli,
                                             tmp_path: Path) -> None:
    """After a restart between iterations 1 and 2 the run reconnects and every iteration succeeds
    (async: each of the pool's C dead connections is replaced before the level's timed batch)."""
    pids: list[int | None] = []

    def restart(row) -> None:
        pids.append(private_server.postmaster_pid())
        private_server.restart()
        pids.append(private_server.postmaster_pid())

    hooks.after[1] = restart
    result = run_cli(*ramp_mode.argv(), "--dsn", private_server.dsn, *TINY_RAMP)

    assert result.code == 0, result.err
    assert pids[0] is not None and pids[1] is not None and pids[0] != pids[1], "the server was not restarted"
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [int(row["iter"]) for row in rows] == [1, 2, 3]
    for row in rows:
        ramp_mode.assert_intact_ok(row)
    assert "- **Breaking point:** none reached" in (tmp_path / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("dsn", [
    "host=127.0.0.1 port=1 dbname=bench user=bench password=Refused-Pw-7731 connect_timeout=5",
    "postgresql://bench:Refused-Pw-7731@127.0.0.1:1/bench?connect_timeout=5",
], ids=["key=value", "URL"])
@pytest.mark.parametrize("via", ["--dsn", "PG_DSN"])
def test_connection_refused_at_start(ramp_mode: RampMode, run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     via: str, dsn: str) -> None:
    """Nothing listens on 127.0.0.1:1: one line naming host and port, no password, no traceback, exit 1."""
    argv = [*ramp_mode.argv(), *TINY_RAMP]
    if via == "--dsn":
        argv += ["--dsn", dsn]
    else:
        monkeypatch.setenv("PG_DSN", dsn)
    result = run_cli(*argv)

    assert result.code == 1
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("pgstress: cannot connect to 127.0.0.1:1 (database bench, from " + via + ")")
    assert "Connection refused" in lines[0]
    assert "Refused-Pw-7731" not in result.err
    assert "Traceback" not in result.err
    assert list(tmp_path.iterdir()) == []  # no CSV, no report


def test_pool_connections_ended_by_an_administrator(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Async only: level 2's records are written, then an administrator ends every pool connection
    (pg_terminate_backend) before they are read back. The reads are CONNECTION_LOST (asyncpg says
    "connection was closed in the middle of operation" on one and "cannot switch to state" on another),
    and level 3 runs on fresh connections: OK."""
    name = f"pgstress-test-{os.getpid()}"  # this test's pool only, on a server other runs may share
    monkeypatch.setattr(asyncpg_adapter, "APPLICATION_NAME", name)
    read = AsyncDriver.read

    def end_the_pool_then_read(driver: AsyncDriver, written: list) -> list:
        if written and written[0].stream[0] == 2:
            db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [name])
            wait_until(lambda: db.execute("SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = %s",
                                          [name]).fetchone()[0], "the pool's sessions to end")
        return read(driver, written)

    monkeypatch.setattr(AsyncDriver, "read", end_the_pool_then_read)
    result = run_cli(*ASYNC.argv(), "--dsn", server_dsn, "--table", table_name, *TINY_RAMP)

    assert result.code == 0, result.err
    rows = read_csv(ASYNC.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "CONNECTION_LOST", "OK"]
    ASYNC.assert_failed(rows[1], "CONNECTION_LOST", failed=ASYNC.concurrency)
    assert (rows[1]["writes_ok"], rows[1]["reads_ok"]) == (str(ASYNC.concurrency), "0")
    ASYNC.assert_intact_ok(rows[2])
