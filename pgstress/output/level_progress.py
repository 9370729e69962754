"""Where the level in progress is: its phase, how many of its records passed each step, the memory pass and why.

Fed by the events of run/level_events.py (from the event loop and the iteration), read by the live
panel's refresh thread and by the plain face's heartbeat, so every update and every read holds a lock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pgstress.run.level_events import ACCESS, STEPS, WRITE, PhaseStart

HEARTBEAT_S = 5.0  # the plain face says where a level is after this long without a line


def phase_name(phase: str, memory_pass: bool, records: int) -> str:
    """'write batch' (of C records), 'write phase' (of one), the memory pass of either, or 'access phases'."""
    if phase == ACCESS:
        return "access phases"
    name = f"{'write' if phase == WRITE else 'read'} {'batch' if records > 1 else 'phase'}"
    return f"memory pass of the {name} (untimed, tracemalloc)" if memory_pass else name


def skipped_text(phase: str, records: int, why: str) -> str:
    return f"memory pass of the {phase_name(phase, False, records)} skipped: {why}"


@dataclass
class LevelState:
    """The running level's phase and its records' progress through the phase's steps."""

    now: Callable[[], float] = time.monotonic
    start: PhaseStart | None = None  # None: no phase has started in this level yet
    started_at: float = 0.0
    done: Counter[str] = field(default_factory=Counter)  # step -> records that passed it
    failed: int = 0
    skipped: list[str] = field(default_factory=list)  # why a memory pass of this level did not run
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_phase(self, start: PhaseStart) -> None:
        with self._lock:
            self.start, self.started_at = start, self.now()
            self.done, self.failed = Counter(), 0

    def on_step(self, step: str, ok: bool) -> bool:
        """Count a record's step; True at a milestone: every record of the phase has passed a step that is not
        its last (all encoded, the rest is the server's; all fetched, the rest is decoding). The last step
        ends the phase, which the next phase's start says."""
        with self._lock:
            if not ok:
                self.failed += 1
                return False
            self.done[step] += 1
            start = self.start
            return (start is not None and self.done[step] == start.records and not start.memory_pass
                    and step in STEPS[start.phase][:-1])

    def on_skip(self, phase: str, why: str) -> str:
        """Keep why a memory pass of this level was skipped; returns it as a line's text."""
        with self._lock:
            text = skipped_text(phase, self.start.records if self.start is not None else 0, why)
            self.skipped.append(text)
            return text

    def reset(self) -> None:
        with self._lock:
            self.start, self.done, self.failed, self.skipped = None, Counter(), 0, []

    @property
    def why(self) -> str:
        start = self.start
        return start.why if start is not None and start.memory_pass else ""

    def text(self) -> str:
        """E.g. 'write batch: 37/100 encoded, 35/100 stored, 1 failed, 12 s in it'."""
        with self._lock:
            start = self.start
            if start is None:
                return "preparing (connections checked, table emptied)"
            steps = STEPS[start.phase][:1] if start.memory_pass and start.phase == WRITE else STEPS[start.phase]
            # One record (sync mode, C = 1): its stage says where it is, and its line says the rest.
            counts = "".join(f"{self.done[step]}/{start.records} {step}, " for step in steps) \
                if start.records > 1 else ""
            failed = f"{self.failed} failed, " if self.failed else ""
            spent = self.now() - self.started_at
            return f"{phase_name(start.phase, start.memory_pass, start.records)}: {counts}{failed}{spent:,.1f} s in it"
