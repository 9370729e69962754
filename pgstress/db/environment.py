"""The server the run ran on: its version and the settings that shape the result."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

SERVER_SETTINGS = (
    "server_version",
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


@dataclass
class ServerDetails:
    version: str = "unknown"
    settings: dict[str, str] = field(default_factory=dict)
    payload_column_compression: str | None = None  # pglz, lz4, or default (follows default_toast_compression)


def collect_server(conn: psycopg.Connection, table: str | None = None) -> ServerDetails:
    details = ServerDetails()
    row = conn.execute("SELECT version()").fetchone()
    details.version = row[0] if row else "unknown"
    found = conn.execute(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", [list(SERVER_SETTINGS)]
    ).fetchall()
    details.settings = {name: value for name, value in found}
    if table is not None:
        compression = conn.execute(
            sql.SQL(
                "SELECT attcompression FROM pg_attribute WHERE attrelid = to_regclass({}) AND attname = 'payload'"
            ).format(sql.Literal(sql.Identifier(table).as_string(None)))
        ).fetchone()
        if compression is not None:
            details.payload_column_compression = _COMPRESSION_CODES.get(compression[0] or "", "default")
    conn.rollback()
    return details
