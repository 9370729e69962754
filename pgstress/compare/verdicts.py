"""Each measure of a run against the first run's, size by size, and a verdict that claims only what the
repetitions support.

The rule ("within the noise"): at one size, run B is lower (or higher) than run A only when every
successful repetition of B lies below (above) every one of A, i.e. their min–max ranges do not
overlap, with at least MIN_REPETITIONS on each side: were both the same thing, 3 and 3
repetitions would fall apart so by chance 2 times in C(6, 3) = 20 (2 in 6 with 2 and 2, too
often to call). Over the sizes both runs measured, a measure is lower/higher when that holds at
most of them (more than half) and the opposite at none; "mixed" when both happen; "no difference within
the noise" when the ranges overlap at the other sizes; "cannot tell" when too few sizes can be
judged for a majority (a size with fewer repetitions on a side, whose values differ: a single
sample shows no noise to judge by). Identical values count as no difference, however few.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pgstress.output.repetitions import SizeRepetitions, group_sizes
from pgstress.rows import OK, Row

MIN_REPETITIONS = 3  # on each side, for the ranges of two runs at one size to be told apart
LOWER, HIGHER, SAME, UNKNOWN = "lower", "higher", "same", "unknown"
MIXED, NO_DIFFERENCE, CANNOT_TELL = "mixed", "no difference within the noise", "cannot tell"


@dataclass(frozen=True)
class Measure:
    field: str
    title: str
    lower_is_better: bool = True
    better: str = "faster"  # the verdict's word when B is better ...
    worse: str = "slower"  # ... and when it is worse

    def word(self, direction: str) -> str:
        return self.better if (direction == LOWER) == self.lower_is_better else self.worse


def _time(field: str, title: str) -> Measure:
    return Measure(field, title)


def _size(field: str, title: str) -> Measure:
    return Measure(field, title, better="smaller", worse="larger")


def _rate(field: str, title: str) -> Measure:
    return Measure(field, title, lower_is_better=False)


_SERVER_AND_MEMORY = (
    _size("wal_mb", "WAL of the write, MiB"),
    _size("write_peak_mb", "write tracemalloc peak, MiB"), _size("read_peak_mb", "read tracemalloc peak, MiB"),
    _size("write_rss_peak_mb", "write resident peak, MiB"), _size("read_rss_peak_mb", "read resident peak, MiB"),
    _time("server_write_ms", "the server's own write (pg_stat_statements), ms"),
    _time("server_read_ms", "the server's own read (pg_stat_statements), ms"),
)
# The access phases (--access); compared only where every run measured them.
_ACCESSES = (
    _time("range_read_s", "range read, s"), _size("range_bytes", "range read received, bytes"),
    _time("metric_read_s", "metric read, s"), _size("metric_bytes", "metric read received, bytes"),
    _time("append_s", "append, s"), _size("append_wal_mb", "WAL of the append, MiB"),
)
MEASURES: dict[str, tuple[Measure, ...]] = {
    "sync": (
        _time("write_s", "write time, s"), _time("read_s", "read time, s"), _time("total_s", "total time, s"),
        _rate("eps", "throughput, epochs/s"), _size("client_payload_mb", "size as sent, MiB"),
        _size("db_payload_mb", "size stored, MiB"), *_SERVER_AND_MEMORY, *_ACCESSES,
    ),
    "async": (
        _time("write_s", "write batch time, s"), _time("read_s", "read batch time, s"),
        _rate("write_eps", "write throughput, epochs/s"), _rate("read_eps", "read throughput, epochs/s"),
        _time("write_p50_ms", "one record's write, median ms"), _time("read_p50_ms", "one record's read, median ms"),
        _size("payload_per_record_mb", "one record as sent, MiB"),
        _size("db_payload_per_record_mb", "one record stored, MiB"), _size("db_table_mb", "table after the level, MiB"),
        *_SERVER_AND_MEMORY, *_ACCESSES,
    ),
}


@dataclass(frozen=True)
class SizePair:
    """One measure at one size: the first run's repetitions (a) and another run's (b)."""

    epochs: int
    a: list[float]
    b: list[float]
    a_failed: int = 0  # repetitions that failed at this size
    b_failed: int = 0

    @property
    def measured(self) -> bool:
        return bool(self.a) and bool(self.b)

    @property
    def ratio(self) -> float | None:
        """median(b) / median(a)."""
        if not self.measured or statistics.median(self.a) <= 0:
            return None
        return statistics.median(self.b) / statistics.median(self.a)

    @property
    def ratio_band(self) -> tuple[float, float] | None:
        """The ratio's range across the repetitions: min(b)/max(a) to max(b)/min(a)."""
        if not self.measured or min(self.a) <= 0 or len(self.a) + len(self.b) < 3:
            return None
        return min(self.b) / max(self.a), max(self.b) / min(self.a)

    @property
    def judgement(self) -> str:
        if not self.measured:
            return UNKNOWN
        if sorted(self.a) == sorted(self.b) or (set(self.a) == set(self.b) and len(set(self.a)) == 1):
            return SAME  # the very same measurements, or one value every time on both sides: nothing to tell apart
        if len(self.a) < MIN_REPETITIONS or len(self.b) < MIN_REPETITIONS:
            return UNKNOWN
        if max(self.b) < min(self.a):
            return LOWER
        if min(self.b) > max(self.a):
            return HIGHER
        return SAME


