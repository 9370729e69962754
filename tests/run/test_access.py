"""--access range,metric,append: after the full read, a window, one metric and an append of each record, each timed
apart, counted in bytes and verified against the generator; a value changed on the server inside what an access
reads is VERIFY_FAILED, in every format; bad values are refused before anything is touched."""

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
    create_pgstress_table,
    drop_trigger_function,
    read_chart_data,
    read_csv,
    table_after,
)
from psycopg import sql
from psycopg.types.json import Jsonb

from pgstress.db.access_sql import metric_path, window_path
from pgstress.rows import ACCESS_COLUMNS
from pgstress.run import iteration
from pgstress.run.access import (
    AccessPlan,
    append_count,
    check_metric,
    check_window,
    parse_accesses,
    record_truth,
    window,
)
from pgstress.run.iteration import LevelResult
from pgstress.workload.epochs import ContentHash, generate
from pgstress.workload.payloads import VerifyError, format_names, get_codec

FORMATS = ("bson", "jsonb", "ndjson_zstd", "pgarrays")
MODES = RAMP_MODES
MIB = 1024 * 1024


# --- the plan and the checks, without a server -----------------------------------------------------------------

def test_accesses_are_parsed_in_their_fixed_order() -> None:
    assert parse_accesses("full") == ("full",)
    assert parse_accesses("metric,range") == ("range", "metric")
    assert parse_accesses("all") == ("full", "range", "metric", "append")
    with pytest.raises(ValueError, match="'scan' is not an access"):
        parse_accesses("range,scan")


def test_the_window_is_the_middle_and_the_append_one_percent() -> None:
    assert window(10_000, 1_000) == (4_500, 1_000)
    assert window(1_001, 1_000) == (0, 1_000)
    assert append_count(100_000, None) == 1_000
    assert append_count(50, None) == 1  # at least one
    assert append_count(100_000, 7) == 7


def test_jsonpaths_quote_every_key_of_the_epoch() -> None:
    assert window_path(4_500, 1_000) == "$.epochs[4500 to 5499]"
    assert metric_path("median(duration) cycle") == '$.epochs[*]."median(duration) cycle"'


def _record(epochs: int, stream: tuple[int, ...] = (1,)) -> list[dict[str, int | bool | float]]:
    return [epoch for chunk in generate(epochs, 42, stream) for epoch in chunk.as_dicts()]


def test_the_checks_take_the_generator_as_the_truth() -> None:
    plan = AccessPlan(("range", "metric", "append"), range_epochs=100, metric="HitRate", append_epochs=5)
    truth = record_truth(plan, 1_000, 42, (1,))
    epochs = _record(1_000)
    check_window(epochs[450:550], truth)
    check_metric([epoch["HitRate"] for epoch in epochs], "HitRate", truth)
    with pytest.raises(VerifyError, match=r"window of epochs 450\.\.549 read back differs"):
        check_window(epochs[451:551], truth)  # one epoch off
    with pytest.raises(VerifyError, match="has 99 epochs"):
        check_window(epochs[450:549], truth)
    changed = [dict(epoch) for epoch in epochs]
    changed[700]["HitRate"] = 0.5
    with pytest.raises(VerifyError, match="'HitRate' read back differs"):
        check_metric([epoch["HitRate"] for epoch in changed], "HitRate", truth)
    with pytest.raises(VerifyError, match="came back as int"):
        check_metric([int(epoch["HitRate"]) for epoch in epochs], "HitRate", truth)
    # the grown record is the record, then the next epochs of the append's own stream
    grown = ContentHash()
    grown.update_dicts(epochs + truth.appended.as_dicts())
    assert (grown.count, grown.hexdigest()) == (truth.grown_epochs, truth.grown_hash) == (1_005, truth.grown_hash)
    assert truth.appended.as_dicts() != _record(1_005)[1_000:]  # not the record's own next epochs


