"""Real failures in a fan-out level: some records rejected, the memory guard, bad input, Ctrl-C."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest
from cli_helpers import interrupt_after_two_rows
from cli_helpers import report_points as points

from pgstress.fanout_db import APPLICATION_NAME
from pgstress.results import read_rows
from pgstress.schema import TableSql, prepare_table

REPO = Path(__file__).resolve().parent.parent
ASYNC = ["--mode", "async"]


def reject_odd_ids(db: psycopg.Connection, table_name: str, condition: str) -> None:
    """Ids run 1..C in each level (TRUNCATE ... RESTART IDENTITY, and a rejected row still takes its id),
    so rejecting odd ids rejects exactly half of the C records of a level where `condition` holds."""
    prepare_table(db, TableSql(table_name, "BYTEA"), drop=False, truncate=False)
    db.execute(f'ALTER TABLE "{table_name}" ADD CONSTRAINT half CHECK (NOT ({condition}) OR id % 2 = 0)')


def test_some_records_rejected_are_counted_and_the_stop_rule_applies(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    reject_odd_ids(db, table_name, "epochs >= 2000")
    result = run_cli("--dsn", server_dsn, *ASYNC, "--async-concurrency", "8", "--table", table_name,
                     "--start-epochs", "1000", "--end-epochs", "5000", "--step-epochs", "1000",
                     "--max-consecutive-failures", "2")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "async_fanout_results.csv")
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
    assert ids == [2, 4, 6, 8]  # the last level's survivors, nothing else

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
    result = run_cli("--dsn", server_dsn, *ASYNC, "--async-concurrency", "4", "--table", table_name,
                     "--start-epochs", "1000", "--end-epochs", "4000", "--step-epochs", "1000")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "async_fanout_results.csv")
    assert [r["status"] for r in rows] == ["OK", "ERROR", "OK", "OK"]
    assert [(r["writes_ok"], r["reads_ok"]) for r in rows] == [("4", "4"), ("2", "2"), ("4", "4"), ("4", "4")]
    found = points((tmp_path / "report.md").read_text())
    assert found["Stability point"].startswith("iteration 1,")
    best = max((r for r in rows if r["status"] == "OK"), key=lambda r: float(r["write_eps"]))
    assert found["Optimal efficiency point"].startswith(f"iteration {best['iter']},")


def test_memory_guard_stops_the_ramp_before_a_level_too_big(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    result = run_cli("--dsn", server_dsn, *ASYNC, "--async-concurrency", "4", "--table", table_name,
                     "--start-epochs", "1000", "--end-epochs", "4000", "--step-epochs", "1000",
                     "--max-client-memory-mb", "1")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "async_fanout_results.csv")
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
    result = run_cli("--dsn", server_dsn, *ASYNC, "--async-concurrency", "4", "--table", table_name,
                     "--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000",
                     "--max-client-memory-mb", "4096")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "async_fanout_results.csv")
    assert [r["status"] for r in rows] == ["OK"] * 3
    assert rows[0]["estimated_client_mb"] == ""  # nothing to estimate from before the first level
    estimates = [float(r["estimated_client_mb"]) for r in rows[1:]]
    measured = [float(r["measured_client_mb"]) for r in rows]
    assert all(0 < e < 4096 for e in estimates) and all(m >= 0 for m in measured)


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_bad_memory_limit_is_one_line_and_touches_nothing(value: str, run_cli, tmp_path: Path) -> None:
    result = run_cli(*ASYNC, "--dsn", "postgresql://nobody@127.0.0.1:1/nowhere", "--max-client-memory-mb", value)
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
    args = [*ASYNC, "--dsn", embedded_dsn, "--table", table, "--drop-table",
            "--async-concurrency", "4", "--start-epochs", "2000", "--end-epochs", "2000000", "--step-epochs", "2000",
            "--async-results-csv", str(csv_path), "--report-md", str(report_path)]  # fmt: skip
    returncode, err = interrupt_after_two_rows(args, signum)
    try:
        assert returncode == 130, err
        assert "Traceback" not in err
        rows = read_rows(csv_path)
        assert len(rows) >= 2 and all(r["status"] == "OK" for r in rows)
        assert [int(r["epochs"]) for r in rows] == [2000 * (i + 1) for i in range(len(rows))]
        report = report_path.read_text()
        assert "INTERRUPTED" in report and f"after {len(rows)} of 1000 planned iterations" in report
        deadline = time.monotonic() + 30
        while pool_backends(embedded_dsn) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool_backends(embedded_dsn) == 0  # the pool's connections are gone with the process
    finally:
        with psycopg.connect(embedded_dsn, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
