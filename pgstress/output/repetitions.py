"""A ramp's repetitions (`--repeat N`) grouped by size: the median and the min–max of each measure.

Every figure the report, the charts and `compare` show for a size measured several times is the
median of that measure over the size's successful repetitions, and its band is their min–max. A
size counts as failed when any of its repetitions failed; its medians still come from the others.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from pgstress.rows import OK, Row, field_kinds

# Above this spread (max/min - 1) of a size's repetitions, the report warns that the size is noisy.
SPREAD_WARNING = 0.20
TIMED = ("write_s", "read_s")  # the measures whose spread is noise (sizes are exact, memory nearly so)


@dataclass(frozen=True)
class SizeRepetitions:
    """Every repetition of one size of one ramp, in the order they ran."""

    rows: tuple[Row, ...]

    @property
    def first(self) -> Row:
        return self.rows[0]

    @property
    def iter(self) -> int:
        return self.first.iter

    @property
    def epochs(self) -> int:
        return self.first.epochs

    @property
    def ok(self) -> list[Row]:
        return [row for row in self.rows if row.status == OK]

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.status != OK]

    @property
    def all_ok(self) -> bool:
        return not self.failed

    def values(self, name: str) -> list[float]:
        """The measure of every successful repetition that has it."""
        found = (getattr(row, name, None) for row in self.ok)
        return [float(value) for value in found if isinstance(value, int | float)]

    def median(self, name: str) -> float | None:
        found = self.values(name)
        return statistics.median(found) if found else None

    def band(self, name: str) -> tuple[float, float] | None:
        """(min, max) of the measure over the successful repetitions."""
        found = self.values(name)
        return (min(found), max(found)) if found else None

    def spread(self, name: str) -> float | None:
        """max/min - 1 over the successful repetitions; None below two of them or with a zero."""
        found = self.values(name)
        if len(found) < 2 or min(found) <= 0:
            return None
        return max(found) / min(found) - 1

    def summary_row(self) -> Row:
        """One row for the size: each numeric measure the median of the successful repetitions (an integer
        measure the lower median, a value one of them had); the status OK only when every repetition
        succeeded, else the most frequent failure, its error saying how many failed."""
        if len(self.rows) == 1:
            return self.first
        base = self.ok[0] if self.ok else self.first
        medians: dict[str, Any] = {}  # each field's median, of that field's own type
        kinds = field_kinds(type(base))
        for field in fields(base):
            values = self.values(field.name)
            if field.name in ("iter", "epochs", "rep") or not values:
                continue
            medians[field.name] = (int(statistics.median_low(values)) if kinds[field.name].base is int
                                   else statistics.median(values))
        row = replace(base, **medians)
        failed = self.failed
        if failed:
            status, _count = Counter(r.status for r in failed).most_common(1)[0]
            first = next(r for r in failed if r.status == status)
            row.status = status
            row.error = f"{len(failed)} of {len(self.rows)} repetitions failed; first: {first.error or status}"
        return row


def group_sizes(rows: Sequence[Row]) -> list[SizeRepetitions]:
    """The rows of one ramp grouped by size (iteration), in ramp order."""
    groups: dict[int, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.iter, []).append(row)
    return [SizeRepetitions(tuple(group)) for group in groups.values()]


def is_repeated(rows: Sequence[Row]) -> bool:
    """Whether some size was measured more than once (also right for the rows of several compared ramps)."""
    return any(row.rep > 1 for row in rows)


def size_rows(rows: Sequence[Row]) -> list[Row]:
    """One row per size: the row itself when measured once, else the summary of its repetitions."""
    if not is_repeated(rows):
        return list(rows)
    return [size.summary_row() for size in group_sizes(rows)]


def noisy_sizes(rows: Sequence[Row], names: Sequence[str] = TIMED,
                limit: float = SPREAD_WARNING) -> list[tuple[SizeRepetitions, str, float]]:
    """(size, measure, spread) of every size whose repetitions of a timed measure spread beyond `limit`;
    the widest measure of each size only."""
    found = []
    for size in group_sizes(rows):
        spreads = [(spread, name) for name in names if (spread := size.spread(name)) is not None]
        if spreads:
            widest, name = max(spreads)
            if widest > limit:
                found.append((size, name, widest))
    return found
