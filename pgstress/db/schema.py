"""The benchmark table: created, checked, truncated and dropped only when it is pgstress's own.

All SQL here is composed with psycopg.sql (identifiers quoted); the statements the drivers
execute are built once and rendered for either driver (`%s` for psycopg, `$n` for asyncpg).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

MARKER = "pgstress benchmark table"
_EXPECTED_COLUMNS = {"id", "payload", "epochs", "content_hash", "created_at"}


class TableRefused(Exception):
    """The named table exists but is not one pgstress may write into, truncate or drop."""


@dataclass(frozen=True)
class TableSql:
    """The statements a runner needs for one table, as psycopg.sql objects."""

    table: str
    column_type: str

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.table)

    def insert(self, placeholders: tuple[str, str, str] = ("%b", "%s", "%s")) -> sql.Composed:
        return sql.SQL("INSERT INTO {} (payload, epochs, content_hash) VALUES ({}, {}, {}) RETURNING id").format(
            self.ident, *(sql.SQL(p) for p in placeholders)
        )

    def select_payload(self, placeholder: str = "%s") -> sql.Composed:
        return sql.SQL("SELECT payload, epochs, content_hash FROM {} WHERE id = {}").format(
            self.ident, sql.SQL(placeholder)
        )

    def sizes(self) -> sql.Composed:
        """(id, stored payload bytes, stored row bytes) of the records whose ids are the parameter's array."""
        return sql.SQL(
            "SELECT t.id, pg_column_size(t.payload), pg_column_size(t.*) FROM {} AS t WHERE t.id = ANY(%s)"
        ).format(self.ident)

    def truncate(self) -> sql.Composed:
        return sql.SQL("TRUNCATE TABLE {} RESTART IDENTITY").format(self.ident)

    def total_size(self) -> sql.Composed:
        return sql.SQL("SELECT pg_total_relation_size({})").format(sql.Literal(self.ident.as_string(None)))

    def create(self) -> sql.Composed:
        return sql.SQL(
            "CREATE TABLE {} (id BIGSERIAL PRIMARY KEY, payload {} NOT NULL, epochs INTEGER NOT NULL,"
            " content_hash TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ).format(self.ident, sql.SQL(self.column_type))

    def comment(self) -> sql.Composed:
        return sql.SQL("COMMENT ON TABLE {} IS {}").format(self.ident, sql.Literal(MARKER))

    def drop(self) -> sql.Composed:
        return sql.SQL("DROP TABLE IF EXISTS {}").format(self.ident)

    def copy_in(self) -> sql.Composed:
        """Binary COPY of (payload, epochs, content_hash) tuples; the id comes from its sequence."""
        return sql.SQL("COPY {} (payload, epochs, content_hash) FROM STDIN (FORMAT BINARY)").format(self.ident)


def _describe(conn: psycopg.Connection, table: str) -> tuple[str | None, dict[str, str]] | None:
    """(comment, {column: type}) of a table in the search path, or None if there is none."""
    found = conn.execute(
        "SELECT c.oid, obj_description(c.oid, 'pg_class') FROM pg_class c"
        " WHERE c.oid = to_regclass(%s)",
        [sql.Identifier(table).as_string(None)],
    ).fetchone()
    if found is None:
        return None
    oid, comment = found
    columns = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
        [oid],
    ).fetchall()
    return comment, {name: kind for name, kind in columns}


def check_table(conn: psycopg.Connection, spec: TableSql, *, drop: bool) -> bool:
    """Raise TableRefused unless the table is absent, ours and matching, or to be dropped.

    Returns whether the table exists. Reads only; touches nothing.
    """
    described = _describe(conn, spec.table)
    conn.rollback()
    if described is None:
        return False
    if drop:
        return True
    comment, columns = described
    if comment != MARKER:
        raise TableRefused(
            f"table {spec.table!r} exists and was not created by pgstress; refusing to write into,"
            f" truncate or drop it (pass --drop-table to replace it, or choose another --table)"
        )
    payload_type = columns.get("payload", "")
    if not columns.keys() >= _EXPECTED_COLUMNS or payload_type.upper() != spec.column_type:
        raise TableRefused(
            f"table {spec.table!r} has payload type {payload_type or 'missing'!r}, this run needs"
            f" {spec.column_type} (pass --drop-table to recreate it, or choose another --table)"
        )
    return True


def prepare_table(conn: psycopg.Connection, spec: TableSql, *, drop: bool, truncate: bool) -> None:
    """Create (or recreate) and optionally empty the table, after `check_table` approved it."""
    exists = check_table(conn, spec, drop=drop)
    with conn.transaction():
        if drop and exists:
            conn.execute(spec.drop())
            exists = False
        if not exists:
            conn.execute(spec.create())
            conn.execute(spec.comment())
        elif truncate:
            conn.execute(spec.truncate())
