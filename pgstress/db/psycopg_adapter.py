"""The psycopg 3 side: a connection that comes back after the server dropped it, and sync mode's calls.

Connections are in autocommit: an INSERT or a COPY commits as it returns (the write the spec
times includes its commit), and no session sits idle in a transaction that would block the
TRUNCATE between iterations.
"""

from __future__ import annotations

import psycopg
from psycopg import postgres, pq
from psycopg.abc import Buffer
from psycopg.adapt import Dumper, Loader
from psycopg.types.json import Jsonb

from pgstress.db.array_binary import ARRAY_OIDS, fields_of
from pgstress.db.copy_binary import binary_copy_chunks, framed_as_read, jsonb_text
from pgstress.db.schema import TableNotOurs, TableSql
from pgstress.workload.payloads import EncodedPayload, VerifyError


class _RawBinaryLoader(Loader):
    """Hands over the result's bytes without copying them (valid while the cursor lives)."""

    format = pq.Format.BINARY

    def load(self, data: Buffer) -> memoryview:
        return memoryview(data)  # a view of the same bytes (psycopg hands binary results over as one)


class _BufferBinaryDumper(Dumper):
    """Hands the encoded bytes to libpq as they are (psycopg's own bytea dumper copies them first).

    The value sent is unchanged; an INSERT of a huge bytea then holds the value once in Python
    and once in libpq's outgoing message instead of three times.
    """

    format = pq.Format.BINARY
    oid = postgres.types["bytea"].oid

    def dump(self, obj: bytes | bytearray) -> bytes | bytearray:
        return obj


class BinaryField:
    """One payload column's value already in its binary wire form (an array's), bound as it is: the server takes
    its type from the statement's cast."""

    __slots__ = ("data",)

    def __init__(self, data: memoryview) -> None:
        self.data = data


class _BinaryFieldDumper(Dumper):
    format = pq.Format.BINARY  # oid 0: the parameter's type is the one its cast names

    def dump(self, obj: BinaryField) -> memoryview:
        return obj.data


def _identity(value: bytes | bytearray) -> bytes | bytearray:
    return value


def connect(dsn: str, statement_timeout_ms: int) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SELECT set_config('statement_timeout', %s, false)", [str(statement_timeout_ms)])
    for type_name in ("bytea", "jsonb"):
        conn.adapters.register_loader(type_name, _RawBinaryLoader)
    for array_oid in ARRAY_OIDS.values():  # pgarrays' columns, decoded by the codec from their binary form
        conn.adapters.register_loader(array_oid, _RawBinaryLoader)
    for python_type in (bytes, bytearray):
        conn.adapters.register_dumper(python_type, _BufferBinaryDumper)
    conn.adapters.register_dumper(BinaryField, _BinaryFieldDumper)
    return conn


class ReconnectingConnection:
    """One psycopg connection, opened on first use and again after the server closed it."""

    def __init__(self, dsn: str, statement_timeout_ms: int) -> None:
        self.dsn = dsn
        self._timeout = statement_timeout_ms
        self._conn: psycopg.Connection | None = None

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, self._timeout)
        return self._conn

    def revive(self) -> None:
        """Have a working connection before the timed phases: open one if there is none, and replace one the
        server has closed since its last use (a restart, an admin's kill).

        psycopg only notices a dead connection when it next uses it; without this check the first
        statement after a server restart would fail and count as a lost iteration although the
        server is back, and a first connection would be timed as part of the first write. One round
        trip, outside every timed phase.
        """
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT 1")
                return
            except psycopg.Error:
                self.close()
        self.conn  # noqa: B018 - connecting is the point

    def recover(self, lost: bool) -> None:
        """After a failed statement: drop the connection if it is gone, so the next use reconnects."""
        if self._conn is not None and (lost or self._conn.broken):
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SyncDatabase(ReconnectingConnection):
    """Sync mode's writes and reads of one table.

    `insert_blocking` is the INSERT with libpq's blocking send: psycopg puts every connection in
    non-blocking mode, where libpq queues the whole Bind message and psycopg flushes it piece by
    piece (each partial send moves the unsent rest to the front of libpq's buffer), which costs far
    more than the server's work for values of hundreds of MiB (bench/results.md).
    """

    def __init__(self, dsn: str, table: TableSql, statement_timeout_ms: int, write_method: str = "insert") -> None:
        super().__init__(dsn, statement_timeout_ms)
        self.table = table
        self._write = self.copy if write_method == "copy" else self.insert
        self._blocking_send = write_method == "insert_blocking"
        self._jsonb = table.column_type == "JSONB"
        # jsonb goes as a text parameter: psycopg's binary jsonb dumper prepends the version byte
        # by copying the whole value in Python; the server parses the same JSON text either way.
        self._columns = len(table.payload_columns)  # 0: the one payload column; else the payload is their fields
        self._insert_sql = table.insert(("%t" if self._jsonb else "%b",) * len(table.columns) + ("%s", "%s"))

    @property
    def conn(self) -> psycopg.Connection:
        conn = super().conn
        if self._blocking_send and conn.pgconn.nonblocking:
            conn.pgconn.nonblocking = 0  # psycopg sets it only when connecting, so a new connection gets it here
        return conn

    def insert(self, payload: EncodedPayload) -> int:
        values: list[object] = [payload.data]
        if self._jsonb:
            values = [Jsonb(payload.data, dumps=_identity)]  # type: ignore[arg-type]  # a bytearray goes as is
        elif self._columns:
            values = [BinaryField(field) if field is not None else None for field in fields_of(payload.data,
                                                                                            self._columns)]
        row = self.conn.execute(self._insert_sql, [*values, payload.epochs, payload.content_hash]).fetchone()
        if row is None:
            raise TableNotOurs(self.table.table)
        return int(row[0])

    def copy(self, payload: EncodedPayload) -> int:
        """Binary COPY of the record, the payload streamed in chunks without another whole copy."""
        with self.conn.cursor() as cursor:
            with cursor.copy(self.table.copy_in()) as copy:
                for chunk in binary_copy_chunks(payload, self._jsonb):
                    copy.write(chunk)
            if cursor.rowcount != 1:
                raise TableNotOurs(self.table.table)
            row = cursor.execute("SELECT lastval()").fetchone()  # this session's nextval of the id
        assert row is not None
        return int(row[0])

    def write(self, payload: EncodedPayload) -> int:
        """Store the record with the configured write method (committed); returns its id."""
        return self._write(payload)

    def fetch(self, record_id: int) -> tuple[psycopg.Cursor, memoryview, int, str]:
        """Run the select; the returned view lives as long as the returned cursor."""
        cursor = self.conn.cursor(binary=True)
        cursor.execute(self.table.select_payload(), [record_id])
        found = cursor.fetchone()
        if found is None:
            cursor.close()
            raise VerifyError(f"record {record_id} is no longer in table {self.table.table!r}")
        *values, epochs, content_hash = found
        if self._columns:  # the columns' values as the fields they were sent as (one copy of them)
            return cursor, memoryview(framed_as_read(values)), int(epochs), str(content_hash)
        return cursor, jsonb_text(values[0]) if self._jsonb else values[0], int(epochs), str(content_hash)