@dataclass(frozen=True)
class Verdict:
    measure: Measure
    pairs: list[SizePair]  # every common size, measured by both or not
    verdict: str  # the measure's word (faster, smaller, ...), MIXED, NO_DIFFERENCE or CANNOT_TELL
    reason: str

    @property
    def geometric_mean(self) -> float | None:
        ratios = [ratio for pair in self.pairs if (ratio := pair.ratio) is not None and ratio > 0]
        return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None


def _sizes_text(pairs: Sequence[SizePair]) -> str:
    return ", ".join(f"{pair.epochs:,}" for pair in pairs)


def judge(measure: Measure, pairs: list[SizePair]) -> Verdict:
    """The verdict on one measure over the sizes both runs have (see the module's rule)."""
    measured = [pair for pair in pairs if pair.measured]
    if not measured:
        return Verdict(measure, pairs, CANNOT_TELL, "no size was measured by both runs")
    by = {kind: [pair for pair in measured if pair.judgement == kind] for kind in (LOWER, HIGHER, SAME, UNKNOWN)}
    lower, higher, unknown = by[LOWER], by[HIGHER], by[UNKNOWN]
    most = len(measured) // 2 + 1
    if lower and higher:
        return Verdict(measure, pairs, MIXED, f"{measure.word(LOWER)} at {_sizes_text(lower)} epochs,"
                                              f" {measure.word(HIGHER)} at {_sizes_text(higher)} epochs")
    for found, direction in ((lower, LOWER), (higher, HIGHER)):
        if len(found) >= most:
            return Verdict(measure, pairs, measure.word(direction),
                           f"the ranges of the repetitions do not overlap at {len(found)} of {len(measured)} sizes"
                           f" ({_sizes_text(found)} epochs), the other way at none")
    if len(measured) - len(unknown) < most:  # too few sizes judged for a majority either way
        return Verdict(measure, pairs, CANNOT_TELL,
                       f"{len(unknown)} of {len(measured)} sizes have fewer than {MIN_REPETITIONS} successful"
                       " repetitions on a side, too few to tell a difference from the noise (run both with --repeat"
                       f" {MIN_REPETITIONS} or more)")
    separated = lower or higher
    detail = (f"; apart at {_sizes_text(separated)} epochs only, not at most of the sizes" if separated else "")
    return Verdict(measure, pairs, NO_DIFFERENCE,
                   f"the ranges of the repetitions overlap at {len(by[SAME])} of {len(measured)} sizes{detail}")


def pairs_of(measure: Measure, first: Sequence[Row], other: Sequence[Row], sizes: Sequence[int]) -> list[SizePair]:
    """The measure at each size in `sizes`, from the successful repetitions of each run."""
    a_sizes = _by_epochs(first)
    b_sizes = _by_epochs(other)
    pairs = []
    for epochs in sizes:
        a, b = a_sizes[epochs], b_sizes[epochs]
        pairs.append(SizePair(epochs, a.values(measure.field), b.values(measure.field), len(a.failed), len(b.failed)))
    return pairs


def _by_epochs(rows: Sequence[Row]) -> dict[int, SizeRepetitions]:
    return {size.epochs: size for size in group_sizes(rows)}


def common_sizes(ramps: Sequence[Sequence[Row]]) -> list[int]:
    """The record sizes every ramp ran (whatever their status)."""
    found = [{row.epochs for row in rows} for rows in ramps]
    return sorted(set.intersection(*found)) if found else []


def measures_present(mode: str, ramps: Sequence[Sequence[Row]]) -> list[Measure]:
    """The mode's measures that some successful row of every ramp has (WAL, say, only where the server gave it)."""
    return [measure for measure in MEASURES[mode]
            if all(any(row.status == OK and getattr(row, measure.field, None) is not None for row in rows)
                   for rows in ramps)]
