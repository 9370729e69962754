"""What PostgreSQL paid, measured for real in both modes: WAL, relation sizes, the stored compression, the
server's own statement time, pg_stat_io, and what the report says where a server offers less."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import PG15_ENV, RampMode, read_csv, wait_until

from pgstress.db.server import embedded_server
from pgstress.db.server_measures import Counters, StatementTotals, statement_ms

ONE_BIG_RECORD = ["--payload-format", "bson", "--start-epochs", "100000", "--end-epochs", "100000",
                  "--memory-trace", "off"]  # fmt: skip
TINY = ["--payload-format", "bson", "--start-epochs", "3000", "--end-epochs", "6000", "--step-epochs", "3000",
        "--memory-trace", "off"]  # fmt: skip


def floats(row: dict[str, str], *names: str) -> list[float]:
    return [float(row[name]) for name in names]


def stored_mb(row: dict[str, str], ramp_mode: RampMode) -> float:
    """The level's stored payload: one record's pg_column_size, times the records written in async mode."""
    if ramp_mode.fans_out:
        return float(row["db_payload_per_record_mb"]) * int(row["writes_ok"])
    return float(row["db_payload_mb"])


def test_uncompressed_storage_cross_checks(embedded_dsn: str, table_name: str, ramp_mode: RampMode, run_cli,
                                          tmp_path: Path) -> None:
    """A 100k-epoch bson record stored EXTERNAL (never compressed): its WAL is the value plus little, the table's
    relations add up to pg_table_size, and the server's own time fits inside the client's."""
    result = run_cli(*ramp_mode.argv(), "--dsn", embedded_dsn, "--table", table_name, "--storage", "external",
                     *ONE_BIG_RECORD)
    assert result.code == 0, result.err
    (row,) = read_csv(ramp_mode.csv_path(tmp_path))
    ramp_mode.assert_intact_ok(row)
    assert (row["toast_compression"], row["storage"], row["stored_compression"]) == ("default", "external", "none")

    wal, heap, toast, insert_s, select_s = floats(row, "wal_mb", "heap_mb", "toast_mb", "insert_s", "select_s")
    assert 1.0 <= wal / stored_mb(row, ramp_mode) <= 1.3, (wal, stored_mb(row, ramp_mode))
    with psycopg.connect(embedded_dsn) as conn:
        (table_size,) = conn.execute("SELECT pg_table_size(%s)", [f'"{table_name}"']).fetchone()
        conn.execute(f'DROP TABLE "{table_name}"')
    assert heap + toast == pytest.approx(table_size / 1048576, rel=0.05)
    server_write_s, server_read_s = (ms / 1000 for ms in floats(row, "server_write_ms", "server_read_ms"))
    assert 0 < server_write_s <= insert_s
    assert 0 < server_read_s <= select_s
    # PostgreSQL 18 has pg_stat_io: the TOAST relation and its index were extended by what they now hold
    written, extended = floats(row, "io_written_mb", "io_extended_mb")
    assert extended == pytest.approx(heap + toast, rel=0.05) and written >= 0
    assert int(row["io_fsyncs"]) >= 0 and int(row["checkpoints"]) >= 0 and int(row["other_sessions"]) >= 0
    # the conclusion splits insert_s into the server's execution and the rest, from these very numbers
    summed = " summed over the level's records" if ramp_mode.fans_out else ""
    rest = insert_s - server_write_s
    conclusion = (tmp_path / "report.md").read_text().split("## Final conclusion")[1].split("## Complete")[0]
    assert (f"At 100,000 epochs, `insert_s` was {insert_s:,.3f} s{summed}, of which the server executed the INSERT for"
            f" {server_write_s:,.3f} s ({server_write_s / insert_s * 100:.0f} %); the other {rest:,.3f} s"
            f" ({rest / insert_s * 100:.0f} %) were the driver handing the value over") in conclusion


@pytest.fixture(scope="module")
def not_loaded_dsn() -> Iterator[str]:
    """A private server where pg_stat_statements is installed but not in shared_preload_libraries."""
    with embedded_server(settings={}) as info:
        with psycopg.connect(info.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        yield info.dsn


@pytest.fixture
def server_without_statements(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(DSN, why the server-time columns are empty) of a server that cannot give them."""
    if request.param == "pg15":
        if not os.environ.get(PG15_ENV):
            pytest.skip(f"{PG15_ENV} is not set")
        return os.environ[PG15_ENV], "pg_stat_statements is not installed in database"
    return request.getfixturevalue("not_loaded_dsn"), ("pg_stat_statements is installed in database postgres but"
                                                       " not loaded")


