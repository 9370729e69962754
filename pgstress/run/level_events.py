"""What a level is doing while it runs, told to whoever shows progress (output/terminal.py).

A level of C records can run for many minutes; these events let the terminal say where it is. The
iteration announces each phase as it starts (the timed write and read batches, and the untimed memory
pass with why it runs, or why it was skipped); the fan-out announces each record as it passes a step
(encoded, then stored; fetched, then verified); each record's stage clock announces its stages. One
listener at a time; it is called on the measured path (and from codec threads), so it must be cheap, and it
must not print inside a timed phase more than a line now and then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

WRITE, READ = "write", "read"
ACCESS = "access"  # --access: the range read, metric read and append after the full read, each timed on its own
# A record's steps, in order within its phase: the last one ends the record's part of the phase.
ENCODED, STORED = "encoded", "stored"  # write: generated + encoded; in the table
FETCHED, VERIFIED = "fetched", "verified"  # read: selected; decoded and verified
STEPS = {WRITE: (ENCODED, STORED), READ: (FETCHED, VERIFIED), ACCESS: ()}  # the access phases count no steps


@dataclass(frozen=True)
class PhaseStart:
    phase: str  # WRITE, READ or ACCESS
    records: int  # records the phase handles
    memory_pass: bool = False  # the untimed tracemalloc repeat of the phase's client work
    why: str = ""  # why the memory pass runs


class LevelListener(Protocol):
    def phase_started(self, start: PhaseStart) -> None: ...

    def record_step(self, step: str, ok: bool) -> None:
        """A record passed `step` (ok), or failed in it."""
        ...

    def memory_pass_skipped(self, phase: str, why: str) -> None: ...

    def stage_entered(self, name: str) -> None:
        """A record's stage began (gen, encode, insert, select, decode, verify), or a memory pass
        (TRACE_START) began or ended (TRACE_END)."""
        ...


TRACE_START, TRACE_END = "trace-start", "trace-end"


class LevelEvents:
    """The run's events, handed down from the session to the iteration, the drivers and each record's stage
    clock, and told to the one listener that follows the ramp now (the terminal); silent without one."""

    def __init__(self) -> None:
        self.listener: LevelListener | None = None

    def listen(self, listener: LevelListener | None) -> None:
        """From now on tell `listener` (None: nobody) what each level does."""
        self.listener = listener

    def phase_started(self, start: PhaseStart) -> None:
        if self.listener is not None:
            self.listener.phase_started(start)

    def record_step(self, step: str, ok: bool = True) -> None:
        if self.listener is not None:
            self.listener.record_step(step, ok)

    def memory_pass_skipped(self, phase: str, why: str) -> None:
        if self.listener is not None:
            self.listener.memory_pass_skipped(phase, why)

    def stage_entered(self, name: str) -> None:
        if self.listener is not None:
            self.listener.stage_entered(name)


SILENT = LevelEvents()  # for work nobody follows (bench/, a driver made without a session); never listened to
