"""Where the tracemalloc peaks are missing, the report says in one sentence which iterations, why and how to get
them; the memory passes' line says what let them run, the first seconds always allowed included; and `make run`,
the README's first command, has a peak on every row."""

from __future__ import annotations

import shlex
from pathlib import Path

from helpers import FakeClock

from pgstress.cli import parse_config
from pgstress.config import RunConfig
from pgstress.output.base import RampPlan, RampResult
from pgstress.output.memory_pass import memory_pass_line
from pgstress.output.missing_peaks import missing_peaks_sentence
from pgstress.output.words import count
from pgstress.rows import SyncRow
from pgstress.run.ramp import RampOutcome
from pgstress.run.trace_budget import TraceBudget, TraceLog

MAKE_RUN_RAMP = {"start_epochs": 10_000, "end_epochs": 100_000, "step_epochs": 10_000}
MAKEFILE = Path(__file__).parents[2] / "Makefile"


def rows(traced: range, levels: int, status: str = "OK") -> list[SyncRow]:
    return [SyncRow(iter=i, epochs=i * 10_000, status=status,
                    write_peak_mb=1.0 if i in traced else None, read_peak_mb=1.0 if i in traced else None)
            for i in range(1, levels + 1)]


def test_peaks_skipped_by_the_budget_are_named_with_why_and_how() -> None:
    config = RunConfig(**MAKE_RUN_RAMP)
    assert missing_peaks_sentence(config, rows(range(1, 8), 10)) == (
        "Iterations 8-10 have no tracemalloc peak (`write_peak_mb` or `read_peak_mb` empty): `--memory-trace auto`"
        " skipped the memory passes of 8-10 to stay within its budget of the ramp's time; `--memory-trace on`"
        " takes the peaks of every iteration.")
    assert missing_peaks_sentence(config, rows(range(1, 11), 10)) is None
    assert missing_peaks_sentence(config, rows(range(1, 8), 7) + rows(range(0), 10, "TIMEOUT")[7:]) is None


def test_peaks_a_long_ramp_does_not_plan_are_named_too() -> None:
    config = RunConfig(start_epochs=1000, end_epochs=25_000, step_epochs=1000)  # 25 levels: every 5th and the last
    sentence = missing_peaks_sentence(config, rows(range(5, 26, 5), 25))
    assert sentence is not None and sentence.startswith("Iterations 1-4, 6-9, 11-14, 16-19, 21-24 have no tracemalloc")
    assert "on a ramp of more than 20 iterations `--memory-trace auto` plans the memory pass only for every 5th and" \
           " the last;" in sentence
    off = missing_peaks_sentence(RunConfig(memory_trace="off", **MAKE_RUN_RAMP), rows(range(0), 1))
    assert off == ("Iteration 1 has no tracemalloc peak (`write_peak_mb` or `read_peak_mb` empty): `--memory-trace"
                   " off` takes no memory pass; `--memory-trace on` takes the peaks of every iteration.")


def test_the_memory_passes_line_says_the_first_seconds_are_always_allowed() -> None:
    config = RunConfig(**MAKE_RUN_RAMP)
    log = TraceLog(traced={"write": [1, 2, 3], "read": [1, 2, 3]}, skipped=[(4, "write", 3.0)], pass_s=10.1,
                   ramp_s=16.5)
    ramp = RampResult(RampPlan(config, "t"), RampOutcome(rows(range(1, 4), 4), False, None, planned_levels=4),
                      memory_passes=log)
    assert memory_pass_line(ramp) == (
        "- Memory passes: taken for iterations 1-3 (write and read phase); skipped to stay within the budget:"
        " 4 write (~3 s). They took 10.1 s of the ramp's 16.5 s (61%); `--memory-trace auto` starts a planned pass"
        " only while the passes, it included at its estimated cost, stay within 25% of the ramp's time so far, or"
        " within its first 10 s of passes, which are always allowed.")


def make_run_config() -> RunConfig:
    """The options `make run` passes to main.py, read from the Makefile itself."""
    recipe = MAKEFILE.read_text(encoding="utf-8").split("\nrun:", 1)[1].split("\n\n", 1)[0]
    argv = shlex.split(recipe.split("main.py", 1)[1].replace("\\\n", " "))
    return parse_config(argv)


def test_make_run_takes_a_peak_for_every_iteration_whatever_the_passes_cost() -> None:
    config = make_run_config()
    assert (config.start_epochs, config.end_epochs, config.step_epochs) == (10_000, 100_000, 10_000)
    clock = FakeClock(0.0)
    budget = TraceBudget(config, now=clock)
    for iteration in range(1, config.ramp_length + 1):
        clock.t += 1.0
        for phase in ("write", "read"):
            runs, _why = budget.decide(iteration, phase, timed_s=100.0)  # far beyond any share of the ramp
            assert runs, (iteration, phase)
            budget.spent(iteration, phase, 100.0, 400.0)


def test_counts_are_singular_for_one() -> None:
    assert (count(1, "iteration"), count(2, "iteration"), count(1_000, "size")) == \
        ("1 iteration", "2 iterations", "1,000 sizes")
