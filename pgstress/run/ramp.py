"""The loop over the epoch ramp that both modes share: each row out at once, the stop rule, Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pgstress import interrupts
from pgstress.rows import OK, Row


class StopRamp(Exception):
    """Raised by a level that must be the ramp's last: its row is recorded, then the ramp ends.

    `reason` completes the sentence "The ramp ..." (e.g. "was stopped by the client memory guard (...)").
    """

    def __init__(self, row: Row, reason: str) -> None:
        super().__init__(reason)
        self.row = row
        self.reason = reason


class EndRamp(Exception):
    """Raised by `on_row` when the row was taken but the ramp cannot go on (an output failed to write it).

    `reason` completes the sentence "The ramp ..." like StopRamp's.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RampOutcome:
    rows: list[Row] = field(default_factory=list)
    interrupted: bool = False
    stop_reason: str | None = None
    planned_levels: int = 0


def run_ramp(
    levels: Sequence[int],
    run_level: Callable[[int, int, int], Row],
    on_row: Callable[[Row], None],
    *,
    max_consecutive_failures: int,
    first_iter: int = 1,
    repeat: int = 1,
    first_rep: int = 1,
) -> RampOutcome:
    """Run each level `repeat` times in a row, called as run_level(iteration, epochs, rep); every finished row
    goes to `on_row` at once. The first level starts at repetition `first_rep` (a resumed size cut short).

    Stops after `max_consecutive_failures` failed levels in a row (a level failed when any of its repetitions
    did; levels never run are not invented), after a level that raises StopRamp (its row is recorded), when
    `on_row` raises EndRamp, or on a stop signal, where the repetition in progress is abandoned and not recorded.
    """
    outcome = RampOutcome(planned_levels=len(levels))
    failures_in_a_row = 0
    try:
        for offset, epochs in enumerate(levels):
            all_ok = True
            for rep in range(first_rep if offset == 0 else 1, repeat + 1):
                if interrupts.stop_requested():  # a signal counted while a section had to finish first
                    raise KeyboardInterrupt
                try:
                    row = run_level(first_iter + offset, epochs, rep)
                except StopRamp as stop:
                    row, outcome.stop_reason = stop.row, stop.reason
                outcome.rows.append(row)
                try:
                    on_row(row)
                except EndRamp as end:
                    outcome.stop_reason = end.reason
                all_ok = all_ok and row.status == OK
                if outcome.stop_reason is not None:
                    break
            if outcome.stop_reason is not None:
                break
            failures_in_a_row = 0 if all_ok else failures_in_a_row + 1
            if failures_in_a_row >= max_consecutive_failures:
                outcome.stop_reason = (
                    f"stopped after {failures_in_a_row} consecutive failed iterations"
                    f" (--max-consecutive-failures {max_consecutive_failures})"
                )
                break
    except KeyboardInterrupt:
        outcome.interrupted = True
    return outcome
