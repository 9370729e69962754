"""Faults inside the server while the run goes on: a statement timeout, a size limit, a full disk,
and the table dropped by someone else. Each runs on every real server the suite reaches."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from helpers import (
    ASYNC,
    TINY_RAMP,
    RampMode,
    add_insert_trigger,
    assert_report_breaking,
    content_hash,
    create_pgstress_table,
    drop_trigger_function,
    read_csv,
    tmpfs,
)
from psycopg import sql

from pgstress.run.measure import StageClock
from pgstress.run.record import encode_epochs
from pgstress.workload.epochs import generate
from pgstress.workload.payloads import get_codec

ASYNC_3 = replace(ASYNC, concurrency=3)


@pytest.fixture
def fault_table(db: psycopg.Connection, table_name: str) -> Iterator[str]:
    """The test's table name; its trigger function is dropped afterwards (the db fixture drops the table)."""
    yield table_name
    drop_trigger_function(db, table_name)


def test_statement_timeout(server_dsn: str, db: psycopg.Connection, fault_table: str, ramp_mode: RampMode, run_cli,
                           tmp_path: Path) -> None:
    """Iteration 2's insert outlasts statement_timeout: TIMEOUT, and iteration 3 runs as usual.

    Only the level's first record sleeps: the sync record, one of the two async ones, whose sibling
    is written and read back all the same."""
    create_pgstress_table(db, fault_table, "ndjson_zstd")
    first = content_hash("ndjson_zstd", 2000, ramp_mode.streams(2)[0])
    add_insert_trigger(db, fault_table,
                       f"IF NEW.content_hash = '{first}' THEN PERFORM pg_sleep(60); END IF; RETURN NEW;")

    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", fault_table, *TINY_RAMP,
                     "--statement-timeout-ms", "1500")

    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "TIMEOUT", "OK"]
    ramp_mode.assert_intact_ok(rows[0])
    ramp_mode.assert_intact_ok(rows[2])
    cause = ramp_mode.assert_failed(rows[1], "TIMEOUT", failed=1)
    assert "canceling statement due to statement timeout" in cause
    assert cause.endswith("[SQLSTATE 57014]")
    if ramp_mode.fans_out:  # the sibling record was written, read back and verified
        assert rows[1]["failures"] == "TIMEOUT=1"
        assert (rows[1]["writes_ok"], rows[1]["reads_ok"], rows[1]["reads_total"]) == ("1", "1", "1")
        assert float(rows[1]["write_s"]) > 1.4 and float(rows[1]["read_s"]) > 0  # the batch waited for the timeout
    assert_report_breaking(tmp_path / "report.md", 2, 2000, "TIMEOUT", "statement timeout")


def test_jsonb_size_limit_is_diagnosed(server_dsn: str, db: psycopg.Connection, fault_table: str,
                                       ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    """A trigger refuses like jsonb's 255 MiB limit does (SQLSTATE 54000, same message), at 1,200,000 bytes:
    DB_LIMIT, naming the limit and how far this value passed it. (A real 255 MiB case: bench/real_limits.py.)"""
    limit = 1_200_000
    create_pgstress_table(db, fault_table, "jsonb")
    add_insert_trigger(
        db, fault_table,
        f"IF pg_column_size(NEW.payload) > {limit} THEN RAISE EXCEPTION 'total size of jsonb array elements"
        f" exceeds the maximum of % bytes', {limit} USING ERRCODE = 'program_limit_exceeded'; END IF; RETURN NEW;",
    )

    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", fault_table, "--payload-format", "jsonb",
                     *TINY_RAMP)

    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "OK", "DB_LIMIT"]
    ramp_mode.assert_intact_ok(rows[0])
    ramp_mode.assert_intact_ok(rows[1])
    sizes = [encode_epochs(get_codec("jsonb"), generate(3000, 42, stream), StageClock()).size
             for stream in ramp_mode.streams(3)]
    sent = sizes[0]  # the message quotes the first record that failed
    error = ramp_mode.assert_failed(rows[2], "DB_LIMIT", failed=ramp_mode.concurrency)
    assert error.startswith("jsonb limit: a document's array elements may total at most 1,200,000 bytes")
    assert f"this value was {sent:,} bytes of JSON text" in error
    estimate = sent * 1.1507
    assert f"{estimate - limit:,.0f} bytes" in error and "over it" in error
    assert error.endswith("[SQLSTATE 54000]")
    assert float(rows[2][ramp_mode.size_column]) == pytest.approx(sum(sizes) / len(sizes) / 1048576)
    assert_report_breaking(tmp_path / "report.md", 3, 3000, "DB_LIMIT", "jsonb limit")


