"""--float-decimals, --epoch-template and --show-template from the command line: a real run of each shape on the
embedded server in both modes, the shape in the report, the JSON record and the run record, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from helpers import (
    TINY_RAMP,
    RampMode,
    add_insert_trigger,
    create_pgstress_table,
    drop_trigger_function,
    read_csv,
    read_run_json,
    table_after,
)
from psycopg import sql

from pgstress.output.run_record import run_record_path

SAMPLE = "".join(json.dumps(epoch) + "\n" for epoch in [
    {"trade": 1, "pnl": 0.25, "won": True, "side": "long", "note": None},
    {"trade": 9, "pnl": -1.5, "won": False, "side": "short", "note": "stop"},
    {"trade": 4, "pnl": 3.125, "won": True, "side": "long", "note": None},
])  # fmt: skip


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "trades.jsonl"
    path.write_text(SAMPLE, encoding="utf-8")
    return path


@pytest.mark.parametrize("payload_format", ["bson", "jsonb", "ndjson_zstd", "pgarrays"])
def test_a_templated_run_writes_reads_back_and_verifies_in_each_mode(embedded_dsn: str, table_name: str, run_cli,
                                                                     ramp_mode: RampMode, tmp_path: Path,
                                                                     sample: Path, payload_format: str) -> None:
    export = tmp_path / "run.json"
    done = run_cli(*ramp_mode.argv(), "--dsn", embedded_dsn, "--table", table_name, *TINY_RAMP, "--drop-table",
                   "--payload-format", payload_format, "--epoch-template", str(sample), "--export-json", str(export))
    assert done.code == 0, done.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK"] * 3
    for row in rows:
        ramp_mode.assert_intact_ok(row)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "The epochs written: the shape of template trades.jsonl (5 keys, inferred from 3 epochs)" in report
    assert [line[:2] for line in table_after(report, "### Epoch shape")][1:] == [
        ["trade", "int"], ["pnl", "float"], ["won", "bool"], ["side", "string"], ["note", "string"]]
    assert "Measured on the shape of template trades.jsonl" in report
    record = read_run_json(export)
    assert [key["name"] for key in record["epoch_shape"]["keys"]] == ["trade", "pnl", "won", "side", "note"]
    assert record["epoch_shape"]["keys"][4]["null_share"] == pytest.approx(2 / 3)
    identity = json.loads(run_record_path(ramp_mode.csv_path(tmp_path)).read_text(encoding="utf-8"))["ramp"]
    assert identity["epoch_template_sha256"] == record["epoch_shape"]["template_sha256"]


def test_float_decimals_shrinks_the_text_formats_and_verifies(embedded_dsn: str, table_name: str, run_cli,
                                                              ramp_mode: RampMode, tmp_path: Path) -> None:
    sizes = {}
    for decimals in (None, 2):
        csv = tmp_path / f"d{decimals}.csv"
        option = [] if decimals is None else ["--float-decimals", str(decimals)]
        done = run_cli(*ramp_mode.argv(), "--dsn", embedded_dsn, "--table", table_name, *TINY_RAMP, "--drop-table",
                       "--payload-format", "ndjson_zstd", *option, ramp_mode.csv_option, str(csv))
        assert done.code == 0, done.err
        rows = read_csv(csv)
        assert [row["status"] for row in rows] == ["OK"] * 3
        sizes[decimals] = float(rows[-1][ramp_mode.size_column])
    assert sizes[2] < 0.5 * sizes[None]  # 3000 epochs: ~38 against ~126 bytes per epoch
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Measured on the default shape's floats rounded to 2 decimals" in report


def test_a_resume_with_another_shape_is_refused(embedded_dsn: str, table_name: str, run_cli, tmp_path: Path,
                                                sample: Path) -> None:
    base = ["--dsn", embedded_dsn, "--table", table_name, *TINY_RAMP, "--payload-format", "jsonb"]
    assert run_cli(*base, "--drop-table", "--float-decimals", "3").code == 0
    refused = run_cli(*base, "--resume", "--float-decimals", "4")
    assert refused.code == 2 and "--float-decimals 3 there, 4 now" in refused.err
    refused = run_cli(*base, "--resume", "--float-decimals", "3", "--epoch-template", str(sample))
    assert refused.code == 2 and "--epoch-template (SHA-256 of its content) None there" in refused.err
    resumed = run_cli(*base, "--resume", "--float-decimals", "3")
    assert resumed.code == 0, resumed.err


def test_show_template_prints_the_shape_and_touches_no_server(run_cli, sample: Path, tmp_path: Path) -> None:
    done = run_cli("--show-template", "--epoch-template", str(sample), "--dsn", "host=/nonexistent dbname=none")
    assert done.code == 0 and done.err == ""
    assert done.out.startswith("Epoch shape: the shape of template trades.jsonl (5 keys, inferred from 3 epochs).")
    assert "| side | string | 2 distinct values: 'long', 'short' |  | 0 |" in done.out
    assert "| note | string | 1 distinct value: 'stop' |  | 66.7% |" in done.out
    assert "| pnl | float | -1.5 .. 3.125 | 3 | 0 |" in done.out
    assert not list(tmp_path.glob("*.csv")) and not (tmp_path / "report.md").exists()
    default = run_cli("--show-template", "--float-decimals", "4")
    assert "the default shape's floats rounded to 4 decimals" in default.out and default.out.count("| 4 |") == 10


def test_a_bad_template_is_refused_with_one_line_before_anything_runs(run_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": {"nested": true}}\n', encoding="utf-8")
    done = run_cli("--epoch-template", str(bad), "--dsn", "host=/nonexistent dbname=none")
    assert done.code == 2
    assert done.err.strip().count("\n") == 0 and f"{bad} line 2, key 'a': an object" in done.err
    assert not list(tmp_path.glob("*.csv")) and not (tmp_path / "report.md").exists()
    too_many = run_cli("--float-decimals", "16")
    assert too_many.code == 2 and "--float-decimals" in too_many.err


CHANGED_ON_THE_SERVER = {
    "a string outside the vocabulary": ("{epochs,7,side}", '"flat"', "decoded epoch is malformed"),
    "null where the key never is": ("{epochs,2,side}", "null", "decoded epoch is malformed"),
    "an int out of its range": ("{epochs,5,trade}", "-100", "content hash differs"),
}


@pytest.mark.parametrize("case", CHANGED_ON_THE_SERVER, ids=CHANGED_ON_THE_SERVER)
def test_a_templated_jsonb_value_changed_on_the_server_is_verify_failed(case: str, embedded_dsn: str,
                                                                         embedded_db: psycopg.Connection,
                                                                         table_name: str, ramp_mode: RampMode,
                                                                         run_cli, tmp_path: Path,
                                                                         sample: Path) -> None:
    path, value, verdict = CHANGED_ON_THE_SERVER[case]
    create_pgstress_table(embedded_db, table_name, "jsonb")
    add_insert_trigger(embedded_db, table_name,
                       f"IF NEW.epochs = 2000 THEN NEW.payload := jsonb_set(NEW.payload, '{path}', '{value}'); END IF;"
                       " RETURN NEW;")
    try:
        result = run_cli(*ramp_mode.argv(), "--dsn", embedded_dsn, "--table", table_name, "--payload-format",
                         "jsonb", "--epoch-template", str(sample), *TINY_RAMP)
    finally:
        embedded_db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table_name)))
        drop_trigger_function(embedded_db, table_name)
    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "VERIFY_FAILED", "OK"]
    assert verdict in ramp_mode.assert_failed(rows[1], "VERIFY_FAILED", failed=ramp_mode.concurrency)
