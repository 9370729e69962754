"""A run's claim on its tables: one at a time per table, and nothing emptied that is not the run's own.

The claim is the run's control connection. On connecting it takes a session-level advisory lock
per table (`pg_try_advisory_lock`), held until the run ends: a second run on a table in use is
refused before it touches anything, and no two runs ever read or empty each other's rows. If the
connection is lost (a server restart) the lock goes with it; the reconnect takes it again or
refuses to go on (TableInUse). The truncate between iterations locks the table, checks that its
name still means the table the run prepared (the pinned OID), and empties it, in one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import psycopg

from pgstress.db.psycopg_adapter import ReconnectingConnection
from pgstress.db.schema import TableNotOurs, TableRefused, TableSql

_KEY_NAMESPACE = b"pgstress table "


class TableInUse(TableRefused):
    """Another session (another pgstress run) holds the table's lock."""


def claim_key(table: str) -> int:
    """The advisory lock key of a table name in this database: 64 bits of a hash, as a signed bigint."""
    digest = hashlib.blake2b(_KEY_NAMESPACE + table.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _holder(conn: psycopg.Connection, key: int) -> str:
    """Who holds a key's advisory lock, for the message: 'server process N (application, client)'."""
    found = conn.execute(
        "SELECT l.pid, a.application_name, a.client_addr::text FROM pg_locks l"
        " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database()) AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
        [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
    ).fetchone()
    if found is None:
        return "another session"
    pid, application, client = found
    details = [part for part in (application, client and f"client {client}") if part]
    return f"server process {pid}" + (f" ({', '.join(details)})" if details else "")


class TableClaim(ReconnectingConnection):
    """The run's control connection, holding every table of the run for the whole run."""

    def __init__(self, dsn: str, tables: Sequence[str], statement_timeout_ms: int) -> None:
        super().__init__(dsn, statement_timeout_ms)
        self.tables = tuple(tables)
        self._claimed: psycopg.Connection | None = None

    @property
    def conn(self) -> psycopg.Connection:
        """The connection, with every table's lock held; raises TableInUse when another session holds one."""
        conn = super().conn
        if conn is not self._claimed:
            self._claim(conn)
            self._claimed = conn
        return conn

    def _claim(self, conn: psycopg.Connection) -> None:
        for table in self.tables:
            key = claim_key(table)
            taken = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
            if not (taken and taken[0]):
                holder = _holder(conn, key)
                self.close()  # ends the session: the locks it took are released
                raise TableInUse(
                    f"table {table!r} is in use by another pgstress run ({holder} holds its lock);"
                    " wait for that run to end, or choose another --table"
                )


def truncate_own(conn: psycopg.Connection, table: TableSql) -> None:
    """Empty the table if, under its lock, its name still means the table this run prepared."""
    with conn.transaction():
        conn.execute(table.lock("ACCESS EXCLUSIVE"))
        found = conn.execute(table.current_oid()).fetchone()
        if table.oid is None or found is None or found[0] != table.oid:
            raise TableNotOurs(table.table)
        conn.execute(table.truncate())
