"""--zstd-level 1,19: one ndjson_zstd ramp per level on its own table, told apart by the zstd_level column,
compared by size and time in one report; resumed per level, paired per level by `pgstress compare`."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from helpers import TINY_RAMP, RampMode, read_csv, read_run_json

from pgstress.config import RunConfig, ramp_configs
from pgstress.output.base import RampPlan
from pgstress.output.csv import CsvOutput
from pgstress.output.run_record import ramp_identity, run_record_path, server_identity
from pgstress.resume import ResumeRefused, load_resumption
from pgstress.rows import SyncRow

LEVELS = RunConfig(zstd_level=1, zstd_sweep=(1, 19), dsn="host=nowhere", start_epochs=1000, end_epochs=2000,
                   step_epochs=1000)


def test_each_level_is_its_own_ramp_and_only_ndjson_zstd_varies() -> None:
    assert [(c.table, c.zstd_level) for c in ramp_configs(LEVELS)] == [
        ("stress_records_z1", 1), ("stress_records_z19", 19)]
    both = RunConfig(payload_format="all", zstd_level=3, zstd_sweep=(3, 9))
    assert [(c.table, c.zstd_level) for c in ramp_configs(both)] == [
        ("stress_records_bson", 3), ("stress_records_jsonb", 3), ("stress_records_ndjson_zstd_z3", 3),
        ("stress_records_ndjson_zstd_z9", 9), ("stress_records_pgarrays", 3)]


def test_a_level_list_runs_one_ramp_per_level_and_compares_them(embedded_dsn: str, table_name: str, run_cli,
                                                                ramp_mode: RampMode, tmp_path: Path) -> None:
    export = tmp_path / "run.json"
    done = run_cli(*ramp_mode.argv(), "--dsn", embedded_dsn, "--table", table_name, *TINY_RAMP, "--drop-table",
                   "--payload-format", "ndjson_zstd", "--zstd-level", "1,19", "--export-json", str(export))
    assert done.code == 0, done.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [(row["zstd_level"], row["epochs"], row["status"]) for row in rows] == [
        ("1", "1000", "OK"), ("1", "2000", "OK"), ("1", "3000", "OK"),
        ("19", "1000", "OK"), ("19", "2000", "OK"), ("19", "3000", "OK")]
    sizes = {row["zstd_level"]: float(row[ramp_mode.size_column]) for row in rows if row["epochs"] == "3000"}
    assert sizes["19"] < sizes["1"]
    with psycopg.connect(embedded_dsn) as conn:
        for level in (1, 19):
            assert conn.execute(f"SELECT count(*) FROM {table_name}_z{level}").fetchone() is not None
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "zstd levels compared" in report.splitlines()[0]
    assert "**smallest on disk: zstd 19**" in report
    assert "Measured on full-precision uniform random floats (the default shape)" in report
    assert "levels 1, 3 and 19 give 104, 126 and 90 bytes per epoch at full precision" in report
    record = read_run_json(export)
    assert [ramp["zstd_level"] for ramp in record["ramps"]] == [1, 19]
    assert record["config"]["zstd_level"] == "1,19"
    identity = json.loads(run_record_path(ramp_mode.csv_path(tmp_path)).read_text(encoding="utf-8"))["ramp"]
    assert identity["zstd_level"] == [1, 19]


def test_the_default_run_records_its_one_level() -> None:
    assert "zstd_level" in SyncRow.COLUMNS[SyncRow.COLUMNS.index("other_sessions"):]  # an appended column
    assert ramp_identity(RunConfig(dsn="host=nowhere"), server_identity("host=nowhere"))["zstd_level"] == 3


def _written(tmp_path: Path, rows: list[SyncRow]) -> Path:
    path = tmp_path / "results.csv"
    identity = ramp_identity(LEVELS, server_identity(LEVELS.dsn))
    run_record_path(path).write_text(json.dumps({"pgstress": "test", "ramp": identity}))
    out = CsvOutput(path, SyncRow.COLUMNS)
    for row in rows:
        out.row(RampPlan(LEVELS, "earlier"), row)
    out.close()
    return path


def _row(iteration: int, level: int) -> SyncRow:
    return SyncRow(iter=iteration, epochs=1000 * iteration, format="ndjson_zstd", toast_compression="default",
                   zstd_level=level)


def test_a_level_list_is_resumed_per_level(tmp_path: Path) -> None:
    resumed = load_resumption(LEVELS, _written(tmp_path, [_row(1, 1), _row(2, 1), _row(1, 19)]), SyncRow)
    assert [(r.config.zstd_level, r.ended, list(r.levels)) for r in resumed.ramps] == [
        (1, True, []), (19, False, [2000])]
    with pytest.raises(ResumeRefused, match="zstd level 9"):
        load_resumption(LEVELS, _written(tmp_path, [_row(1, 9)]), SyncRow)


def test_a_level_list_with_a_format_without_zstd_is_refused(run_cli, tmp_path: Path) -> None:
    done = run_cli("--payload-format", "jsonb", "--zstd-level", "1,3", "--dsn", "host=/nonexistent dbname=none")
    assert done.code == 2 and "--zstd-level: a list (1,3) compares ndjson_zstd's levels" in done.err
    assert not list(tmp_path.glob("*.csv"))


def test_compare_pairs_the_ramps_of_a_level_list_per_level(tmp_path: Path) -> None:
    from pgstress.compare.loading import load_run

    run = load_run(_written(tmp_path, [_row(1, 1), _row(2, 1), _row(1, 19)]))
    assert [(ramp.key, len(ramp.rows)) for ramp in run.ramps] == [
        ("ndjson_zstd default zstd 1", 2), ("ndjson_zstd default zstd 19", 1)]


def test_the_caveat_fits_what_is_compared_and_the_shape() -> None:
    from pgstress.output.shape_table import measured_on, shape_caveat

    formats = RunConfig(payload_format="all")
    assert "of ndjson_zstd from 126 to 49, of jsonb from 135 to 55 and of bson from 119 to 100" in shape_caveat(formats)
    rounded = RunConfig(payload_format="all", float_decimals=2)
    assert "holds for data shaped like this run's, not for full-precision data" in shape_caveat(rounded)
    assert "bson sends every double in 8 bytes" in shape_caveat(rounded)
    assert "bson" not in shape_caveat(LEVELS) and "levels 1, 3 and 19 give" in shape_caveat(LEVELS)
    assert measured_on(rounded).startswith("Measured on the default shape's floats rounded to 2 decimals;")
