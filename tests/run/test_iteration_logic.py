"""The iteration template, the ramp's stop rules and how faults become a row, on a fake driver (tests/fakes.py):
our own logic, in milliseconds. What only a server shows is tested on real PostgreSQL elsewhere."""

from __future__ import annotations

import pytest
from fakes import ROW_OVERHEAD_BYTES, SENT_BYTES_PER_EPOCH, STAGES, STORED_BYTES_PER_EPOCH, FakeClock, FakeControl
from fakes import FakeDriver as _FakeDriver
from fakes import SqlStateError as Sql

from pgstress.config import RunConfig
from pgstress.rows import CLIENT_MEMORY, CONNECTION_LOST, DB_LIMIT, ERROR, OK, TIMEOUT, VERIFY_FAILED, AsyncRow, SyncRow
from pgstress.run.async_mode import async_row
from pgstress.run.iteration import Iteration, LevelResult
from pgstress.run.measure import mib
from pgstress.run.memory_guard import MemoryGuard
from pgstress.run.ramp import run_ramp
from pgstress.run.sync import sync_row
from pgstress.workload.payloads import VerifyError

EPOCHS = 1000


@pytest.fixture(autouse=True)
def phases_on_the_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every phase is timed on the fake clock that FakeDriver moves (a test's driver takes the clock it made)."""
    monkeypatch.setattr("pgstress.run.measure.time", CLOCK.as_time_module())


CLOCK = FakeClock()


def FakeDriver(**options: object) -> _FakeDriver:  # noqa: N802 - the fake driver, on the tests' clock
    return _FakeDriver(clock=CLOCK, **options)  # type: ignore[arg-type]


def sync_iteration(driver: _FakeDriver, control: FakeControl | None = None, **options: object) -> Iteration:
    config = RunConfig(memory_trace="off", **options)  # type: ignore[arg-type]
    return Iteration(config, driver, control or FakeControl(driver.epochs_of),
                     lambda level: sync_row(level, config.payload_format), secrets=())


def async_iteration(driver: _FakeDriver, guard: MemoryGuard | None = None) -> Iteration:
    config = RunConfig(mode="async", write_method="insert", memory_trace="off", async_concurrency=driver.records)
    return Iteration(config, driver, FakeControl(driver.epochs_of),
                     lambda level: async_row(level, config.payload_format, driver.records), secrets=(), guard=guard)


def test_a_good_level_takes_its_stages_and_sizes_as_measured() -> None:
    row = sync_iteration(FakeDriver())(1, EPOCHS)
    assert isinstance(row, SyncRow)
    assert row.status == OK and row.error == ""
    assert (row.gen_s, row.encode_s, row.insert_s) == (STAGES["gen"], STAGES["encode"], STAGES["insert"])
    assert (row.select_s, row.decode_s) == (STAGES["select"], STAGES["decode"])
    assert row.verify_s == 2 * STAGES["verify"]  # hashing on the write side and on the read side
    assert row.client_payload_mb == mib(EPOCHS * SENT_BYTES_PER_EPOCH)
    assert row.db_payload_mb == mib(EPOCHS * STORED_BYTES_PER_EPOCH)
    assert row.db_row_mb == mib(EPOCHS * STORED_BYTES_PER_EPOCH + ROW_OVERHEAD_BYTES)
    # a phase's wall time without the verification hashing (verify_s)
    assert row.write_s == STAGES["gen"] + STAGES["encode"] + STAGES["insert"]
    assert row.read_s == STAGES["select"] + STAGES["decode"]
    assert row.total_s == row.write_s + row.read_s
    assert row.eps == EPOCHS / row.total_s
    assert row.write_peak_mb is None and row.read_peak_mb is None  # --memory-trace off


@pytest.mark.parametrize("fault,status", [
    (VerifyError("wrong epochs"), VERIFY_FAILED),
    (MemoryError(), CLIENT_MEMORY),
    (Sql("canceling statement due to statement timeout", "57014"), TIMEOUT),
    (Sql("total size of jsonb array elements exceeds the maximum of 268435455 bytes", "54000"), DB_LIMIT),
    (Sql("terminating connection due to administrator command", "57P01"), CONNECTION_LOST),
    (ConnectionResetError("connection reset by peer"), CONNECTION_LOST),
    (Sql("duplicate key value violates unique constraint", "23505"), ERROR),
])
def test_a_failed_write_is_the_rows_status_and_nothing_is_read(fault: BaseException, status: str) -> None:
    driver = FakeDriver(write_faults={(1, 0): fault})
    row = sync_iteration(driver)(1, EPOCHS)
    assert row.status == status
    assert f"{type(fault).__name__}: " in row.error
    assert "read" not in driver.calls
    assert row.read_s is None and row.write_s is None and row.eps is None
    assert row.client_payload_mb == mib(EPOCHS * SENT_BYTES_PER_EPOCH)  # the size that failed is the finding


def test_a_failed_read_keeps_the_write_and_says_why() -> None:
    row = sync_iteration(FakeDriver(read_faults={(1, 0): VerifyError("content hash differs")}))(1, EPOCHS)
    assert row.status == VERIFY_FAILED and "content hash differs" in row.error
    assert row.write_s is not None and row.read_s is None and row.db_payload_mb is None


def test_a_level_that_fails_as_a_whole_drops_both_connections_when_lost() -> None:
    driver = FakeDriver(level_failure=lambda iteration: ConnectionResetError("gone"))
    control = FakeControl(driver.epochs_of)
    row = sync_iteration(driver, control)(1, EPOCHS)
    assert row.status == CONNECTION_LOST
    assert "recover lost=True" in driver.calls and "recover lost=True" in control.calls


def test_a_level_failing_for_another_reason_keeps_the_connections() -> None:
    driver = FakeDriver(level_failure=lambda iteration: ValueError("bad"))
    control = FakeControl(driver.epochs_of)
    assert sync_iteration(driver, control)(1, EPOCHS).status == ERROR
    assert "recover lost=False" in driver.calls and "recover lost=False" in control.calls


@pytest.mark.parametrize("keep,truncates", [(False, 2), (True, 0)])
def test_the_table_is_emptied_between_levels_not_before_the_first(keep: bool, truncates: int) -> None:
    driver = FakeDriver()
    control = FakeControl(driver.epochs_of)
    iteration = sync_iteration(driver, control, keep_data_between_iterations=keep)
    for number in (1, 2, 3):
        iteration(number, EPOCHS)
    assert control.calls.count("truncate") == truncates
    assert control.calls.count("revive") == 3 and driver.calls.count("revive") == 3


def failing_at(*iterations: int) -> FakeDriver:
    return FakeDriver(write_faults={(i, 0): ValueError("no") for i in iterations})


@pytest.mark.parametrize("failing,limit,rows", [
    ((1, 2, 3, 4, 5), 2, 2),  # stops after two in a row
    ((1, 3, 4), 2, 4),  # a success in between starts the count again
    ((2, 4), 2, 5),  # never two in a row: the whole ramp runs
    ((1, 2, 3, 4, 5), 1, 1),
])
def test_the_ramp_stops_after_the_consecutive_failures_allowed(failing: tuple[int, ...], limit: int,
                                                               rows: int) -> None:
    iteration = sync_iteration(failing_at(*failing))
    outcome = run_ramp([1000, 2000, 3000, 4000, 5000], iteration, lambda row: None, max_consecutive_failures=limit)
    assert len(outcome.rows) == rows
    assert [row.status == OK for row in outcome.rows] == [i not in failing for i in range(1, rows + 1)]
    stopped = rows < 5
    assert (outcome.stop_reason is not None) == stopped
    if stopped:
        assert outcome.stop_reason == (f"stopped after {limit} consecutive failed iterations"
                                       f" (--max-consecutive-failures {limit})")


def test_a_size_fails_when_any_repetition_fails() -> None:
    driver = FakeDriver(write_faults={(1, 0): ValueError("no")})  # repetitions keep the iteration's stream
    outcome = run_ramp([1000, 2000], sync_iteration(driver), lambda row: None, max_consecutive_failures=1,
                       repeat=2)
    assert [(row.iter, row.rep, row.status) for row in outcome.rows] == [(1, 1, ERROR), (1, 2, OK)]
    assert outcome.stop_reason is not None


def test_async_level_counts_each_records_failure_and_names_the_most_frequent() -> None:
    driver = FakeDriver(records=4, write_faults={(1, 1): Sql("exceeds the maximum", "54000"),
                                                 (1, 2): Sql("exceeds the maximum", "54000")},
                        read_faults={(1, 3): VerifyError("differs")})
    row = async_iteration(driver)(1, EPOCHS)
    assert isinstance(row, AsyncRow)
    assert (row.writes_ok, row.writes_total, row.reads_ok, row.reads_total) == (2, 4, 1, 2)
    assert row.status == DB_LIMIT
    assert row.failures == "DB_LIMIT=2;VERIFY_FAILED=1"
    assert row.error.startswith("DB_LIMIT x2 of 4 records (writes 2/4 ok, reads 1/2 ok): ")
    assert row.payload_total_mb == mib(4 * EPOCHS * SENT_BYTES_PER_EPOCH)  # all four were encoded and sent
    assert row.insert_s == 2 * STAGES["insert"]  # the two stored records' database calls


def test_the_memory_guard_stops_the_ramp_before_a_level_too_big_and_runs_nothing() -> None:
    guard = MemoryGuard(limit_mb=10.0)
    guard.observe(10_000, 10.0)  # learnt from a larger level: 1/1000 MiB per record-epoch; 2 x 6,000 is 12 MiB
    driver = FakeDriver(records=2)
    outcome = run_ramp([1000, 6000], async_iteration(driver, guard), lambda row: None, max_consecutive_failures=3)
    assert [row.status for row in outcome.rows] == [OK, CLIENT_MEMORY]
    assert driver.calls.count("write") == 1  # the refused level wrote nothing
    assert outcome.stop_reason is not None and outcome.stop_reason.startswith("was stopped by the client memory guard")
    refused = outcome.rows[1]
    assert isinstance(refused, AsyncRow) and refused.estimated_client_mb == pytest.approx(12.0)


def test_level_result_without_phases_is_a_row_of_its_status_only() -> None:
    level = LevelResult(3, EPOCHS, [(3,)])
    row = sync_row(level, "bson")
    assert (row.iter, row.epochs, row.status, row.write_s, row.read_s) == (3, EPOCHS, OK, None, None)
