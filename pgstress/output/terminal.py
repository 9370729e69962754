"""The terminal output: what the user sees while a run goes on, and the summary at its end.

Three faces behind one interface: a live rich display on a terminal, one plain line per
iteration when stdout is not a terminal (CI logs, `| tee`), and silence with `--quiet`
(errors still go to stderr, the final summary is still printed). Each mode has its own
one-line form of a row (`sync_line`, `async_line`). Inside a level (output/level_progress.py) the
panel shows the phase and its records' progress; the plain face prints an indented line when a
phase of several records starts or all its records pass a step, when a memory pass is skipped, and
after HEARTBEAT_S seconds without a line.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pgstress.output.analysis import Points, find_points, fit_line
from pgstress.output.base import Output, RampPlan, RampResult, RunResult
from pgstress.output.level_progress import HEARTBEAT_S, LevelState, phase_name
from pgstress.output.words import count
from pgstress.rows import OK, AsyncRow, Row, SyncRow
from pgstress.run.level_events import PhaseStart, set_level_listener
from pgstress.run.measure import TRACE_END, TRACE_START, set_stage_listener

# The codecs interleave generation and encoding chunk by chunk, so they are one phase to the eye;
# `verify` (hashing for the read-back check) runs inside both and is not shown as a phase of its own.
PHASE_NAMES = {"gen": "generate + encode", "encode": "generate + encode", "insert": "insert", "select": "select",
               "decode": "decode"}  # fmt: skip
_FIT_WINDOW = 6  # recent iterations the ETA's cost-per-size line is fitted to: time grows faster than size


def _line_sum(levels: Sequence[int], intercept: float, slope: float) -> float:
    """sum(max(intercept + slope * e, 0) for e in levels); in closed form for a range (a ramp may hold
    billions of levels)."""
    if not isinstance(levels, range):
        return sum(max(intercept + slope * e, 0.0) for e in levels)
    if levels and slope > 0 and intercept + slope * levels[0] < 0:  # below zero for the smallest levels
        levels = levels[max(0, int((-intercept / slope - levels[0]) // levels.step) + 1):]
    if not levels:
        return 0.0
    return len(levels) * (intercept + slope * (levels[0] + levels[-1]) / 2)


def estimate_remaining_s(done: Sequence[tuple[int, float]], remaining: Sequence[int]) -> float | None:
    """Seconds the `remaining` levels should take, from (epochs, seconds) of levels already run.

    Fits seconds = a + b * epochs over the most recent levels (least squares), so the growing cost
    of bigger records is extrapolated instead of averaged away; with too little to fit, or a cost
    that fell as records grew, assumes the cost per epoch seen so far.
    """
    if not remaining:
        return 0.0
    if not done:
        return None
    recent = list(done)[-_FIT_WINDOW:]
    fit = fit_line([(float(e), s) for e, s in recent], min_points=2)
    if fit is None or fit.slope <= 0:
        return _line_sum(remaining, 0.0, sum(s for _, s in recent) / sum(e for e, _ in recent))
    return _line_sum(remaining, fit.intercept, fit.slope)


def clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass
class RampTracker:
    """Where a ramp is: levels done, the phase running now, time spent and time to go."""

    title: str
    levels: Sequence[int]  # those still to run (a range: never built as a list)
    label: str = ""  # names the ramp on each line when several run (one per payload format)
    done_before: int = 0  # levels of this ramp finished by an earlier run (--resume): counted, not re-run
    now: Callable[[], float] = time.monotonic
    repeat: int = 1  # repetitions of each level (--repeat)
    first_rep: int = 1  # the repetition the first level starts at (a resumed size cut short)
    rows: list[Row] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)  # wall seconds of each finished level
    phase: str = "starting"
    tracing: bool = False
    level: LevelState = field(init=False)  # the running level's phase and records

    def __post_init__(self) -> None:
        self.started = self.now()
        self._level_started = self.started
        self.level = LevelState(self.now)

    def on_stage(self, name: str) -> None:
        if name == TRACE_START:
            self.tracing = True
        elif name == TRACE_END:
            self.tracing = False
        elif name in PHASE_NAMES:
            self.phase = PHASE_NAMES[name]

    def on_row(self, row: Row) -> None:
        finished = self.now()
        self.rows.append(row)
        self.durations.append(finished - self._level_started)
        self._level_started = finished
        self.phase, self.tracing = "starting", False
        self.level.reset()

    @property
    def total(self) -> int:
        return self.done_before + len(self.levels)

    @property
    def _steps_done(self) -> int:
        """Repetitions finished, counted from the first repetition of this run's first level."""
        return self.first_rep - 1 + len(self.rows)

    @property
    def current_epochs(self) -> int | None:
        done = self.levels_done
        return self.levels[done] if done < len(self.levels) else None

    @property
    def levels_done(self) -> int:
        """Levels of this run whose every repetition finished."""
        return self._steps_done // self.repeat

    @property
    def current_rep(self) -> int:
        return self._steps_done % self.repeat + 1

    def position(self, row: Row) -> str:
        """Where a row stands: `[3/10]`, or `[3/10 rep 2/3]` when each level is repeated."""
        reps = f" rep {row.rep}/{self.repeat}" if self.repeat > 1 else ""
        return f"[{row.iter}/{self.total}{reps}]"

    @property
    def phase_text(self) -> str:
        return f"{self.phase} (memory pass)" if self.tracing else self.phase

    def level_prefix(self) -> str:
        """How an in-level line names the level running now: '  bson [2/10] 20,000 epochs'."""
        label = f"{self.label} " if self.label else ""
        epochs = self.current_epochs
        size = f" {epochs:,} epochs" if epochs is not None else ""
        return f"  {label}[{self.done_before + len(self.rows) + 1}/{self.total}]{size}"

    def elapsed_s(self) -> float:
        return self.now() - self.started

    def eta_s(self) -> float | None:
        """Time left for this ramp; the level in progress counts with what it has already spent."""
        pairs = [(row.epochs, spent) for row, spent in zip(self.rows, self.durations) if row.status == OK]
        if not pairs:
            pairs = [(row.epochs, spent) for row, spent in zip(self.rows, self.durations)]
        level, reps_done = divmod(self._steps_done, self.repeat)
        estimate = estimate_remaining_s(pairs, self.levels[level + 1:])
        this_level = estimate_remaining_s(pairs, self.levels[level:level + 1])
        if estimate is None or this_level is None:
            return None
        estimate = estimate * self.repeat + this_level * (self.repeat - reps_done)  # each level runs `repeat` times
        return max(estimate - (self.now() - self._level_started), 0.0)


