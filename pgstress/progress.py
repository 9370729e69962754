"""What the user sees while a run goes on, and the summary at its end.

Three faces behind one interface: a live rich display on a terminal, one plain line per
iteration when stdout is not a terminal (CI logs, `| tee`), and silence with `--quiet`
(errors still go to stderr, the final summary is still printed).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from pgstress.measure import TRACE_END, TRACE_START, stage_listener

# The codecs interleave generation and encoding chunk by chunk, so they are one phase to the eye;
# `verify` (hashing for the read-back check) runs inside both and is not shown as a phase of its own.
PHASE_NAMES = {"gen": "generate + encode", "encode": "generate + encode", "insert": "insert", "select": "select",
               "decode": "decode"}  # fmt: skip
_FIT_WINDOW = 6  # recent iterations the ETA's cost-per-size line is fitted to: time grows faster than size


def estimate_remaining_s(done: Sequence[tuple[int, float]], remaining: Sequence[int]) -> float | None:
    """Seconds the `remaining` levels should take, from (epochs, seconds) of levels already run.

    Fits seconds = a + b * epochs over the most recent levels (least squares), so the growing cost
    of bigger records is extrapolated instead of averaged away; with too little to fit, assumes
    the cost per epoch seen so far.
    """
    if not remaining:
        return 0.0
    if not done:
        return None
    recent = list(done)[-_FIT_WINDOW:]
    xs = [float(e) for e, _ in recent]
    ys = [s for _, s in recent]
    proportional = sum(ys) / sum(xs) * sum(remaining)
    if len(set(xs)) < 2:
        return proportional
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    if slope <= 0:
        return proportional
    intercept = mean_y - slope * mean_x
    return sum(max(intercept + slope * e, 0.0) for e in remaining)


def clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass
class RampTracker:
    """Where a ramp is: levels done, the phase running now, time spent and time to go."""

    title: str
    levels: list[int]
    label: str = ""  # names the ramp on each line when several run (one per payload format)
    done_before: int = 0  # levels of this ramp finished by an earlier run (--resume): counted, not re-run
    now: Callable[[], float] = time.monotonic
    rows: list[Any] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)  # wall seconds of each finished level
    phase: str = "starting"
    tracing: bool = False

    def __post_init__(self) -> None:
        self.started = self.now()
        self._level_started = self.started

    def on_stage(self, name: str) -> None:
        if name == TRACE_START:
            self.tracing = True
        elif name == TRACE_END:
            self.tracing = False
        elif name in PHASE_NAMES:
            self.phase = PHASE_NAMES[name]

    def on_row(self, row: Any) -> None:
        finished = self.now()
        self.rows.append(row)
        self.durations.append(finished - self._level_started)
        self._level_started = finished
        self.phase, self.tracing = "starting", False

    @property
    def total(self) -> int:
        return self.done_before + len(self.levels)

    @property
    def current_epochs(self) -> int | None:
        done = len(self.rows)
        return self.levels[done] if done < len(self.levels) else None

    @property
    def phase_text(self) -> str:
        return f"{self.phase} (memory pass)" if self.tracing else self.phase

    def elapsed_s(self) -> float:
        return self.now() - self.started

    def eta_s(self) -> float | None:
        """Time left for this ramp; the level in progress counts with what it has already spent."""
        pairs = [(row.epochs, spent) for row, spent in zip(self.rows, self.durations) if row.status == "OK"]
        if not pairs:
            pairs = [(row.epochs, spent) for row, spent in zip(self.rows, self.durations)]
        remaining = self.levels[len(self.rows):]
        estimate = estimate_remaining_s(pairs, remaining)
        if estimate is None:
            return None
        return max(estimate - (self.now() - self._level_started), 0.0)


def progress_line(row: Any, total: int) -> str:
    """One finished sync iteration in one line: what CI logs and `| tee` get."""
    eps = getattr(row, "eps", None)
    timing = f" write {row.write_s:.3f}s read {row.read_s:.3f}s eps {eps:,.0f}" if eps else ""
    client_mb = getattr(row, "client_payload_mb", None)
    size = f" {client_mb:.2f} MiB" if client_mb is not None else ""
    error = f" - {row.error}" if row.error else ""
    return f"[{row.iter}/{total}] {row.epochs:,} epochs {row.status}{size}{timing}{error}"


LineFormat = Callable[[Any, int], str]  # (row, levels in the ramp) -> one line; the async runner has its own


def _labelled(tracker: RampTracker, line: str) -> str:
    return f"{tracker.label} {line}" if tracker.label else line


class Progress:
    """Silent: `--quiet` (errors and the final summary only). The base of the other two."""

    def __init__(self, out: TextIO | None = None, line: LineFormat = progress_line) -> None:
        self._out = out
        self.line = line

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout  # looked up late, so a redirected stdout is honoured

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    @contextmanager
    def ramp(self, title: str, levels: list[int], label: str = "", done_before: int = 0) -> Iterator[RampTracker]:
        """Follow one ramp (`levels`: those still to run): stage names reach the tracker while it runs;
        call row() per finished row."""
        tracker = RampTracker(title, list(levels), label, done_before)
        self._begin(tracker)
        try:
            with stage_listener(tracker.on_stage):
                yield tracker
        finally:
            self._end(tracker)

    def row(self, tracker: RampTracker, row: Any) -> None:
        tracker.on_row(row)
        self._row(tracker, row)

    def summary(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.say(line)

    def _begin(self, tracker: RampTracker) -> None:
        pass

    def _row(self, tracker: RampTracker, row: Any) -> None:
        pass

    def _end(self, tracker: RampTracker) -> None:
        pass


class PlainProgress(Progress):
    """One line when a ramp starts and one per finished iteration, with elapsed time and ETA."""

    def _begin(self, tracker: RampTracker) -> None:
        self.say(f"pgstress: {tracker.title}: {tracker.total} iterations")

    def _row(self, tracker: RampTracker, row: Any) -> None:
        timing = f" | elapsed {clock_text(tracker.elapsed_s())} eta {clock_text(tracker.eta_s())}"
        self.say(_labelled(tracker, self.line(row, tracker.total)) + timing)


class LiveProgress(Progress):
    """A rich live panel on a terminal; finished iterations scroll above it as lines."""

    def __init__(self, out: TextIO | None = None, line: LineFormat = progress_line, console: Any = None) -> None:
        super().__init__(out, line)
        from rich.console import Console

        self.console = console or Console(file=out, highlight=False)
        self._live: Any = None

    def say(self, text: str) -> None:
        self.console.print(text, markup=False)

    def _begin(self, tracker: RampTracker) -> None:
        from rich.live import Live
        from rich.markup import escape

        self.console.print(f"[bold]pgstress[/bold]: {escape(tracker.title)}: {tracker.total} iterations")
        self._live = Live(console=self.console, refresh_per_second=4, transient=True,
                          get_renderable=lambda: self.panel(tracker))
        self._live.start()

    def _row(self, tracker: RampTracker, row: Any) -> None:
        from rich.text import Text

        text = Text(_labelled(tracker, self.line(row, tracker.total)))  # plain text: messages may hold brackets
        start = text.plain.find(f" {row.status}") + 1
        if start > 0:
            text.stylize("green" if row.status == "OK" else "red", start, start + len(row.status))
        self.console.print(text, highlight=False)

    def _end(self, tracker: RampTracker) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @staticmethod
    def panel(tracker: RampTracker) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        done = tracker.done_before + len(tracker.rows)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(ProgressBar(total=max(tracker.total, 1), completed=done, width=40),
                     f"{done}/{tracker.total} iterations")
        epochs = tracker.current_epochs
        now = (f"iteration {done + 1} of {tracker.total}: {epochs:,} epochs, [bold]{tracker.phase_text}[/bold]"
               if epochs is not None else "finishing")
        lines: list[Any] = [grid, f"now:  {now}"]
        if tracker.rows:
            last = tracker.rows[-1]
            colour = "green" if last.status == "OK" else "red"
            rate = getattr(last, "efficiency", None)
            eps = f", {rate:,.0f} epochs/s" if rate else ""
            status = f"[{colour}]{last.status}[/{colour}]"
            lines.append(f"last: iteration {last.iter}, {last.epochs:,} epochs, {status}{eps}")
        lines.append(f"time: elapsed {clock_text(tracker.elapsed_s())}, ETA {clock_text(tracker.eta_s())}")
        return Group(*lines)


def make_progress(*, quiet: bool, out: TextIO | None = None, line: LineFormat = progress_line) -> Progress:
    stream = out or sys.stdout
    if quiet:
        return Progress(out, line)
    if stream.isatty():
        return LiveProgress(out, line)
    return PlainProgress(out, line)


@dataclass
class RampSummary:
    """One ramp's three points, for the final summary (label: the format in a multi-format run)."""

    label: str
    points: Any  # analysis.Points
    unit: str = "epochs/s"


