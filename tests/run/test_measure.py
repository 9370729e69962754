"""Measuring on real runs: the timing split adds up, the memory columns say how they were obtained, no timed
stage runs under tracemalloc, and --write-method copy stores exactly what insert stores."""

from __future__ import annotations

import statistics
import time
import tracemalloc

import psycopg
import pytest
from helpers import read_csv, stored_records

from pgstress.config import RunConfig
from pgstress.db.control import TableControl
from pgstress.db.ownership import TableClaim
from pgstress.db.psycopg_adapter import SyncDatabase
from pgstress.db.schema import TableSql, prepare_table, table_for
from pgstress.rows import SyncRow
from pgstress.run.iteration import Iteration, LevelResult
from pgstress.run.measure import StageClock
from pgstress.run.record import decode_and_verify, encode_epochs
from pgstress.run.sync import open_sync, sync_row
from pgstress.workload.epochs import generate
from pgstress.workload.payloads import format_names, get_codec

# The stages must account for their phase: write_s = gen + encode + insert, read_s = select + decode, up to the
# glue between them (a few Python calls, the clock's own reads). The test runs pgstress on a clock of this
# thread's CPU time (time.thread_time in place of time.perf_counter), so what it compares is work done, not
# wall time a busy machine stretches by preempting us between two clock reads: every row may be off by
# 5 ms + 3 %, the median row by 1 ms + 2.5 %, which a CPU-bound stage missing from the split (decode, checked
# below to be larger than that) would break. Stages that mostly wait for the server (insert, select) cost the
# thread little CPU; that each was timed at all is checked by its column being filled.
ABS_NOISE_S = 0.005
REL_NOISE = 0.03
MEDIAN_ABS_S = 0.001
MEDIAN_REL = 0.025


def _median_ok(gaps: list[float], phase_s: list[float]) -> bool:
    return statistics.median(g - MEDIAN_REL * s for g, s in zip(gaps, phase_s, strict=True)) <= MEDIAN_ABS_S


def _f(row: dict[str, str], name: str) -> float:
    return float(row[name])


def _run(run_cli, tmp_path, dsn: str, table: str, *extra: str, step: int = 20_000) -> list[dict[str, str]]:
    result = run_cli("--dsn", dsn, "--table", table, "--drop-table", "--start-epochs", str(step),
                     "--end-epochs", str(3 * step), "--step-epochs", str(step), *extra)  # fmt: skip
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "iteration_results.csv")
    assert [r["status"] for r in rows] == ["OK"] * 3
    return rows


@pytest.mark.parametrize("fmt,method", [("ndjson_zstd", "insert"), ("bson", "copy"), ("jsonb", "insert")])
def test_write_and_read_times_are_the_sum_of_their_stages(
    run_cli, tmp_path, server_dsn: str, table_name: str, db, fmt: str, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "perf_counter", time.thread_time)  # CPU time of this thread: immune to preemption
    rows = _run(run_cli, tmp_path, server_dsn, table_name, "--payload-format", fmt, "--write-method", method,
                "--memory-trace", "off")  # fmt: skip
    write_gaps, read_gaps = [], []
    for row in rows:
        write_gaps.append(abs(_f(row, "write_s") - (_f(row, "gen_s") + _f(row, "encode_s") + _f(row, "insert_s"))))
        read_gaps.append(abs(_f(row, "read_s") - (_f(row, "select_s") + _f(row, "decode_s"))))
        for name in ("gen_s", "encode_s", "insert_s", "select_s", "decode_s", "verify_s"):
            assert _f(row, name) > 0, name
        assert write_gaps[-1] <= ABS_NOISE_S + REL_NOISE * _f(row, "write_s"), row
        assert read_gaps[-1] <= ABS_NOISE_S + REL_NOISE * _f(row, "read_s"), row
        assert _f(row, "total_s") == pytest.approx(_f(row, "write_s") + _f(row, "read_s"))
        assert _f(row, "eps") == pytest.approx(int(row["epochs"]) / _f(row, "total_s"))
    assert _median_ok(write_gaps, [_f(row, "write_s") for row in rows]), write_gaps
    assert _median_ok(read_gaps, [_f(row, "read_s") for row in rows]), read_gaps
    # The sum check must be finer than the stage it guards.
    for row in rows:
        assert _f(row, "decode_s") > MEDIAN_ABS_S + MEDIAN_REL * _f(row, "read_s"), row


