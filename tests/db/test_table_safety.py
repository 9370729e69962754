"""The user's data is safe: pgstress writes into, truncates or drops only the table it created
(marked with a comment, columns matching), unless --drop-table names that table."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import TINY_RAMP, RampMode, read_csv
from psycopg import sql

from pgstress.db.schema import MARKER, TableSql

USER_ROWS = [(1, "the user's first row"), (2, "second"), (3, "third")]


def _user_table(db: psycopg.Connection, table: str) -> None:
    db.execute(sql.SQL("CREATE TABLE {} (id INTEGER PRIMARY KEY, note TEXT)").format(sql.Identifier(table)))
    with db.cursor() as cursor:
        cursor.executemany(sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(sql.Identifier(table)), USER_ROWS)


def _rows(db: psycopg.Connection, table: str, columns: str = "id, note") -> list[tuple]:
    return db.execute(sql.SQL("SELECT " + columns + " FROM {} ORDER BY id").format(sql.Identifier(table))).fetchall()


def _comment(db: psycopg.Connection, table: str) -> str | None:
    found = db.execute("SELECT obj_description(to_regclass(%s), 'pg_class')",
                       [sql.Identifier(table).as_string(None)]).fetchone()
    return found[0] if found else None


def _refused(result, tmp_path: Path, *fragments: str) -> None:
    assert result.code == 2, (result.out, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pgstress: error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.err
    assert list(tmp_path.iterdir()) == []  # no CSV, no report


@pytest.mark.parametrize("flags", [[], ["--truncate-before-start"], ["--keep-data-between-iterations"],
                                   ["--truncate-before-start", "--keep-data-between-iterations"]],
                         ids=lambda flags: " ".join(flags) or "no flags")
def test_a_users_table_is_refused_and_untouched(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                ramp_mode: RampMode, run_cli, tmp_path: Path,
                                                flags: list[str]) -> None:
    _user_table(db, table_name)
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, *flags, *TINY_RAMP)
    _refused(result, tmp_path, f"table '{table_name}' exists and was not created by pgstress", "--drop-table")
    assert _rows(db, table_name) == USER_ROWS


def test_a_look_alike_without_the_mark_is_refused(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                  ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    """The user's table has pgstress's very columns, but pgstress did not create it."""
    spec = TableSql(table_name, "BYTEA")
    db.execute(spec.create())
    db.execute(sql.SQL("INSERT INTO {} (payload, epochs, content_hash) VALUES ('\\x00', 1, 'users')").format(
        spec.ident))
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--truncate-before-start",
                     *TINY_RAMP)
    _refused(result, tmp_path, "was not created by pgstress")
    assert _rows(db, table_name, "id, content_hash") == [(1, "users")]


def test_a_pgstress_table_of_another_format_is_refused(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                       ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    first = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson",
                    *TINY_RAMP, ramp_mode.csv_option, str(tmp_path / "first" / "r.csv"),
                    "--report-md", str(tmp_path / "first" / "r.md"))
    assert first.code == 0, first.err
    before = _rows(db, table_name, "id, epochs, content_hash")
    assert len(before) == ramp_mode.concurrency  # the last level's records

    second_dir = tmp_path / "second"
    second_dir.mkdir()
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "jsonb",
                     *TINY_RAMP, ramp_mode.csv_option, str(second_dir / "r.csv"),
                     "--report-md", str(second_dir / "r.md"))
    _refused(result, second_dir, "has payload type 'bytea', this run needs JSONB", "--drop-table")
    assert _rows(db, table_name, "id, epochs, content_hash") == before


def test_a_pgstress_table_missing_a_column_is_refused(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                      ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    spec = TableSql(table_name, "BYTEA")
    db.execute(spec.create())
    db.execute(spec.comment())
    db.execute(sql.SQL("ALTER TABLE {} DROP COLUMN content_hash").format(spec.ident))
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson",
                     *TINY_RAMP)
    _refused(result, tmp_path, f"table '{table_name}'")


def test_drop_table_replaces_a_users_table(server_dsn: str, db: psycopg.Connection, table_name: str,
                                           ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    _user_table(db, table_name)
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--drop-table", *TINY_RAMP)
    assert result.code == 0, result.err
    assert _comment(db, table_name) == MARKER
    columns = {name for (name,) in db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        [sql.Identifier(table_name).as_string(None)])}
    assert "note" not in columns and {"payload", "epochs", "content_hash"} <= columns
    assert [row["status"] for row in read_csv(ramp_mode.csv_path(tmp_path))] == ["OK", "OK", "OK"]


def test_reruns_against_an_existing_pgstress_table(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                   ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    def run(*flags: str) -> list[int]:
        result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, *flags, *TINY_RAMP)
        assert result.code == 0, result.err
        assert [row["status"] for row in read_csv(ramp_mode.csv_path(tmp_path))] == ["OK", "OK", "OK"]
        return [epochs for (epochs,) in _rows(db, table_name, "epochs")]

    ramp = [epochs for epochs in (1000, 2000, 3000) for _record in range(ramp_mode.concurrency)]
    assert run("--keep-data-between-iterations") == ramp
    assert run("--keep-data-between-iterations") == ramp * 2  # the rerun appends
    assert run() == [3000] * ramp_mode.concurrency  # truncated between iterations: the last level's records stay
    assert run("--truncate-before-start", "--keep-data-between-iterations") == ramp
    assert _comment(db, table_name) == MARKER
