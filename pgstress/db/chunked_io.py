"""Both drivers' writes and reads of the chunked layout's table (db/chunked.py): a record's chunks written in one
transaction (INSERT per chunk, or one binary COPY of them all), and read back in chunk order.

Each statement checks the table is still the one the run pinned (TableNotOurs, nothing written, the transaction
rolled back). The values received are views of the driver's own buffers, as db/psycopg_adapter.py hands them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import psycopg
from psycopg.types.json import Jsonb

from pgstress.db.asyncpg_adapter import AsyncDatabase, _as_async
from pgstress.db.chunked import ChunkedStatements, chunk_copy_stream
from pgstress.db.copy_binary import jsonb_text
from pgstress.db.psycopg_adapter import SyncDatabase, _identity
from pgstress.db.schema import TableNotOurs, TableSql
from pgstress.workload.payloads import VerifyError

Chunk = tuple[int, memoryview, int]  # (chunk number, its value's bytes, its epochs column)


def _received(rows: Sequence[Sequence[Any]], jsonb: bool) -> list[Chunk]:
    """(chunk, value, epochs) rows as the driver returned them (the value: a view of its buffer, or bytes), with
    jsonb's binary form reduced to its JSON text."""
    chunks = []
    for number, data, epochs in rows:
        view = memoryview(data)
        chunks.append((int(number), jsonb_text(view) if jsonb else view, int(epochs)))
    return chunks


class ChunkedSyncDatabase(SyncDatabase):
    """Sync mode's calls on the chunked table (the connection handling is SyncDatabase's)."""

    def __init__(self, dsn: str, table: TableSql, statement_timeout_ms: int, write_method: str = "insert") -> None:
        super().__init__(dsn, table, statement_timeout_ms, write_method)
        self._copy = write_method == "copy"
        self.sql = ChunkedStatements(table, payload_placeholder="%t" if self._jsonb else "%b")

    @property
    def jsonb(self) -> bool:
        return self._jsonb

    def _value(self, data: bytes | bytearray) -> object:
        return Jsonb(data, dumps=_identity) if self._jsonb else data  # type: ignore[arg-type]

    def write_chunks(self, chunks: Sequence[bytes | bytearray], chunk_epochs: Sequence[int]) -> int:
        """A new record's chunks, all in one transaction (committed on return); its record number."""
        conn = self.conn
        with conn.transaction():
            found = conn.execute(self.sql.new_record()).fetchone()
            if found is None:
                raise TableNotOurs(self.table.table)
            record = int(found[0])
            self.put_chunks(conn, record, 0, chunks, chunk_epochs)
        return record

    def put_chunks(self, conn: psycopg.Connection, record: int, first: int, chunks: Sequence[bytes | bytearray],
                   chunk_epochs: Sequence[int]) -> None:
        """New chunk rows first, first + 1, ... of a record, inside the caller's transaction."""
        if not chunks:
            return
        if self._copy:
            with conn.cursor() as cursor:
                with cursor.copy(self.table.copy_in()) as copy:
                    for piece in chunk_copy_stream(record, first, chunks, chunk_epochs, self._jsonb):
                        copy.write(piece)
                if cursor.rowcount != len(chunks):
                    raise TableNotOurs(self.table.table)
            return
        statement = self.sql.insert_chunk()
        for offset, (data, epochs) in enumerate(zip(chunks, chunk_epochs, strict=True)):
            if conn.execute(statement, [record, first + offset, self._value(data), epochs]).fetchone() is None:
                raise TableNotOurs(self.table.table)

    def rewrite_chunk(self, conn: psycopg.Connection, record: int, chunk: int, data: bytes | bytearray,
                      epochs: int) -> None:
        if conn.execute(self.sql.update_chunk(), [self._value(data), epochs, record, chunk]).fetchone() is None:
            raise TableNotOurs(self.table.table)

    def fetch_chunks(self, record: int, first: int | None = None,
                     last: int | None = None) -> tuple[psycopg.Cursor, list[Chunk]]:
        """A record's chunks (all, or first .. last) in order; the views live as long as the returned cursor."""
        cursor = self.conn.cursor(binary=True)
        if first is None or last is None:
            cursor.execute(self.sql.select_all(), [record])
        else:
            cursor.execute(self.sql.select_between(), [record, first, last])
        rows = cursor.fetchall()
        if not rows:
            cursor.close()
            raise VerifyError(f"record {record} is no longer in table {self.table.table!r}")
        return cursor, _received(rows, self._jsonb)

    def last_chunk(self, record: int) -> tuple[psycopg.Cursor, Chunk]:
        cursor = self.conn.cursor(binary=True)
        cursor.execute(self.sql.select_last(), [record])
        row = cursor.fetchone()
        if row is None:
            cursor.close()
            raise VerifyError(f"record {record} is no longer in table {self.table.table!r}")
        return cursor, _received([row], self._jsonb)[0]


