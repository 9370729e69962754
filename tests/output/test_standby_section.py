"""The report's "What the standbys paid", from rows the test makes: the lag verdict comes from a fit, the largest
record served within the threshold, the synchronous standby's wording, failed standby levels named."""

from __future__ import annotations

from pgstress.output.standby_section import HEADING, SERVED_WITHIN_S, standby_section
from pgstress.rows import CONNECTION_LOST, OK, SyncRow
from pgstress.target import StandbyInfo

STANDBY = StandbyInfo(dsn="host=/x port=5433", name="embedded standby", embedded=True,
                      settings=(("hot_standby_feedback", "off"), ("max_standby_streaming_delay", "30000ms")))


def rows(lags: list[float], replays: list[float]) -> list[SyncRow]:
    return [SyncRow(iter=i, epochs=i * 10_000, write_s=1.0, wal_mb=i * 1.3, standby_status=OK,
                    standby_lag_start_mb=lag, standby_replay_s=replay, standby_read_s=0.1)
            for i, (lag, replay) in enumerate(zip(lags, replays), start=1)]


def text(section: list[str]) -> str:
    return "\n".join(section)


def test_a_run_without_standbys_has_no_section() -> None:
    assert standby_section(rows([0.0] * 3, [0.01] * 3), []) == []


def test_a_lag_that_grows_along_the_ramp_is_falling_behind_and_a_flat_one_keeps_up() -> None:
    growing = text(standby_section(rows([0.0, 10.0, 20.0, 30.0], [0.01] * 4), [STANDBY]))
    assert "it falls behind" in growing and "10.000 MiB per level" in growing
    # behind by a constant 20 MiB after the first level: the end points differ by 20 MiB (over the bar), the fit
    # over every level grows by 11.7 MiB (under it)
    step = text(standby_section(rows([0.0] + [20.0] * 7, [0.01] * 8), [STANDBY]))
    assert "it keeps up" in step and "11.7 MiB over the ramp" in step
    assert "max_standby_streaming_delay = 30000ms" in growing and HEADING in growing


def test_the_largest_record_served_within_the_threshold() -> None:
    section = text(standby_section(rows([0.0] * 4, [0.1, 0.5, SERVED_WITHIN_S + 0.5, 0.9]), [STANDBY]))
    assert "served, verified: 40,000 epochs (iteration 4" in section
    none = text(standby_section(rows([0.0] * 3, [SERVED_WITHIN_S + 1] * 3), [STANDBY]))
    assert "No record was replayed within 1 s" in none


def test_a_synchronous_standby_is_said_to_be_inside_write_s() -> None:
    synchronous = StandbyInfo(dsn="", name="embedded standby", embedded=True, synchronous=True)
    section = text(standby_section(rows([0.0] * 3, [0.001] * 3), [synchronous]))
    assert "synchronous (synchronous_commit = remote_apply" in section
    assert "every write_s (median 1.000 s) includes waiting" in section
    asynchronous = text(standby_section(rows([0.0] * 3, [0.2] * 3), [STANDBY]))
    assert "median replay after the commit was 0.2000 s (20.0 % of the median write_s" in asynchronous


def test_levels_whose_standby_failed_are_named() -> None:
    measured = rows([0.0] * 3, [0.01] * 3)
    measured[2].standby_status, measured[2].standby_replay_s = CONNECTION_LOST, None
    measured[2].standby_error = "embedded standby: OperationalError: gone"
    section = text(standby_section(measured, [STANDBY]))
    assert "iteration 3: CONNECTION_LOST" in section and "First: embedded standby: OperationalError: gone" in section