def sync_line(row: Row, total: int) -> str:
    """One finished sync iteration in one line: what CI logs and `| tee` get."""
    assert isinstance(row, SyncRow)
    timing = f" write {row.write_s:.3f}s read {row.read_s:.3f}s eps {row.eps:,.0f}" if row.eps else ""
    size = f" {row.client_payload_mb:.2f} MiB" if row.client_payload_mb is not None else ""
    error = f" - {row.error}" if row.error else ""
    return f"[{row.iter}/{total}] {row.epochs:,} epochs {row.status}{size}{timing}{error}"


def async_line(row: Row, total: int) -> str:
    """One finished async level in one line."""
    assert isinstance(row, AsyncRow)
    counts = f" writes {row.writes_ok}/{row.writes_total} reads {row.reads_ok}/{row.reads_total}"
    timing = f" write {row.write_s:.3f}s" if row.write_s is not None else ""
    timing += f" read {row.read_s:.3f}s" if row.read_s is not None else ""
    eps = f" write_eps {row.write_eps:,.0f}" if row.write_eps else ""
    error = f" - {row.error}" if row.error else ""
    return f"[{row.iter}/{total}] {row.concurrency} x {row.epochs:,} epochs {row.status}{counts}{timing}{eps}{error}"


LineFormat = Callable[[Row, int], str]  # (row, levels in the ramp) -> one line