def test_memory_columns_follow_memory_trace(run_cli, tmp_path, server_dsn: str, table_name: str, db) -> None:
    rows = _run(run_cli, tmp_path, server_dsn, table_name, "--memory-trace", "off", step=5_000)
    assert {(r["write_peak_mb"], r["read_peak_mb"]) for r in rows} == {("", "")}
    assert "`--memory-trace off`" in (tmp_path / "report.md").read_text()
    rows = _run(run_cli, tmp_path, server_dsn, table_name, "--memory-trace", "on", step=5_000)
    for row in rows:
        # The traced pass holds at least the encoded value it builds.
        assert _f(row, "write_peak_mb") >= _f(row, "client_payload_mb")
        assert _f(row, "read_peak_mb") > 0
        # Linux: a true per-phase resident peak (VmHWM reset at the phase start).
        assert _f(row, "write_rss_peak_mb") > _f(row, "client_payload_mb")
        assert _f(row, "read_rss_peak_mb") > 0
    assert "repeated in an untimed pass after each timed phase" in (tmp_path / "report.md").read_text()


def test_no_timed_stage_runs_under_tracemalloc(embedded_dsn: str, table_name: str, db) -> None:
    """The traced passes run after each timed phase, never inside one: no clock whose times reach the row
    ever had a stage entered while tracemalloc was on (checked at every stage's entry)."""
    traced_clocks: list[StageClock] = []  # kept alive, so no later clock can be mistaken for one of them
    timed_stages: set[str] = set()
    real_stage = StageClock.stage

    def watching_stage(self: StageClock, name: str):
        if tracemalloc.is_tracing():
            traced_clocks.append(self)
        else:
            timed_stages.add(name)
        return real_stage(self, name)

    levels: list[LevelResult] = []

    def to_row(level: LevelResult) -> SyncRow:
        levels.append(level)
        return sync_row(level, "ndjson_zstd")

    codec = get_codec("ndjson_zstd")
    spec = TableSql(table_name, codec.column_type)
    with psycopg.connect(embedded_dsn) as conn:
        spec = prepare_table(conn, spec, drop=True, truncate=False)
    config = RunConfig(table=table_name, memory_trace="on")
    control = TableControl(TableClaim(embedded_dsn, [table_name], 0), spec)
    with pytest.MonkeyPatch.context() as patch, open_sync(config, embedded_dsn, spec, codec, ()) as driver:
        patch.setattr(StageClock, "stage", watching_stage)
        row = Iteration(config, driver, control, to_row, ())(1, 25_000)
    control.claim.close()
    assert row.status == "OK" and row.write_peak_mb and row.read_peak_mb
    assert {"gen", "encode", "insert", "select", "decode", "verify"} <= timed_stages
    assert traced_clocks, "the traced passes ran"
    (level,) = levels
    assert level.write is not None and level.read is not None
    for record in [*level.write.records, *level.read.records]:
        assert not any(record.clock is clock for clock in traced_clocks)


@pytest.mark.parametrize("fmt", format_names())
def test_copy_and_insert_store_identical_verified_values(
    db: psycopg.Connection, server_dsn: str, table_name: str, fmt: str
) -> None:
    codec = get_codec(fmt)
    spec = table_for(table_name, codec.columns())
    prepare_table(db, spec, drop=True, truncate=False)
    payload = encode_epochs(codec, generate(3_000, 11, (1,)), StageClock())
    by_method: dict[str, SyncDatabase] = {m: SyncDatabase(server_dsn, spec, 0, m)
                                          for m in ("insert", "copy", "insert_blocking")}
    try:
        ids = {method: store.write(payload) for method, store in by_method.items()}
        ids["copy again"] = by_method["copy"].write(payload)
        assert len(set(ids.values())) == 4, "each write returns the id of its own new row"
        for method, record_id in ids.items():
            cursor, view, epochs, content_hash = by_method["copy"].fetch(record_id)
            try:
                assert (epochs, content_hash) == (payload.epochs, payload.content_hash), method
                decode_and_verify(codec, view, payload, StageClock())
                if fmt != "jsonb":
                    assert bytes(view) == bytes(payload.data), method
            finally:
                cursor.close()
    finally:
        for store in by_method.values():
            store.close()
    stored = stored_records(db, table_name, fmt)
    assert [row[0] for row in stored] == sorted(ids.values())
    assert len({tuple(row[1:]) for row in stored}) == 1, "insert and copy rows differ"
    if fmt != "jsonb":
        assert stored[0][1] == bytes(payload.data)


def test_a_failed_copy_is_recorded_and_the_next_iteration_still_succeeds(
    db: psycopg.Connection, server_dsn: str, table_name: str, run_cli, tmp_path
) -> None:
    prepare_table(db, TableSql(table_name, "BYTEA"), drop=True, truncate=False)
    db.execute(f'ALTER TABLE "{table_name}" ADD CONSTRAINT no_2000 CHECK (epochs <> 2000)')
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--write-method", "copy", "--memory-trace", "off",
                     "--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "iteration_results.csv")
    assert [(r["epochs"], r["status"]) for r in rows] == [("1000", "OK"), ("2000", "ERROR"), ("3000", "OK")]
    assert "23514" in rows[1]["error"]  # check_violation
    report = (tmp_path / "report.md").read_text()
    assert "| `--write-method` | copy |" in report
    assert "Write method `copy`: one binary `COPY" in report
