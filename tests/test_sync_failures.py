"""Real failures in the middle of a ramp: status class, the stop rule, and the report's points."""

from __future__ import annotations

from pathlib import Path

import psycopg
from cli_helpers import report_points as points

from pgstress.results import read_rows

RAMP_TO_7000 = ["--start-epochs", "1000", "--end-epochs", "7000", "--step-epochs", "1000"]


def create_table(run_cli, server_dsn: str, table_name: str, tmp_path: Path) -> None:
    outputs = ["--results-csv", str(tmp_path / "setup.csv"), "--report-md", str(tmp_path / "setup.md")]
    setup = run_cli("--dsn", server_dsn, "--table", table_name, "--start-epochs", "10", "--end-epochs", "10", *outputs)
    assert setup.code == 0, setup.err


def test_size_check_breaks_the_ramp_and_three_failures_stop_it(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    create_table(run_cli, server_dsn, table_name, tmp_path)
    # ndjson_zstd is ~128 bytes per epoch: 2,000 epochs fit under 300,000 bytes, 3,000 do not.
    db.execute(f'ALTER TABLE "{table_name}" ADD CONSTRAINT small CHECK (octet_length(payload) < 300000)')

    result = run_cli("--dsn", server_dsn, "--table", table_name, *RAMP_TO_7000)
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "iteration_results.csv")
    assert [(r["epochs"], r["status"]) for r in rows] == [
        ("1000", "OK"), ("2000", "OK"), ("3000", "ERROR"), ("4000", "ERROR"), ("5000", "ERROR"),
    ]  # fmt: skip
    assert "23514" in rows[2]["error"] and "small" in rows[2]["error"]
    assert "\n" not in rows[2]["error"]
    assert rows[2]["write_s"] == "" and rows[2]["eps"] == ""

    report = (tmp_path / "report.md").read_text()
    found = points(report)
    assert found["Breaking point"].startswith("iteration 3, 3,000 epochs, status ERROR")
    assert found["Stability point"].startswith("iteration 2, 2,000 epochs, status OK")
    best = max(rows[:2], key=lambda r: float(r["eps"]))
    assert found["Optimal efficiency point"].startswith(f"iteration {best['iter']},")
    assert "stopped after 3 consecutive failed iterations" in report


def test_one_failure_then_the_ramp_goes_on(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    create_table(run_cli, server_dsn, table_name, tmp_path)
    db.execute(f'ALTER TABLE "{table_name}" ADD CONSTRAINT not_3000 CHECK (epochs <> 3000)')
    ramp = ["--start-epochs", "1000", "--end-epochs", "5000", "--step-epochs", "1000"]
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--max-consecutive-failures", "1", *ramp)
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "iteration_results.csv")
    assert [r["status"] for r in rows] == ["OK", "OK", "ERROR"]  # the stop rule at 1 stops right there

    result = run_cli("--dsn", server_dsn, "--table", table_name, *ramp)
    rows = read_rows(tmp_path / "iteration_results.csv")
    assert [r["status"] for r in rows] == ["OK", "OK", "ERROR", "OK", "OK"]
    found = points((tmp_path / "report.md").read_text())
    assert found["Breaking point"].startswith("iteration 3,")
    assert found["Stability point"].startswith("iteration 2,")  # the largest success *before* the break
    ok_rows = [r for r in rows if r["status"] == "OK"]
    best = max(ok_rows, key=lambda r: float(r["eps"]))
    assert found["Optimal efficiency point"].startswith(f"iteration {best['iter']},")


def test_statement_timeout_is_timeout(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    create_table(run_cli, server_dsn, table_name, tmp_path)
    # The server really works past the timeout for the 2,000-epoch record only.
    db.execute(
        f'CREATE FUNCTION "{table_name}_slow"() RETURNS trigger LANGUAGE plpgsql AS $$'
        " BEGIN IF NEW.epochs = 2000 THEN PERFORM pg_sleep(5); END IF; RETURN NEW; END $$"
    )
    db.execute(
        f'CREATE TRIGGER slow BEFORE INSERT ON "{table_name}" FOR EACH ROW EXECUTE FUNCTION "{table_name}_slow"()'
    )
    try:
        ramp = ["--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000"]
        result = run_cli("--dsn", server_dsn, "--table", table_name, "--statement-timeout-ms", "300", *ramp)
        assert result.code == 0, result.err
        rows = read_rows(tmp_path / "iteration_results.csv")
        assert [r["status"] for r in rows] == ["OK", "TIMEOUT", "OK"]
        assert "57014" in rows[1]["error"]
        report = (tmp_path / "report.md").read_text()
        assert points(report)["Breaking point"].startswith("iteration 2, 2,000 epochs, status TIMEOUT")
        assert "| 2 | 2000 | TIMEOUT |" in report
    finally:
        db.execute(f'DROP TABLE IF EXISTS "{table_name}"')
        db.execute(f'DROP FUNCTION IF EXISTS "{table_name}_slow"()')


def test_unreachable_server_is_one_line_without_password(run_cli, tmp_path: Path) -> None:
    result = run_cli("--dsn", "postgresql://alice:s3cr3t-pw@127.0.0.1:1/nowhere", "--start-epochs", "10",
                     "--end-epochs", "10")  # fmt: skip
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0]
    assert "s3cr3t-pw" not in result.err + result.out
    assert not (tmp_path / "iteration_results.csv").exists() and not (tmp_path / "report.md").exists()
