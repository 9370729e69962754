"""The chunked layout's table (--layout chunked): one row per chunk of a record, keyed by (record, chunk).

The table is pgstress's own by the same rules as the value layout's (db/schema.py: the marker comment, the pinned
OID checked by every write, TRUNCATE ONLY, a table with dependants refused); `ChunkedTableSql` only changes the
statements. A record's number comes from the table's own sequence (`record` is a BIGSERIAL), taken by the first
statement of the record's transaction and only while the table is still the pinned one. The row's `epochs` is
the chunk's own count: an append then writes only the chunks it changes.

SQL composed with psycopg.sql (identifiers quoted, values as parameters); `ChunkedStatements` renders the
placeholders for either driver (`%s` for psycopg, `$n` for asyncpg).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from psycopg import sql

from pgstress.db.copy_binary import COPY_CHUNK_BYTES, COPY_SIGNATURE, COPY_TRAILER, JSONB_VERSION
from pgstress.db.schema import TableSql, table_for

CHUNKED_COLUMNS = frozenset({"record", "chunk", "payload", "epochs", "created_at"})


@dataclass(frozen=True)
class ChunkedTableSql(TableSql):
    """The chunked layout's table: what db/schema.py, the control connection and the server measures ask of a
    table, for rows of chunks."""

    layout: ClassVar[str] = "chunked"
    expected_columns: ClassVar[frozenset[str]] = CHUNKED_COLUMNS
    record_column: ClassVar[str] = "record"

    def create(self) -> sql.Composed:
        return sql.SQL(
            "CREATE TABLE {} (record BIGSERIAL NOT NULL, chunk INTEGER NOT NULL, payload {} NOT NULL,"
            " epochs INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (record, chunk))"
        ).format(self.ident, sql.SQL(self.column_type))

    def select_payload(self, placeholder: str = "%s") -> sql.Composed:
        """Every chunk of a record, in chunk order: (chunk, payload, epochs)."""
        return sql.SQL("SELECT chunk, payload, epochs FROM ONLY {} WHERE record = {} ORDER BY chunk").format(
            self.ident, sql.SQL(placeholder))

    def visible_count(self) -> sql.Composed:
        return sql.SQL("SELECT pg_last_wal_replay_lsn() IS NOT NULL,"
                       " (SELECT count(DISTINCT record) FROM ONLY {} WHERE record = ANY(%s))").format(self.ident)

    def sizes(self) -> sql.Composed:
        """(record, stored payload bytes, stored row bytes) of the records named, each summed over its chunks."""
        return sql.SQL(
            "SELECT t.record, sum(pg_column_size(t.payload)), sum(pg_column_size(t.*)) FROM ONLY {} AS t"
            " WHERE t.record = ANY(%s) GROUP BY t.record"
        ).format(self.ident)

    def copy_in(self) -> sql.Composed:
        """Binary COPY of (record, chunk, payload, epochs) tuples; copies no row when the table is no longer the
        pinned one."""
        return sql.SQL("COPY {} (record, chunk, payload, epochs) FROM STDIN (FORMAT BINARY) WHERE {}").format(
            self.ident, self.owned_condition())


def layout_table(table: str, columns: Sequence[tuple[str, str]], layout: str) -> TableSql:
    """The statements of a ramp's table for its layout and its format's payload columns ((name, SQL type)); the
    chunked layout stores formats of one payload column only (run/layout.py refuses the others up front)."""
    if layout == ChunkedTableSql.layout:
        (_name, column_type), = columns
        return ChunkedTableSql(table, column_type)
    return table_for(table, columns)


@dataclass(frozen=True)
class ChunkedStatements:
    """The chunked table's statements as one driver sends them; `p(n)` is the n-th placeholder (1-based)."""

    table: TableSql
    asyncpg: bool = False
    payload_placeholder: str = "%s"  # psycopg: %b for bytea, %t for jsonb's text

    def p(self, n: int) -> sql.SQL:
        return sql.SQL(f"${n}" if self.asyncpg else "%s")

    def _payload(self, n: int) -> sql.SQL:
        return self.p(n) if self.asyncpg else sql.SQL(self.payload_placeholder)

    def new_record(self) -> sql.Composed:
        """A record number from the table's sequence, and none (no row) when the table is not the pinned one."""
        return sql.SQL("SELECT nextval(pg_get_serial_sequence({}, 'record')) WHERE {}").format(
            self.table.regclass_text(), self.table.owned_condition())

    def insert_chunk(self) -> sql.Composed:
        """One chunk row: (record, chunk, payload, epochs); no row back when the table is not the pinned one."""
        return sql.SQL(
            "INSERT INTO {} (record, chunk, payload, epochs) SELECT {}::bigint, {}::integer, {}::{}, {}::integer"
            " WHERE {} RETURNING record"
        ).format(self.table.ident, self.p(1), self.p(2), self._payload(3), sql.SQL(self.table.column_type),
                 self.p(4), self.table.owned_condition())

    def update_chunk(self) -> sql.Composed:
        """One chunk rewritten: (payload, epochs, record, chunk) (psycopg's placeholders go in this order)."""
        return sql.SQL(
            "UPDATE {} SET payload = {}::{}, epochs = {}::integer WHERE record = {} AND chunk = {} AND {}"
            " RETURNING record"
        ).format(self.table.ident, self._payload(1), sql.SQL(self.table.column_type), self.p(2), self.p(3),
                 self.p(4), self.table.owned_condition())

    def select_all(self) -> sql.Composed:
        """Every chunk of a record in order: (record) -> (chunk, payload, epochs)."""
        return self.table.select_payload("$1" if self.asyncpg else "%s")

    def select_between(self) -> sql.Composed:
        """The chunks first .. last of a record, in order: (record, first, last) -> (chunk, payload, epochs)."""
        return sql.SQL(
            "SELECT chunk, payload, epochs FROM ONLY {} WHERE record = {} AND chunk BETWEEN {} AND {} ORDER BY chunk"
        ).format(self.table.ident, self.p(1), self.p(2), self.p(3))

    def select_last(self) -> sql.Composed:
        """A record's last chunk: (record) -> (chunk, payload, epochs)."""
        return sql.SQL(
            "SELECT chunk, payload, epochs FROM ONLY {} WHERE record = {} ORDER BY chunk DESC LIMIT 1"
        ).format(self.table.ident, self.p(1))

    def window_per_chunk(self) -> sql.Composed:
        """The window's epochs out of each chunk row it overlaps, sliced on the server with a jsonpath built from
        integers only: (record, first epoch, last epoch, K, first chunk, last chunk) -> (chunk, array), in order.
        psycopg takes them by name (K appears twice): record, first, last, k, first_chunk, last_chunk."""
        def at(n: int, name: str) -> sql.Composable:
            return sql.SQL(f"${n}") if self.asyncpg else sql.Placeholder(name)

        k = at(4, "k")
        return sql.SQL(
            "SELECT chunk, jsonb_path_query_array(payload, ('$.epochs[' || greatest({}::bigint - chunk::bigint *"
            " {}::bigint, 0) || ' to ' || least({}::bigint - chunk::bigint * {}::bigint, epochs - 1) || ']')::jsonpath)"
            " FROM ONLY {} WHERE record = {} AND chunk BETWEEN {} AND {} ORDER BY chunk"
        ).format(at(2, "first"), k, at(3, "last"), k, self.table.ident, at(1, "record"), at(5, "first_chunk"),
                 at(6, "last_chunk"))

    def path_per_chunk(self) -> sql.Composed:
        """What a jsonpath selects in each chunk of a record, in chunk order: (path, record) -> (chunk, array)."""
        return sql.SQL(
            "SELECT chunk, jsonb_path_query_array(payload, {}::jsonpath) FROM ONLY {} WHERE record = {}"
            " ORDER BY chunk"
        ).format(self.p(1), self.table.ident, self.p(2))


def chunk_copy_stream(record: int, first_chunk: int, chunks: Sequence[bytes | bytearray], chunk_epochs: Sequence[int],
                      jsonb: bool) -> Iterator[bytes | memoryview]:
    """A binary COPY stream of a record's chunk rows (record, chunk, payload, epochs), each payload sent in slices
    of COPY_CHUNK_BYTES without another whole copy."""
    prefix = JSONB_VERSION if jsonb else b""
    yield COPY_SIGNATURE
    for offset, (data, epochs) in enumerate(zip(chunks, chunk_epochs, strict=True)):
        yield struct.pack("!hiqii", 4, 8, record, 4, first_chunk + offset) + struct.pack(
            "!i", len(prefix) + len(data)) + prefix
        view = memoryview(data)
        try:
            for start in range(0, len(view), COPY_CHUNK_BYTES):
                yield view[start:start + COPY_CHUNK_BYTES]
        finally:
            view.release()
        yield struct.pack("!ii", 4, epochs)
    yield COPY_TRAILER
