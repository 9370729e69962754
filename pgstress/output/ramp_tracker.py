"""Where a ramp is while it runs: levels done, the phase running now, time spent, and the time to go, estimated
from the cost of the levels run so far."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pgstress.output.analysis import fit_line
from pgstress.output.level_progress import LevelState
from pgstress.rows import OK, Row
from pgstress.run.level_events import TRACE_END, TRACE_START

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
