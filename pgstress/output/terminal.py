"""The terminal output: what the user sees while a run goes on, and the summary at its end.

Three faces behind one interface: a live rich display on a terminal, one plain line per
iteration when stdout is not a terminal (CI logs, `| tee`), and silence with `--quiet`
(errors still go to stderr, the final summary is still printed). Each mode has its own
one-line form of a row (output/progress_lines.py); where the ramp is and its ETA is
output/ramp_tracker.py, the final words output/summary.py. Inside a level (output/level_progress.py) the
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
from collections.abc import Callable
from typing import Any, TextIO

from pgstress.output.analysis import find_points
from pgstress.output.base import Output, RampPlan, RampResult, RunResult
from pgstress.output.level_progress import HEARTBEAT_S, phase_name
from pgstress.output.progress_lines import LineFormat, labelled, row_line
from pgstress.output.ramp_tracker import RampTracker, clock_text
from pgstress.output.summary import summary_lines
from pgstress.output.words import count
from pgstress.rows import OK, Row
from pgstress.run.level_events import LevelEvents, PhaseStart


class Progress(Output):
    """Silent: `--quiet` (errors and the final summary only). The base of the other two."""

    def __init__(self, line: LineFormat, out: TextIO | None = None) -> None:
        self._out = out
        self.line = line
        self.tracker: RampTracker | None = None
        self.events: LevelEvents | None = None  # the ramp's events, listened to while it runs
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
        self.events = plan.events
        self.events.listen(self)
        self._begin(self.tracker)

    # the level listener (run/level_events.py): called on the measured path, so only counting and a rare line

    def stage_entered(self, name: str) -> None:
        if self.tracker is not None:
            self.tracker.on_stage(name)

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
        if self.events is not None:
            self.events.listen(None)
            self.events = None
        if self.tracker is not None:
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
        self.say(labelled(tracker, row_line(self.line, tracker, row)) + timing)

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

        text = Text(labelled(tracker, row_line(self.line, tracker, row)))  # plain text: messages may hold brackets
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
