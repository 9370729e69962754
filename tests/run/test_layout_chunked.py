"""--layout chunked: a record stored as rows of --chunk-epochs epochs, written in one transaction, read back in chunk
order and verified whole; its access phases read only the chunks they need and append new chunk rows. A chunk
missing, repeated, moved or changed on the server is VERIFY_FAILED, in every format and both modes; bad values are
refused before anything is touched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from helpers import (
    ONE_RECORD_MODES,
    RAMP_MODES,
    SYNC,
    TINY_RAMP,
    RampMode,
    add_insert_trigger,
    csv_header,
    drop_trigger_function,
    read_csv,
    read_run_json,
    table_after,
)
from psycopg import sql
from psycopg.types.json import Jsonb

from pgstress.config import RunConfig, ramp_configs
from pgstress.db.chunked import ChunkedTableSql
from pgstress.db.schema import prepare_table
from pgstress.ignored_options import ignored_warnings
from pgstress.rows import LAYOUT_COLUMNS
from pgstress.run import iteration
from pgstress.run.access import AccessPlan, record_truth
from pgstress.run.access_chunked import append_plan
from pgstress.run.iteration import LevelResult
from pgstress.run.layout import chunks_of, encode_chunked, layout_problem, verify_chunks
from pgstress.run.measure import StageClock
from pgstress.workload import payloads
from pgstress.workload.payloads import Codec, VerifyError, get_codec

FORMATS = ("bson", "jsonb", "ndjson_zstd")
MIB = 1024 * 1024


# --- splitting and joining, without a server -----------------------------------------------------------------------

def _stored(codec: Codec, epochs: int, chunk_epochs: int) -> tuple[list[tuple[int, bytes, int]], object]:
    payload = encode_chunked(codec, epochs, 42, (1,), chunk_epochs, StageClock())
    rows = [(number, bytes(data), count)
            for number, (data, count) in enumerate(zip(payload.chunks, payload.chunk_epochs, strict=True))]
    return rows, payload.expected


@pytest.mark.parametrize("payload_format", FORMATS)
def test_a_record_splits_into_chunks_of_k_epochs_and_joins_back_whole(payload_format: str) -> None:
    codec = get_codec(payload_format)
    rows, expected = _stored(codec, 2_500, 700)
    assert [count for _number, _data, count in rows] == [700, 700, 700, 400]
    assert verify_chunks(codec, rows, expected, StageClock(), 700) == 2_500  # type: ignore[arg-type]
    # the same record as one value: the same epochs (the content hash does not depend on the layout)
    one, one_expected = _stored(codec, 2_500, 10_000)
    assert len(one) == 1 and one_expected.content_hash == expected.content_hash  # type: ignore[attr-defined]


def _altered(codec: Codec, data: bytes) -> bytes:
    epochs = [epoch for part in codec.decode_stream(data) for epoch in part]
    epochs[3]["HitRate"] = epochs[3]["HitRate"] + 1.0
    return bytes(codec.encode_stream([epochs]))


CHUNKS_CHANGED: dict[str, Callable[[Codec, list[tuple[int, bytes, int]]], list[tuple[int, bytes, int]]]] = {
    "a chunk missing": lambda codec, rows: [rows[0], rows[1], rows[3]],
    "the last chunk missing": lambda codec, rows: rows[:3],
    "a chunk repeated": lambda codec, rows: [rows[0], rows[1], (2, rows[1][1], rows[1][2]), rows[2], rows[3]],
    "an extra chunk": lambda codec, rows: [*rows, (4, rows[3][1], rows[3][2])],
    "two chunks swapped": lambda codec, rows: [(0, rows[1][1], 700), (1, rows[0][1], 700), rows[2], rows[3]],
    "a value changed": lambda codec, rows: [rows[0], (1, _altered(codec, rows[1][1]), 700), rows[2], rows[3]],
}


@pytest.mark.parametrize("payload_format", FORMATS)
@pytest.mark.parametrize("case", CHUNKS_CHANGED)
def test_a_chunk_missing_extra_moved_or_changed_is_not_the_record(case: str, payload_format: str) -> None:
    codec = get_codec(payload_format)
    rows, expected = _stored(codec, 2_500, 700)
    with pytest.raises(VerifyError):
        verify_chunks(codec, CHUNKS_CHANGED[case](codec, rows), expected, StageClock(), 700)  # type: ignore[arg-type]


def test_a_window_needs_only_the_chunks_it_overlaps_and_an_append_fills_the_last_one_first() -> None:
    assert chunks_of(100_000, 10_000, 49_500, 1_000) == (4, 5)
    assert chunks_of(100_000, 10_000, 40_000, 1_000) == (4, 4)
    plan = AccessPlan(("append",), append_epochs=1_500)
    partial = append_plan(2_500, 1_000, record_truth(plan, 2_500, 42, (1,)))
    assert (partial.last_chunk, partial.fill) == (2, 500)
    assert [sum(len(piece.table) for piece in group) for group in partial.new_chunks] == [1_000]
    full = append_plan(2_000, 1_000, record_truth(plan, 2_000, 42, (1,)))
    assert (full.last_chunk, full.fill) == (1, 0)
    assert [sum(len(piece.table) for piece in group) for group in full.new_chunks] == [1_000, 500]


# --- real runs ----------------------------------------------------------------------------------------------------

def _args(mode: RampMode, dsn: str, table: str, payload_format: str, *more: str) -> list[str]:
    return [*mode.argv(), "--dsn", dsn, "--table", table, "--payload-format", payload_format, "--layout", "chunked",
            *more]


def _chunks(conn: psycopg.Connection, table: str) -> list[tuple[int, int, int]]:
    """(record, chunk, epochs) of every row, in order."""
    return conn.execute(sql.SQL("SELECT record, chunk, epochs FROM {} ORDER BY record, chunk").format(
        sql.Identifier(table))).fetchall()


@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize(("payload_format", "write_method"),
                         [("bson", "insert"), ("jsonb", "insert"), ("ndjson_zstd", "insert"), ("jsonb", "copy"),
                          ("ndjson_zstd", "copy")])
def test_a_chunked_run_writes_chunk_rows_reads_them_back_and_accesses_them(
        payload_format: str, write_method: str, mode: RampMode, embedded_dsn: str, embedded_db: psycopg.Connection,
        table_name: str, run_cli: Callable[..., object], tmp_path: Path) -> None:
    result = run_cli(*_args(mode, embedded_dsn, table_name, payload_format, "--chunk-epochs", "700", "--write-method",
                            write_method, "--access", "all", "--range-epochs", "100", "--drop-table", *TINY_RAMP))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    csv_path = mode.csv_path(tmp_path)
    assert csv_header(csv_path)[-2:] == list(LAYOUT_COLUMNS)
    rows = read_csv(csv_path)
    assert [row["status"] for row in rows] == ["OK"] * 3
    for row in rows:
        mode.assert_intact_ok(row)
        assert (row["layout"], row["chunk_epochs"]) == ("chunked", "700")
        assert float(row["append_wal_mb"]) > 0 and int(row["append_sent_bytes"]) > 0
    # the 100-epoch window from the middle of 3,000 epochs (1,450..1,549) lies inside chunk 2 of each record (the
    # append then changed chunk 4 only): that chunk alone came back, as the driver receives it; jsonb's slice of it
    received = embedded_db.execute(sql.SQL("SELECT sum(octet_length(payload{}) + {}) FROM {} WHERE chunk = 2").format(
        sql.SQL("::text" if payload_format == "jsonb" else ""), sql.Literal(1 if payload_format == "jsonb" else 0),
        sql.Identifier(table_name))).fetchone()
    assert received is not None
    if payload_format == "jsonb":
        assert 0 < int(rows[-1]["range_bytes"]) < received[0] / 5
    else:
        assert int(rows[-1]["range_bytes"]) == received[0]
    # the last level's records: 3,000 epochs grown by 30, as chunks of 700 and one of 230, one transaction each
    stored = _chunks(embedded_db, table_name)
    records = sorted({record for record, _chunk, _epochs in stored})
    assert len(records) == mode.concurrency
    for record in records:
        assert [(chunk, epochs) for r, chunk, epochs in stored if r == record] == [
            (0, 700), (1, 700), (2, 700), (3, 700), (4, 230)]
    # the stored size is the sum over the record's rows (measured before the append grew them)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert ("jsonpath slice of each chunk row overlapping the window" if payload_format == "jsonb"
            else "only the chunks overlapping the window fetched and decoded") in report


@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
def test_the_stored_sizes_sum_over_the_records_chunk_rows_and_the_memory_passes_run(
        mode: RampMode, embedded_dsn: str, embedded_db: psycopg.Connection, table_name: str,
        run_cli: Callable[..., object], tmp_path: Path) -> None:
    result = run_cli(*_args(mode, embedded_dsn, table_name, "ndjson_zstd", "--chunk-epochs", "400", "--drop-table",
                            "--start-epochs", "2000", "--end-epochs", "2000", "--memory-trace", "on"))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    (row,) = read_csv(mode.csv_path(tmp_path))
    assert float(row["write_peak_mb"]) > 0 and float(row["read_peak_mb"]) > 0  # the memory passes, of chunks too
    summed = embedded_db.execute(sql.SQL(
        "SELECT sum(pg_column_size(payload)), count(*) FROM {}").format(sql.Identifier(table_name))).fetchone()
    assert summed is not None and summed[1] == 5 * mode.concurrency
    column = "db_payload_mb" if mode is SYNC else "db_payload_per_record_mb"
    assert float(row[column]) * MIB * mode.concurrency == pytest.approx(summed[0], rel=1e-9)


# --- a value changed on the server: the full read ------------------------------------------------------------------

def _change_chunks(dsn: str, table: str, payload_format: str, case: str) -> None:
    """Change every stored record of the chunked table as `case` says, on the server."""
    ident = sql.Identifier(table)
    codec = get_codec(payload_format)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if case == "a chunk missing":
            conn.execute(sql.SQL("DELETE FROM {} WHERE chunk = 1").format(ident))
        elif case == "an extra chunk":
            conn.execute(sql.SQL("INSERT INTO {} (record, chunk, payload, epochs) SELECT record, chunk + 100, payload,"
                                 " epochs FROM {} WHERE chunk = 0").format(ident, ident))
        elif case == "two chunks swapped":  # both full: only their order tells them apart
            for old, new in ((0, -1), (1, 0), (-1, 1)):  # one at a time: (record, chunk) is the primary key
                conn.execute(sql.SQL("UPDATE {} SET chunk = %s WHERE chunk = %s").format(ident), [new, old])
        else:  # a value changed inside chunk 1
            for record, payload in conn.execute(sql.SQL("SELECT record, payload FROM {} WHERE chunk = 1").format(
                    ident)).fetchall():
                epochs = payload["epochs"] if payload_format == "jsonb" else [
                    epoch for part in codec.decode_stream(payload) for epoch in part]
                epochs[5]["norm_MFE"] = epochs[5]["norm_MFE"] + 1.0
                value = Jsonb({"epochs": epochs}) if payload_format == "jsonb" else bytes(codec.encode_stream([epochs]))
                conn.execute(sql.SQL("UPDATE {} SET payload = %s WHERE record = %s AND chunk = 1").format(ident),
                             [value, record])


FULL_READ_CHANGES = ("a chunk missing", "an extra chunk", "two chunks swapped", "a value changed")


@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize("payload_format", FORMATS)
@pytest.mark.parametrize("case", FULL_READ_CHANGES)
def test_a_chunk_changed_on_the_server_fails_the_full_read(
        case: str, payload_format: str, mode: RampMode, embedded_dsn: str, table_name: str,
        run_cli: Callable[..., object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cost = iteration.Iteration._write_cost

    def then_change(self: iteration.Iteration, level: LevelResult, *args: object) -> object:
        if level.epochs == 2_000:  # written and committed; the full read comes next
            _change_chunks(embedded_dsn, table_name, payload_format, case)
        return write_cost(self, level, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(iteration.Iteration, "_write_cost", then_change)
    result = run_cli(*_args(mode, embedded_dsn, table_name, payload_format, "--chunk-epochs", "500", "--drop-table",
                            *TINY_RAMP))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "VERIFY_FAILED", "OK"]
    mode.assert_failed(rows[1], "VERIFY_FAILED", failed=mode.concurrency)


# --- a value changed on the server: the access phases --------------------------------------------------------------

# (access, epoch changed, key changed): the window is epochs 950..1049 of the 2,000-epoch record
ACCESS_CHANGES = {
    "inside the window": ("range", 1_000, "norm_MFE"),
    "inside the metric": ("metric", 10, "HitRate"),
}


def _change_epoch(dsn: str, table: str, payload_format: str, index: int, key: str, chunk_epochs: int) -> None:
    """One value of epoch `index` of every stored record changed (still its type), in the chunk that holds it."""
    ident = sql.Identifier(table)
    codec = get_codec(payload_format)
    chunk, at = divmod(index, chunk_epochs)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for record, payload in conn.execute(sql.SQL("SELECT record, payload FROM {} WHERE chunk = %s").format(ident),
                                            [chunk]).fetchall():
            epochs = payload["epochs"] if payload_format == "jsonb" else [
                epoch for part in codec.decode_stream(payload) for epoch in part]
            epochs[at][key] = epochs[at][key] + 1.0
            value = Jsonb({"epochs": epochs}) if payload_format == "jsonb" else bytes(codec.encode_stream([epochs]))
            conn.execute(sql.SQL("UPDATE {} SET payload = %s WHERE record = %s AND chunk = %s").format(ident),
                         [value, record, chunk])


@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize("payload_format", FORMATS)
@pytest.mark.parametrize("case", ACCESS_CHANGES)
def test_a_value_changed_after_the_full_read_fails_the_chunked_access_that_reads_it(
        case: str, payload_format: str, mode: RampMode, embedded_dsn: str, table_name: str,
        run_cli: Callable[..., object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    access, index, key = ACCESS_CHANGES[case]
    stored_sizes = iteration.Iteration._stored_sizes

    def then_change(self: iteration.Iteration, level: LevelResult, ids: list[int]) -> None:
        stored_sizes(self, level, ids)  # the full read has passed; the access phases come next
        if level.epochs == 2_000:
            _change_epoch(embedded_dsn, table_name, payload_format, index, key, 700)

    monkeypatch.setattr(iteration.Iteration, "_stored_sizes", then_change)
    result = run_cli(*_args(mode, embedded_dsn, table_name, payload_format, "--chunk-epochs", "700", "--access",
                            access, "--range-epochs", "100", "--drop-table", *TINY_RAMP))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "VERIFY_FAILED", "OK"]
    cause = mode.assert_failed(rows[1], "VERIFY_FAILED", failed=mode.concurrency)
    assert cause.startswith(f"{access} access: ") and "differs from what was written" in cause, cause
    assert float(rows[1]["read_s"]) > 0  # the full read itself was fine


def _chunked_table(conn: psycopg.Connection, table: str, payload_format: str) -> None:
    """The chunked table exactly as a pgstress run creates it (marked), so a trigger can be attached before the run."""
    prepare_table(conn, ChunkedTableSql(table, get_codec(payload_format).column_type), drop=False, truncate=False)


# Change one value of the appended part as the append stores it: the last epoch of the chunk row written.
CHANGE_LAST_EPOCH = {
    "jsonb": "NEW.payload := jsonb_set(NEW.payload, ARRAY['epochs',"
             " (jsonb_array_length(NEW.payload -> 'epochs') - 1)::text, 'HitRate'], '2.5');",
    # the last epoch's last value (an int32) is 7 bytes from the end of the chunk's BSON document
    "bson": "NEW.payload := set_byte(NEW.payload, length(NEW.payload) - 7,"
            " get_byte(NEW.payload, length(NEW.payload) - 7) # 255);",
    # every bit of a byte in the middle of the chunk's zstd frame
    "ndjson_zstd": "NEW.payload := set_byte(NEW.payload, length(NEW.payload) / 2,"
                   " get_byte(NEW.payload, length(NEW.payload) / 2) # 255);",
}
# How the 2,000-epoch record's append of 20 epochs is stored: chunks of 700 (the last, of 600, rewritten filled to
# 620), or of 1,000 (both full: a new chunk row 2 of 20)
APPENDS = {"the last chunk filled": ("700", "UPDATE", "NEW.epochs = 620"),
           "a new chunk row": ("1000", "INSERT", "NEW.chunk = 2 AND NEW.epochs = 20")}


@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize("payload_format", FORMATS)
@pytest.mark.parametrize("case", APPENDS)
def test_a_value_changed_inside_the_appended_part_fails_the_chunked_append(
        case: str, payload_format: str, mode: RampMode, embedded_dsn: str, embedded_db: psycopg.Connection,
        table_name: str, run_cli: Callable[..., object], tmp_path: Path) -> None:
    chunk_epochs, event, condition = APPENDS[case]
    _chunked_table(embedded_db, table_name, payload_format)
    add_insert_trigger(embedded_db, table_name,
                       f"IF {condition} THEN {CHANGE_LAST_EPOCH[payload_format]} END IF; RETURN NEW;")
    ident = sql.Identifier(table_name)
    embedded_db.execute(sql.SQL("DROP TRIGGER fault ON {}").format(ident))
    embedded_db.execute(sql.SQL(f"CREATE TRIGGER fault BEFORE {event} ON {{}} FOR EACH ROW EXECUTE FUNCTION {{}}()"
                                ).format(ident, sql.Identifier(f"{table_name}_fault")))
    try:
        result = run_cli(*_args(mode, embedded_dsn, table_name, payload_format, "--chunk-epochs", chunk_epochs,
                                "--access", "append", *TINY_RAMP))
    finally:
        drop_trigger_function(embedded_db, table_name)
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "VERIFY_FAILED", "OK"]
    cause = mode.assert_failed(rows[1], "VERIFY_FAILED", failed=mode.concurrency)
    assert cause.startswith("append access: VerifyError: the grown record: "), cause


# --- the acceptance at 100,000 epochs ----------------------------------------------------------------------

@pytest.mark.parametrize("mode", ONE_RECORD_MODES, ids=lambda mode: mode.name)
def test_at_100k_epochs_a_chunked_append_and_range_read_touch_at_most_two_chunks(
        mode: RampMode, embedded_dsn: str, embedded_db: psycopg.Connection, table_name: str,
        run_cli: Callable[..., object], tmp_path: Path) -> None:
    """With chunks of 10,000 epochs (the default), appending 1 % writes no more WAL than two chunks' worth, and a
    window of 1,000 epochs receives no more than two chunks' bytes, in every format."""
    result = run_cli(*_args(mode, embedded_dsn, table_name, "all", "--access", "range,append", "--drop-table",
                            "--start-epochs", "100000", "--end-epochs", "100000", "--memory-trace", "off"))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = {row["format"]: row for row in read_csv(mode.csv_path(tmp_path))}
    assert set(rows) == set(FORMATS)
    for payload_format, row in rows.items():
        assert row["status"] == "OK", row
        table = sql.Identifier(f"{table_name}_{payload_format}")
        # the largest chunk, as stored (after compression) and as received (jsonb: its binary form, the text)
        found = embedded_db.execute(sql.SQL(
            "SELECT max(pg_column_size(payload)), max(octet_length(payload{})) + {} FROM {} WHERE epochs = 10000"
        ).format(sql.SQL("::text" if payload_format == "jsonb" else ""),
                 sql.Literal(1 if payload_format == "jsonb" else 0), table)).fetchone()
        assert found is not None and found[0] is not None
        stored_chunk, received_chunk = found
        wal = float(row["append_wal_mb"]) * MIB / mode.concurrency  # each record's
        assert 0 < wal <= 2 * stored_chunk, (payload_format, wal, stored_chunk)
        window = int(row["range_bytes"]) / mode.concurrency
        assert 0 < window <= 2 * received_chunk, (payload_format, window, received_chunk)