class ChunkedAsyncDatabase(AsyncDatabase):
    """Async mode's calls on the chunked table (the pool is AsyncDatabase's)."""

    def __init__(self, pool: asyncpg.Pool, table: TableSql, connections: int, write_method: str = "insert") -> None:
        super().__init__(pool, table, connections, write_method)
        self.sql = ChunkedStatements(self.table, asyncpg=True)
        self._new = self.sql.new_record().as_string(None)
        self._insert_chunk = self.sql.insert_chunk().as_string(None)
        self._update_chunk = self.sql.update_chunk().as_string(None)
        self._all = self.sql.select_all().as_string(None)
        self._between = self.sql.select_between().as_string(None)
        self._last = self.sql.select_last().as_string(None)

    @property
    def jsonb(self) -> bool:
        return self._jsonb

    async def write_chunks(self, chunks: Sequence[bytes | bytearray], chunk_epochs: Sequence[int]) -> int:
        """A new record's chunks, all in one transaction; its record number."""
        async with self.connection() as conn, conn.transaction():
            record = await conn.fetchval(self._new)
            if record is None:
                raise TableNotOurs(self.table.table)
            await self.put_chunks(conn, int(record), 0, chunks, chunk_epochs)
        return int(record)

    async def put_chunks(self, conn: asyncpg.Connection, record: int, first: int, chunks: Sequence[bytes | bytearray],
                         chunk_epochs: Sequence[int]) -> None:
        """New chunk rows of a record, inside the caller's transaction on `conn`."""
        if not chunks:
            return
        if self._copy:
            status = await conn.copy_to_table(
                self.table.table, source=_as_async(chunk_copy_stream(record, first, chunks, chunk_epochs,
                                                                     self._jsonb)),
                columns=["record", "chunk", "payload", "epochs"], format="binary", where=self._owned,
            )
            if status != f"COPY {len(chunks)}":
                raise TableNotOurs(self.table.table)
            return
        for offset, (data, epochs) in enumerate(zip(chunks, chunk_epochs, strict=True)):
            if await conn.fetchval(self._insert_chunk, record, first + offset, data,
                                   epochs) is None:
                raise TableNotOurs(self.table.table)

    async def rewrite_chunk(self, conn: asyncpg.Connection, record: int, chunk: int, data: bytes | bytearray,
                            epochs: int) -> None:
        if await conn.fetchval(self._update_chunk, data, epochs, record, chunk) is None:
            raise TableNotOurs(self.table.table)

    async def fetch_chunks(self, record: int, first: int | None = None, last: int | None = None) -> list[Chunk]:
        async with self.connection() as conn:
            if first is None or last is None:
                rows = await conn.fetch(self._all, record)
            else:
                rows = await conn.fetch(self._between, record, first, last)
        if not rows:
            raise VerifyError(f"record {record} is no longer in table {self.table.table!r}")
        return _received([tuple(row) for row in rows], self._jsonb)

    async def last_chunk(self, record: int) -> Chunk:
        async with self.connection() as conn:
            row = await conn.fetchrow(self._last, record)
        if row is None:
            raise VerifyError(f"record {record} is no longer in table {self.table.table!r}")
        return _received([tuple(row)], self._jsonb)[0]
