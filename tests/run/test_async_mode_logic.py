"""Pure logic of the fan-out: time accounting over overlapping spans, percentiles, memory guard, DSNs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgstress.db.asyncpg_adapter import asyncpg_connect_args
from pgstress.run.latency import busy_s, latency_percentiles_ms, only_s
from pgstress.run.memory_guard import MemoryGuard


def test_busy_merges_overlapping_spans() -> None:
    assert busy_s([]) == 0
    assert busy_s([(0.0, 1.0), (0.5, 2.0), (3.0, 4.0)]) == pytest.approx(3.0)
    assert busy_s([(0.0, 4.0), (1.0, 2.0)]) == pytest.approx(4.0)


def test_only_subtracts_what_the_other_spans_cover() -> None:
    inserts = [(1.0, 5.0), (2.0, 6.0)]
    encoding = [(0.0, 2.0), (3.0, 4.0)]
    assert only_s(inserts, encoding) == pytest.approx(3.0)  # 2-3 and 4-6
    assert only_s(inserts, []) == pytest.approx(5.0)
    assert only_s([], encoding) == 0


spans = st.lists(st.tuples(st.floats(0, 100), st.floats(0, 10)).map(lambda t: (t[0], t[0] + t[1])), max_size=12)


@given(spans, spans)
def test_only_is_bounded_by_busy(inside: list[tuple[float, float]], outside: list[tuple[float, float]]) -> None:
    alone = only_s(inside, outside)
    assert -1e-9 <= alone <= busy_s(inside) + 1e-9
    assert busy_s(inside + outside) == pytest.approx(alone + busy_s(outside), abs=1e-6)


def test_latency_percentiles() -> None:
    assert latency_percentiles_ms([]) is None
    p50, p95, p99, top = latency_percentiles_ms([0.001 * n for n in range(1, 101)])  # type: ignore[misc]
    assert (p50, p95, p99, top) == pytest.approx((50.5, 95.05, 99.01, 100.0))


def test_memory_guard_extrapolates_from_the_largest_level() -> None:
    guard = MemoryGuard(limit_mb=100.0)
    assert guard.estimate_mb(10_000) is None and guard.refusal(10**9) is None  # nothing run yet
    guard.observe(8 * 1000, 20.0, None, 5.0)  # 20 MiB for 8 x 1000 record-epochs
    assert guard.estimate_mb(8 * 2000) == pytest.approx(40.0)
    guard.observe(8 * 2000, 30.0, 10.0)  # the larger level wins: 30 MiB / 16000
    assert guard.estimate_mb(8 * 4000) == pytest.approx(60.0)
    assert guard.refusal(8 * 4000) is None
    assert guard.refusal(8 * 6000) is None  # 90 MiB
    assert "estimated client memory 105.0 MiB for this level exceeds --max-client-memory-mb 100" in (
        guard.refusal(8 * 7000) or ""
    )
    guard.observe(8 * 1000, 500.0)  # a smaller level never overrides a larger one
    assert guard.estimate_mb(8 * 4000) == pytest.approx(60.0)
    guard.observe(8 * 3000, 0.0, None)  # nothing measured: keep what we had
    assert guard.estimate_mb(8 * 4000) == pytest.approx(60.0)
    assert MemoryGuard(limit_mb=None, per_unit_mb=1.0).refusal(10**9) is None  # no limit known


def test_asyncpg_arguments_from_either_dsn_form() -> None:
    assert asyncpg_connect_args("host=/var/run/postgresql dbname=pgstress_test") == {
        "host": "/var/run/postgresql", "database": "pgstress_test",
    }  # fmt: skip
    assert asyncpg_connect_args("postgresql://alice:pw@db.example:6543/bench?sslmode=require&connect_timeout=5") == {
        "host": "db.example", "port": 6543, "user": "alice", "password": "pw", "database": "bench",
        "ssl": "require", "timeout": 5.0,
    }  # fmt: skip
    assert asyncpg_connect_args("postgresql://postgres:@/postgres?host=/tmp/sock") == {
        "host": "/tmp/sock", "user": "postgres", "database": "postgres",
    }  # fmt: skip
    assert asyncpg_connect_args("host=a,b port=5432,5433")["port"] == [5432, 5433]
