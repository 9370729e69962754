"""Which levels get the untimed memory pass, and what the passes cost.

The pass repeats a phase's client work with tracemalloc on, which slows allocation 2.5-6x. In sync
mode that work is part of an iteration; at C = 100 in async mode a level is nearly all client work, so
its pass costs about 4x the whole level (measured: a 21 s level of 100 x 10,000 epochs took 98 s with
both passes). `--memory-trace on` takes every pass and `off` none. `auto` takes the passes of the
levels `RunConfig.traces_memory` plans (every level of a ramp of up to 20, else about five ending with
the last), each only while the ramp's passes, this one included at its estimated cost, stay within
max_share() of the ramp's time so far (MAX_SHARE on a ramp of up to 20 levels, where every level is
planned; MAX_SHARE_SAMPLED on a longer one, whose passes are samples anyway); the first FREE_S seconds
of passes are always allowed, so a short, cheap ramp is traced in full. A pass always covers all C
records of its level: a skipped pass leaves that level's peak empty rather than measuring fewer records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pgstress.config import AUTO_TRACE_ALL_UP_TO, RunConfig

MAX_SHARE = 0.25  # of a ramp's wall time that `auto` lets memory passes take, on a ramp whose every level is planned
MAX_SHARE_SAMPLED = 0.10  # on a longer ramp, where `auto` plans about five passes
FREE_S = 10.0  # seconds of passes always allowed: cheap enough not to matter on any ramp
FIRST_RATIO = 4.0  # a pass's time over its timed phase's, until one is measured (3-4x in sync, ~4x at C = 100)


@dataclass
class TraceLog:
    """What the memory passes of one ramp (of this run's part of it, when resumed) did and cost."""

    traced: dict[str, list[int]] = field(default_factory=lambda: {"write": [], "read": []})  # phase -> levels
    skipped: list[tuple[int, str, float]] = field(default_factory=list)  # (level, phase, estimated seconds)
    pass_s: float = 0.0  # wall seconds spent in passes
    ramp_s: float = 0.0  # wall seconds of the ramp so far, passes included

    @property
    def share(self) -> float | None:
        return self.pass_s / self.ramp_s if self.ramp_s > 0 else None


def max_share(config: RunConfig) -> float:
    """The share of the ramp's time `auto` lets the memory passes take."""
    return MAX_SHARE if config.trace_stride == 1 else MAX_SHARE_SAMPLED


class TraceBudget:
    """Decides, right after each timed phase, whether its memory pass runs; keeps the TraceLog."""

    def __init__(self, config: RunConfig, now: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.now = now
        self.started = now()
        self.log = TraceLog()
        self._ratio: dict[str, float] = {}  # phase -> pass seconds per timed second, from its last pass

    def planned_because(self, iteration: int) -> str | None:
        """Why `iteration` is planned for the pass, or None when it is not."""
        config = self.config
        if not config.traces_memory(iteration):
            return None
        if config.memory_trace == "on":
            return "--memory-trace on traces every level"
        if config.trace_stride == 1:
            return f"--memory-trace auto traces every level of a ramp of up to {AUTO_TRACE_ALL_UP_TO}"
        return f"--memory-trace auto samples every {config.trace_stride}th level and the last"

    def estimate_s(self, phase: str, timed_s: float) -> float:
        return self._ratio.get(phase, FIRST_RATIO) * timed_s

    def decide(self, iteration: int, phase: str, timed_s: float) -> tuple[bool, str]:
        """Whether the pass of `phase` runs now, after its timed phase took `timed_s`; and why (not)."""
        planned = self.planned_because(iteration)
        if planned is None:
            return False, ""
        estimate = self.estimate_s(phase, timed_s)
        elapsed = self.now() - self.started
        if self.config.memory_trace == "on":
            return True, planned
        limit = max_share(self.config)
        allowed = max(FREE_S, limit * (elapsed + estimate))
        after = self.log.pass_s + estimate
        if after > allowed:
            self.log.skipped.append((iteration, phase, estimate))
            return False, (f"it would take about {estimate:,.0f} s, bringing the memory passes to {after:,.0f} s,"
                           f" {after / (elapsed + estimate):.0%} of the ramp's time; --memory-trace auto allows them"
                           f" {limit:.0%} of it, or the first {FREE_S:.0f} s whatever the share"
                           " (--memory-trace on takes every pass)")
        share = f"{self.log.pass_s / elapsed:.0%}" if elapsed > 0 else "0%"
        return True, f"{planned}; about {estimate:,.0f} s, passes so far {share} of the ramp's time"

    def spent(self, iteration: int, phase: str, timed_s: float, pass_s: float) -> None:
        """A pass of `phase` ran for `pass_s` after a timed phase of `timed_s`."""
        self.log.traced[phase].append(iteration)
        self.log.pass_s += pass_s
        if timed_s > 0:
            self._ratio[phase] = pass_s / timed_s

    def finish(self) -> TraceLog:
        self.log.ramp_s = self.now() - self.started
        return self.log