def test_table_dropped_by_someone_else(server_dsn: str, db: psycopg.Connection, table_name: str,
                                       ramp_mode: RampMode, hooks, run_cli, tmp_path: Path) -> None:
    """Another session drops the table after iteration 1: the next iterations are ERROR, the ramp stops
    after three in a row, and pgstress does not quietly recreate the table."""
    hooks.after[1] = lambda row: db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table_name)))

    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--drop-table",
                     "--start-epochs", "1000", "--end-epochs", "5000", "--step-epochs", "1000",
                     "--memory-trace", "off")

    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "ERROR", "ERROR", "ERROR"]
    ramp_mode.assert_intact_ok(rows[0])
    for row in rows[1:]:  # the TRUNCATE before the level fails: no record is sent
        assert "does not exist [SQLSTATE 42P01]" in ramp_mode.assert_failed(row, "ERROR", failed=None)
    report = assert_report_breaking(tmp_path / "report.md", 2, 2000, "ERROR", "UndefinedTable")
    assert "stopped after 3 consecutive failed iterations" in report
    gone = db.execute("SELECT to_regclass(%s)", [sql.Identifier(table_name).as_string(None)]).fetchone()
    assert gone == (None,)


@pytest.fixture
def tiny_tablespace(db: psycopg.Connection, table_name: str) -> Iterator[str]:
    """A tablespace on a 1 MiB tmpfs: a real 'No space left on device' for the table put there."""
    data_directory = db.execute("SELECT current_setting('data_directory')").fetchone()[0]
    owner = os.stat(data_directory)
    name = f"{table_name}_space"
    where = Path(tempfile.mkdtemp(prefix="pgstress-full-"))  # under /tmp: the server's own user reaches it
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(where.rmdir)
        mount_point = cleanup.enter_context(tmpfs(where, f"size=1m,mode=0700,uid={owner.st_uid},gid={owner.st_gid}"))
        try:
            db.execute(sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(sql.Identifier(name),
                                                                        sql.Literal(str(mount_point))))
            yield name
        finally:
            db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table_name)))
            with contextlib.suppress(psycopg.Error):
                db.execute(sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(name)))


def test_disk_full(server_dsn: str, db: psycopg.Connection, table_name: str, tiny_tablespace: str,
                   ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    """The table lives on a 1 MiB filesystem: the 1,000-epoch record fits, the 20,000-epoch ones do not."""
    create_pgstress_table(db, table_name, "ndjson_zstd")
    db.execute(sql.SQL("ALTER TABLE {} SET TABLESPACE {}").format(sql.Identifier(table_name),
                                                                   sql.Identifier(tiny_tablespace)))

    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name,
                     "--start-epochs", "1000", "--end-epochs", "39000", "--step-epochs", "19000",
                     "--memory-trace", "off")

    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "ERROR", "ERROR"]
    ramp_mode.assert_intact_ok(rows[0])
    cause = ramp_mode.assert_failed(rows[1], "ERROR", failed=ramp_mode.concurrency)
    assert "No space left on device" in cause and cause.endswith("[SQLSTATE 53100]")
    assert "No space left on device" in rows[2]["error"] and rows[2]["error"].endswith("[SQLSTATE 53100]")
    assert float(rows[1][ramp_mode.size_column]) > 1.0  # the insert of 2.4 MiB failed
    # (with the disk still full, even iteration 3's TRUNCATE fails: its new empty index needs a page)
    assert_report_breaking(tmp_path / "report.md", 2, 20000, "ERROR", "No space left on device")


