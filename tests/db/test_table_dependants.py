"""pgstress empties only its own rows: whatever of the user's depends on its table (a table inheriting from it,
a view, a foreign key, a column of its row type) is refused up front, never emptied or dropped, also with
--drop-table; and a table attached while the run goes on keeps its rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import TINY_RAMP, RampMode, create_pgstress_table, read_csv
from psycopg import sql

from pgstress.db.schema import MARKER

USER_NOTE = "the user's own row"


@pytest.fixture
def theirs(db: psycopg.Connection, table_name: str) -> Iterator[str]:
    """The name of the user's object; dropped (with whatever depends on the pgstress table) afterwards."""
    name = f"{table_name}_theirs"
    yield name
    found = db.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
                       [sql.Identifier(name).as_string(None)]).fetchone()
    if found is not None:
        db.execute(sql.SQL("DROP VIEW {}" if found[0] == "v" else "DROP TABLE {}").format(sql.Identifier(name)))


def _inheriting_child(db: psycopg.Connection, table: str, child: str) -> None:
    """The user's table that INHERITS pgstress's, with one row of its own (its id from the shared sequence)."""
    db.execute(sql.SQL("CREATE TABLE {} (note TEXT) INHERITS ({})").format(sql.Identifier(child),
                                                                          sql.Identifier(table)))
    db.execute(sql.SQL("INSERT INTO {} (payload, epochs, content_hash, note) VALUES ('\\x00', 1, 'theirs', %s)")
               .format(sql.Identifier(child)), [USER_NOTE])


def _view(db: psycopg.Connection, table: str, name: str) -> None:
    db.execute(sql.SQL("CREATE VIEW {} AS SELECT id, epochs FROM {}").format(sql.Identifier(name),
                                                                            sql.Identifier(table)))


def _foreign_key(db: psycopg.Connection, table: str, name: str) -> None:
    db.execute(sql.SQL("CREATE TABLE {} (note TEXT, ref BIGINT REFERENCES {} (id))").format(
        sql.Identifier(name), sql.Identifier(table)))
    db.execute(sql.SQL("INSERT INTO {} (note) VALUES (%s)").format(sql.Identifier(name)), [USER_NOTE])


def _row_type_column(db: psycopg.Connection, table: str, name: str) -> None:
    db.execute(sql.SQL("CREATE TABLE {} (note TEXT, kept {})").format(sql.Identifier(name), sql.Identifier(table)))
    db.execute(sql.SQL("INSERT INTO {} (note) VALUES (%s)").format(sql.Identifier(name)), [USER_NOTE])


DEPENDANTS: dict[str, tuple[Callable[[psycopg.Connection, str, str], None], str]] = {
    "inheriting table": (_inheriting_child, "table"),
    "view": (_view, "view"),
    "foreign key": (_foreign_key, "constraint"),
    "column of its row type": (_row_type_column, "table"),
}


def _notes(db: psycopg.Connection, name: str) -> list[str]:
    found = db.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
                       [sql.Identifier(name).as_string(None)]).fetchone()
    assert found is not None, f"{name} is gone"
    if found[0] == "v":
        return ["view"]
    return [note for (note,) in db.execute(sql.SQL("SELECT note FROM {}").format(sql.Identifier(name)))]


def _pgstress_rows(db: psycopg.Connection, table: str) -> list[tuple[int, str]]:
    return db.execute(sql.SQL("SELECT id, content_hash FROM ONLY {} ORDER BY id").format(
        sql.Identifier(table))).fetchall()


@pytest.mark.parametrize("kind", list(DEPENDANTS))
@pytest.mark.parametrize("flags", [[], ["--truncate-before-start"], ["--drop-table"]],
                         ids=["truncating between iterations", "truncate before start", "drop table"])
