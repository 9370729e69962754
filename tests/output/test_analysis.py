"""The three points, and the conclusion's sentences, from rows alone."""

from __future__ import annotations

import pytest

from pgstress.output.analysis import Throughput, concurrency_sentences, find_points, fit_line, trend_sentence
from pgstress.rows import AsyncRow, SyncRow

EPS = Throughput("write + read throughput of one record", "eps")


def rows(*spec: tuple[str, float | None]) -> list[SyncRow]:
    return [SyncRow(iter=i + 1, epochs=(i + 1) * 1000, status=status, eps=eps) for i, (status, eps) in enumerate(spec)]


def test_points_without_failure() -> None:
    found = find_points(rows(("OK", 10), ("OK", 30), ("OK", 20)))
    assert found.breaking is None
    assert found.stability is not None and found.stability.iter == 3
    assert found.optimal is not None and found.optimal.iter == 2


def test_points_with_failure_in_the_middle() -> None:
    found = find_points(rows(("OK", 10), ("OK", 5), ("TIMEOUT", None), ("OK", 50)))
    assert found.breaking is not None and found.breaking.iter == 3
    assert found.stability is not None and found.stability.iter == 2  # before the break, though 4 is bigger
    assert found.optimal is not None and found.optimal.iter == 4  # any successful iteration


def test_points_when_the_first_fails() -> None:
    found = find_points(rows(("DB_LIMIT", None), ("OK", 7)))
    assert found.breaking is not None and found.breaking.iter == 1
    assert found.stability is None and found.optimal is not None and found.optimal.iter == 2
    assert find_points([]) == find_points([])  # no rows: all None
    assert find_points([]).breaking is None


def test_a_line_fit_and_its_scatter() -> None:
    fit = fit_line([(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)])
    assert fit is not None
    assert (fit.intercept, fit.slope, fit.rms_residual) == pytest.approx((1.0, 2.0, 0.0))
    assert fit_line([(1.0, 1.0), (2.0, 2.0)]) is None  # too few points to state a trend
    assert fit_line([(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]) is None  # one size only


def test_a_trend_comes_from_all_sizes_not_the_two_ends() -> None:
    # Noisy but flat: the ends alone (58k -> 79k) would say it rose by 36 %.
    flat = rows(*(("OK", eps) for eps in (58e3, 94e3, 91e3, 80e3, 58e3, 79e3)))
    sentence = trend_sentence(flat, EPS)
    assert sentence is not None and "shows no clear trend" in sentence and "36 %" not in sentence
    rising = rows(*(("OK", eps) for eps in (10e3, 20e3, 31e3, 39e3, 50e3)))
    sentence = trend_sentence(rising, EPS)
    assert sentence is not None and "it rises by" in sentence and "from 1,000 to 5,000 epochs" in sentence
    assert trend_sentence(rows(("OK", 1.0), ("OK", 2.0)), EPS) is None  # two sizes: no trend stated


def test_concurrency_sentences() -> None:
    assert concurrency_sentences([]) == []
    ok = AsyncRow(iter=1, concurrency=4, epochs=1000, status="OK", write_s=2.0, read_s=1.0, write_rps=2.0,
                  read_rps=4.0, writes_ok=4, writes_total=4, reads_ok=4, reads_total=4, write_p50_ms=900.0,
                  write_max_ms=1900.0, write_encode_busy_s=1.5, write_db_only_s=0.25, write_cpu_s=2.4)  # fmt: skip
    part = AsyncRow(iter=2, concurrency=4, epochs=2000, status="TIMEOUT", writes_ok=3, writes_total=4, reads_ok=3,
                    reads_total=3, failures="TIMEOUT=1")  # fmt: skip
    text = " ".join(concurrency_sentences([ok, part]))
    assert "Each level wrote 4 records of the same size at once over 4 connections" in text
    assert "written in 2.000 s (2.0 records/s) and read in 1.000 s (4.0 records/s)" in text
    assert "900 ms to write at the median and 1,900 ms at the slowest" in text
    assert "during 75 % of the write time" in text and "database during 12 %" in text
    assert "1.20 CPU cores" in text and "bound by client-side generation and encoding" in text
    assert ("1 level(s) failed only in part, the failed records not stopping their siblings:"
            " iteration 2: 3/4 writes and 3/3 reads succeeded (TIMEOUT=1).") in text