def _line(line: LineFormat, tracker: RampTracker, row: Row) -> str:
    """The mode's line of a row, its position naming the repetition when levels are repeated."""
    text = line(row, tracker.total)
    plain = f"[{row.iter}/{tracker.total}]"
    return tracker.position(row) + text[len(plain):] if text.startswith(plain) else text


def _labelled(tracker: RampTracker, line: str) -> str:
    return f"{tracker.label} {line}" if tracker.label else line


def _breaking_text(row: Row | None, failed: str = "") -> str:
    if row is None:
        return "none reached"
    error = f" - {row.error}" if row.error else ""
    return f"iteration {row.iter} ({row.epochs:,} epochs, {row.status}{failed}){error}"


def _ok_point_text(row: Row | None, unit: str, median: bool = False) -> str:
    if row is None:
        return "none"
    rate = f", {row.efficiency:,.0f} {unit}{' median' if median else ''}" if row.efficiency is not None else ""
    return f"{row.epochs:,} epochs (iteration {row.iter}{rate})"


_FILE_ORDER = {".csv": 0, ".md": 1, ".png": 2}  # what a reader opens first, first


def summary_lines(ramps: Sequence[tuple[str, Points]], files: Sequence[object], *, interrupted: bool,
                  unit: str = "epochs/s") -> list[str]:
    """The final words on the terminal: the three points of each ramp (label, points) and every file written."""
    lines: list[str] = []
    for label, points in ramps:
        indent = ""
        if label:
            lines.append(f"{label}:")
            indent = "  "
        failed = (f" in {points.breaking_failed} of {points.breaking_repetitions} repetitions"
                  if points.breaking is not None and points.breaking_repetitions > 1 else "")
        median = points.repetitions > 1
        lines.append(f"{indent}breaking point: {_breaking_text(points.breaking, failed)}")
        lines.append(f"{indent}stability point: {_ok_point_text(points.stability, unit, median)}")
        lines.append(f"{indent}optimal efficiency: {_ok_point_text(points.optimal, unit, median)}")
    ordered = sorted(files, key=lambda path: _FILE_ORDER.get(Path(str(path)).suffix, len(_FILE_ORDER)))
    lines.append("wrote " + ", ".join(map(str, ordered)) if files else "wrote no file")
    if interrupted:
        lines.append("interrupted: the report covers the iterations that finished")
    return lines