@pytest.mark.parametrize("server_without_statements", ["pg15", "not-loaded"], indirect=True)
def test_without_pg_stat_statements_the_server_time_is_empty_and_the_report_says_why(
        server_without_statements: tuple[str, str], table_name: str, ramp_mode: RampMode, run_cli,
        tmp_path: Path) -> None:
    dsn, why = server_without_statements
    try:
        result = run_cli(*ramp_mode.argv(), "--dsn", dsn, "--table", table_name, *TINY)
        assert result.code == 0, result.err
        rows = read_csv(ramp_mode.csv_path(tmp_path))
        for row in rows:
            ramp_mode.assert_intact_ok(row)
            assert row["server_write_ms"] == row["server_read_ms"] == ""
            assert float(row["wal_mb"]) > 0 and float(row["toast_mb"]) > 0 and row["stored_compression"] == "pglz"
        with psycopg.connect(dsn) as conn:
            version = int(conn.execute("SHOW server_version_num").fetchone()[0])
        report = (tmp_path / "report.md").read_text()
        section = report[report.index("### What PostgreSQL paid"):]
        assert f"- `server_write_ms`, `server_read_ms`: empty: {why}" in section
        if version < 160000:
            assert all(row["io_written_mb"] == row["io_extended_mb"] == row["io_fsyncs"] == "" for row in rows)
            assert (f"- `io_written_mb`, `io_extended_mb`, `io_fsyncs`: empty: PostgreSQL {version // 10000} has no"
                    " pg_stat_io (it came in 16).") in section
        assert "insert_s` was" not in report  # no split of the write time without the server's own time
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table_name}"')


def test_other_busy_sessions_are_seen_and_the_report_says_so(embedded_dsn: str, table_name: str, run_cli,
                                                            tmp_path: Path) -> None:
    busy = psycopg.connect(embedded_dsn, autocommit=True)

    def sleep() -> None:
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            busy.execute("SELECT pg_sleep(60)")

    sleeper = threading.Thread(target=sleep, daemon=True)
    sleeper.start()
    try:
        with psycopg.connect(embedded_dsn, autocommit=True) as probe:
            wait_until(lambda: probe.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                                             " AND query = 'SELECT pg_sleep(60)'").fetchone()[0],
                       "the busy session to start")
        result = run_cli("--dsn", embedded_dsn, "--table", table_name, *TINY)
        assert result.code == 0, result.err
    finally:
        busy.cancel_safe()
        sleeper.join(timeout=30)
        busy.execute(f'DROP TABLE IF EXISTS "{table_name}"')
        busy.close()
    rows = read_csv(tmp_path / "iteration_results.csv")
    assert [int(row["other_sessions"]) >= 1 for row in rows] == [True, True]
    report = (tmp_path / "report.md").read_text()
    assert "other sessions or autovacuum workers were busy at the start or the end of the write phase in 2 of 2" \
           " iterations" in report


def test_the_server_time_counts_only_statements_that_completed_in_the_window() -> None:
    def counters(*entries: tuple[str, int, int, float]) -> Counters:  # (kind, queryid, calls, total ms)
        return Counters(0, 0, 0, None, {(kind, queryid): StatementTotals(calls, ms)
                                        for kind, queryid, calls, ms in entries})

    before = counters(("write", 1, 5, 100.0), ("read", 2, 1, 7.0))
    assert statement_ms(before, counters(("write", 1, 6, 130.0), ("read", 2, 1, 7.0)), "write") == pytest.approx(30)
    assert statement_ms(before, counters(("write", 1, 5, 100.0), ("read", 2, 2, 9.0)), "write") is None
    assert statement_ms(before, counters(("write", 1, 5, 100.0), ("write", 3, 1, 4.0)), "write") == pytest.approx(4)
    assert statement_ms(before, counters(("write", 1, 2, 11.0)), "write") == pytest.approx(11)  # reset in between


def test_a_plain_role_gets_what_it_may_read_and_the_report_says_what_it_may_not(
        embedded_dsn: str, table_name: str, tmp_path: Path, run_cli) -> None:
    """Not a superuser, and barred from publishing its statistics early: its own statements' server time still
    counts, the I/O columns stay empty with the reason. (The other tests connect as a superuser, whom the
    revoked grant does not bind; it is given back at the end.)"""
    role = f"plain_{table_name}"
    with psycopg.connect(embedded_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
        admin.execute("REVOKE EXECUTE ON FUNCTION pg_stat_force_next_flush() FROM PUBLIC")
        try:
            dsn = embedded_dsn.replace("postgresql://postgres:@", f"postgresql://{role}:@")
            assert dsn != embedded_dsn
            result = run_cli("--dsn", dsn, "--table", table_name, *TINY)
        finally:
            admin.execute("GRANT EXECUTE ON FUNCTION pg_stat_force_next_flush() TO PUBLIC")
            admin.execute(f'DROP TABLE IF EXISTS "{table_name}"')
            admin.execute(f'REVOKE CREATE ON SCHEMA public FROM "{role}"')
            admin.execute(f'DROP ROLE "{role}"')
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "iteration_results.csv")
    for row in rows:
        assert 0 < float(row["server_write_ms"]) / 1000 <= float(row["insert_s"])
        assert row["io_written_mb"] == row["io_extended_mb"] == row["io_fsyncs"] == ""
        assert float(row["wal_mb"]) > 0
    report = (tmp_path / "report.md").read_text()
    assert "- `io_written_mb`, `io_extended_mb`, `io_fsyncs`: empty: this role may not call" \
           " pg_stat_force_next_flush()" in report
