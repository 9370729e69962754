"""The timing split adds up on real runs, and the memory columns say how they were obtained."""

from __future__ import annotations

import statistics
import tracemalloc

import psycopg
import pytest

from pgstress.config import RunConfig
from pgstress.measure import PhaseMeter, StageClock
from pgstress.payloads import get_codec
from pgstress.results import read_rows
from pgstress.schema import TableSql, prepare_table
from pgstress.sync_runner import SyncDatabase, SyncIteration

# Timer noise: what the phases do outside their named stages (a few Python calls, the clock's
# own reads, ~15 us per decoded chunk) takes ~0.1-2 ms here. Every row may be off by 5 ms + 3 %
# (the scheduler can preempt us there on a busy shared machine); the median row must be within
# 1 ms + 1.5 %, which a stage missing from the split (the smallest, select, takes several ms
# here) would break.
ABS_NOISE_S = 0.005
REL_NOISE = 0.03
MEDIAN_ABS_S = 0.001
MEDIAN_REL = 0.015


def _median_ok(gaps: list[float], phase_s: list[float]) -> bool:
    return statistics.median(g - MEDIAN_REL * s for g, s in zip(gaps, phase_s, strict=True)) <= MEDIAN_ABS_S


def _f(row: dict[str, str], name: str) -> float:
    return float(row[name])


def _run(run_cli, tmp_path, dsn: str, table: str, *extra: str, step: int = 20_000) -> list[dict[str, str]]:
    result = run_cli("--dsn", dsn, "--table", table, "--drop-table", "--start-epochs", str(step),
                     "--end-epochs", str(3 * step), "--step-epochs", str(step), *extra)  # fmt: skip
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "iteration_results.csv")
    assert [r["status"] for r in rows] == ["OK"] * 3
    return rows


@pytest.mark.parametrize("fmt,method", [("ndjson_zstd", "insert"), ("bson", "copy"), ("jsonb", "insert")])
def test_write_and_read_times_are_the_sum_of_their_stages(
    run_cli, tmp_path, server_dsn: str, table_name: str, db, fmt: str, method: str
) -> None:
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
    for row in rows:  # the check must be finer than any stage
        assert _f(row, "select_s") > MEDIAN_ABS_S + MEDIAN_REL * _f(row, "read_s"), row


def test_memory_columns_follow_memory_trace(run_cli, tmp_path, server_dsn: str, table_name: str, db) -> None:
    rows = _run(run_cli, tmp_path, server_dsn, table_name, "--memory-trace", "off", step=5_000)
    assert {(r["write_peak_mb"], r["read_peak_mb"]) for r in rows} == {("", "")}
    assert "`--memory-trace off`" in (tmp_path / "report.md").read_text()
    rows = _run(run_cli, tmp_path, server_dsn, table_name, step=5_000)
    for row in rows:
        # The traced pass holds at least the encoded value it builds.
        assert _f(row, "write_peak_mb") >= _f(row, "client_payload_mb")
        assert _f(row, "read_peak_mb") > 0
        # Linux: a true per-phase resident peak (VmHWM reset at the phase start).
        assert _f(row, "write_rss_peak_mb") > _f(row, "client_payload_mb")
        assert _f(row, "read_rss_peak_mb") > 0
    assert "separate untimed pass" in (tmp_path / "report.md").read_text()


def test_no_timed_stage_runs_under_tracemalloc(embedded_dsn: str, table_name: str, db) -> None:
    """The traced pass runs after each timed phase, never inside one (checked at every stage's entry)."""
    seen: list[tuple[str, bool]] = []
    real_stage = StageClock.stage

    def watching_stage(self: StageClock, name: str):
        seen.append((name, tracemalloc.is_tracing()))
        return real_stage(self, name)

    codec = get_codec("ndjson_zstd")
    spec = TableSql(table_name, codec.column_type)
    with psycopg.connect(embedded_dsn) as conn:
        prepare_table(conn, spec, drop=True, truncate=False)
    store = SyncDatabase(embedded_dsn, spec, 0)
    config = RunConfig(table=table_name, memory_trace="on")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StageClock, "stage", watching_stage)
        row = SyncIteration(config, store, codec, PhaseMeter())(1, 25_000)
    store.close()
    assert row.status == "OK" and row.write_peak_mb and row.read_peak_mb
    timed = {name for name, traced in seen if not traced}
    assert {"gen", "encode", "insert", "select", "decode", "verify"} <= timed
    assert {name for name, traced in seen if traced} <= {"gen", "encode", "verify"}, "only the write pass's stages"
    assert not any(traced for name, traced in seen if name in ("insert", "select", "decode"))
