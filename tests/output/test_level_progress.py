"""Progress inside a level: its phase, its records' steps, the memory pass and why, on the live panel and as
plain lines while the level runs (seen before the level ends, at a real gate in the server)."""

from __future__ import annotations

import io
import threading
import zlib

import psycopg
import pytest
from helpers import (
    CollectRows,
    FakeClock,
    add_insert_trigger,
    create_pgstress_table,
    given_server,
    panel_text,
    wait_until,
)

from pgstress.config import RunConfig
from pgstress.output import terminal
from pgstress.output.base import RampPlan
from pgstress.output.level_progress import LevelState
from pgstress.output.progress_lines import async_line
from pgstress.output.ramp_tracker import RampTracker
from pgstress.output.terminal import PlainProgress, make_progress
from pgstress.run.level_events import ACCESS, ENCODED, FETCHED, READ, STORED, VERIFIED, WRITE, PhaseStart
from pgstress.session import run_session


def test_a_level_counts_its_records_through_each_step() -> None:
    clock = FakeClock()
    state = LevelState(clock)
    assert state.text() == "preparing (connections checked, table emptied)"
    state.on_phase(PhaseStart(WRITE, 3))
    milestones = [state.on_step(ENCODED, True) for _ in range(3)]
    assert milestones == [False, False, True]  # all encoded: the rest is the server's
    assert state.on_step(STORED, True) is False and state.on_step(STORED, False) is False
    clock.t += 12.34
    assert state.text() == "write batch: 3/3 encoded, 1/3 stored, 1 failed, 12.3 s in it"
    assert state.on_step(STORED, True) is False  # the last step ends the phase: the next phase says so

    state.on_phase(PhaseStart(READ, 2, memory_pass=True, why="because"))
    assert state.why == "because" and state.failed == 0
    assert [state.on_step(FETCHED, True) for _ in range(2)] == [False, False]  # no milestones in a memory pass
    assert state.text().startswith("memory pass of the read batch (untimed, tracemalloc): 2/2 fetched, 0/2 verified")
    state.on_phase(PhaseStart(WRITE, 2, memory_pass=True))
    assert state.text().startswith("memory pass of the write batch (untimed, tracemalloc): 0/2 encoded, 0.0 s")
    state.on_phase(PhaseStart(READ, 1))  # one record (sync mode): no counts, its stage shows where it is
    assert state.text() == "read phase: 0.0 s in it"
    state.on_phase(PhaseStart(ACCESS, 4))  # --access: the range, metric and append phases, no step counts
    assert state.on_step(FETCHED, True) is False
    clock.t += 2.0
    assert state.text() == "access phases: 2.0 s in it"


def test_an_async_run_with_access_phases_says_when_they_start(embedded_dsn: str, table_name: str, run_cli) -> None:
    result = run_cli("--mode", "async", "--async-concurrency", "3", "--dsn", embedded_dsn, "--table", table_name,
                     "--access", "range,append", "--range-epochs", "100", "--start-epochs", "1000", "--end-epochs",
                     "2000", "--step-epochs", "1000", "--memory-trace", "off", "--drop-table")
    assert result.code == 0, result.err
    started = [line for line in result.out.splitlines() if "access phases of 3 records started" in line]
    assert len(started) == 2, result.out  # one line per level, after its read batch


def test_the_live_panel_shows_the_level_and_why_its_memory_pass_runs_or_not() -> None:
    clock = FakeClock()
    tracker = RampTracker("t", [10_000, 20_000], now=clock)
    tracker.level.on_phase(PhaseStart(WRITE, 100))
    for _ in range(37):
        tracker.level.on_step(ENCODED, True)
    tracker.level.on_skip(WRITE, "it would take about 44 s")
    tracker.level.on_phase(PhaseStart(READ, 100, memory_pass=True, why="--memory-trace on traces every level"))
    tracker.level.on_step(FETCHED, True)
    text = panel_text(tracker, width=200)
    assert "memory pass of the read batch (untimed, tracemalloc): 1/100 fetched, 0/100 verified, 0.0 s in it" in text
    assert "why the memory pass: --memory-trace on traces every level" in text
    assert "memory pass of the write batch skipped: it would take about 44 s" in text


