"""The SQL of the access phases for pgarrays (one array column per key), done on the server as a DBA would.

- a window: the slice `col[a:b]` of every column (1-based, inclusive bounds), so only the window's elements
  are sent; the server still reads (and detoasts) each whole array to take its slice;
- one metric: that column alone;
- an append: `col = col || new` per column, which writes each whole grown array again (and its WAL).

Composed with psycopg.sql (identifiers quoted, values as parameters) and rendered for either driver: `$n`
for asyncpg, `%(pn)s` for psycopg (whose parameters are then a dict, see `parameters`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from pgstress.db.schema import TableSql


@dataclass(frozen=True)
class ArrayAccessSql:
    """The access statements of a pgarrays table; `p(n)` renders the n-th parameter (1-based)."""

    table: TableSql
    asyncpg: bool = False

    def p(self, n: int) -> sql.SQL:
        return sql.SQL(f"${n}" if self.asyncpg else f"%(p{n})s")

    def parameters(self, values: Sequence[object]) -> Sequence[object] | dict[str, object]:
        """The statement's parameters in the driver's form: a list for asyncpg, by name for psycopg."""
        return list(values) if self.asyncpg else {f"p{n}": value for n, value in enumerate(values, start=1)}

    def slices(self) -> sql.Composed:
        """Every column's slice [first:last] (1-based, inclusive): (first, last, id)."""
        columns = sql.SQL(", ").join(sql.SQL("{}[{}:{}]").format(column, self.p(1), self.p(2))
                                     for column in self.table.column_idents)
        return sql.SQL("SELECT {} FROM ONLY {} WHERE id = {}").format(columns, self.table.ident, self.p(3))

    def column(self, name: str) -> sql.Composed:
        """One column, whole: (id)."""
        return sql.SQL("SELECT {} FROM ONLY {} WHERE id = {}").format(sql.Identifier(name), self.table.ident,
                                                                      self.p(1))

    def append(self) -> sql.Composed:
        """Each column grown by its new elements, and the row's epochs and content_hash set:
        (one array per column, epochs, hash, id)."""
        count = len(self.table.columns)
        grown = sql.SQL(", ").join(
            sql.SQL("{} = {} || {}::{}").format(column, column, self.p(n), sql.SQL(kind))
            for n, (column, (_name, kind)) in enumerate(zip(self.table.column_idents, self.table.columns,
                                                            strict=True), start=1))
        return sql.SQL(
            "UPDATE {} SET {}, epochs = {}::integer, content_hash = {}::text WHERE id = {} AND {} RETURNING id"
        ).format(self.table.ident, grown, self.p(count + 1), self.p(count + 2), self.p(count + 3),
                 self.table.owned_condition())
