"""Which levels get the memory pass under `--memory-trace auto`: the planned ones, while the passes stay within
their share of the ramp's time; `on` takes every pass, `off` none."""

from __future__ import annotations

import pytest
from helpers import FakeClock

from pgstress.config import RunConfig
from pgstress.run.trace_budget import FIRST_RATIO, FREE_S, MAX_SHARE, MAX_SHARE_SAMPLED, TraceBudget, max_share

SHORT = {"start_epochs": 1000, "end_epochs": 3000, "step_epochs": 1000}  # 3 levels: every one planned


def budget(clock: FakeClock, memory_trace: str = "auto") -> TraceBudget:
    return TraceBudget(RunConfig(memory_trace=memory_trace, **SHORT), now=clock)


def test_cheap_passes_are_always_taken_within_the_free_seconds() -> None:
    clock = FakeClock(0.0)
    trace = budget(clock)
    clock.t = 0.5
    runs, why = trace.decide(1, "write", timed_s=0.5)  # estimated 2 s of pass after 0.5 s of ramp: 80 %, but free
    assert runs and "every level of a ramp of up to 20" in why and "about 2 s" in why
    trace.spent(1, "write", 0.5, 1.5)
    assert trace.log.traced == {"write": [1], "read": []} and trace.log.pass_s == 1.5


def test_an_expensive_pass_is_skipped_and_says_why() -> None:
    clock = FakeClock(0.0)
    trace = budget(clock)
    clock.t = 11.0  # the seed's first level at C = 100: an 11 s write batch
    runs, why = trace.decide(1, "write", timed_s=11.0)
    estimate = FIRST_RATIO * 11.0
    assert not runs
    assert why == (f"it would take about {estimate:,.0f} s, bringing the memory passes to {estimate:,.0f} s,"
                   f" {estimate / (11.0 + estimate):.0%} of the ramp's time; --memory-trace auto allows them"
                   f" {MAX_SHARE:.0%} of it, or the first {FREE_S:.0f} s whatever the share"
                   " (--memory-trace on takes every pass)")
    assert trace.log.skipped == [(1, "write", estimate)] and trace.log.traced["write"] == []


def test_a_pass_is_taken_once_the_ramp_has_run_long_enough() -> None:
    clock = FakeClock(0.0)
    trace = budget(clock)
    clock.t = 100.0
    estimate = FIRST_RATIO * 8.0  # 32 s against 100 s of ramp: 24 % once taken
    assert estimate / (100.0 + estimate) <= MAX_SHARE
    assert trace.decide(2, "read", timed_s=8.0)[0]


def test_the_ratio_is_learned_from_the_last_pass_of_that_phase() -> None:
    clock = FakeClock(0.0)
    trace = budget(clock)
    trace.spent(1, "write", timed_s=1.0, pass_s=2.0)
    assert trace.estimate_s("write", 10.0) == 20.0
    assert trace.estimate_s("read", 10.0) == FIRST_RATIO * 10.0


def test_levels_not_planned_have_no_pass_and_no_reason() -> None:
    clock = FakeClock(0.0)
    trace = TraceBudget(RunConfig(), now=clock)  # the default 100-level ramp plans 20, 40, 60, 80, 100
    assert trace.decide(19, "write", 0.1) == (False, "")
    assert trace.decide(20, "write", 0.1)[1].startswith("--memory-trace auto samples every 20th level and the last")
    assert trace.log.skipped == []


@pytest.mark.parametrize(("mode", "runs"), [("on", True), ("off", False)])
def test_on_takes_every_pass_and_off_none(mode: str, runs: bool) -> None:
    clock = FakeClock(0.0)
    trace = budget(clock, memory_trace=mode)
    clock.t = 1.0
    assert trace.decide(1, "write", timed_s=1000.0)[0] is runs


def test_the_log_says_what_share_the_passes_took() -> None:
    clock = FakeClock(0.0)
    trace = budget(clock)
    trace.spent(1, "write", 1.0, FREE_S / 2)
    clock.t = 4 * FREE_S
    log = trace.finish()
    assert log.ramp_s == 4 * FREE_S and log.share == pytest.approx(1 / 8)


def test_a_long_ramp_keeps_its_sampled_passes_within_a_tenth() -> None:
    clock = FakeClock(0.0)
    long_ramp = RunConfig(start_epochs=10_000, end_epochs=1_000_000, step_epochs=10_000)
    trace = TraceBudget(long_ramp, now=clock)
    clock.t = 100.0
    assert max_share(long_ramp) == MAX_SHARE_SAMPLED == 0.10
    runs, why = trace.decide(20, "write", timed_s=4.0)  # 16 s more: 14 % of the ramp's time
    assert not runs and "allows them 10% of it" in why
    assert trace.decide(20, "read", timed_s=2.0)[0]  # 8 s more: 7 %