def test_mixed_failures_in_one_level_keep_the_most_frequent_class(server_dsn: str, db: psycopg.Connection,
                                                                  fault_table: str, run_cli, tmp_path: Path) -> None:
    """Async only: of level 2's three records one is refused (ERROR) and two outlast statement_timeout
    (TIMEOUT). The row keeps one status, the most frequent class; `failures` counts each class."""
    mode = ASYNC_3
    create_pgstress_table(db, fault_table, "bson")
    refused = content_hash("bson", 2000, mode.streams(2)[0])
    add_insert_trigger(
        db, fault_table,
        f"IF NEW.content_hash = '{refused}' THEN RAISE EXCEPTION 'refused by a trigger'; END IF;"
        " IF NEW.epochs = 2000 THEN PERFORM pg_sleep(60); END IF; RETURN NEW;",
    )

    result = run_cli(*mode.argv(), "--dsn", server_dsn, "--table", fault_table, "--payload-format", "bson",
                     *TINY_RAMP, "--statement-timeout-ms", "1500")

    assert result.code == 0, result.err
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "TIMEOUT", "OK"]
    mode.assert_intact_ok(rows[0])
    mode.assert_intact_ok(rows[2])
    cause = mode.assert_failed(rows[1], "TIMEOUT", failed=2)
    assert rows[1]["failures"] == "TIMEOUT=2;ERROR=1"
    assert rows[1]["error"].startswith("TIMEOUT x2 of 3 records (writes 0/3 ok, reads 0/0 ok): ")
    assert "statement timeout" in cause and "refused by a trigger" not in cause
    mode.assert_nothing_written(rows[1])
    assert_report_breaking(tmp_path / "report.md", 2, 2000, "TIMEOUT", "TIMEOUT x2 of 3 records")


# A trigger changes what is stored for iteration 2's records (2,000 epochs), so what is read back is not what was
# sent: (format, the change, what the verdict says). "SWAP" stands for a side table's value, encoded by pgstress's
# own codec: a value that decodes well but is another one, or one epoch short.
UNDECODABLE = "VerifyError: what was read back cannot be decoded: "
OTHER_BYTES = "VerifyError: the value read back is not the bytes written: SHA-256 "
ONE_SHORT = "VerifyError: read back 1999 epochs, wrote 2000"
MALFORMED = "VerifyError: decoded epoch is malformed: "
EXTRA_KEY = MALFORMED + "an epoch has keys the generator does not make: "
NOT_THE_DOCUMENT = 'VerifyError: the document read back is not {"epochs": [...]}'
STORED_DIFFERENTLY: dict[str, tuple[str, str, str]] = {
    "bson, its length byte": (
        "bson", "NEW.payload := set_byte(NEW.payload, 0, get_byte(NEW.payload, 0) # 255);", UNDECODABLE),
    "bson, another value": ("bson", "SWAP other", OTHER_BYTES),
    "bson, one epoch short": ("bson", "SWAP short", ONE_SHORT),
    "bson, a key added to an epoch": ("bson", "SWAP extra", OTHER_BYTES),
    "bson, a float's lowest bit": (  # the last epoch's "Intermediate score(median)", 61 bytes before the end
        "bson", "NEW.payload := set_byte(NEW.payload, length(NEW.payload) - 61,"
                " get_byte(NEW.payload, length(NEW.payload) - 61) # 1);", OTHER_BYTES),
    "ndjson_zstd, its magic number": ("ndjson_zstd", "NEW.payload := set_byte(NEW.payload, 0, 0);", UNDECODABLE),
    "ndjson_zstd, another value": ("ndjson_zstd", "SWAP other", OTHER_BYTES),
    "ndjson_zstd, one epoch short": ("ndjson_zstd", "SWAP short", ONE_SHORT),
    "ndjson_zstd, a key added to an epoch": ("ndjson_zstd", "SWAP extra", OTHER_BYTES),
    "jsonb, a value": ("jsonb", "NEW.payload := jsonb_set(NEW.payload, '{epochs,7,cycle_count}', '-1');",
                       "VerifyError: content hash differs"),
    "jsonb, a value's type": ("jsonb", "NEW.payload := jsonb_set(NEW.payload, '{epochs,0,HitRate}', '\"0.5\"');",
                              "VerifyError: decoded epoch is malformed"),
    "jsonb, one epoch short": ("jsonb", "NEW.payload := NEW.payload #- '{epochs,3}';", ONE_SHORT),
    # what the server returns that the generator did not make: a key, an element, a type, anywhere
    "jsonb, a key added to an epoch": (
        "jsonb", "NEW.payload := jsonb_set(NEW.payload, '{epochs,0,extra}', '1');", EXTRA_KEY),
    "jsonb, a key added to a later epoch": (
        "jsonb", "NEW.payload := jsonb_set(NEW.payload, '{epochs,1999,zz}', 'null');", EXTRA_KEY),
    "jsonb, a key added to the document": (
        "jsonb", "NEW.payload := NEW.payload || '{\"zz\":1}';", NOT_THE_DOCUMENT),
    "jsonb, the document wrapped in an array": (
        "jsonb", "NEW.payload := jsonb_build_array(NEW.payload);", NOT_THE_DOCUMENT),
    "jsonb, an epoch replaced by an array": (
        "jsonb", "NEW.payload := jsonb_set(NEW.payload, '{epochs,5}', '[1, 2]');", MALFORMED),
    "jsonb, an int as an equal float in a later epoch": (
        "jsonb", "NEW.payload := jsonb_set(NEW.payload, '{epochs,9,cycle_count}',"
                 " to_jsonb((NEW.payload #>> '{epochs,9,cycle_count}')::numeric(10, 1)));",
        "VerifyError: decoded epoch is malformed: epoch field 'cycle_count' came back as float"),
    "jsonb, a bool as an equal int in a later epoch": (
        "jsonb", "NEW.payload := jsonb_set(NEW.payload, '{epochs,9,known_data}',"
                 " to_jsonb((NEW.payload #>> '{epochs,9,known_data}')::boolean::integer));",
        "VerifyError: decoded epoch is malformed: epoch field 'known_data' came back as int"),
}