class Progress(Output):
    """Silent: `--quiet` (errors and the final summary only). The base of the other two."""

    def __init__(self, line: LineFormat, out: TextIO | None = None) -> None:
        self._out = out
        self.line = line
        self.tracker: RampTracker | None = None
        self.gone = False  # the terminal could not be written (a closed pipe, a full device): silent since

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout  # looked up late, so a redirected stdout is honoured

    def say(self, text: str) -> None:
        self.printing(lambda: print(text, file=self.out, flush=True))

    def printing(self, write: Callable[[], object]) -> None:
        """Write to the terminal unless it is gone. Progress is not a result: a stdout that cannot be written
        (`| head`, `> /dev/full`) silences it for the rest of the run, which goes on and writes its files."""
        if self.gone:
            return
        try:
            write()
        except OSError as exc:
            self.gone = True
            _stdout_to_devnull(self.out)
            with contextlib.suppress(OSError):
                print(f"pgstress: could not write to stdout ({exc.strerror or exc}); the run goes on without"
                      " progress lines", file=sys.stderr, flush=True)

    def ramp_started(self, plan: RampPlan) -> None:
        """Follow one ramp: stage names and level events reach its tracker while it runs."""
        self.tracker = RampTracker(plan.title, plan.levels, plan.label, plan.done_before,
                                   repeat=plan.config.repeat, first_rep=plan.config.start_rep)
        set_stage_listener(self.tracker.on_stage)
        set_level_listener(self)
        self._begin(self.tracker)

    # the level listener (run/level_events.py): called on the measured path, so only counting and a rare line

    def phase_started(self, start: PhaseStart) -> None:
        if self.tracker is not None:
            self.tracker.level.on_phase(start)
            self._phase_line(self.tracker, start)

    def record_step(self, step: str, ok: bool) -> None:
        if self.tracker is not None and self.tracker.level.on_step(step, ok):
            self._milestone(self.tracker)

    def memory_pass_skipped(self, phase: str, why: str) -> None:
        if self.tracker is not None:
            self._skip_line(self.tracker, self.tracker.level.on_skip(phase, why))

    def row(self, plan: RampPlan, row: Row) -> None:
        assert self.tracker is not None
        self.tracker.on_row(row)
        self._row(self.tracker, row)

    def ramp_ended(self, ramp: RampResult) -> None:
        self.close()

    def finish(self, result: RunResult) -> None:
        ramps = [(ramp.plan.label, find_points(ramp.rows)) for ramp in result.ramps]
        for line in summary_lines(ramps, result.files, interrupted=result.interrupted):
            self.say(line)

    def close(self) -> None:
        if self.tracker is not None:
            set_stage_listener(None)
            set_level_listener(None)
            self._end(self.tracker)
            self.tracker = None

    def _begin(self, tracker: RampTracker) -> None:
        pass

    def _row(self, tracker: RampTracker, row: Row) -> None:
        pass

    def _end(self, tracker: RampTracker) -> None:
        pass

    def _phase_line(self, tracker: RampTracker, start: PhaseStart) -> None:
        pass

    def _milestone(self, tracker: RampTracker) -> None:
        pass

    def _skip_line(self, tracker: RampTracker, text: str) -> None:
        pass


class PlainProgress(Progress):
    """One line when a ramp starts and one per finished iteration, with elapsed time and ETA; inside a level,
    indented lines: when a phase of several records starts, when all its records pass a step, when a memory
    pass is skipped, and after HEARTBEAT_S seconds without any line (from a thread of its own)."""

    def __init__(self, line: LineFormat, out: TextIO | None = None) -> None:
        super().__init__(line, out)
        self._printing = threading.Lock()  # the heartbeat thread prints too
        self._last_line = time.monotonic()
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def say(self, text: str) -> None:
        with self._printing:
            super().say(text)
            self._last_line = time.monotonic()

    def _begin(self, tracker: RampTracker) -> None:
        self.say(f"pgstress: {tracker.title}: {count(tracker.total, 'iteration')}")
        self._stop_heartbeat.clear()
        self._heartbeat = threading.Thread(target=self._beat, args=(tracker,), name="pgstress-heartbeat",
                                           daemon=True)
        self._heartbeat.start()

    def _end(self, tracker: RampTracker) -> None:
        if self._heartbeat is not None:
            self._stop_heartbeat.set()
            self._heartbeat.join()
            self._heartbeat = None

    def _beat(self, tracker: RampTracker) -> None:
        while not self._stop_heartbeat.wait(0.25):
            if time.monotonic() - self._last_line >= HEARTBEAT_S and tracker.current_epochs is not None:
                elapsed = clock_text(tracker.elapsed_s())
                self.say(f"{tracker.level_prefix()}, {tracker.level.text()} | elapsed {elapsed}")

    def _row(self, tracker: RampTracker, row: Row) -> None:
        timing = f" | elapsed {clock_text(tracker.elapsed_s())} eta {clock_text(tracker.eta_s())}"
        self.say(_labelled(tracker, _line(self.line, tracker, row)) + timing)

    def _phase_line(self, tracker: RampTracker, start: PhaseStart) -> None:
        if start.records > 1:  # a level of one record says it all in its own line
            why = f": {start.why}" if start.why else ""
            name = phase_name(start.phase, start.memory_pass, start.records)
            self.say(f"{tracker.level_prefix()}, {name} of {start.records} records started{why}")

    def _milestone(self, tracker: RampTracker) -> None:
        start = tracker.level.start
        if start is not None and start.records > 1:
            self.say(f"{tracker.level_prefix()}, {tracker.level.text()}")

    def _skip_line(self, tracker: RampTracker, text: str) -> None:
        self.say(f"{tracker.level_prefix()}, {text}")


