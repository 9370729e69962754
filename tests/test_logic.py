"""Our own logic, no database: points, conclusion, redaction, classification, ramp loop."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pgstress.analysis import find_points
from pgstress.config import dsn_password, redact_dsn, scrub
from pgstress.faults import classify
from pgstress.payloads import VerifyError
from pgstress.ramp import StopRamp, run_ramp


@dataclass
class Row:
    iter: int
    epochs: int
    status: str
    eps: float | None = None

    @property
    def efficiency(self) -> float | None:
        return self.eps


def rows(*spec: tuple[str, float | None]) -> list[Row]:
    return [Row(i + 1, (i + 1) * 1000, status, eps) for i, (status, eps) in enumerate(spec)]


def test_points_without_failure() -> None:
    found = find_points(rows(("OK", 10), ("OK", 30), ("OK", 20)))
    assert found.breaking is None
    assert found.stability.iter == 3
    assert found.optimal.iter == 2


def test_points_with_failure_in_the_middle() -> None:
    found = find_points(rows(("OK", 10), ("OK", 5), ("TIMEOUT", None), ("OK", 50)))
    assert found.breaking.iter == 3
    assert found.stability.iter == 2  # before the breaking point, even though iteration 4 is bigger
    assert found.optimal.iter == 4  # any successful iteration


def test_points_when_the_first_fails() -> None:
    found = find_points(rows(("DB_LIMIT", None), ("OK", 7)))
    assert found.breaking.iter == 1 and found.stability is None and found.optimal.iter == 2
    assert find_points([]) == find_points([])  # no rows: all None
    assert find_points([]).breaking is None


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://bob:hunter2@db.example:5433/app", "postgresql://bob:***@db.example:5433/app"),
        ("postgresql://bob@db/app", "postgresql://bob@db/app"),
        ("host=db user=bob password=hunter2 dbname=app", "host=db user=bob password=*** dbname=app"),
        ("host=db password='hun ter2' dbname=app", "host=db password=*** dbname=app"),
    ],
)
def test_redact_dsn(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected
    assert "hunter2" not in redact_dsn(dsn) and "hun ter2" not in redact_dsn(dsn)


def test_scrub_removes_known_and_embedded_passwords() -> None:
    assert dsn_password("postgresql://bob:hunter2@db/app") == "hunter2"
    text = scrub("failed for postgresql://x:abc@h/d with hunter2 and password=zzz", "hunter2")
    assert "hunter2" not in text and "abc" not in text and "zzz" not in text


class FakeDriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (FakeDriverError("total size of jsonb array elements exceeds the maximum of 268435455 bytes", "54000"),
         "DB_LIMIT"),
        (FakeDriverError("invalid memory alloc request size 1073741824", "XX000"), "DB_LIMIT"),
        (FakeDriverError("some internal error", "XX000"), "ERROR"),
        (FakeDriverError("canceling statement due to statement timeout", "57014"), "TIMEOUT"),
        (FakeDriverError("terminating connection due to administrator command", "57P01"), "CONNECTION_LOST"),
        (FakeDriverError("server closed the connection unexpectedly", None), "CONNECTION_LOST"),
        (FakeDriverError("new row violates check constraint", "23514"), "ERROR"),
        (MemoryError(), "CLIENT_MEMORY"),
        (VerifyError("content hash differs"), "VERIFY_FAILED"),
        (ValueError("boom"), "ERROR"),
    ],
)
def test_classify(exc: BaseException, status: str) -> None:
    fault = classify(exc)
    assert fault.status == status
    assert "\n" not in fault.message
    if getattr(exc, "sqlstate", None):
        assert f"SQLSTATE {exc.sqlstate}" in fault.message


class ListSink:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def write(self, row: object) -> None:
        assert isinstance(row, Row)
        self.rows.append(row)


def test_ramp_stop_rule_counts_consecutive_failures_only() -> None:
    statuses = iter(["OK", "ERROR", "ERROR", "OK", "ERROR", "ERROR", "ERROR", "OK"])
    sink = ListSink()
    outcome = run_ramp([1, 2, 3, 4, 5, 6, 7, 8], lambda i, e: Row(i, e, next(statuses)), [sink],
                       max_consecutive_failures=3)  # fmt: skip
    assert [r.iter for r in outcome.rows] == [1, 2, 3, 4, 5, 6, 7]
    assert sink.rows == outcome.rows
    assert "3 consecutive" in (outcome.stop_reason or "")


def test_ramp_ctrl_c_keeps_what_finished() -> None:
    def level(i: int, epochs: int) -> Row:
        if i == 3:
            raise KeyboardInterrupt
        return Row(i, epochs, "OK")

    sink = ListSink()
    outcome = run_ramp([10, 20, 30, 40], level, [sink], max_consecutive_failures=3)
    assert outcome.interrupted and [r.iter for r in sink.rows] == [1, 2]


def test_embedded_start_retries_once_then_reports_one_line(tmp_path) -> None:
    from pgstress.server import ServerUnavailable, _start_embedded

    calls = []

    def flaky(pgdata, cleanup_mode):
        calls.append(pgdata.name)
        if len(calls) == 1:
            raise RuntimeError("initdb exited 1")
        return "server"

    assert _start_embedded(flaky, tmp_path) == "server"
    assert calls == ["pgdata", "pgdata-retry"]

    def broken(pgdata, cleanup_mode):
        raise RuntimeError("initdb exited 1")

    with pytest.raises(ServerUnavailable, match="could not start the embedded PostgreSQL: initdb exited 1"):
        _start_embedded(broken, tmp_path)


def test_ramp_stop_hook_records_the_level_and_ends_the_ramp() -> None:
    def level(i: int, epochs: int) -> Row:
        if i == 2:
            raise StopRamp(Row(i, epochs, "CLIENT_MEMORY"), "was stopped by the client memory guard (too big)")
        return Row(i, epochs, "OK")

    sink, seen = ListSink(), []
    outcome = run_ramp([10, 20, 30, 40], level, [sink], max_consecutive_failures=3, on_row=seen.append)
    assert [(r.iter, r.status) for r in sink.rows] == [(1, "OK"), (2, "CLIENT_MEMORY")]
    assert seen == sink.rows == outcome.rows
    assert outcome.stop_reason == "was stopped by the client memory guard (too big)"
    assert not outcome.interrupted and outcome.planned_levels == 4


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
    from pgstress.config import RunConfig

    config = RunConfig(memory_trace=mode, start_epochs=start, end_epochs=end, step_epochs=step, start_iter=start_iter)
    iterations = range(start_iter, start_iter + len(config.epoch_ramp()))
    assert [i for i in iterations if config.traces_memory(i)] == traced
