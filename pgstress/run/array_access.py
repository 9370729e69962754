"""The client's side of the access phases for pgarrays, shared by both modes: the statement and parameters of
each access (db/array_access_sql.py), and what comes back decoded into the window, the metric or nothing.

The arrays travel in binary, both ways; what comes back is the columns' binary arrays (psycopg's and
asyncpg's raw loaders), decoded by the codec and checked by run/access.py like every other format's.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from pgstress.db.array_access_sql import ArrayAccessSql
from pgstress.db.array_binary import framed
from pgstress.db.schema import TableSql
from pgstress.run.access import RecordTruth
from pgstress.workload.epochs import Epoch
from pgstress.workload.payloads import VerifyError
from pgstress.workload.payloads.pgarrays_codec import PgArraysCodec, column_names

Values = Sequence[bytes | bytearray | memoryview | None]


class ArrayAccess:
    """One pgarrays table's accesses for one driver (asyncpg: `$n` parameters, else psycopg's)."""

    def __init__(self, codec: PgArraysCodec, table: TableSql, asyncpg: bool) -> None:
        self.codec = codec
        self.sql = ArrayAccessSql(table, asyncpg)
        self.names = column_names(codec.shape)

    def window(self, truth: RecordTruth, record_id: int) -> tuple[sql.Composed, Sequence[object] | dict[str, object]]:
        first, last = truth.window_first + 1, truth.window_first + truth.window_count
        return self.sql.slices(), self.sql.parameters([first, last, record_id])

    def metric(self, key: str, record_id: int) -> tuple[sql.Composed, Sequence[object] | dict[str, object]]:
        return self.sql.column(self.names[self.codec.shape.names.index(key)]), self.sql.parameters([record_id])

    def append(self, truth: RecordTruth, record_id: int, fields: Sequence[object]
               ) -> tuple[sql.Composed, Sequence[object] | dict[str, object]]:
        """The UPDATE growing every column by `fields` (the new epochs' arrays, as the driver binds them)."""
        return self.sql.append(), self.sql.parameters([*fields, truth.grown_epochs, truth.grown_hash, record_id])

    def window_of(self, values: Values) -> list[Epoch]:
        """The window's epochs out of every column's slice."""
        try:
            return [epoch for chunk in self.codec.decode_stream(framed(values)) for epoch in chunk]
        except ValueError as exc:  # ArrayMismatch, or the codec's own check of the columns
            raise VerifyError(f"the window read back is not the arrays written: {exc}") from exc

    def metric_of(self, key: str, value: bytes | bytearray | memoryview | None) -> list[object]:
        """One metric's values out of its column, as Python numbers (or booleans)."""
        index = self.codec.shape.names.index(key)
        try:
            values, _nulls = self.codec.decode_column(index, value)
        except ValueError as exc:
            raise VerifyError(f"the metric {key!r} read back is not the array written: {exc}") from exc
        found: list[object] = values.tolist()  # a NULL cannot be there: decode_column refuses it in a metric
        return found

    def appended(self, truth: RecordTruth) -> bytearray:
        """The new epochs as one binary array per column (the fields the UPDATE binds, each its length first)."""
        return self.codec.encode_table(truth.appended.table)