def _breaking_text(row: Any | None) -> str:
    if row is None:
        return "none reached"
    error = f" - {row.error}" if row.error else ""
    return f"iteration {row.iter} ({row.epochs:,} epochs, {row.status}){error}"


def _ok_point_text(row: Any | None, unit: str) -> str:
    if row is None:
        return "none"
    efficiency = getattr(row, "efficiency", None)
    rate = f", {efficiency:,.0f} {unit}" if efficiency is not None else ""
    return f"{row.epochs:,} epochs (iteration {row.iter}{rate})"


def summary_lines(ramps: Sequence[RampSummary], files: Sequence[str], *, interrupted: bool) -> list[str]:
    """The final words on the terminal: the three points of each ramp and every file written."""
    lines: list[str] = []
    for ramp in ramps:
        indent = ""
        if ramp.label:
            lines.append(f"{ramp.label}:")
            indent = "  "
        p = ramp.points
        lines.append(f"{indent}breaking point: {_breaking_text(p.breaking)}")
        lines.append(f"{indent}stability point: {_ok_point_text(p.stability, ramp.unit)}")
        lines.append(f"{indent}optimal efficiency: {_ok_point_text(p.optimal, ramp.unit)}")
    lines.append("wrote " + ", ".join(files))
    if interrupted:
        lines.append("interrupted: the report covers the iterations that finished")
    return lines
