"""The user's data is safe: pgstress writes into, truncates or drops only the table it created
(marked with a comment, columns matching), unless --drop-table names that table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from helpers import REPO, TINY_RAMP, RampMode, count_rows, create_pgstress_table, read_csv
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
                    *TINY_RAMP, "--create-dirs", ramp_mode.csv_option, str(tmp_path / "first" / "r.csv"),
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


def test_a_pgarrays_table_with_a_column_of_another_type_or_another_format_is_refused(
        server_dsn: str, db: psycopg.Connection, table_name: str, run_cli, tmp_path: Path) -> None:
    spec = create_pgstress_table(db, table_name, "pgarrays")
    assert [name for name, _kind in spec.columns][:2] == ["id_epoch", "known_data"]
    db.execute(sql.SQL('ALTER TABLE {} ALTER COLUMN "HitRate" TYPE real[]').format(spec.ident))
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--payload-format", "pgarrays", *TINY_RAMP)
    _refused(result, tmp_path, "has payload column 'HitRate' of type 'real[]', this run needs DOUBLE PRECISION[]")
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--payload-format", "bson", *TINY_RAMP)
    _refused(result, tmp_path, "has payload type 'missing', this run needs BYTEA")
    assert count_rows(db, table_name) == 0


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
    # ids are never reused, not even across truncates: four runs of three levels took 12 levels' worth
    per_level = ramp_mode.concurrency
    assert [record_id for (record_id,) in _rows(db, table_name, "id")] == list(range(9 * per_level + 1,
                                                                                     12 * per_level + 1))


# --- other sessions on the same server ---------------------------------------------------------------------------

THEIR_ROWS = 100


def _replace_with_theirs(db: psycopg.Connection, table: str) -> None:
    """Another session drops the run's table and makes its own under the same name: pgstress's very columns
    and even its marker, so only the table's identity tells them apart; then stores its own rows."""
    spec = TableSql(table, "BYTEA")
    db.execute(spec.drop())
    db.execute(spec.create())
    db.execute(spec.comment())
    db.execute(sql.SQL("INSERT INTO {} (payload, epochs, content_hash) SELECT '\\x00', n, 'theirs'"
                       " FROM generate_series(1, %s) AS n").format(spec.ident), [THEIR_ROWS])


@pytest.mark.parametrize("keep", [False, True], ids=["truncating", "keeping data"])
def test_a_table_replaced_by_another_session_is_never_touched(server_dsn: str, db: psycopg.Connection,
                                                              table_name: str, ramp_mode: RampMode, hooks, run_cli,
                                                              tmp_path: Path, keep: bool) -> None:
    """After iteration 1 the table is someone else's: the truncate (which would empty it) and the inserts
    (which would add to it) both see that it is not the table the run prepared, and leave it as it is."""
    hooks.after[1] = lambda row: _replace_with_theirs(db, table_name)
    flags = ["--keep-data-between-iterations"] if keep else []
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson",
                     *flags, *TINY_RAMP)
    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "ERROR", "ERROR"]
    for row in rows[1:]:
        cause = ramp_mode.assert_failed(row, "ERROR", None if not keep else ramp_mode.concurrency)
        assert f"table '{table_name}' is no longer the table this run prepared" in cause
    theirs = db.execute(sql.SQL("SELECT count(*), min(content_hash), max(content_hash) FROM {}").format(
        sql.Identifier(table_name))).fetchone()
    assert theirs == (THEIR_ROWS, "theirs", "theirs")  # not emptied, nothing added


def test_a_second_run_on_a_table_in_use_is_refused(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                    ramp_mode: RampMode, hooks, run_cli, tmp_path: Path) -> None:
    """A second pgstress process starts on the table while the first runs, with --drop-table even: exit 2,
    one line naming the table, nothing of its own written; the first run goes on undisturbed."""
    second_dir = tmp_path / "second"
    second: list[subprocess.CompletedProcess[str]] = []

    def start_a_second_run(row) -> None:
        argv = [sys.executable, "main.py", *ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name,
                "--drop-table", "--truncate-before-start", *TINY_RAMP, "--create-dirs",
                ramp_mode.csv_option, str(second_dir / "r.csv"), "--report-md", str(second_dir / "r.md")]
        env = {k: v for k, v in os.environ.items() if k != "PG_DSN"}
        second.append(subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120))

    hooks.after[1] = start_a_second_run
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--keep-data-between-iterations",
                     *TINY_RAMP)

    (refused,) = second
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.splitlines() == [refused.stderr.strip()]
    assert refused.stderr.startswith(f"pgstress: error: table '{table_name}' is in use by another pgstress run"
                                     " (server process ")
    assert not second_dir.exists()
    assert result.code == 0, result.err
    for row in read_csv(ramp_mode.csv_path(tmp_path)):
        ramp_mode.assert_intact_ok(row)
    ids = [record_id for (record_id,) in db.execute(
        sql.SQL("SELECT id FROM {} ORDER BY id").format(sql.Identifier(table_name)))]
    assert ids == list(range(1, 3 * ramp_mode.concurrency + 1))  # every record of the first run, none lost