def test_a_pgstress_table_with_dependants_is_refused_and_untouched(
        server_dsn: str, db: psycopg.Connection, table_name: str, theirs: str, ramp_mode: RampMode, run_cli,
        tmp_path: Path, kind: str, flags: list[str]) -> None:
    spec = create_pgstress_table(db, table_name, "bson")
    db.execute(sql.SQL("INSERT INTO {} (payload, epochs, content_hash) VALUES ('\\x01', 7, 'pgstress')").format(
        spec.ident))
    make, described_as = DEPENDANTS[kind]
    make(db, table_name, theirs)
    before = _notes(db, theirs)

    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson",
                     *flags, *TINY_RAMP)

    assert result.code == 2, (result.out, result.err)
    (line,) = result.err.splitlines()
    assert line.startswith(f"pgstress: error: table '{table_name}' "), line
    assert f"{described_as} " in line and theirs in line, line
    assert ("cannot be dropped" if flags == ["--drop-table"] else "has objects depending on it") in line
    assert list(tmp_path.iterdir()) == []
    assert _notes(db, theirs) == before  # the user's rows (or view) as they were
    assert [h for _id, h in _pgstress_rows(db, table_name)] == ["pgstress"]  # not even pgstress's row emptied
    assert db.execute("SELECT obj_description(to_regclass(%s), 'pg_class')",
                      [spec.ident.as_string(None)]).fetchone() == (MARKER,)


@pytest.mark.parametrize("flags", [[], ["--drop-table"]], ids=["truncating", "drop table"])
def test_a_table_inheriting_from_a_users_table_is_dropped_alone(server_dsn: str, db: psycopg.Connection,
                                                               table_name: str, theirs: str, ramp_mode: RampMode,
                                                               run_cli, tmp_path: Path, flags: list[str]) -> None:
    """The other way round: pgstress's table is the child; its drop and its truncates leave the parent's rows."""
    db.execute(sql.SQL("CREATE TABLE {} (id BIGINT, note TEXT)").format(sql.Identifier(theirs)))
    db.execute(sql.SQL("INSERT INTO {} VALUES (1, %s)").format(sql.Identifier(theirs)), [USER_NOTE])
    create_pgstress_table(db, table_name, "bson")
    db.execute(sql.SQL("ALTER TABLE {} ADD COLUMN note TEXT").format(sql.Identifier(table_name)))
    db.execute(sql.SQL("ALTER TABLE {} INHERIT {}").format(sql.Identifier(table_name), sql.Identifier(theirs)))

    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson",
                     *flags, *TINY_RAMP)

    assert result.code == 0, result.err
    assert [row["status"] for row in read_csv(ramp_mode.csv_path(tmp_path))] == ["OK", "OK", "OK"]
    assert db.execute(sql.SQL("SELECT note FROM ONLY {}").format(sql.Identifier(theirs))).fetchall() == [
        (USER_NOTE,)]
    db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table_name)))  # before the parent's teardown


@pytest.mark.parametrize("keep", [False, True], ids=["truncating", "keeping data"])
def test_a_table_attached_during_the_run_keeps_its_rows(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                       theirs: str, ramp_mode: RampMode, hooks, run_cli,
                                                       tmp_path: Path, keep: bool) -> None:
    """After iteration 1 the user makes a table inheriting pgstress's, with a row of their own: the truncates
    between the later iterations empty pgstress's table only, and the reads see only pgstress's records."""
    hooks.after[1] = lambda row: _inheriting_child(db, table_name, theirs)
    flags = ["--keep-data-between-iterations"] if keep else []
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson",
                     *flags, *TINY_RAMP)

    assert result.code == 0, result.err
    for row in read_csv(ramp_mode.csv_path(tmp_path)):
        ramp_mode.assert_intact_ok(row)
    assert _notes(db, theirs) == [USER_NOTE]
    assert len(_pgstress_rows(db, table_name)) == ramp_mode.concurrency * (3 if keep else 1)


def test_a_foreign_key_added_during_the_run_fails_the_truncate_not_the_users_rows(
        server_dsn: str, db: psycopg.Connection, table_name: str, theirs: str, ramp_mode: RampMode, hooks, run_cli,
        tmp_path: Path) -> None:
    """After iteration 1 the user's table references pgstress's: the truncate before iteration 2 is refused by the
    server (TRUNCATE ONLY never cascades), so those levels are ERROR and the user's rows stay."""
    hooks.after[1] = lambda row: _foreign_key(db, table_name, theirs)
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson",
                     *TINY_RAMP)

    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert rows[0]["status"] == "OK"
    assert all(row["status"] != "OK" for row in rows[1:]), rows
    assert "foreign key" in ramp_mode.assert_failed(rows[1], rows[1]["status"], None)
    assert _notes(db, theirs) == [USER_NOTE]