def test_an_append_larger_than_a_generator_chunk_is_the_append_stream_in_order() -> None:
    truth = record_truth(AccessPlan(("append",), append_epochs=25_000), 10, 42, (1,))
    assert len(truth.appended.table) == 25_000 and truth.grown_epochs == 25_010
    expected = ContentHash()
    for chunk in generate(25_000, 42, (1, 1_000_003)):
        expected.update_table(chunk.table)
    appended = ContentHash()
    appended.update_table(truth.appended.table)
    assert appended.hexdigest() == expected.hexdigest()


def test_a_zstd_value_of_several_frames_decodes_whole() -> None:
    codec = get_codec("ndjson_zstd")
    epochs = _record(3_000)
    value = codec.encode_stream([epochs[:2_000]]) + codec.encode_stream([epochs[2_000:]])
    assert [epoch for chunk in codec.decode_stream(value) for epoch in chunk] == epochs


# --- real runs --------------------------------------------------------------------------------------------------

def _access_args(mode: RampMode, dsn: str, table: str, payload_format: str, *extra: str) -> list[str]:
    return [*mode.argv(), "--dsn", dsn, "--table", table, "--payload-format", payload_format, *extra]


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize("payload_format", FORMATS)
def test_every_access_is_timed_counted_and_leaves_the_grown_record(
        payload_format: str, mode: RampMode, embedded_dsn: str, embedded_db: psycopg.Connection, table_name: str,
        run_cli: Callable[..., object], tmp_path: Path) -> None:
    result = run_cli(*_access_args(mode, embedded_dsn, table_name, payload_format, "--access", "all",
                                   "--range-epochs", "100", "--drop-table", *TINY_RAMP))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK"] * 3
    for row in rows:
        mode.assert_intact_ok(row)
        for column in ACCESS_COLUMNS:
            assert float(row[column]) >= 0 and row[column] != "", (column, row)
        for column in ("range_read_s", "metric_read_s", "append_s", "append_sent_bytes", "append_wal_mb"):
            assert float(row[column]) > 0, (column, row)
        stored = float(row[mode.size_column]) * MIB * mode.concurrency
        if payload_format == "jsonb":  # only what the jsonpath selected came back
            assert int(row["range_bytes"]) < stored / 5
            assert int(row["append_received_bytes"]) == 0
        elif payload_format == "pgarrays":  # each column's slice, then one column: binary arrays, exactly
            # per array: its 20-byte header, then per element a 4-byte length and the value (4 ints, 1 bool, 10 floats)
            assert int(row["range_bytes"]) == (4 * (20 + 100 * 8) + (20 + 100 * 5) + 10 * (20 + 100 * 12)) \
                * mode.concurrency
            assert int(row["metric_bytes"]) == (20 + int(row["epochs"]) * 12) * mode.concurrency  # HitRate
            assert int(row["append_received_bytes"]) == 0
            appended = int(row["epochs"]) // 100
            assert int(row["append_sent_bytes"]) == (4 * (20 + appended * 8) + (20 + appended * 5)
                                                     + 10 * (20 + appended * 12)) * mode.concurrency
        else:  # the whole value, every time
            assert int(row["range_bytes"]) == int(row["metric_bytes"]) == pytest.approx(stored, rel=1e-6)
            assert int(row["append_received_bytes"]) == (int(row["range_bytes"]) if payload_format == "bson" else 0)
    # the last iteration's records stay in the table, grown by 1 %, their own columns saying so
    grown = {(3_030, record_truth(AccessPlan(("append",)), 3_000, 42, stream).grown_hash)
             for stream in mode.streams(3)}
    found = embedded_db.execute(sql.SQL("SELECT epochs, content_hash FROM {}").format(
        sql.Identifier(table_name))).fetchall()
    assert sorted(found) == sorted(grown)
    # the report's section: the table at the largest size, how each access was done, the choice per use
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    table = table_after(report, "## How it will be used")
    assert table[0][:4] == ["format", "write s", "full read s", "range read s"]
    assert [line[0] for line in table[1:]] == [payload_format]
    assert "At 3,000 epochs, the largest record size every compared ramp completed" in report
    assert f"- **{payload_format}**: range: " in report
    for use in ("to read the whole record", "to read a window of 100 epochs",
                "to read one metric (HitRate) of every epoch", "to append epochs"):
        assert f"- {use}: **{payload_format}**, " in report, use


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.name)
def test_the_default_run_measures_no_access(mode: RampMode, embedded_dsn: str, table_name: str,
                                            run_cli: Callable[..., object], tmp_path: Path) -> None:
    result = run_cli(*_access_args(mode, embedded_dsn, table_name, "ndjson_zstd", "--drop-table", *TINY_RAMP),
                     charts=True)
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    assert (tmp_path / "report_time.png").exists() and not (tmp_path / "report_access.png").exists()
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK"] * 3
    assert not set(ACCESS_COLUMNS) & set(rows[0])  # an opt-in group: no access columns in the default CSV
    assert "How it will be used" not in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_the_access_chart_draws_each_access_asked_beside_the_full_read(
        embedded_dsn: str, table_name: str, run_cli: Callable[..., object], tmp_path: Path) -> None:
    result = run_cli(*_access_args(SYNC, embedded_dsn, table_name, "jsonb", "--access", "range,append",
                                   "--drop-table", *TINY_RAMP), charts=True)
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(SYNC.csv_path(tmp_path))
    lines = read_chart_data(tmp_path / "report_access.png")["lines"]
    assert set(lines) == {"full read", "range: a window of epochs", "append: the record grown in place"}
    assert lines["append: the record grown in place"] == [[int(row["epochs"]), float(row["append_s"])]
                                                          for row in rows]
    assert "report_access.png" in (tmp_path / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("metric", ["known_data", "cycle_count", "median(duration) cycle"])
@pytest.mark.parametrize("payload_format", FORMATS)
def test_a_metric_of_any_type_and_any_name_reads_back_as_written(
        metric: str, payload_format: str, embedded_dsn: str, table_name: str, run_cli: Callable[..., object],
        tmp_path: Path) -> None:
    """A bool, an int and a key with spaces and parentheses (quoted in jsonb's jsonpath) come back with their
    types."""
    result = run_cli(*_access_args(SYNC, embedded_dsn, table_name, payload_format, "--access", "metric",
                                   "--metric", metric, "--drop-table", "--start-epochs", "1000", "--end-epochs",
                                   "1000", "--memory-trace", "off"))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    (row,) = read_csv(SYNC.csv_path(tmp_path))
    assert row["status"] == "OK" and float(row["metric_read_s"]) > 0, row


def test_with_storage_external_the_report_says_why_bytea_is_still_read_whole(
        embedded_dsn: str, table_name: str, run_cli: Callable[..., object], tmp_path: Path) -> None:
    result = run_cli(*_access_args(SYNC, embedded_dsn, table_name, "bson", "--access", "range", "--storage",
                                   "external", "--drop-table", *TINY_RAMP))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(SYNC.csv_path(tmp_path))
    assert all(int(row["range_bytes"]) == round(float(row["client_payload_mb"]) * MIB) for row in rows)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "With `--storage external` the bytea values are stored uncompressed" in report


@pytest.mark.parametrize(("args", "fragment"), [
    (["--access", "range", "--range-epochs", "0"], "argument --range-epochs: 0 must be >= 1"),
    (["--access", "range", "--range-epochs", "1001"],
     "argument --range-epochs: a window of 1001 epochs is larger than the ramp's smallest record (1000 epochs"),
    (["--access", "metric", "--metric", "Sharpe"], "argument --metric: 'Sharpe' is not a metric of the epoch"),
    (["--access", "range,scan"], "argument --access: 'scan' is not an access"),
    (["--access", "append", "--append-epochs", "0"], "argument --append-epochs: 0 must be >= 1"),
])
def test_bad_access_values_are_refused_before_anything_is_touched(
        args: list[str], fragment: str, embedded_dsn: str, embedded_db: psycopg.Connection, table_name: str,
        run_cli: Callable[..., object], tmp_path: Path) -> None:
    result = run_cli("--dsn", embedded_dsn, "--table", table_name, *args, *TINY_RAMP)
    assert result.code == 2  # type: ignore[attr-defined]
    err = result.err  # type: ignore[attr-defined]
    assert fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "iteration_results.csv").exists()
    assert embedded_db.execute("SELECT to_regclass(%s)", [table_name]).fetchone() == (None,)


