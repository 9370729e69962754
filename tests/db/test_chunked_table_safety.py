"""The chunked layout's table is pgstress's own by the value layout's rules: a table of the other layout, one
pgstress did not create, one with dependants are refused and untouched unless --drop-table replaces them; a run
empties only its own rows (TRUNCATE ONLY)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from helpers import TINY_RAMP, RampMode, read_csv
from psycopg import sql

from pgstress.db.chunked import ChunkedTableSql


def _refused(result, directory: Path, *fragments: str) -> None:
    assert result.code == 2, (result.out, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pgstress: error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert list(directory.iterdir()) == []  # no CSV, no report


def _run(run_cli, mode: RampMode, dsn: str, table: str, directory: Path, *more: str):
    directory.mkdir(exist_ok=True)
    return run_cli(*mode.argv(), "--dsn", dsn, "--table", table, *TINY_RAMP, mode.csv_option,
                   str(directory / "r.csv"), "--report-md", str(directory / "r.md"), *more)


def _rows(db: psycopg.Connection, table: str, columns: str) -> list[tuple]:
    return db.execute(sql.SQL(f"SELECT {columns} FROM {{}} ORDER BY 1, 2").format(sql.Identifier(table))).fetchall()


def test_a_table_of_the_other_layout_is_refused_until_dropped(server_dsn: str, db: psycopg.Connection,
                                                              table_name: str, ramp_mode: RampMode, run_cli,
                                                              tmp_path: Path) -> None:
    assert _run(run_cli, ramp_mode, server_dsn, table_name, tmp_path / "value").code == 0
    values = _rows(db, table_name, "id, epochs")
    chunked_dir = tmp_path / "chunked"
    result = _run(run_cli, ramp_mode, server_dsn, table_name, chunked_dir, "--layout", "chunked")
    _refused(result, chunked_dir, f"table '{table_name}' is not a table of the chunked layout", "--drop-table")
    assert _rows(db, table_name, "id, epochs") == values

    replaced = _run(run_cli, ramp_mode, server_dsn, table_name, tmp_path / "dropped", "--layout", "chunked",
                    "--chunk-epochs", "1000", "--drop-table")
    assert replaced.code == 0, replaced.err
    assert [row["status"] for row in read_csv(tmp_path / "dropped" / "r.csv")] == ["OK"] * 3
    chunks = _rows(db, table_name, "record, chunk")
    assert len(chunks) == 3 * ramp_mode.concurrency  # the last level's records, three chunks each

    value_dir = tmp_path / "value again"
    result = _run(run_cli, ramp_mode, server_dsn, table_name, value_dir)
    _refused(result, value_dir, f"table '{table_name}' is not a table of the value layout")
    assert _rows(db, table_name, "record, chunk") == chunks


def test_a_chunked_look_alike_without_the_mark_is_refused(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                          ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    spec = ChunkedTableSql(table_name, "BYTEA")
    db.execute(spec.create())
    db.execute(sql.SQL("INSERT INTO {} (record, chunk, payload, epochs) VALUES (1, 0, '\\x00', 1)").format(
        spec.ident))
    result = _run(run_cli, ramp_mode, server_dsn, table_name, tmp_path / "run", "--layout", "chunked",
                  "--truncate-before-start")
    _refused(result, tmp_path / "run", "was not created by pgstress")
    assert _rows(db, table_name, "record, chunk") == [(1, 0)]


def test_a_chunked_table_with_a_child_is_refused_and_untouched(server_dsn: str, db: psycopg.Connection,
                                                               table_name: str, ramp_mode: RampMode, run_cli,
                                                               tmp_path: Path) -> None:
    assert _run(run_cli, ramp_mode, server_dsn, table_name, tmp_path / "first", "--layout", "chunked").code == 0
    child = f"{table_name}_child"
    db.execute(sql.SQL("CREATE TABLE {} () INHERITS ({})").format(sql.Identifier(child), sql.Identifier(table_name)))
    try:
        db.execute(sql.SQL("INSERT INTO {} (record, chunk, payload, epochs) VALUES (-1, 0, '\\x00', 1)").format(
            sql.Identifier(child)))
        for flags in ([], ["--drop-table"]):
            directory = tmp_path / f"again{len(flags)}"
            result = _run(run_cli, ramp_mode, server_dsn, table_name, directory, "--layout", "chunked",
                          "--truncate-before-start", *flags)
            _refused(result, directory, f"table '{table_name}'", f"table {child}")
        assert db.execute(sql.SQL("SELECT record FROM {}").format(sql.Identifier(child))).fetchall() == [(-1,)]
    finally:
        db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(child)))