def test_plain_lines_name_the_level_and_leave_one_record_levels_to_their_row() -> None:
    out = io.StringIO()
    progress = PlainProgress(async_line, out)
    plan = RampPlan(RunConfig(), "t", "bson", [1000, 2000])
    progress.ramp_started(plan)
    try:
        progress.phase_started(PhaseStart(WRITE, 1))  # one record: nothing to add to its row's line
        progress.memory_pass_skipped(READ, "too dear")
        progress.phase_started(PhaseStart(WRITE, 4, memory_pass=True, why="planned"))
        progress.record_step(VERIFIED, False)
    finally:
        progress.close()
    assert out.getvalue().splitlines()[1:] == [
        "  bson [1/2] 1,000 epochs, memory pass of the read phase skipped: too dear",  # after a one-record phase
        "  bson [1/2] 1,000 epochs, memory pass of the write batch (untimed, tracemalloc) of 4 records started:"
        " planned",
    ]


C = 16


def test_a_level_of_16_records_prints_its_progress_before_it_ends(
        server_dsn: str, db: psycopg.Connection, table_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a terminal: plain lines. INSERTs wait at a gate (an advisory lock the test holds) until the test has
    seen the level's progress, so every line checked was printed while the level was still running."""
    monkeypatch.setattr(terminal, "HEARTBEAT_S", 0.2)  # the heartbeat's cadence, shortened for the test
    create_pgstress_table(db, table_name, "ndjson_zstd")
    key = zlib.crc32(table_name.encode())
    add_insert_trigger(db, table_name, f"PERFORM pg_advisory_xact_lock_shared({key}); RETURN NEW;")
    out = io.StringIO()
    progress = make_progress(quiet=False, line=async_line, out=out)
    assert isinstance(progress, PlainProgress)  # what a pipe or a CI log gets
    rows = CollectRows()
    config = RunConfig(mode="async", write_method="insert",
                       table=table_name, payload_format="ndjson_zstd", start_epochs=500, end_epochs=1000,
                       step_epochs=500, async_concurrency=C, memory_trace="on")
    thread = threading.Thread(target=lambda: run_session(config, given_server(server_dsn), outputs=[rows, progress]),
                              daemon=True)
    with psycopg.connect(server_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [key])
        thread.start()
        try:
            held = f"  [1/2] 500 epochs, write batch: {C}/{C} encoded, 0/{C} stored"
            wait_until(lambda: held in out.getvalue(), "every record encoded while the INSERTs wait at the gate")
            wait_until(lambda: "in it | elapsed " in out.getvalue(), "a heartbeat line while the level waits")
            assert rows.rows == []  # the level has not ended: everything above was printed during it
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
        thread.join(timeout=120)
    assert not thread.is_alive()
    assert [(row.iter, row.status) for row in rows.rows] == [(1, "OK"), (2, "OK")]

    lines = out.getvalue().splitlines()
    for level, epochs in ((1, "500"), (2, "1,000")):
        row_line = next(i for i, line in enumerate(lines) if line.startswith(f"[{level}/2] {C} x {epochs} epochs OK"))
        during = [line for line in lines[:row_line] if line.startswith(f"  [{level}/2] {epochs} epochs, ")]
        starts = [line.split(", ", 1)[1] for line in during if line.endswith("started") or "started: " in line]
        assert starts == [
            f"write batch of {C} records started",
            f"memory pass of the write batch (untimed, tracemalloc) of {C} records started: --memory-trace on traces"
            " every level",
            f"read batch of {C} records started",
            f"memory pass of the read batch (untimed, tracemalloc) of {C} records started: --memory-trace on traces"
            " every level",
        ], during
        assert any(f"read batch: {C}/{C} fetched" in line for line in during), during
