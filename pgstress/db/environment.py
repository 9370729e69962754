"""The server the run ran on: its version and the settings that shape the result."""

from __future__ import annotations

import psycopg
from psycopg import sql

from pgstress.db.server_measures import probe_measures
from pgstress.db.storage import COLUMN_COMPRESSION_SINCE
from pgstress.target import ServerDetails

SERVER_SETTINGS = (
    "server_version",
    "server_version_num",
    "shared_buffers",
    "default_toast_compression",
    "statement_timeout",
    "max_wal_size",
    "wal_level",
    "synchronous_commit",
    "work_mem",
    "max_connections",
)
_COMPRESSION_CODES = {"p": "pglz", "l": "lz4"}
_STORAGE_CODES = {"p": "plain", "e": "external", "m": "main", "x": "extended"}


def collect_server(conn: psycopg.Connection, table: str | None = None, column: str = "payload") -> ServerDetails:
    """The server's version and settings; with a table, how its payload column `column` is stored (a format of
    several payload columns gives each the same settings, so its first one speaks for all)."""
    details = ServerDetails()
    row = conn.execute("SELECT version()").fetchone()
    details.version = row[0] if row else "unknown"
    found = conn.execute(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", [list(SERVER_SETTINGS)]
    ).fetchall()
    details.settings = {name: value for name, value in found}
    if table is not None:
        per_column = int(details.settings.get("server_version_num", "0") or 0) >= COLUMN_COMPRESSION_SINCE
        found_column = conn.execute(
            sql.SQL("SELECT attstorage, {} FROM pg_attribute WHERE attrelid = to_regclass({}) AND attname = {}")
            .format(sql.SQL("attcompression") if per_column else sql.NULL,
                    sql.Literal(sql.Identifier(table).as_string(None)), sql.Literal(column))
        ).fetchone()
        if found_column is not None:
            storage, compression = found_column
            details.payload_column_storage = _STORAGE_CODES.get(storage, storage)
            if per_column:
                details.payload_column_compression = _COMPRESSION_CODES.get(compression or "", "default")
    details.measures = probe_measures(conn)
    conn.rollback()
    return details
