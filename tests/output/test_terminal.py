"""Live progress: the ETA arithmetic, the three faces, and what a real run prints."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from helpers import FakeClock, panel_text, read_csv
from rich.console import Console

from pgstress.config import RunConfig
from pgstress.db.schema import TableSql, prepare_table
from pgstress.output.analysis import find_points
from pgstress.output.base import RampPlan
from pgstress.output.progress_lines import async_line, sync_line
from pgstress.output.ramp_tracker import RampTracker, estimate_remaining_s
from pgstress.output.summary import summary_lines
from pgstress.output.terminal import LiveProgress, PlainProgress, Progress, make_progress
from pgstress.rows import AsyncRow, SyncRow
from pgstress.run.level_events import TRACE_END, TRACE_START, LevelEvents
from pgstress.run.measure import StageClock, traced_peak_mb

CHART_NAMES = ("time", "eps", "size", "memory", "rss")
ITERATION_LINE = re.compile(r"^\[(\d+)/(\d+)\] ([\d,]+) epochs (\w+) .* \| elapsed \d+:\d\d:\d\d eta \S+$")


@contextmanager
def following(progress: Progress, title: str, levels: Sequence[int], label: str = "",
              done_before: int = 0) -> Iterator[RampPlan]:
    """One ramp as the session hands it to the terminal output."""
    plan = RampPlan(RunConfig(), title, label, levels, done_before)
    progress.ramp_started(plan)
    try:
        yield plan
    finally:
        progress.close()


def ok_row(iteration: int, epochs: int, eps: float = 1000.0) -> SyncRow:
    return SyncRow(iter=iteration, epochs=epochs, status="OK", write_s=0.5, read_s=0.25, total_s=0.75, eps=eps,
                   client_payload_mb=1.5, format="bson")


# --- the ETA --------------------------------------------------------------------------------------------------

def test_eta_extrapolates_a_cost_that_grows_with_size() -> None:
    done = [(1000, 2.0), (2000, 3.0), (3000, 4.0)]  # 1 s fixed + 1 ms per epoch
    assert estimate_remaining_s(done, [4000, 5000]) == pytest.approx(5.0 + 6.0)


def test_eta_with_one_size_assumes_its_cost_per_epoch() -> None:
    assert estimate_remaining_s([(1000, 2.0)], [2000, 3000]) == pytest.approx(10.0)


def test_eta_unknown_before_anything_ran_and_zero_at_the_end() -> None:
    assert estimate_remaining_s([], [1000]) is None
    assert estimate_remaining_s([(1000, 1.0)], []) == 0.0


def test_eta_of_a_range_is_the_same_sum_in_closed_form() -> None:
    done = [(1000, 2.0), (2000, 3.0), (3000, 4.0)]  # 1 s fixed + 1 ms per epoch
    levels = range(4000, 100_001, 1000)
    assert estimate_remaining_s(done, levels) == pytest.approx(estimate_remaining_s(done, list(levels)))
    below_zero = [(1000, 0.5), (3000, 4.5)]  # -1.25 s + 1.75 ms per epoch: the line starts below zero
    assert estimate_remaining_s(below_zero, range(0, 5001, 500)) == pytest.approx(
        estimate_remaining_s(below_zero, list(range(0, 5001, 500))))
    assert estimate_remaining_s(done, range(1000, 10**17, 1000)) > 0  # instant, however long the ramp


def test_eta_falls_back_to_proportional_when_bigger_was_faster() -> None:
    assert estimate_remaining_s([(1000, 3.0), (2000, 1.0)], [3000]) == pytest.approx(4.0 / 3000 * 3000)


def test_tracker_counts_time_already_spent_on_the_running_level() -> None:
    clock = FakeClock()
    tracker = RampTracker("t", [1000, 2000, 3000], now=clock)
    clock.t += 1.0
    tracker.on_row(ok_row(1, 1000))
    assert tracker.eta_s() == pytest.approx(5.0)  # 1 ms per epoch for 5,000 more epochs
    clock.t += 1.5
    assert tracker.eta_s() == pytest.approx(3.5)
    assert tracker.elapsed_s() == pytest.approx(2.5)
    assert tracker.current_epochs == 2000


def test_repetitions_are_counted_in_the_position_and_the_eta() -> None:
    clock = FakeClock()
    tracker = RampTracker("t", [1000, 2000], now=clock, repeat=3)
    clock.t += 1.0
    first = ok_row(1, 1000)
    tracker.on_row(first)
    assert (tracker.current_epochs, tracker.current_rep, tracker.levels_done) == (1000, 2, 0)
    assert tracker.eta_s() == pytest.approx(2 * 1.0 + 3 * 2.0)  # 2 more of 1,000 epochs, 3 of 2,000
    assert tracker.position(first) == "[1/2 rep 1/3]"
    console = Console(file=io.StringIO(), width=120, force_terminal=False, color_system=None)
    console.print(LiveProgress.panel(tracker))
    assert "now:  iteration 1 of 2: 1,000 epochs, repetition 2 of 3," in console.file.getvalue()  # type: ignore[attr-defined]
    resumed = RampTracker("t", [2000, 3000], done_before=1, repeat=3, first_rep=3)
    assert (resumed.current_epochs, resumed.current_rep, resumed.total) == (2000, 3, 3)


def test_a_resumed_ramp_counts_the_levels_run_before() -> None:
    out = io.StringIO()
    progress = PlainProgress(sync_line, out)
    with following(progress, "sync ramp", [3000, 4000], done_before=2) as plan:
        assert progress.tracker is not None
        assert LiveProgress.panel(progress.tracker) is not None and progress.tracker.total == 4
        progress.row(plan, ok_row(3, 3000))
    assert out.getvalue().splitlines()[1].startswith("[3/4] 3,000 epochs OK")


def test_tracker_ignores_failed_levels_for_the_estimate_when_some_succeeded() -> None:
    clock = FakeClock()
    tracker = RampTracker("t", [1000, 2000, 3000], now=clock)
    clock.t += 1.0
    tracker.on_row(ok_row(1, 1000))
    clock.t += 0.01  # a failure that came back at once says nothing about the cost of a size
    tracker.on_row(SyncRow(iter=2, epochs=2000, status="ERROR"))
    assert tracker.eta_s() == pytest.approx(3.0)


class _Stages:
    """A level listener that keeps only the stage names."""

    def __init__(self, on_stage: Callable[[str], object]) -> None:
        self.on_stage = on_stage

    def stage_entered(self, name: str) -> None:
        self.on_stage(name)

    def phase_started(self, start: object) -> None: ...

    def record_step(self, step: str, ok: bool) -> None: ...

    def memory_pass_skipped(self, phase: str, why: str) -> None: ...


def test_stage_names_reach_the_tracker_as_phases() -> None:
    tracker = RampTracker("t", [1000])
    events = LevelEvents()
    clock = StageClock(events)
    seen: list[str] = []
    events.listen(_Stages(tracker.on_stage))  # type: ignore[arg-type]
    with clock.stage("gen"):
        seen.append(tracker.phase_text)
    with clock.stage("insert"):
        seen.append(tracker.phase_text)
    traced_peak_mb(lambda: seen.append(tracker.phase_text), events)
    with clock.stage("decode"):
        seen.append(tracker.phase_text)
    events.listen(None)
    assert seen == ["generate + encode", "insert", "insert (memory pass)", "decode"]
    with clock.stage("select"):  # nobody listens: nothing reported
        pass
    assert tracker.phase == "decode"


def test_listener_sees_the_trace_markers_in_order() -> None:
    seen: list[str] = []
    events = LevelEvents()

    def work() -> None:
        with StageClock(events).stage("encode"):
            pass

    events.listen(_Stages(seen.append))  # type: ignore[arg-type]
    traced_peak_mb(work, events)
    assert seen == [TRACE_START, "encode", TRACE_END]


# --- the three faces ------------------------------------------------------------------------------------------

def test_make_progress_picks_the_face_from_the_stream() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert type(make_progress(quiet=True, line=sync_line, out=Tty())) is Progress
    assert isinstance(make_progress(quiet=False, line=sync_line, out=Tty()), LiveProgress)
    assert isinstance(make_progress(quiet=False, line=sync_line, out=io.StringIO()), PlainProgress)


def test_plain_progress_prints_a_header_and_one_line_per_iteration() -> None:
    out = io.StringIO()
    progress = PlainProgress(sync_line, out)
    with following(progress, "sync ramp, bson", [1000, 2000]) as plan:
        progress.row(plan, ok_row(1, 1000, eps=1234.4))
        progress.row(plan, SyncRow(iter=2, epochs=2000, status="DB_LIMIT", error="too big", format="bson"))
    with following(progress, "format 2 of 3", [1000], label="jsonb") as plan:  # several ramps: each line says which
        progress.row(plan, SyncRow(iter=1, epochs=1000, status="TIMEOUT", format="jsonb"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "pgstress: sync ramp, bson: 2 iterations"
    assert lines[1].startswith("[1/2] 1,000 epochs OK 1.50 MiB write 0.500s read 0.250s eps 1,234 | elapsed ")
    assert lines[2].startswith("[2/2] 2,000 epochs DB_LIMIT - too big | elapsed ")
    assert lines[3] == "pgstress: format 2 of 3: 1 iteration"
    assert lines[4].startswith("jsonb [1/1] 1,000 epochs TIMEOUT | elapsed ")
    assert len(lines) == 5


def test_each_mode_brings_its_own_line() -> None:
    out = io.StringIO()
    progress = make_progress(quiet=False, out=out, line=async_line)
    with following(progress, "async", [1000, 2000]) as plan:
        progress.row(plan, AsyncRow(iter=1, concurrency=4, epochs=1000, writes_ok=4, writes_total=4, reads_ok=3,
                                    reads_total=4, write_s=0.5, write_eps=8000.0))
    assert out.getvalue().splitlines()[1].startswith(
        "[1/2] 4 x 1,000 epochs OK writes 4/4 reads 3/4 write 0.500s write_eps 8,000 | elapsed 0:00:00 eta ")


def test_live_panel_shows_position_phase_last_result_and_times() -> None:
    clock = FakeClock()
    tracker = RampTracker("t", [1000, 2000, 3000], now=clock)
    clock.t += 2.0
    tracker.on_row(ok_row(1, 1000, eps=4321))
    tracker.on_stage("insert")
    text = panel_text(tracker)
    assert "1/3 iterations" in text
    assert "now:  iteration 2 of 3: 2,000 epochs, insert" in text
    assert "last: iteration 1, 1,000 epochs, OK, 4,321 epochs/s" in text
    assert "time: elapsed 0:00:02, ETA 0:00:10" in text


def test_live_progress_prints_finished_iterations_above_the_panel() -> None:
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=True, color_system=None)
    progress = LiveProgress(sync_line, console=console)
    with following(progress, "sync ramp", [1000]) as plan:
        progress.row(plan, ok_row(1, 1000))
    assert "[1/1] 1,000 epochs OK" in out.getvalue()


def test_summary_names_the_three_points_and_every_file() -> None:
    rows = [ok_row(1, 1000, eps=500), ok_row(2, 2000, eps=900),
            SyncRow(iter=3, epochs=3000, status="TIMEOUT", error="canceling statement")]
    lines = summary_lines([("", find_points(rows))], ["r_time.png", "a.csv.run.json", "r.md", "a.csv"],
                          interrupted=False)
    assert lines == [
        "breaking point: iteration 3 (3,000 epochs, TIMEOUT) - canceling statement",
        "stability point: 2,000 epochs (iteration 2, 900 epochs/s)",
        "optimal efficiency: 2,000 epochs (iteration 2, 900 epochs/s)",
        "wrote a.csv, r.md, r_time.png, a.csv.run.json",
    ]


# --- a real run -----------------------------------------------------------------------------------------------

RAMP = ("--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000")


def test_non_terminal_run_prints_one_line_per_iteration_then_the_summary(run_cli, server_dsn, db, table_name,
                                                                          tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--payload-format", "bson", *RAMP, charts=True)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"pgstress: sync ramp, bson into {table_name}, against ")
    assert lines[0].endswith(": 3 iterations")
    csv_rows = read_csv(tmp_path / "iteration_results.csv")
    iteration_lines = [ITERATION_LINE.match(line) for line in lines[1:4]]
    assert all(iteration_lines), lines
    assert [(m[1], m[2], m[3].replace(",", ""), m[4]) for m in iteration_lines] == [
        (row["iter"], "3", row["epochs"], row["status"]) for row in csv_rows
    ]
    assert lines[4] == "breaking point: none reached"
    assert lines[5].startswith("stability point: 3,000 epochs (iteration 3, ")
    assert lines[6].startswith("optimal efficiency: ")
    report = tmp_path / "report.md"
    assert lines[7] == (f"wrote {tmp_path / 'iteration_results.csv'}, {report}, "
                        + ", ".join(str(tmp_path / f"report_{name}.png") for name in CHART_NAMES)
                        + f", {tmp_path / 'iteration_results.csv.run.json'}")
    assert len(lines) == 8
    assert result.err == ""


def test_quiet_prints_only_the_summary(run_cli, server_dsn, db, table_name) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--quiet", "--no-charts", *RAMP)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 4, lines
    assert lines[0] == "breaking point: none reached"
    assert lines[1].startswith("stability point: 3,000 epochs")
    assert lines[2].startswith("optimal efficiency: ")
    assert lines[3].startswith("wrote ") and ".png" not in lines[3]
    assert result.err == ""


def _table_refusing_big_records(conn: psycopg.Connection, table: str, max_epochs: int) -> None:
    """A pgstress table whose CHECK rejects records above max_epochs: a real, repeatable failure."""
    prepare_table(conn, TableSql(table, "BYTEA"), drop=True, truncate=False)
    conn.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT small_only CHECK (epochs <= {max_epochs})')


def test_fail_on_break_exits_3_only_when_asked(run_cli, server_dsn, db, table_name) -> None:
    _table_refusing_big_records(db, table_name, 2000)
    plain = run_cli("--dsn", server_dsn, "--table", table_name, "--quiet", "--no-charts", *RAMP)
    assert plain.code == 0, plain.err
    assert plain.out.splitlines()[0].startswith("breaking point: iteration 3 (3,000 epochs, ERROR) - CheckViolation")
    strict = run_cli("--dsn", server_dsn, "--table", table_name, "--quiet", "--no-charts", "--fail-on-break", *RAMP)
    assert strict.code == 3, strict.err
    clean = run_cli("--dsn", server_dsn, "--table", table_name, "--quiet", "--no-charts", "--fail-on-break",
                    "--start-epochs", "1000", "--end-epochs", "2000", "--step-epochs", "1000")
    assert clean.code == 0, clean.err
    assert clean.out.splitlines()[0] == "breaking point: none reached"


def test_a_resumed_ramp_counts_earlier_levels_and_ends_cleanly() -> None:
    tracker = RampTracker("resumed", [3000, 4000], done_before=2)
    assert tracker.total == 4 and tracker.current_epochs == 3000
    for epochs in (3000, 4000):
        tracker.on_row(ok_row(epochs // 1000, epochs))
    assert tracker.current_epochs is None  # finished: nothing left to name, no index past the end
