"""The sync ramp end to end against real servers: CSV, metrics' arithmetic, table contents, and real
failures in the middle of a ramp (the status, the stop rule, the report's points)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import create_pgstress_table, read_csv, stored_payload_size
from helpers import report_points as points
from psycopg import sql

from pgstress.rows import SyncRow
from pgstress.workload.epochs import generate
from pgstress.workload.payloads import format_names
from pgstress.workload.payloads.ndjson_zstd_codec import ndjson_lines

SPEC_HEADER = [
    "iter", "epochs", "status", "write_s", "read_s", "total_s", "eps", "client_payload_mb", "db_payload_mb",
    "db_row_mb", "write_peak_mb", "read_peak_mb", "write_rss_delta_mb", "read_rss_delta_mb", "error",
]  # fmt: skip
RAMP = ["--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000"]
TEXT_COLUMNS = ("status", "error", "format", "toast_compression", "storage", "stored_compression")


def uncompressed_ndjson_mb(epochs: int, seed: int, iteration: int) -> float:
    return sum(len(ndjson_lines(c.as_dicts())) for c in generate(epochs, seed, (iteration,))) / 1048576


@pytest.mark.parametrize("payload_format", format_names())
def test_three_iteration_ramp(
    payload_format: str, server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    # --memory-trace on: a peak on every row is asserted; auto's time budget may skip a pass on a loaded machine
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--payload-format", payload_format,
                     "--memory-trace", "on", *RAMP)
    assert result.code == 0, result.err

    csv_path = tmp_path / "iteration_results.csv"
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[: len(SPEC_HEADER)] == SPEC_HEADER
    assert header == list(SyncRow.COLUMNS)

    rows = read_csv(csv_path)
    assert [(r["iter"], r["epochs"], r["status"]) for r in rows] == [
        ("1", "1000", "OK"), ("2", "2000", "OK"), ("3", "3000", "OK"),
    ]  # fmt: skip
    for r in rows:
        f = {k: float(v) for k, v in r.items() if k not in TEXT_COLUMNS and v != ""}
        assert f["total_s"] == pytest.approx(f["write_s"] + f["read_s"], rel=1e-12)
        assert f["eps"] == pytest.approx(f["epochs"] / f["total_s"], rel=1e-12)
        assert f["db_row_mb"] >= f["db_payload_mb"] > 0
        assert f["client_payload_mb"] > 0
        assert f["write_peak_mb"] > 0 and f["read_peak_mb"] > 0
        assert f["write_rss_delta_mb"] >= 0 and f["read_rss_delta_mb"] >= 0
        assert r["error"] == "" and r["format"] == payload_format
        if payload_format == "ndjson_zstd":
            assert f["client_payload_mb"] < uncompressed_ndjson_mb(int(f["epochs"]), 42, int(f["iter"])) / 2

    # Truncated between iterations: only the last record remains, and it is the one measured.
    stored = db.execute(sql.SQL('SELECT epochs, {}, pg_column_size(t.*) FROM {} t').format(
        stored_payload_size(payload_format), sql.Identifier(table_name))).fetchall()
    assert len(stored) == 1 and stored[0][0] == 3000
    assert stored[0][1] / 1048576 == pytest.approx(float(rows[-1]["db_payload_mb"]), rel=1e-12)
    assert stored[0][2] / 1048576 == pytest.approx(float(rows[-1]["db_row_mb"]), rel=1e-12)
    table_bytes = db.execute("SELECT pg_total_relation_size(%s)", [f'"{table_name}"']).fetchone()[0]
    assert float(rows[-1]["db_table_mb"]) == pytest.approx(table_bytes / 1048576, rel=1e-12)
    assert all(float(r["db_table_mb"]) >= float(r["db_payload_mb"]) for r in rows)
    column_type = db.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attname = %s",
        [f'"{table_name}"', "HitRate" if payload_format == "pgarrays" else "payload"],
    ).fetchone()
    assert column_type == ({"jsonb": "jsonb", "pgarrays": "double precision[]"}.get(payload_format, "bytea"),)

    report = (tmp_path / "report.md").read_text()
    for heading in ("## Run metadata", "## Configuration", "## Server", "## Breaking point",
                    "## Final conclusion", "## Complete comparison table"):  # fmt: skip
        assert heading in report
    assert "Breaking point:** none reached" in report
    assert "Stability point:** iteration 3, 3,000 epochs" in report
    best = max(rows, key=lambda r: float(r["eps"]))
    assert f"Optimal efficiency point:** iteration {best['iter']}," in report


def test_keep_data_between_iterations_keeps_every_record(
    server_dsn: str, db: psycopg.Connection, table_name: str, run_cli
) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--keep-data-between-iterations", *RAMP)
    assert result.code == 0, result.err
    stored = db.execute(f'SELECT epochs FROM "{table_name}" ORDER BY id').fetchall()
    assert stored == [(1000,), (2000,), (3000,)]


def test_rerun_appends_unless_truncated_and_drop_recreates(
    server_dsn: str, db: psycopg.Connection, table_name: str, run_cli
) -> None:
    one = ["--start-epochs", "500", "--end-epochs", "500"]
    assert run_cli("--dsn", server_dsn, "--table", table_name, *one).code == 0
    assert run_cli("--dsn", server_dsn, "--table", table_name, *one).code == 0
    assert db.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (2,)
    assert run_cli("--dsn", server_dsn, "--table", table_name, "--truncate-before-start", *one).code == 0
    assert db.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (1,)
    # A format change needs --drop-table: the payload column's type differs.
    refused = run_cli("--dsn", server_dsn, "--table", table_name, "--payload-format", "jsonb", *one)
    assert refused.code == 2 and "--drop-table" in refused.err
    assert db.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (1,)
    dropped = run_cli("--dsn", server_dsn, "--table", table_name, "--payload-format", "jsonb", "--drop-table", *one)
    assert dropped.code == 0, dropped.err
    assert db.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (1,)


def test_same_seed_same_bytes_other_seed_other_bytes(
    server_dsn: str, db: psycopg.Connection, table_name: str, run_cli
) -> None:
    def stored_payload(seed: str) -> bytes:
        argv = ["--dsn", server_dsn, "--table", table_name, "--seed", seed, "--truncate-before-start"]
        assert run_cli(*argv, "--start-epochs", "300", "--end-epochs", "300").code == 0
        return db.execute(f'SELECT payload FROM "{table_name}"').fetchone()[0]

    assert stored_payload("7") == stored_payload("7")
    assert stored_payload("7") != stored_payload("8")


RAMP_TO_7000 = ["--start-epochs", "1000", "--end-epochs", "7000", "--step-epochs", "1000"]


def test_size_check_breaks_the_ramp_and_three_failures_stop_it(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    create_pgstress_table(db, table_name, "ndjson_zstd")
    # ndjson_zstd is ~128 bytes per epoch: 2,000 epochs fit under 300,000 bytes, 3,000 do not.
    db.execute(f'ALTER TABLE "{table_name}" ADD CONSTRAINT small CHECK (octet_length(payload) < 300000)')

    result = run_cli("--dsn", server_dsn, "--table", table_name, *RAMP_TO_7000)
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "iteration_results.csv")
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
    create_pgstress_table(db, table_name, "ndjson_zstd")
    db.execute(f'ALTER TABLE "{table_name}" ADD CONSTRAINT not_3000 CHECK (epochs <> 3000)')
    ramp = ["--start-epochs", "1000", "--end-epochs", "5000", "--step-epochs", "1000"]
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--max-consecutive-failures", "1", *ramp)
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "iteration_results.csv")
    assert [r["status"] for r in rows] == ["OK", "OK", "ERROR"]  # the stop rule at 1 stops right there

    result = run_cli("--dsn", server_dsn, "--table", table_name, *ramp)
    rows = read_csv(tmp_path / "iteration_results.csv")
    assert [r["status"] for r in rows] == ["OK", "OK", "ERROR", "OK", "OK"]
    found = points((tmp_path / "report.md").read_text())
    assert found["Breaking point"].startswith("iteration 3,")
    assert found["Stability point"].startswith("iteration 2,")  # the largest success *before* the break
    ok_rows = [r for r in rows if r["status"] == "OK"]
    best = max(ok_rows, key=lambda r: float(r["eps"]))
    assert found["Optimal efficiency point"].startswith(f"iteration {best['iter']},")