# --- both layouts in one run ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
def test_layout_all_compares_both_layouts_each_on_its_own_table(
        mode: RampMode, embedded_dsn: str, embedded_db: psycopg.Connection, table_name: str,
        run_cli: Callable[..., object], tmp_path: Path) -> None:
    result = run_cli(*mode.argv(), "--dsn", embedded_dsn, "--table", table_name, "--payload-format", "all",
                     "--layout", "all", "--chunk-epochs", "700", "--access", "all", "--range-epochs", "100",
                     "--drop-table", "--start-epochs", "2000", "--end-epochs", "2000", "--memory-trace", "off",
                     "--export-json", str(tmp_path / "run.json"))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(mode.csv_path(tmp_path))
    record = read_run_json(tmp_path / "run.json")  # valid against the schema, the layout columns in every row
    assert [row["layout"] for ramp in record["ramps"] for row in ramp["rows"]] == [row["layout"] for row in rows]
    assert (record["config"]["layout"], record["config"]["chunk_epochs"]) == ("all", 700)
    assert [(row["format"], row["layout"], row["chunk_epochs"], row["status"]) for row in rows] == [
        (payload_format, layout, "700" if layout == "chunked" else "", "OK")
        for payload_format in payloads.format_names() for layout in ("value", "chunked")
        if (payload_format, layout) != ("pgarrays", "chunked")]  # a chunk row holds one value: pgarrays has columns
    for payload_format in FORMATS:
        for layout, key in (("value", "id"), ("chunked", "record")):
            columns = embedded_db.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0",
                [f"{table_name}_{payload_format}_{layout}"]).fetchall()
            assert (key,) in columns, (payload_format, layout)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    heading = next(line for line in report.splitlines() if line.startswith("The same, format by layout"))
    table = table_after(report, heading)
    assert [line[0] for line in table[1:]] == list(payloads.format_names())
    assert all(" / " in cell for line in table[1:] for cell in line[1:])
    assert all(cell.endswith(" / -") for line in table[1:] if line[0] == "pgarrays" for cell in line[1:])
    assert "- **bson chunked**: range: only the chunks overlapping the window fetched and decoded" in report
    assert "- **bson value**: range: whole value fetched and decoded" in report


