"""The loop over the ramp: rows out at once, the stop rule, a level that ends the ramp, Ctrl-C; and which
iterations take the traced pass."""

from __future__ import annotations

import pytest

from pgstress.config import RunConfig
from pgstress.rows import SyncRow
from pgstress.run.ramp import StopRamp, run_ramp


def row(i: int, epochs: int, status: str) -> SyncRow:
    return SyncRow(iter=i, epochs=epochs, status=status)


def test_ramp_stop_rule_counts_consecutive_failures_only() -> None:
    statuses = iter(["OK", "ERROR", "ERROR", "OK", "ERROR", "ERROR", "ERROR", "OK"])
    seen: list[SyncRow] = []
    outcome = run_ramp([1, 2, 3, 4, 5, 6, 7, 8], lambda i, e, r: row(i, e, next(statuses)), seen.append,
                       max_consecutive_failures=3)  # fmt: skip
    assert [r.iter for r in outcome.rows] == [1, 2, 3, 4, 5, 6, 7]
    assert seen == outcome.rows
    assert "3 consecutive" in (outcome.stop_reason or "")


def test_ramp_ctrl_c_keeps_what_finished() -> None:
    def level(i: int, epochs: int, rep: int) -> SyncRow:
        if i == 3:
            raise KeyboardInterrupt
        return row(i, epochs, "OK")

    seen: list[SyncRow] = []
    outcome = run_ramp([10, 20, 30, 40], level, seen.append, max_consecutive_failures=3)
    assert outcome.interrupted and [r.iter for r in seen] == [1, 2]


def test_ramp_stop_hook_records_the_level_and_ends_the_ramp() -> None:
    def level(i: int, epochs: int, rep: int) -> SyncRow:
        if i == 2:
            raise StopRamp(row(i, epochs, "CLIENT_MEMORY"), "was stopped by the client memory guard (too big)")
        return row(i, epochs, "OK")

    seen: list[SyncRow] = []
    outcome = run_ramp([10, 20, 30, 40], level, seen.append, max_consecutive_failures=3)
    assert [(r.iter, r.status) for r in seen] == [(1, "OK"), (2, "CLIENT_MEMORY")]
    assert seen == outcome.rows
    assert outcome.stop_reason == "was stopped by the client memory guard (too big)"
    assert not outcome.interrupted and outcome.planned_levels == 4


def test_repetitions_run_in_a_row_and_a_size_fails_when_any_repetition_does() -> None:
    statuses = {(2, 2): "ERROR", (3, 1): "TIMEOUT", (4, 3): "ERROR"}
    seen: list[SyncRow] = []

    def level(i: int, epochs: int, rep: int) -> SyncRow:
        found = row(i, epochs, statuses.get((i, rep), "OK"))
        found.rep = rep
        return found

    outcome = run_ramp([10, 20, 30, 40, 50], level, seen.append, max_consecutive_failures=3, repeat=3)
    assert [(r.iter, r.rep) for r in seen] == [(i, rep) for i in (1, 2, 3, 4) for rep in (1, 2, 3)]
    assert "3 consecutive failed iterations" in (outcome.stop_reason or "")  # sizes 2, 3 and 4, one failure each
    resumed = run_ramp([20, 30], level, [].append, max_consecutive_failures=3, first_iter=2, repeat=3, first_rep=3)
    assert [(r.iter, r.rep) for r in resumed.rows] == [(2, 3), (3, 1), (3, 2), (3, 3)]


def test_a_ramp_of_a_billion_levels_is_never_built_as_a_list() -> None:
    config = RunConfig(start_epochs=1, end_epochs=10**17, step_epochs=1)
    assert len(config.epoch_ramp()) == 10**17 and config.ramp_length == 10**17
    assert config.sampled_iterations()[-1] == 10**17


@pytest.mark.parametrize(
    ("mode", "start", "end", "step", "start_iter", "traced"),
    [
        ("off", 1, 100, 1, 1, []),
        ("on", 1, 30, 1, 1, list(range(1, 31))),
        ("auto", 10, 200, 10, 1, list(range(1, 21))),  # 20 iterations: every one
        ("auto", 10_000, 1_000_000, 10_000, 1, [20, 40, 60, 80, 100]),  # the default ramp: five, ending with the last
        ("auto", 1, 23, 1, 1, [5, 10, 15, 20, 23]),  # the last is always among them
        ("auto", 41, 100, 1, 41, [60, 80, 100]),  # a resumed tail keeps the whole ramp's choice
    ],
)
def test_which_iterations_take_the_traced_pass(mode, start, end, step, start_iter, traced) -> None:
    config = RunConfig(memory_trace=mode, start_epochs=start, end_epochs=end, step_epochs=step, start_iter=start_iter)
    iterations = range(start_iter, start_iter + len(config.epoch_ramp()))
    assert [i for i in iterations if config.traces_memory(i)] == traced