# --- a value changed on the server inside what an access reads ---------------------------------------------------

def _change_stored_epoch(dsn: str, table: str, payload_format: str, index: int, key: str) -> None:
    """Rewrite every stored record of the table with one value of epoch `index` changed (still its type)."""
    codec = get_codec(payload_format)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if payload_format == "pgarrays":  # on the server: one element of the key's own array column
            column = sql.Identifier(key)
            conn.execute(sql.SQL("UPDATE {} SET {} = {}").format(sql.Identifier(table), sql.SQL("{}[{}]").format(
                column, sql.Literal(index + 1)), sql.SQL("{}[{}] + 1.0").format(column, sql.Literal(index + 1))))
            return
        for record_id, payload in conn.execute(sql.SQL("SELECT id, payload FROM {}").format(sql.Identifier(table))):
            epochs = payload["epochs"] if payload_format == "jsonb" else [
                epoch for chunk in codec.decode_stream(payload) for epoch in chunk]
            epochs[index][key] = epochs[index][key] + 1.0
            value = Jsonb({"epochs": epochs}) if payload_format == "jsonb" else bytes(codec.encode_stream([epochs]))
            conn.execute(sql.SQL("UPDATE {} SET payload = %s WHERE id = %s").format(sql.Identifier(table)),
                         [value, record_id])


