"""--write-method copy stores exactly what insert stores, on real servers, for every format."""

from __future__ import annotations

import psycopg
import pytest

from pgstress.epochs import generate
from pgstress.measure import StageClock
from pgstress.payloads import decode_and_verify, encode_epochs, format_names, get_codec
from pgstress.results import read_rows
from pgstress.schema import TableSql, prepare_table
from pgstress.sync_runner import SyncDatabase


@pytest.mark.parametrize("fmt", format_names())
def test_copy_and_insert_store_identical_verified_values(
    db: psycopg.Connection, server_dsn: str, table_name: str, fmt: str
) -> None:
    codec = get_codec(fmt)
    spec = TableSql(table_name, codec.column_type)
    prepare_table(db, spec, drop=True, truncate=False)
    payload = encode_epochs(codec, generate(3_000, 11, (1,)), StageClock())
    by_method: dict[str, SyncDatabase] = {m: SyncDatabase(server_dsn, spec, 0, m) for m in ("insert", "copy")}
    try:
        ids = {method: store.write(payload) for method, store in by_method.items()}
        ids["copy again"] = by_method["copy"].write(payload)
        assert len(set(ids.values())) == 3, "each write returns the id of its own new row"
        for method, record_id in ids.items():
            cursor, view, epochs, content_hash = by_method["copy"].fetch(record_id)
            try:
                assert (epochs, content_hash) == (payload.epochs, payload.content_hash), method
                decode_and_verify(codec, view, payload, StageClock())
                if fmt != "jsonb":
                    assert bytes(view) == bytes(payload.data), method
            finally:
                cursor.close()
    finally:
        for store in by_method.values():
            store.close()
    as_text = "payload::text" if fmt == "jsonb" else "payload"
    stored = db.execute(f'SELECT id, {as_text}, epochs, content_hash FROM "{table_name}" ORDER BY id').fetchall()
    assert [row[0] for row in stored] == sorted(ids.values())
    assert len({tuple(row[1:]) for row in stored}) == 1, "insert and copy rows differ"
    if fmt != "jsonb":
        assert stored[0][1] == bytes(payload.data)


def test_a_failed_copy_is_recorded_and_the_next_iteration_still_succeeds(
    db: psycopg.Connection, server_dsn: str, table_name: str, run_cli, tmp_path
) -> None:
    prepare_table(db, TableSql(table_name, "BYTEA"), drop=True, truncate=False)
    db.execute(f'ALTER TABLE "{table_name}" ADD CONSTRAINT no_2000 CHECK (epochs <> 2000)')
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--write-method", "copy", "--memory-trace", "off",
                     "--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "iteration_results.csv")
    assert [(r["epochs"], r["status"]) for r in rows] == [("1000", "OK"), ("2000", "ERROR"), ("3000", "OK")]
    assert "23514" in rows[1]["error"]  # check_violation
    report = (tmp_path / "report.md").read_text()
    assert "| `--write-method` | copy |" in report
    assert "Write method `copy`: one binary `COPY" in report