class LiveProgress(Progress):
    """A rich live panel on a terminal; finished iterations scroll above it as lines."""

    def __init__(self, line: LineFormat, out: TextIO | None = None, console: Any = None) -> None:
        super().__init__(line, out)
        from rich.console import Console

        self.console = console or Console(file=out, highlight=False)
        self._live: Any = None

    def say(self, text: str) -> None:
        self.printing(lambda: self.console.print(text, markup=False))

    def _begin(self, tracker: RampTracker) -> None:
        from rich.live import Live
        from rich.markup import escape

        self.printing(lambda: self.console.print(
            f"[bold]pgstress[/bold]: {escape(tracker.title)}: {count(tracker.total, 'iteration')}"))
        self._live = Live(console=self.console, refresh_per_second=4, transient=True,
                          get_renderable=lambda: self.panel(tracker))
        self._live.start()

    def _row(self, tracker: RampTracker, row: Row) -> None:
        from rich.text import Text

        text = Text(_labelled(tracker, _line(self.line, tracker, row)))  # plain text: messages may hold brackets
        start = text.plain.find(f" {row.status}") + 1
        if start > 0:
            text.stylize("green" if row.status == OK else "red", start, start + len(row.status))
        self.printing(lambda: self.console.print(text, highlight=False))

    def _end(self, tracker: RampTracker) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @staticmethod
    def panel(tracker: RampTracker) -> Any:
        from rich.console import Group
        from rich.markup import escape
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        done = tracker.done_before + tracker.levels_done
        grid = Table.grid(padding=(0, 1))
        grid.add_row(ProgressBar(total=max(tracker.total, 1), completed=done, width=40),
                     f"{done:,}/{tracker.total:,} iterations")
        epochs = tracker.current_epochs
        rep = f", repetition {tracker.current_rep} of {tracker.repeat}" if tracker.repeat > 1 else ""
        now = (f"iteration {done + 1:,} of {tracker.total:,}: {epochs:,} epochs{rep},"
               f" [bold]{tracker.phase_text}[/bold]" if epochs is not None else "finishing")
        lines: list[Any] = [grid, f"now:  {now}"]
        if epochs is not None:
            lines.append(f"      {escape(tracker.level.text())}")
            if tracker.level.why:
                lines.append(f"      why the memory pass: {escape(tracker.level.why)}")
            lines += [f"      {escape(note)}" for note in tracker.level.skipped]
        if tracker.rows:
            last = tracker.rows[-1]
            colour = "green" if last.status == OK else "red"
            eps = f", {last.efficiency:,.0f} epochs/s" if last.efficiency else ""
            status = f"[{colour}]{last.status}[/{colour}]"
            lines.append(f"last: iteration {last.iter}, {last.epochs:,} epochs, {status}{eps}")
        lines.append(f"time: elapsed {clock_text(tracker.elapsed_s())}, ETA {clock_text(tracker.eta_s())}")
        return Group(*lines)


def _stdout_to_devnull(stream: TextIO) -> None:
    """Point a stdout that failed at /dev/null, so what its buffer still holds fails nowhere at exit."""
    if stream is not sys.stdout:
        return
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def make_progress(*, quiet: bool, line: LineFormat, out: TextIO | None = None) -> Progress:
    """The terminal output for this run: silent with --quiet, live on a terminal, plain lines otherwise."""
    stream = out or sys.stdout
    if quiet:
        return Progress(line, out)
    if stream.isatty():
        return LiveProgress(line, out)
    return PlainProgress(line, out)
