"""--export-json: one self-describing record of the run, valid against the schema kept in the repository
(pgstress/output/run.schema.json), whatever the mode and however the run ended."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ASYNC, TINY_RAMP, read_csv, read_run_json

from pgstress.columns import every_column
from pgstress.config import RunConfig
from pgstress.host import collect_host
from pgstress.modes import SYNC
from pgstress.output.base import RampPlan, RampResult, RunContext, RunResult
from pgstress.output.json_export import SCHEMA_FILE, JsonExportOutput
from pgstress.rows import AsyncRow, SyncRow
from pgstress.run.ramp import RampOutcome
from pgstress.target import ServerDetails, ServerInfo


def test_the_schema_names_every_csv_column_in_order() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    for name, row_type in (("sync_row", SyncRow), ("async_row", AsyncRow)):
        definition = schema["$defs"][name]
        assert definition["required"] == list(row_type.COLUMNS)
        # the optional groups' columns, last, only in the record of a run that used them
        assert list(definition["properties"]) == list(every_column(row_type))


@pytest.mark.parametrize(("interrupted", "stop_reason", "status"), [
    (False, None, "finished"), (False, "stopped after 3 consecutive failed iterations", "stopped by the rule"),
    (True, None, "interrupted")])
def test_the_record_says_how_the_run_ended(tmp_path: Path, interrupted: bool, stop_reason: str | None,
                                           status: str) -> None:
    config = RunConfig(dsn="host=db.example user=u password=Hush-1234 dbname=d", repeat=2)
    rows = [SyncRow(iter=1, epochs=1000, rep=rep, write_s=0.5 * rep, read_s=0.1, total_s=0.5 * rep + 0.1,
                    eps=1000 / (0.5 * rep + 0.1)) for rep in (1, 2)]
    rows.append(SyncRow(iter=2, epochs=2000, rep=1, status="TIMEOUT", error="canceling statement"))
    server = ServerInfo("host=db.example user=u password=Hush-1234 dbname=d", "--dsn", False)
    result = RunResult(RunContext(config, collect_host(), server, ServerDetails(version="PostgreSQL 18")), [
        RampResult(RampPlan(config, "t"), RampOutcome(rows, interrupted, stop_reason, planned_levels=3))])
    path = tmp_path / "run.json"
    JsonExportOutput(str(path), SYNC.shown.report).finish(result)

    record = read_run_json(path)
    assert record["status"] == record["ramps"][0]["status"] == status
    assert "Hush-1234" not in path.read_text(encoding="utf-8")
    shown = record["config"]["dsn"]
    assert shown == record["server"]["connection"]
    assert sorted(shown.split()) == ["dbname=d", "host=db.example", "password=***", "user=u"]
    assert "start_iter" not in record["config"] and record["config"]["repeat"] == 2
    median_eps = (1000 / 0.6 + 1000 / 1.1) / 2  # the median of the column eps, not epochs / median total_s
    assert record["ramps"][0]["points"]["stability"]["efficiency"] == pytest.approx(median_eps)
    assert path in result.files


def test_an_interrupted_async_run_exports_its_rows(server_dsn: str, table_name: str, hooks, run_cli,
                                                  tmp_path: Path) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    hooks.before[3] = interrupt
    result = run_cli(*ASYNC.argv(), "--dsn", server_dsn, "--table", table_name, *TINY_RAMP, "--create-dirs",
                     "--export-json", str(tmp_path / "out" / "run.json"))
    assert result.code == 130, result.err

    record = read_run_json(tmp_path / "out" / "run.json")
    assert (record["mode"], record["status"]) == ("async", "interrupted")
    assert record["server"]["version"].startswith("PostgreSQL")
    assert {"psycopg", "asyncpg"} <= set(record["host"]["packages"])
    (ramp,) = record["ramps"]
    csv_rows = read_csv(ASYNC.csv_path(tmp_path))
    assert len(ramp["rows"]) == len(csv_rows) == 2
    for exported, written in zip(ramp["rows"], csv_rows):
        assert list(exported) == list(written)  # every CSV column, in the CSV's order
        for name, cell in written.items():
            value = exported[name]
            assert (value is None and cell == "") or str(value) == cell or float(cell) == value, name
    assert ramp["conclusion"][0].startswith("2 of 3 planned iterations ran")
