"""The columns of a run's CSV (and of its JSON record's rows): the row type's own, which every run writes, then each
optional group the run uses.

A group belongs to an opt-in feature: its columns are there only when the run uses the feature, appended after the
row type's columns in the order declared in GROUPS, so a run that asks for nothing new writes the CSV it always did.
A new group is one line in GROUPS. A CSV is read back (--resume, compare) with any of the groups, in that order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pgstress.config import RunConfig, has_layouts, has_standbys
from pgstress.rows import ACCESS_COLUMNS, LAYOUT_COLUMNS, STANDBY_COLUMNS, Row


@dataclass(frozen=True)
class ColumnGroup:
    """Columns that belong to one opt-in feature, and whether a run uses it."""

    name: str  # as messages name the group: "the access columns"
    columns: tuple[str, ...]
    used: Callable[[RunConfig], bool]


GROUPS: tuple[ColumnGroup, ...] = (
    ColumnGroup("access", ACCESS_COLUMNS, lambda config: config.access != "full"),  # --access beyond the full read
    ColumnGroup("layout", LAYOUT_COLUMNS, has_layouts),  # --layout chunked or all
    ColumnGroup("standby", STANDBY_COLUMNS, has_standbys),  # --standby-dsn, --standby embedded
)


def csv_columns(row_type: type[Row], config: RunConfig) -> tuple[str, ...]:
    """The columns of a run's CSV: the row type's, then those of each group the run uses."""
    return _with(row_type, [group for group in GROUPS if group.used(config)])


def every_column(row_type: type[Row]) -> tuple[str, ...]:
    """The row type's columns and every group's: all a CSV or a JSON record's row can hold, in their order."""
    return _with(row_type, GROUPS)


def groups_in(row_type: type[Row], header: Sequence[str]) -> list[ColumnGroup] | None:
    """The groups a CSV header holds after the row type's columns (any of them, in the declared order); None when
    the header is not the row type's columns followed by whole groups."""
    base = row_type.COLUMNS
    if tuple(header[: len(base)]) != base:
        return None
    rest, found = tuple(header[len(base):]), []
    for group in GROUPS:
        if rest[: len(group.columns)] == group.columns:
            found.append(group)
            rest = rest[len(group.columns):]
    return found if not rest else None


def _with(row_type: type[Row], groups: Sequence[ColumnGroup]) -> tuple[str, ...]:
    return (*row_type.COLUMNS, *(name for group in groups for name in group.columns))
