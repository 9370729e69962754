"""The payload column's storage: --toast-compression and --storage applied for real, a server that cannot
do what is asked refused before anything is touched, and `--toast-compression all` compared in one run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import RampMode, read_csv

from pgstress.cli import parse_config
from pgstress.config import RunConfig, ramp_configs
from pgstress.db.psycopg_adapter import SyncDatabase
from pgstress.db.schema import TableSql
from pgstress.db.storage import CompressionSupport, refusal
from pgstress.workload.payloads import format_names, get_codec

STORAGE_CODES = {"extended": "x", "external": "e", "main": "m"}  # pg_attribute.attstorage
TINY = ["--payload-format", "bson", "--start-epochs", "3000", "--end-epochs", "6000", "--step-epochs", "3000",
        "--memory-trace", "off"]  # fmt: skip


def offers(conn: psycopg.Connection, method: str) -> bool:
    row = conn.execute("SELECT %s = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
                       [method]).fetchone()
    return bool(row and row[0])


def column_settings(conn: psycopg.Connection, table: str) -> tuple[str, str] | None:
    return conn.execute("SELECT attcompression::text, attstorage::text FROM pg_attribute"
                        " WHERE attrelid = to_regclass(%s) AND attname = 'payload'", [f'"{table}"']).fetchone()


@pytest.mark.parametrize(("method", "storage"), [("pglz", "main"), ("lz4", "extended")])
def test_the_stored_values_use_the_method_asked_or_the_server_is_refused(
        method: str, storage: str, server_dsn: str, db: psycopg.Connection, table_name: str, ramp_mode: RampMode,
        run_cli, tmp_path: Path) -> None:
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--toast-compression", method,
                     "--storage", storage, *TINY)
    if not offers(db, method):  # the embedded PostgreSQL 18 wheel is built without lz4
        assert result.code == 2
        assert result.err.strip() == (f"pgstress: error: --toast-compression {method}: this server was built without"
                                      f" {method} support (it offers pglz); use another method, or a server built"
                                      f" --with-{method}")
        assert column_settings(db, table_name) is None  # nothing touched: not even the table was created
        assert not ramp_mode.csv_path(tmp_path).exists() and not (tmp_path / "report.md").exists()
        return
    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [(row["stored_compression"], row["toast_compression"], row["storage"]) for row in rows] == [
        (method, method, storage)] * 2
    assert column_settings(db, table_name) == (method[0], STORAGE_CODES[storage])
    stored = db.execute(f'SELECT DISTINCT pg_column_compression(payload) FROM "{table_name}"').fetchall()
    assert stored == [(method,)]
    report = (tmp_path / "report.md").read_text()
    assert f"- `payload` column: compression {method}, storage {storage}\n" in report


def test_a_later_run_sets_the_column_back_to_what_it_asks(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                          run_cli) -> None:
    assert run_cli("--dsn", server_dsn, "--table", table_name, "--toast-compression", "pglz", "--storage",
                   "external", *TINY).code == 0
    assert column_settings(db, table_name) == ("p", "e")
    assert run_cli("--dsn", server_dsn, "--table", table_name, *TINY).code == 0  # the defaults
    assert column_settings(db, table_name) == ("", "x")


def test_a_server_without_per_column_compression_or_without_the_method_is_refused_in_one_line() -> None:
    old = CompressionSupport(130000, ("pglz",))
    assert refusal(old, "default") is None
    assert refusal(old, "pglz") == ("--toast-compression pglz needs PostgreSQL 14 or later (per-column COMPRESSION);"
                                    " this server is PostgreSQL 13: use --toast-compression default")
    without_lz4 = CompressionSupport(180006, ("pglz",))
    assert refusal(without_lz4, "pglz") is None
    assert "built without lz4 support" in (refusal(without_lz4, "lz4") or "")
    assert refusal(CompressionSupport(150018, ("pglz", "lz4")), "lz4") is None


@pytest.fixture
def compared_tables(db: psycopg.Connection, table_name: str) -> Iterator[str]:
    """A --table at the longest length that leaves room for `_ndjson_zstd_pglz`; every table it gives is dropped."""
    long_name = (table_name + "_" + "x" * 63)[: 63 - len("_ndjson_zstd_pglz")]
    yield long_name
    for config in ramp_configs(RunConfig(table=long_name, payload_format="all", toast_compression="all")):
        db.execute(f'DROP TABLE IF EXISTS "{config.table}"')


def test_every_format_and_method_compared_at_the_identifier_limit(server_dsn: str, db: psycopg.Connection,
                                                                  compared_tables: str, run_cli,
                                                                  tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--table", compared_tables, "--payload-format", "all",
                     "--toast-compression", "all", *TINY[2:])
    if not offers(db, "lz4"):
        assert result.code == 2 and "built without lz4 support" in result.err
        return
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "iteration_results.csv")
    runs = [(row["format"], row["toast_compression"]) for row in rows[::2]]
    assert runs == [(name, method) for name in format_names() for method in ("pglz", "lz4")]
    for row in rows:
        assert row["status"] == "OK"
        # pglz gives up on zstd-compressed bytes; lz4 stores them as they are too
        expected = "none" if row["format"] == "ndjson_zstd" else row["toast_compression"]
        if row["format"] == "pgarrays":  # each array column on its own: an array that does not compress is "none"
            assert row["toast_compression"] in row["stored_compression"].split("+"), row
            assert set(row["stored_compression"].split("+")) <= {"none", row["toast_compression"]}, row
            continue
        assert row["stored_compression"] == expected, row
    longest = f"{compared_tables}_ndjson_zstd_pglz"
    assert len(longest) == 63 and db.execute("SELECT to_regclass(%s)", [f'"{longest}"']).fetchone() != (None,)
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# PostgreSQL huge-payload stress test report: payload formats and TOAST compression"
                           " methods compared")
    section = text[text.index("### TOAST compression\n"):text.index("### Each combination on its own")]
    by_run = {(row["format"], row["toast_compression"]): row for row in rows if row["epochs"] == "6000"}
    for name in format_names():
        lz4, pglz = by_run[(name, "lz4")], by_run[(name, "pglz")]
        assert (f"- **{name} with lz4**: write {float(lz4['write_s']):,.3f} s against {float(pglz['write_s']):,.3f} s"
                f" with pglz at 6,000 epochs") in section
        assert (f"({float(lz4['db_payload_mb']):,.2f} MiB against {float(pglz['db_payload_mb']):,.2f} MiB per record,"
                f" stored as {lz4['stored_compression']} against {pglz['stored_compression']})") in section
        assert f"WAL {float(lz4['wal_mb']):,.2f} MiB against {float(pglz['wal_mb']):,.2f} MiB" in section
    assert "### WAL generated by the write, MiB" in text
    assert "| epochs | bson pglz | bson lz4 | jsonb pglz | jsonb lz4 | ndjson_zstd pglz | ndjson_zstd lz4 |" in text


def test_compression_methods_compared_in_async_mode(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                    run_cli, tmp_path: Path) -> None:
    tables = [config.table for config in ramp_configs(RunConfig(table=table_name, toast_compression="all"))]
    try:
        result = run_cli("--mode", "async", "--async-concurrency", "2", "--dsn", server_dsn, "--table", table_name,
                         "--toast-compression", "all", *TINY)
        if not offers(db, "lz4"):
            assert result.code == 2 and "built without lz4 support" in result.err
            return
        assert result.code == 0, result.err
        rows = read_csv(tmp_path / "async_fanout_results.csv")
        assert [(row["toast_compression"], row["stored_compression"]) for row in rows] == [
            ("pglz", "pglz"), ("pglz", "pglz"), ("lz4", "lz4"), ("lz4", "lz4")]
        assert tables == [f"{table_name}_pglz", f"{table_name}_lz4"]
        text = (tmp_path / "report.md").read_text()
        assert "TOAST compression methods compared" in text and "- **bson with lz4**: write" in text
    finally:
        for table in tables:
            db.execute(f'DROP TABLE IF EXISTS "{table}"')


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--toast-compression", "zstd"], "--toast-compression"),
    (["--storage", "plain"], "--storage"),
    (["--mode", "async", "--write-method", "insert_blocking"], "insert_blocking is libpq's send mode"),
    (["--toast-compression", "all", "--table", "x" * 59], "at most 58 characters"),
    (["--toast-compression", "all", "--payload-format", "all", "--table", "x" * 47], "at most 46 characters"),
])  # fmt: skip
def test_storage_options_are_checked_before_anything_runs(argv: list[str], fragment: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_config(argv)
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines


def test_the_longest_table_names_that_fit_are_accepted() -> None:
    both = parse_config(["--toast-compression", "all", "--payload-format", "all", "--table", "x" * 46])
    assert both.table == "x" * 46
    assert parse_config(["--toast-compression", "all", "--table", "x" * 58]).table == "x" * 58


def test_insert_blocking_puts_every_connection_in_blocking_mode(server_dsn: str, db: psycopg.Connection,
                                                                table_name: str) -> None:
    spec = TableSql(table_name, "BYTEA")
    blocking, default = SyncDatabase(server_dsn, spec, 0, "insert_blocking"), SyncDatabase(server_dsn, spec, 0)
    try:
        assert (blocking.conn.pgconn.nonblocking, default.conn.pgconn.nonblocking) == (0, 1)
        blocking.close()  # a new connection (after the server dropped the old one, say) is blocking too
        assert blocking.conn.pgconn.nonblocking == 0
    finally:
        blocking.close()
        default.close()


def test_every_array_column_of_pgarrays_is_stored_as_asked(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                           run_cli, tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--payload-format", "pgarrays", "--toast-compression",
                     "pglz", "--storage", "main", *TINY[2:])
    assert result.code == 0, result.err
    found = db.execute("SELECT attname, attcompression::text, attstorage::text FROM pg_attribute WHERE attrelid ="
                       " to_regclass(%s) AND attnum > 0 AND NOT attisdropped AND attndims > 0 ORDER BY attnum",
                       [f'"{table_name}"']).fetchall()
    assert [name for name, _, _ in found] == list(get_codec("pgarrays").shape.names)  # type: ignore[attr-defined]
    assert {(compression, storage) for _, compression, storage in found} == {("p", "m")}
    report = (tmp_path / "report.md").read_text()
    assert "- payload columns (one array per key, each alike): compression pglz, storage main\n" in report