@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
def test_the_value_layout_alone_adds_no_column(mode: RampMode, embedded_dsn: str, table_name: str,
                                              run_cli: Callable[..., object], tmp_path: Path) -> None:
    result = run_cli(*mode.argv(), "--dsn", embedded_dsn, "--table", table_name, "--layout", "value", "--drop-table",
                     *TINY_RAMP)
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    header = csv_header(mode.csv_path(tmp_path))
    assert not set(LAYOUT_COLUMNS) & set(header)
    assert "layout" not in (tmp_path / f"{mode.csv_name}.run.json").read_text(encoding="utf-8")


# --- bad values ----------------------------------------------------------------------------------------------------

class _ArraysCodec(Codec):
    """A format whose record is not one value (as a format of one array column per metric would be)."""

    name = "arrays_for_test"
    column_type = "FLOAT8[]"


@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize(("args", "fragment"), [
    (["--layout", "chunked", "--chunk-epochs", "0"], "argument --chunk-epochs: 0 must be >= 1"),
    (["--layout", "bogus"], "argument --layout: invalid choice: 'bogus'"),
    (["--layout", "chunked", "--payload-format", "arrays_for_test"],
     "argument --layout: the chunked layout stores each chunk as one value, and --payload-format arrays_for_test is"
     " not one value"),
])
def test_bad_layout_values_are_refused_before_anything_is_touched(
        args: list[str], fragment: str, mode: RampMode, embedded_dsn: str, embedded_db: psycopg.Connection,
        table_name: str, run_cli: Callable[..., object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(payloads._REGISTRY, _ArraysCodec.name, _ArraysCodec)
    result = run_cli(*mode.argv(), "--dsn", embedded_dsn, "--table", table_name, *args, *TINY_RAMP)
    assert result.code == 2  # type: ignore[attr-defined]
    err = result.err  # type: ignore[attr-defined]
    assert fragment in err and err.count("\n") == 1, err
    assert not mode.csv_path(tmp_path).exists()
    assert embedded_db.execute("SELECT to_regclass(%s)", [table_name]).fetchone() == (None,)


def test_every_one_value_format_can_be_chunked_and_pgarrays_runs_only_in_the_value_layout() -> None:
    assert [name for name in payloads.format_names()
            if layout_problem(RunConfig(payload_format=name, layout="chunked"))] == ["pgarrays"]
    ramps = ramp_configs(RunConfig(payload_format="all", layout="all"))
    assert sorted((ramp.payload_format, ramp.layout) for ramp in ramps) == sorted(
        [(name, "value") for name in payloads.format_names()]
        + [(name, "chunked") for name in payloads.format_names() if name != "pgarrays"])
    config = RunConfig(payload_format="pgarrays", layout="all")
    assert [(ramp.layout, ramp.table) for ramp in ramp_configs(config)] == [("value", "stress_records_value")]
    assert ignored_warnings(config, {"layout": "all"}) == [
        "warning: --layout all: pgarrays stores a record in several columns, not one value a chunk row can hold, so"
        " it runs in the value layout only"]


# --- pgstress compare ----------------------------------------------------------------------------------------------

def test_compare_pairs_each_layouts_ramp_with_the_same_layouts(embedded_dsn: str, table_name: str,
                                                               run_cli: Callable[..., object], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from pgstress import cli

    result = run_cli("--dsn", embedded_dsn, "--table", table_name, "--layout", "all", "--chunk-epochs", "400",
                     "--drop-table", *TINY_RAMP, "--export-json", str(tmp_path / "run.json"))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    capsys.readouterr()
    for other in ("run.json", "iteration_results.csv"):  # the JSON record, and the CSV read with its run record
        code = cli.main(["compare", str(tmp_path / "run.json"), str(tmp_path / other), "--no-charts",
                         "--report-md", str(tmp_path / "compared.md")])
        out = capsys.readouterr().out
        assert code == 0, out
        report = (tmp_path / "compared.md").read_text(encoding="utf-8")
        for layout in ("value", "chunked"):
            assert f"(ndjson_zstd default {layout})" in report, layout


# --- --resume ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
def test_resume_finishes_a_layout_all_run_and_refuses_another_chunk_size(
        mode: RampMode, embedded_dsn: str, table_name: str, hooks, run_cli: Callable[..., object],
        tmp_path: Path) -> None:
    argv = [*mode.argv(), "--dsn", embedded_dsn, "--table", table_name, "--layout", "all", "--chunk-epochs", "700",
            "--drop-table", *TINY_RAMP]
    stopped = {"once": False}

    def interrupt() -> None:
        if not stopped["once"]:  # the value layout's iteration 3: the chunked layout's ramp has not begun
            stopped["once"] = True
            raise KeyboardInterrupt

    hooks.before[3] = interrupt
    first = run_cli(*argv)
    assert first.code == 130, first.err  # type: ignore[attr-defined]
    csv_path = mode.csv_path(tmp_path)
    earlier = csv_path.read_bytes()
    assert [row["layout"] for row in read_csv(csv_path)] == ["value", "value"]

    other = run_cli(*[*argv[:argv.index("700")], "500", *argv[argv.index("700") + 1:]], "--resume")
    assert other.code == 2  # type: ignore[attr-defined]
    assert "holds a different ramp" in other.err and "--chunk-epochs" in other.err  # type: ignore[attr-defined]
    assert csv_path.read_bytes() == earlier

    resumed = run_cli(*argv, "--resume")
    assert resumed.code == 0, resumed.err  # type: ignore[attr-defined]
    assert csv_path.read_bytes().startswith(earlier)
    rows = read_csv(csv_path)
    assert [(row["layout"], row["epochs"], row["status"]) for row in rows] == [
        (layout, str(epochs), "OK") for layout in ("value", "chunked") for epochs in (1000, 2000, 3000)]


# --- one transaction per record ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", RAMP_MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize("write_method", ["insert", "copy"])
def test_a_record_whose_last_chunk_fails_leaves_none_of_its_chunks(
        write_method: str, mode: RampMode, embedded_dsn: str, embedded_db: psycopg.Connection, table_name: str,
        hooks, run_cli: Callable[..., object], tmp_path: Path) -> None:
    _chunked_table(embedded_db, table_name, "ndjson_zstd")
    # the 2,000-epoch records' last chunk (chunks of 700: 700, 700, 600) is refused by the server
    add_insert_trigger(embedded_db, table_name, "IF NEW.chunk = 2 AND NEW.epochs = 600 THEN"
                                                " RAISE EXCEPTION 'the last chunk refused'; END IF; RETURN NEW;")
    left: list[int] = []
    hooks.after[2] = lambda row: left.append(len(_chunks(embedded_db, table_name)))
    try:
        result = run_cli(*_args(mode, embedded_dsn, table_name, "ndjson_zstd", "--chunk-epochs", "700",
                                "--write-method", write_method, *TINY_RAMP))
    finally:
        drop_trigger_function(embedded_db, table_name)
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "ERROR", "OK"]
    assert "the last chunk refused" in rows[1]["error"]
    assert left == [0]  # the failed records' first chunks were rolled back with their last
