"""What every output is given, and the one small interface each implements.

The session calls, in this order: `begin` once, before any ramp; for each ramp (one, or one per
payload format with `--payload-format all`) `ramp_started`, `row` as soon as each row exists,
`ramp_ended`; `finish` once with the whole run; `close` always, also after an error. Before any of
that, before anything is read or written, the command asks every output for `planned_files`: the
files it may write, checked against each other and against the inputs (output/paths.py). An output
overrides only what it needs. Outputs run in their registration order (session.py), so one that
finishes later sees what earlier ones produced (`RunResult.files`, `RunResult.charts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgstress import interrupts
from pgstress.config import RunConfig
from pgstress.host import HostInfo
from pgstress.output.paths import PlannedFile
from pgstress.rows import Row
from pgstress.run.level_events import LevelEvents
from pgstress.run.ramp import RampOutcome
from pgstress.run.trace_budget import TraceLog
from pgstress.target import ServerDetails, ServerInfo, StandbyInfo


@dataclass(frozen=True)
class RunContext:
    """What is known before the first iteration."""

    config: RunConfig
    host: HostInfo
    server: ServerInfo
    server_details: ServerDetails
    standbys: tuple[StandbyInfo, ...] = ()  # the standbys the run measured (--standby-dsn, --standby embedded)


@dataclass(frozen=True)
class RampPlan:
    """One ramp about to run: its own configuration (own table with `all`), and how progress names it."""

    config: RunConfig
    title: str
    label: str = ""  # the format, when several ramps run
    levels: Sequence[int] = ()  # the levels still to run
    done_before: int = 0  # levels an earlier run already measured (--resume)
    previous: Sequence[Row] = ()  # their rows, read back from the CSV
    events: LevelEvents = field(default_factory=LevelEvents)  # what its levels do as they run, for live progress


@dataclass
class RampResult:
    """One ramp as it ended: every row (a resumed ramp's earlier rows first) and the table's final size."""

    plan: RampPlan
    outcome: RampOutcome
    table_bytes: int | None = None
    details: ServerDetails | None = None  # the table's payload column settings
    memory_limit_mb: float | None = None  # the memory guard's limit, where the mode has one
    server_memory: str | None = None  # what of the server the memory guard counted (run/server_memory.py)
    memory_passes: TraceLog | None = None  # which levels had the memory pass, and its cost (None: none ran)

    @property
    def rows(self) -> list[Row]:
        return self.outcome.rows

    @property
    def config(self) -> RunConfig:
        return self.plan.config


@dataclass
class RunResult:
    """The whole run, for the outputs' `finish`."""

    context: RunContext
    ramps: list[RampResult] = field(default_factory=list)
    finished_at: str = ""
    files: list[Path] = field(default_factory=list)  # written so far, in order
    charts: list[Any] = field(default_factory=list)  # output.charts.PlottedChart, drawn before the report
    charts_not_drawn: list[str] = field(default_factory=list)  # titles of charts without a single point
    failed_outputs: list[str] = field(default_factory=list)  # one line per file that could not be written
    stopped: bool = False  # a stop signal outside any ramp's levels (between ramps, before the first)
    reported_interrupted: bool | None = None  # what the report says, once it is written: that stands

    @property
    def config(self) -> RunConfig:
        return self.context.config

    @property
    def interrupted(self) -> bool:
        """Stopped by a signal: during a ramp, between ramps, or while the outputs finished up to the report.

        A signal after the report was written (the summary, the server's stop) changes nothing: the run
        had finished, and the exit status agrees with the report.
        """
        if self.reported_interrupted is not None:
            return self.reported_interrupted
        return self.stopped or interrupts.stop_requested() or any(ramp.outcome.interrupted for ramp in self.ramps)

    @property
    def rows(self) -> list[Row]:
        return [row for ramp in self.ramps for row in ramp.rows]


class Output:
    """One thing a run produces (a file, the terminal). Every method does nothing unless overridden."""

    def planned_files(self) -> list[PlannedFile]:
        """Every file this output may write, with the option that names it: none unless overridden."""
        return []

    def begin(self, context: RunContext) -> None:
        """Before the first ramp."""

    def ramp_started(self, plan: RampPlan) -> None:
        """A ramp begins."""

    def row(self, plan: RampPlan, row: Row) -> None:
        """A row is finished; called at once, before the next iteration starts."""

    def ramp_ended(self, ramp: RampResult) -> None:
        """A ramp ended (finished, stopped, or interrupted)."""

    def finish(self, result: RunResult) -> None:
        """The run is over: write what is written from the whole run."""

    def close(self) -> None:
        """Release what the output holds; called after finish, and also when the run failed."""
