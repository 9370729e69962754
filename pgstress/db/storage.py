"""How the payload column is stored: its TOAST compression method and its storage strategy.

`--toast-compression` sets the column's COMPRESSION (PostgreSQL 14+; lz4 only on a server built
with it), `--storage` its STORAGE. A server that cannot do what was asked is refused before any
table is touched; otherwise the settings are applied to each pgstress table on every run, so the
table always stores new values the way this run says (existing rows keep how they were stored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgstress.db.schema import TableSql

COLUMN_COMPRESSION_SINCE = 140000  # ALTER COLUMN ... SET COMPRESSION and pg_column_compression()


class StorageUnsupported(Exception):
    """The server cannot store the payload column as asked; the message is one line, safe to print."""


@dataclass(frozen=True)
class StorageChoice:
    compression: str  # default, pglz or lz4
    storage: str  # extended, external or main


@dataclass(frozen=True)
class CompressionSupport:
    """What the server offers for TOAST compression."""

    version_num: int
    methods: tuple[str, ...]  # compiled in: pglz always, lz4 when built --with-lz4

    @property
    def per_column(self) -> bool:
        return self.version_num >= COLUMN_COMPRESSION_SINCE


def read_support(conn: psycopg.Connection) -> CompressionSupport:
    """The server version, and the compression methods it was built with (read only)."""
    row = conn.execute(
        "SELECT current_setting('server_version_num')::int,"
        " (SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression')"
    ).fetchone()
    conn.rollback()
    assert row is not None
    version_num, methods = row
    return CompressionSupport(int(version_num), tuple(methods or ("pglz",)))


def refusal(support: CompressionSupport, wanted: str) -> str | None:
    """Why the server cannot give the payload column the compression `wanted`, or None when it can."""
    if wanted == "default":
        return None
    if not support.per_column:
        major = support.version_num // 10000
        return (f"--toast-compression {wanted} needs PostgreSQL 14 or later (per-column COMPRESSION); this server is"
                f" PostgreSQL {major}: use --toast-compression default")
    if wanted not in support.methods:
        return (f"--toast-compression {wanted}: this server was built without {wanted} support (it offers"
                f" {', '.join(support.methods)}); use another method, or a server built --with-{wanted}")
    return None


def check_storage(conn: psycopg.Connection, choices: Sequence[StorageChoice]) -> CompressionSupport:
    """Raise StorageUnsupported unless the server can store every choice; reads only."""
    support = read_support(conn)
    for choice in choices:
        reason = refusal(support, choice.compression)
        if reason is not None:
            raise StorageUnsupported(reason)
    return support


def apply_storage(conn: psycopg.Connection, table: TableSql, choice: StorageChoice,
                  support: CompressionSupport) -> None:
    """Set each payload column's STORAGE, and its COMPRESSION where the server has per-column compression."""
    actions = []
    for name, _kind in table.columns:
        column = sql.Identifier(name)
        actions.append(sql.SQL("ALTER COLUMN {} SET STORAGE {}").format(column, sql.SQL(choice.storage.upper())))
        if support.per_column:
            method = sql.SQL("DEFAULT") if choice.compression == "default" else sql.Identifier(choice.compression)
            actions.append(sql.SQL("ALTER COLUMN {} SET COMPRESSION {}").format(column, method))
    with conn.transaction():
        conn.execute(sql.SQL("ALTER TABLE {} {}").format(table.ident, sql.SQL(", ").join(actions)))
