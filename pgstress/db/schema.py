"""The benchmark table: created, checked, truncated and dropped only when it is pgstress's own.

All SQL here is composed with psycopg.sql (identifiers quoted); the statements the drivers
execute are built once and rendered for either driver (`%s` for psycopg, `$n` for asyncpg).

A run pins its table's OID when it prepares it (`TableSql.oid`). Every write then checks, in its
own statement, that the name still means that very table: an INSERT or COPY into a table someone
dropped and recreated under the same name writes nothing (TableNotOurs). Ids come from the
table's sequence and are never restarted, so no two records of a run ever share an id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import psycopg
from psycopg import sql

MARKER = "pgstress benchmark table"
PAYLOAD = "payload"
_EXPECTED_COLUMNS = {"id", "epochs", "content_hash", "created_at"}


class TableRefused(Exception):
    """The named table exists but is not one pgstress may write into, truncate or drop."""


class TableNotOurs(Exception):
    """The table's name no longer means the table this run prepared: nothing was written or emptied."""

    def __init__(self, table: str) -> None:
        super().__init__(
            f"table {table!r} is no longer the table this run prepared (another session dropped or replaced it);"
            " pgstress leaves it untouched"
        )


@dataclass(frozen=True)
class TableSql:
    """The statements a runner needs for one table, as psycopg.sql objects."""

    table: str
    column_type: str  # of the one `payload` column
    oid: int | None = None  # pinned when the run prepared the table; writes check it
    # The layout the table's columns are of (the chunked layout's table is db/chunked.py's), the columns it must
    # have, and the column that names a record.
    layout: ClassVar[str] = "value"
    expected_columns: ClassVar[frozenset[str]] = frozenset(_EXPECTED_COLUMNS)
    record_column: ClassVar[str] = "id"

    # (name, SQL type) of each payload column of a format that declares its own (pgarrays: one per key);
    # empty: the one `payload` column of column_type
    payload_columns: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        """(name, SQL type) of every column the record's payload is stored in."""
        return self.payload_columns or ((PAYLOAD, self.column_type),)

    @property
    def column_idents(self) -> list[sql.Composable]:
        """The payload columns as SQL (the one `payload` column spelt as it always was)."""
        return [sql.SQL(PAYLOAD) if name == PAYLOAD else sql.Identifier(name) for name, _type in self.columns]

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.table)

    def pinned(self, oid: int) -> TableSql:
        return replace(self, oid=oid)

    def owned_condition(self) -> sql.Composable:
        """True while the table's name still resolves to the pinned table (always true when none is pinned)."""
        if self.oid is None:
            return sql.SQL("true")
        return sql.SQL("to_regclass({}) = {}::oid").format(self.regclass_text(), sql.Literal(self.oid))

    def regclass_text(self) -> sql.Literal:
        return sql.Literal(self.ident.as_string(None))

    def insert(self, placeholders: Sequence[str] = ()) -> sql.Composed:
        """One record in, its id back; no row back (nothing written) when the table is no longer the pinned one.
        The placeholders: one per payload column, then epochs and content_hash (default `%b` each, `%s`, `%s`)."""
        given = list(placeholders) or ["%b"] * len(self.columns) + ["%s", "%s"]
        *payloads, epochs, content_hash = (sql.SQL(p) for p in given)
        values = sql.SQL(", ").join(sql.SQL("{}::{}").format(placeholder, sql.SQL(kind))
                                    for placeholder, (_name, kind) in zip(payloads, self.columns, strict=True))
        return sql.SQL(
            "INSERT INTO {} ({}, epochs, content_hash) SELECT {}, {}::integer, {}::text WHERE {} RETURNING id"
        ).format(self.ident, sql.SQL(", ").join(self.column_idents), values, epochs, content_hash,
                 self.owned_condition())

    def select_payload(self, placeholder: str = "%s") -> sql.Composed:
        # ONLY, here and below: a table that inherits from this one holds the user's rows, never the run's
        return sql.SQL("SELECT {}, epochs, content_hash FROM ONLY {} WHERE id = {}").format(
            sql.SQL(", ").join(self.column_idents), self.ident, sql.SQL(placeholder)
        )

    def visible_count(self) -> sql.Composed:
        """(whether the server replays WAL, how many of the records whose ids are the parameter's array it shows):
        on a standby, a record is there once its commit has been replayed."""
        return sql.SQL("SELECT pg_last_wal_replay_lsn() IS NOT NULL, (SELECT count(*) FROM ONLY {} WHERE id = ANY(%s))"
                       ).format(self.ident)

    def sizes(self) -> sql.Composed:
        """(id, stored payload bytes, stored row bytes) of the records whose ids are the parameter's array; the
        payload bytes are summed over the payload columns."""
        if len(self.columns) == 1:
            stored: sql.Composable = sql.SQL("pg_column_size(t.{})").format(self.column_idents[0])
        else:  # each column can be up to 1 GB: summed as bigint
            stored = sql.SQL(" + ").join(sql.SQL("pg_column_size(t.{})::bigint").format(column)
                                         for column in self.column_idents)
        return sql.SQL(
            "SELECT t.id, {}, pg_column_size(t.*) FROM ONLY {} AS t WHERE t.id = ANY(%s)"
        ).format(stored, self.ident)

    def truncate(self) -> sql.Composed:
        """Empty the table and nothing else: ONLY keeps a table that inherits from it (attached at any moment,
        even while the run goes on) out of the truncate. Its id sequence goes on (ids are never reused)."""
        return sql.SQL("TRUNCATE TABLE ONLY {}").format(self.ident)

    def lock(self, mode: str) -> sql.Composed:
        return sql.SQL("LOCK TABLE {} IN {} MODE").format(self.ident, sql.SQL(mode))

    def current_oid(self) -> sql.Composed:
        return sql.SQL("SELECT to_regclass({})::oid").format(self.regclass_text())

    def total_size(self) -> sql.Composed:
        return sql.SQL("SELECT pg_total_relation_size({})").format(self.regclass_text())

    def create(self) -> sql.Composed:
        payloads = sql.SQL(", ").join(sql.SQL("{} {} NOT NULL").format(column, sql.SQL(kind))
                                      for column, (_name, kind) in zip(self.column_idents, self.columns, strict=True))
        return sql.SQL(
            "CREATE TABLE {} (id BIGSERIAL PRIMARY KEY, {}, epochs INTEGER NOT NULL,"
            " content_hash TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ).format(self.ident, payloads)

    def comment(self) -> sql.Composed:
        return sql.SQL("COMMENT ON TABLE {} IS {}").format(self.ident, sql.Literal(MARKER))

    def drop(self) -> sql.Composed:
        """RESTRICT: the server refuses rather than drop anything else that depends on the table."""
        return sql.SQL("DROP TABLE IF EXISTS {} RESTRICT").format(self.ident)

    def copy_in(self) -> sql.Composed:
        """Binary COPY of (payload columns..., epochs, content_hash) tuples; the id comes from its sequence. Copies
        no row when the table is no longer the pinned one."""
        return sql.SQL("COPY {} ({}, epochs, content_hash) FROM STDIN (FORMAT BINARY) WHERE {}").format(
            self.ident, sql.SQL(", ").join(self.column_idents), self.owned_condition())


def table_for(table: str, columns: Sequence[tuple[str, str]]) -> TableSql:
    """The statements of a table whose payload is stored in `columns` ((name, SQL type), as a codec declares)."""
    if len(columns) == 1 and columns[0][0] == PAYLOAD:
        return TableSql(table, columns[0][1])
    return TableSql(table, " + ".join(kind for _name, kind in columns),
                    payload_columns=tuple((name, kind) for name, kind in columns))


def _describe(conn: psycopg.Connection, table: str) -> tuple[int, str | None, dict[str, str]] | None:
    """(oid, comment, {column: type}) of a table in the search path, or None if there is none."""
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
    return int(oid), comment, {name: kind for name, kind in columns}


# What depends on a table (or its row type) and is not part of the table itself: inheritance children,
# partitions, views, other tables' foreign keys, columns of its row type, functions whose bodies use it.
# The table's own indexes, constraints, triggers, rules, defaults, policies, statistics and owned sequences
# go with it and hold none of the user's rows; anything else is the user's and must not be emptied or dropped.
_DEPENDANTS = """
SELECT DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass
                     THEN pg_describe_object('pg_class'::regclass, r.ev_class, 0)
                     ELSE pg_describe_object(d.classid, d.objid, 0) END AS what
FROM pg_depend d
LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
WHERE ((d.refclassid = 'pg_class'::regclass AND d.refobjid = %(oid)s)
       OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = (SELECT reltype FROM pg_class WHERE oid = %(oid)s)))
  AND d.deptype IN ('n', 'a')
  AND NOT CASE d.classid
    WHEN 'pg_class'::regclass THEN d.objid = %(oid)s
      OR EXISTS (SELECT FROM pg_class c WHERE c.oid = d.objid AND c.relkind IN ('i', 'I', 'S', 't'))
    WHEN 'pg_constraint'::regclass
      THEN EXISTS (SELECT FROM pg_constraint x WHERE x.oid = d.objid AND x.conrelid = %(oid)s)
    WHEN 'pg_trigger'::regclass THEN EXISTS (SELECT FROM pg_trigger x WHERE x.oid = d.objid AND x.tgrelid = %(oid)s)
    WHEN 'pg_rewrite'::regclass THEN r.ev_class = %(oid)s
    WHEN 'pg_attrdef'::regclass THEN EXISTS (SELECT FROM pg_attrdef x WHERE x.oid = d.objid AND x.adrelid = %(oid)s)
    WHEN 'pg_policy'::regclass THEN EXISTS (SELECT FROM pg_policy x WHERE x.oid = d.objid AND x.polrelid = %(oid)s)
    WHEN 'pg_statistic_ext'::regclass
      THEN EXISTS (SELECT FROM pg_statistic_ext x WHERE x.oid = d.objid AND x.stxrelid = %(oid)s)
    ELSE false END
UNION
SELECT pg_describe_object('pg_class'::regclass, i.inhrelid, 0) FROM pg_inherits i WHERE i.inhparent = %(oid)s
ORDER BY 1
"""
_NAMED_AT_MOST = 3


def _dependants(conn: psycopg.Connection, oid: int) -> list[str]:
    """What the user has that depends on the table, described by the server ('table child', 'view v')."""
    return [str(what) for (what,) in conn.execute(_DEPENDANTS, {"oid": oid}).fetchall()]


def _dependants_refusal(spec: TableSql, dependants: list[str], *, drop: bool) -> TableRefused:
    named = ", ".join(dependants[:_NAMED_AT_MOST])
    if len(dependants) > _NAMED_AT_MOST:
        named += f" and {len(dependants) - _NAMED_AT_MOST} more"
    if drop:
        return TableRefused(
            f"table {spec.table!r} cannot be dropped without also dropping what depends on it ({named});"
            " pgstress never drops those (remove them yourself, or choose another --table)"
        )
    return TableRefused(
        f"table {spec.table!r} has objects depending on it ({named}); pgstress empties and drops only its own"
        " table, so it refuses to use this one (remove them, or choose another --table)"
    )


def _refusal(spec: TableSql, comment: str | None, columns: dict[str, str]) -> TableRefused | None:
    if comment != MARKER:
        return TableRefused(
            f"table {spec.table!r} exists and was not created by pgstress; refusing to write into,"
            f" truncate or drop it (pass --drop-table to replace it, or choose another --table)"
        )
    if "payload" in columns and not columns.keys() >= spec.expected_columns:
        return TableRefused(
            f"table {spec.table!r} is not a table of the {spec.layout} layout this run uses (it lacks the column(s)"
            f" {', '.join(sorted(spec.expected_columns - columns.keys()))}); pass --drop-table to recreate it, or"
            " choose another --table"
        )
    for name, kind in spec.columns:
        found = columns.get(name, "")
        if not columns.keys() >= spec.expected_columns or found.upper() != kind:
            what = "payload" if name == PAYLOAD else f"payload column {name!r} of"
            return TableRefused(
                f"table {spec.table!r} has {what} type {found or 'missing'!r}, this run needs"
                f" {kind} (pass --drop-table to recreate it, or choose another --table)"
            )
    return None


def _first_line(exc: psycopg.Error) -> str:
    detail = exc.diag.message_detail or str(exc)
    return " ".join(detail.split())


def prepare_table(conn: psycopg.Connection, spec: TableSql, *, drop: bool, truncate: bool) -> TableSql:
    """Create (or recreate) and optionally empty the table; the spec with the table's OID pinned.

    One transaction (a savepoint inside the caller's): the table is locked before it is checked, so
    what is dropped or emptied is exactly the table that was checked. Raises TableRefused, touching
    nothing, unless the table is absent, pgstress's own and matching, or to be dropped (--drop-table).
    """
    with conn.transaction():
        if conn.execute(spec.current_oid()).fetchone() not in (None, (None,)):
            # ACCESS EXCLUSIVE when it is to be dropped or emptied (what DROP and TRUNCATE take anyway), else
            # a lock that only keeps it from being dropped or altered while it is checked
            conn.execute(spec.lock("ACCESS EXCLUSIVE" if drop or truncate else "ACCESS SHARE"))
        described = _describe(conn, spec.table)
        if described is not None and not drop:
            refusal = _refusal(spec, described[1], described[2])
            if refusal is not None:
                raise refusal
        if described is not None:
            dependants = _dependants(conn, described[0])
            if dependants:
                raise _dependants_refusal(spec, dependants, drop=drop)
        if described is not None and drop:
            try:
                with conn.transaction():
                    conn.execute(spec.drop())
            except psycopg.errors.DependentObjectsStillExist as exc:  # something the query above does not know
                raise _dependants_refusal(spec, [_first_line(exc)], drop=True) from None
            described = None
        if described is None:
            conn.execute(spec.create())
            conn.execute(spec.comment())
        elif truncate:
            conn.execute(spec.truncate())
        oid = conn.execute(spec.current_oid()).fetchone()
    assert oid is not None and oid[0] is not None
    return spec.pinned(int(oid[0]))
