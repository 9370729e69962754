"""The report's account of the untimed memory passes: which levels had one, which were skipped, what they cost."""

from __future__ import annotations

from collections.abc import Sequence

from pgstress.config import RunConfig
from pgstress.output.base import RampResult
from pgstress.run.trace_budget import FREE_S, max_share


def levels_text(levels: Sequence[int]) -> str:
    """1, 2, 3, 5, 7, 8 -> '1-3, 5, 7-8'."""
    runs: list[list[int]] = []
    for level in sorted(levels):
        if runs and level == runs[-1][-1] + 1:
            runs[-1].append(level)
        else:
            runs.append([level])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


def ramp_phase(ramp: RampResult) -> str:
    """What a pass repeats: an async level's whole batch, a sync iteration's phase."""
    return "batch" if ramp.config.mode == "async" else "phase"


def memory_pass_line(ramp: RampResult) -> str | None:
    """One sentence for one ramp; None when no pass could have run (`--memory-trace off`, or nothing ran)."""
    log = ramp.memory_passes
    if log is None or ramp.config.memory_trace == "off":
        return None
    write, read = log.traced["write"], log.traced["read"]
    if not write and not read:
        taken = "no level had one"
    elif write == read:
        taken = f"taken for iterations {levels_text(write)} (write and read {ramp_phase(ramp)})"
    else:
        phase = ramp_phase(ramp)
        taken = (f"taken for the write {phase} of iterations {levels_text(write) or 'none'} and the read {phase} of"
                 f" {levels_text(read) or 'none'}")
    skipped = ""
    if log.skipped:
        listed = ", ".join(f"{level} {phase} (~{seconds:,.0f} s)" for level, phase, seconds in log.skipped)
        skipped = f"; skipped to stay within the budget: {listed}"
    share = f" ({log.share:.0%})" if log.share is not None else ""
    part = " (this run's part of the resumed ramp)" if ramp.plan.done_before else ""
    label = f" of {ramp.plan.label}" if ramp.plan.label else ""
    return (f"- Memory passes{label}: {taken}{skipped}. They took {log.pass_s:,.1f} s of the ramp's"
            f" {log.ramp_s:,.1f} s{part}{share}; {budget_rule(ramp.config)}.")


def budget_rule(config: RunConfig) -> str:
    """What let the passes run, in words: every pass with `on`; with `auto`, the budget as TraceBudget applies it."""
    if config.memory_trace == "on":
        return "`--memory-trace on` takes every pass, whatever it costs"
    return (f"`--memory-trace auto` starts a planned pass only while the passes, it included at its estimated cost,"
            f" stay within {max_share(config):.0%} of the ramp's time so far, or within its first {FREE_S:.0f} s of"
            " passes, which are always allowed")


def memory_pass_lines(ramps: Sequence[RampResult]) -> list[str]:
    return [line for ramp in ramps if (line := memory_pass_line(ramp)) is not None]