def _swap_value(conn: psycopg.Connection, table: str, payload_format: str, which: str) -> str:
    """A side table holding the value a trigger stores instead; returns the PL/pgSQL that does it."""
    epochs, seed = {"other": (2000, 7), "short": (1999, 42), "extra": (2000, 42)}[which]
    if which == "extra":  # the very record, one epoch with a key more
        chunks = [chunk.as_dicts() for chunk in generate(epochs, seed, (2,))]
        chunks[0][0]["extra"] = 1
        value = get_codec(payload_format).encode_stream(chunks)
    else:
        value = encode_epochs(get_codec(payload_format), generate(epochs, seed, (2,)), StageClock()).data
    swap = sql.Identifier(f"{table}_swap")
    conn.execute(sql.SQL("CREATE TABLE {} (v bytea)").format(swap))
    conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(swap), [bytes(value)])
    return sql.SQL("NEW.payload := (SELECT v FROM {});").format(swap).as_string(conn)


@pytest.mark.parametrize("case", STORED_DIFFERENTLY, ids=STORED_DIFFERENTLY)
def test_stored_bytes_changed_on_the_server_fail_verification(case: str, embedded_dsn: str,
                                                              embedded_db: psycopg.Connection, table_name: str,
                                                              ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    """Whether what was read back cannot be decoded, decodes to another value, has an epoch fewer or a
    value of another type, it is VERIFY_FAILED with that reason, in every format and both modes; the next
    iteration is OK. (The client's verdict: one server is enough.)"""
    payload_format, change, verdict = STORED_DIFFERENTLY[case]
    create_pgstress_table(embedded_db, table_name, payload_format)
    if change.startswith("SWAP "):
        change = _swap_value(embedded_db, table_name, payload_format, change.removeprefix("SWAP "))
    add_insert_trigger(embedded_db, table_name, f"IF NEW.epochs = 2000 THEN {change} END IF; RETURN NEW;")
    try:
        result = run_cli(*ramp_mode.argv(), "--dsn", embedded_dsn, "--table", table_name,
                         "--payload-format", payload_format, *TINY_RAMP)
    finally:
        embedded_db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table_name)))
        embedded_db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"{table_name}_swap")))
        drop_trigger_function(embedded_db, table_name)

    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "VERIFY_FAILED", "OK"]
    cause = ramp_mode.assert_failed(rows[1], "VERIFY_FAILED", failed=ramp_mode.concurrency)
    assert cause.startswith(verdict), cause
    assert rows[1]["read_s"] == "" if not ramp_mode.fans_out else rows[1]["reads_ok"] == "0"
    ramp_mode.assert_intact_ok(rows[2])