# (access, epoch changed, key changed, expected status): the window is epochs 950..1049 of the 2,000-epoch record
WHERE_CHANGED = {
    "inside the window": ("range", 1_000, "norm_MFE", "VERIFY_FAILED"),
    "outside the window": ("range", 10, "norm_MFE", "OK"),
    "inside the metric": ("metric", 10, "HitRate", "VERIFY_FAILED"),
    "in another metric": ("metric", 10, "norm_MFE", "OK"),
}


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize("payload_format", FORMATS)
@pytest.mark.parametrize("case", WHERE_CHANGED, ids=WHERE_CHANGED)
def test_a_value_changed_after_the_full_read_fails_the_access_that_reads_it(
        case: str, payload_format: str, mode: RampMode, embedded_dsn: str, table_name: str,
        run_cli: Callable[..., object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    access, index, key, status = WHERE_CHANGED[case]
    stored_sizes = iteration.Iteration._stored_sizes

    def then_change(self: iteration.Iteration, level: LevelResult, ids: list[int]) -> None:
        stored_sizes(self, level, ids)  # the full read has passed; the access phases come next
        if level.epochs == 2_000:
            _change_stored_epoch(embedded_dsn, table_name, payload_format, index, key)

    monkeypatch.setattr(iteration.Iteration, "_stored_sizes", then_change)
    result = run_cli(*_access_args(mode, embedded_dsn, table_name, payload_format, "--access", access,
                                   "--range-epochs", "100", "--drop-table", *TINY_RAMP))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", status, "OK"]
    column = "range_read_s" if access == "range" else "metric_read_s"
    if status == "OK":
        assert float(rows[1][column]) > 0
        return
    cause = mode.assert_failed(rows[1], "VERIFY_FAILED", failed=mode.concurrency)
    assert cause.startswith(f"{access} access: ") and "differs from what was written" in cause, cause
    assert rows[1][column] == ""
    assert float(rows[1]["read_s"]) > 0  # the full read itself was fine
    if mode.fans_out:
        assert rows[1]["reads_ok"] == str(mode.concurrency)


# pgarrays on the server: (access, the change, what the failure says); the window is epochs 950..1049 (1-based
# 951..1050 in SQL)
ARRAYS_CHANGED = {
    "a NULL inside the window": ("range", 'UPDATE {} SET "norm_MFE"[1001] = NULL', "holds a NULL"),
    "a NULL inside the metric": ("metric", 'UPDATE {} SET "HitRate"[11] = NULL', "holds a NULL"),
    "an extra element in the metric": ("metric", 'UPDATE {} SET "HitRate" = "HitRate" || 0.5::float8',
                                       "has 2001 values"),
    "a value rounded inside the window": ("range", 'UPDATE {} SET "AIR_trunc" = "AIR_trunc"::real[]::float8[]',
                                          "differs from what was written"),
    "another type in the window": ("range", 'ALTER TABLE {} ALTER COLUMN "norm_MFE" TYPE real[]',
                                   "not a binary array of a type pgstress writes"),
}


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize("case", ARRAYS_CHANGED, ids=ARRAYS_CHANGED)
def test_an_array_changed_on_the_server_fails_the_access_that_reads_it(
        case: str, mode: RampMode, embedded_dsn: str, table_name: str, run_cli: Callable[..., object],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    access, change, message = ARRAYS_CHANGED[case]
    stored_sizes = iteration.Iteration._stored_sizes

    def then_change(self: iteration.Iteration, level: LevelResult, ids: list[int]) -> None:
        stored_sizes(self, level, ids)
        if level.epochs == 2_000:
            with psycopg.connect(embedded_dsn, autocommit=True) as conn:
                conn.execute(sql.SQL(change).format(sql.Identifier(table_name)))

    monkeypatch.setattr(iteration.Iteration, "_stored_sizes", then_change)
    result = run_cli(*_access_args(mode, embedded_dsn, table_name, "pgarrays", "--access", access,
                                   "--range-epochs", "100", "--drop-table", *TINY_RAMP))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(mode.csv_path(tmp_path))
    # a column of another type stays so: the next size's full read fails too (its values come back as real[])
    later = "VERIFY_FAILED" if case == "another type in the window" else "OK"
    assert [row["status"] for row in rows] == ["OK", "VERIFY_FAILED", later]
    cause = mode.assert_failed(rows[1], "VERIFY_FAILED", failed=mode.concurrency)
    assert cause.startswith(f"{access} access: ") and message in cause, cause


# Change one value of the appended part as the append's UPDATE stores it.
CHANGE_APPENDED = {
    "jsonb": "NEW.payload := jsonb_set(NEW.payload, ARRAY['epochs',"
             " (jsonb_array_length(NEW.payload -> 'epochs') - 1)::text, 'HitRate'], '2.5');",
    # the last epoch's last value (an int32) is 7 bytes from the end of the rewritten BSON document
    "bson": "NEW.payload := set_byte(NEW.payload, length(NEW.payload) - 7,"
            " get_byte(NEW.payload, length(NEW.payload) - 7) # 255);",
    # every bit of a byte in the middle of the new frame (one bit alone can land where zstd does not notice: 5 of
    # the 2,385 bytes of this frame decode the same with their lowest bit flipped)
    "ndjson_zstd": "NEW.payload := set_byte(NEW.payload, (length(OLD.payload) + length(NEW.payload)) / 2,"
                   " get_byte(NEW.payload, (length(OLD.payload) + length(NEW.payload)) / 2) # 255);",
    # the last element of one column, which the append has just added
    "pgarrays": 'NEW."HitRate" := NEW."HitRate"[1:array_length(NEW."HitRate", 1) - 1] || 2.5::float8;',
}


def add_update_trigger(conn: psycopg.Connection, table: str, plpgsql_body: str) -> None:
    """A BEFORE UPDATE row trigger (the function named as tests/helpers.py's insert trigger, dropped the same way)."""
    add_insert_trigger(conn, table, plpgsql_body)
    conn.execute(sql.SQL("DROP TRIGGER fault ON {}").format(sql.Identifier(table)))
    conn.execute(sql.SQL("CREATE TRIGGER fault BEFORE UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {}()").format(
        sql.Identifier(table), sql.Identifier(f"{table}_fault")))


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize("payload_format", FORMATS)
def test_a_value_changed_inside_the_appended_part_fails_the_append(
        payload_format: str, mode: RampMode, embedded_dsn: str, embedded_db: psycopg.Connection, table_name: str,
        run_cli: Callable[..., object], tmp_path: Path) -> None:
    create_pgstress_table(embedded_db, table_name, payload_format)
    add_update_trigger(embedded_db, table_name,
                       f"IF NEW.epochs = 2020 THEN {CHANGE_APPENDED[payload_format]} END IF; RETURN NEW;")
    try:
        result = run_cli(*_access_args(mode, embedded_dsn, table_name, payload_format, "--access", "append",
                                       *TINY_RAMP))
    finally:
        drop_trigger_function(embedded_db, table_name)
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "VERIFY_FAILED", "OK"]
    cause = mode.assert_failed(rows[1], "VERIFY_FAILED", failed=mode.concurrency)
    assert cause.startswith("append access: "), cause
    assert "content hash differs" in cause or "cannot be decoded" in cause, cause


# --- the acceptance at 100,000 epochs ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ONE_RECORD_MODES, ids=lambda mode: mode.name)
def test_at_100k_epochs_an_append_rewrites_the_value_and_jsonb_reads_only_its_window(
        mode: RampMode, embedded_dsn: str, table_name: str, run_cli: Callable[..., object], tmp_path: Path) -> None:
    """Appending to a record stored as one value writes at least the whole stored value in WAL, in every format
    (an UPDATE stores a new value); a jsonb window comes back far smaller than the stored value."""
    result = run_cli(*_access_args(mode, embedded_dsn, table_name, "all", "--access", "all", "--drop-table",
                                   "--start-epochs", "100000", "--end-epochs", "100000", "--memory-trace", "off"))
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rows = {row["format"]: row for row in read_csv(mode.csv_path(tmp_path))}
    assert set(rows) == set(format_names())
    for payload_format, row in rows.items():
        assert row["status"] == "OK", row
        stored_mb = float(row["db_payload_mb"] if mode is SYNC else row["db_payload_per_record_mb"]) * mode.concurrency
        assert float(row["append_wal_mb"]) >= stored_mb, (payload_format, row["append_wal_mb"], stored_mb)
    jsonb = rows["jsonb"]
    stored_bytes = float(jsonb["db_payload_mb"] if mode is SYNC else jsonb["db_payload_per_record_mb"]) * MIB
    window_bytes = int(jsonb["range_bytes"]) / mode.concurrency  # each record's window
    assert window_bytes < stored_bytes / 20, (window_bytes, stored_bytes)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    table = table_after(report, "### How it will be used")
    assert [line[0] for line in table[1:]] == sorted(format_names())
    assert "At 100,000 epochs, the largest record size every compared ramp completed" in report
    for use in ("to read the whole record", "to read a window of 1,000 epochs",
                "to read one metric (HitRate) of every epoch", "to append epochs"):
        assert any(line.startswith(f"- {use}: **") and " against " in line for line in report.splitlines()), use


# --- the measures reach pgstress compare, where every run has them -------------------------------------------------

def test_compare_weighs_the_access_measures_only_where_every_run_has_them() -> None:
    from pgstress.compare.verdicts import measures_present
    from pgstress.rows import SyncRow

    plain = SyncRow(iter=1, epochs=1_000, write_s=1.0, read_s=1.0)
    accessed = SyncRow(iter=1, epochs=1_000, write_s=1.0, read_s=1.0, range_read_s=0.1, range_bytes=10,
                       metric_read_s=0.1, metric_bytes=10, append_s=0.2, append_wal_mb=1.0)
    access_fields = {"range_read_s", "range_bytes", "metric_read_s", "metric_bytes", "append_s", "append_wal_mb"}
    both = {measure.field for measure in measures_present("sync", [[accessed], [accessed]])}
    assert access_fields <= both
    one = {measure.field for measure in measures_present("sync", [[accessed], [plain]])}
    assert not access_fields & one
