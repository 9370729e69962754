"""--resume of a compared run (`--payload-format all`, a sweep over C) reads its one CSV as its ramps, in the
order they ran: the ramps before the last one with rows had ended, the last goes on, the rest run in full. A
CSV that is not that is refused with one line. (No server: the CSV and its run record are written here.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgstress.config import RunConfig
from pgstress.output.base import RampPlan
from pgstress.output.csv import CsvOutput
from pgstress.output.run_record import ramp_identity, run_record_path, server_identity
from pgstress.resume import ResumeRefused, load_resumption
from pgstress.rows import AsyncRow, Row, SyncRow
from pgstress.target import resolve_dsn

ALL = RunConfig(payload_format="all", dsn="host=nowhere", start_epochs=1000, end_epochs=2000, step_epochs=1000)
SWEEP = RunConfig(mode="async", write_method="insert",
                  concurrency_sweep=(1, 3), async_concurrency=1, dsn="host=nowhere", start_epochs=1000,
                  end_epochs=2000, step_epochs=1000)


def written(tmp_path: Path, config: RunConfig, rows: list[Row]) -> Path:
    """The CSV and the run record of an earlier run of `config` that finished `rows`."""
    path = tmp_path / "results.csv"
    identity = ramp_identity(config, server_identity(resolve_dsn(config.dsn)[0]))
    run_record_path(path).write_text(json.dumps({"pgstress": "test", "ramp": identity}))
    out = CsvOutput(path, type(rows[0]).COLUMNS)
    for row in rows:
        out.row(RampPlan(config, "earlier"), row)
    out.close()
    return path


def sync(iteration: int, payload_format: str) -> SyncRow:
    return SyncRow(iter=iteration, epochs=1000 * iteration, format=payload_format, toast_compression="default")


def test_the_ramps_before_the_last_with_rows_ended_the_last_goes_on_the_rest_run_in_full(tmp_path: Path) -> None:
    path = written(tmp_path, ALL, [sync(1, "bson"), sync(2, "bson"), sync(1, "jsonb")])
    resumed = load_resumption(ALL, path, SyncRow)
    assert [(r.config.payload_format, len(r.previous), r.ended, list(r.levels), r.config.start_iter)
            for r in resumed.ramps] == [("bson", 2, True, [], 3), ("jsonb", 1, False, [2000], 2),
                                        ("ndjson_zstd", 0, False, [1000, 2000], 1),
                                        ("pgarrays", 0, False, [1000, 2000], 1)]
    assert [r.config.table for r in resumed.ramps] == ["stress_records_bson", "stress_records_jsonb",
                                                      "stress_records_ndjson_zstd", "stress_records_pgarrays"]


def test_a_sweep_is_resumed_per_c(tmp_path: Path) -> None:
    rows: list[Row] = [AsyncRow(iter=1, epochs=1000, concurrency=1, format="ndjson_zstd", toast_compression="default"),
                       AsyncRow(iter=1, epochs=1000, concurrency=3, format="ndjson_zstd", toast_compression="default")]
    resumed = load_resumption(SWEEP, written(tmp_path, SWEEP, rows), AsyncRow)
    assert [(r.config.async_concurrency, r.ended, list(r.levels)) for r in resumed.ramps] == [
        (1, True, []), (3, False, [2000])]


@pytest.mark.parametrize(("rows", "message"), [
    ([sync(1, "jsonb"), sync(1, "bson")], "are not this run's ramps in their order (row 1 is jsonb, expected bson)"),
    ([sync(1, "bson"), sync(1, "jsonb"), sync(2, "bson")],
     "are not this run's ramps in their order (row 3 is bson, expected ndjson_zstd)"),
    ([sync(1, "xml")], "row 1 of {path} (format 'xml', compression 'default') belongs to none of this run's ramps"),
    ([sync(1, "bson"), sync(3, "bson")], "the bson rows of {path} are not this ramp's first iterations in order"),
], ids=["another order", "a ramp again after another", "an unknown format", "a gap in a ramp"])
def test_a_csv_that_is_not_the_runs_ramps_in_order_is_refused(rows: list[Row], message: str, tmp_path: Path) -> None:
    path = written(tmp_path, ALL, rows)
    with pytest.raises(ResumeRefused) as refused:
        load_resumption(ALL, path, SyncRow)
    assert message.format(path=path) in str(refused.value) and "\n" not in str(refused.value)
