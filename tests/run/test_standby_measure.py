"""What each level costs a standby, in both modes, on the embedded server and a streaming standby of it (and on the
PostgreSQL 15 pair .ci/run starts, when it exports its DSNs): the replay time is measured, the record read from the
standby is verified, and a standby that stops mid-ramp is a status of its own while the ramp goes on."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import TINY_RAMP, RampMode, read_csv, read_run_json
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgstress.cli import parse_config
from pgstress.config import STANDBY_REPLAY_TIMEOUT_S, replay_timeout
from pgstress.db import standby as standby_module
from pgstress.db.psycopg_adapter import SyncDatabase
from pgstress.db.schema import TableSql, prepare_table
from pgstress.db.server import embedded_server
from pgstress.db.standby import check_standby, embedded_standby
from pgstress.modes import MODES
from pgstress.rows import CONNECTION_LOST, OK, STANDBY_COLUMNS, TIMEOUT, VERIFY_FAILED, SyncRow
from pgstress.run.measure import StageClock
from pgstress.run.record import RecordWork, encode_record, expected_of
from pgstress.run.standby_measure import StandbyLink, StandbyMeasure, StandbyProbe, fill_standbys
from pgstress.target import ServerInfo, StandbyInfo
from pgstress.workload.payloads import get_codec


@pytest.fixture(scope="module")
def primary() -> Iterator[ServerInfo]:
    """An embedded server of this module's own, to clone: the shared one may not stream to a standby for others."""
    with embedded_server() as info:
        yield info


@pytest.fixture(scope="module")
def standby(primary: ServerInfo) -> Iterator[StandbyInfo]:
    with embedded_standby(primary) as info:
        yield info


# The PostgreSQL 15 primary and standby .ci/pg15_pair starts (Debian's packages), when .ci/run exports them.
PG15_PAIR = (os.environ.get("PGSTRESS_TEST_PG15_PRIMARY_DSN"), os.environ.get("PGSTRESS_TEST_PG15_STANDBY_DSN"))
PAIR_NAMES = ["embedded"] + (["pg15"] if all(PG15_PAIR) else [])


@pytest.fixture(params=PAIR_NAMES)
def pair(request: pytest.FixtureRequest) -> tuple[str, StandbyInfo]:
    """(primary DSN, its standby) of each pair the suite can reach."""
    if request.param == "embedded":
        primary: ServerInfo = request.getfixturevalue("primary")
        return primary.dsn, request.getfixturevalue("standby")
    primary_dsn, standby_dsn = PG15_PAIR
    assert primary_dsn and standby_dsn
    return primary_dsn, check_standby(primary_dsn, standby_dsn, "standby 1")


def floats(rows: list[dict[str, str]], column: str) -> list[float]:
    return [float(row[column]) for row in rows]


def test_replay_is_measured_grows_with_the_record_and_the_standby_read_verifies(
        run_cli, ramp_mode: RampMode, pair: tuple[str, StandbyInfo], table_name: str, tmp_path: Path) -> None:
    primary_dsn, standby = pair
    # Sync's record grows 81-fold, for its replay to grow with it; a fan-out's replay need not grow (below), and
    # its 21-fold growth is enough to show the WAL measured with the level
    large_epochs = 105_000 if ramp_mode.fans_out else 405_000
    result = run_cli(*ramp_mode.argv(), "--dsn", primary_dsn, "--standby-dsn", standby.dsn, "--table", table_name,
                     "--payload-format", "bson", "--start-epochs", "5000", "--end-epochs", str(large_epochs),
                     "--step-epochs", str(large_epochs - 5000), "--memory-trace", "off", "--drop-table",
                     # the guard learns the machine's memory from the tiny first level, which other processes on a
                     # shared machine move by more than it uses; the standby is what is measured here
                     *(["--max-client-memory-mb", "1000000"] if ramp_mode.fans_out else []))
    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert list(rows[0])[-len(STANDBY_COLUMNS):] == list(STANDBY_COLUMNS)  # appended after every other column
    for row in rows:
        ramp_mode.assert_intact_ok(row)
        assert row["standby_status"] == OK and row["standby_error"] == "" and row["standby_each"] == ""
        assert float(row["standby_read_s"]) > 0  # the standby served every record, decoded and verified
        assert float(row["standby_lag_start_mb"]) >= 0
    small, large = floats(rows, "standby_replay_s")
    assert small > 0 and large > 0
    assert floats(rows, "wal_mb")[1] > (large_epochs // 5000) / 2 * floats(rows, "wal_mb")[0]
    if not ramp_mode.fans_out:
        # One record's last WAL (up to wal_buffers' worth) is flushed by its commit, and is what the standby still
        # has to receive and replay afterwards. A fan-out's level ends with its last commit, and the standby
        # replays the others' WAL while that one is written: there it need not grow.
        assert small < large


def test_the_standby_reads_and_verifies_the_chunked_layouts_records(run_cli, ramp_mode: RampMode,
                                                                     pair: tuple[str, StandbyInfo], table_name: str,
                                                                     tmp_path: Path) -> None:
    primary_dsn, standby = pair
    result = run_cli(*ramp_mode.argv(), "--dsn", primary_dsn, "--standby-dsn", standby.dsn, "--table", table_name,
                     "--layout", "chunked", "--chunk-epochs", "700", "--access", "append", "--drop-table", *TINY_RAMP)
    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    for row in rows:
        ramp_mode.assert_intact_ok(row)
        assert (row["layout"], row["standby_status"], row["standby_error"]) == ("chunked", OK, "")
        assert float(row["standby_read_s"]) > 0  # every record's chunks served by the standby, decoded and verified


@pytest.mark.parametrize("payload_format", ["jsonb", "pgarrays"])
def test_the_standby_verifies_a_templated_record_by_the_runs_own_shape(
        run_cli, payload_format: str, primary: ServerInfo, standby: StandbyInfo, table_name: str,
        tmp_path: Path) -> None:
    """jsonb is verified by its decoded values, so against the template's keys; pgarrays' columns are the
    template's keys."""
    template = tmp_path / "sample.jsonl"
    template.write_text('{"trade": 1, "pnl": 0.25, "won": true, "side": "long", "note": null}\n'
                        '{"trade": 9, "pnl": -1.5, "won": false, "side": "short", "note": "stop"}\n', encoding="utf-8")
    result = run_cli("--dsn", primary.dsn, "--standby-dsn", standby.dsn, "--table", table_name, "--payload-format",
                     payload_format, "--epoch-template", str(template), *TINY_RAMP, "--drop-table")
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "iteration_results.csv")
    assert [(row["status"], row["standby_status"], row["standby_error"]) for row in rows] == [("OK", OK, "")] * 3


def test_a_run_without_standbys_has_no_standby_columns(run_cli, ramp_mode: RampMode, primary: ServerInfo,
                                                       table_name: str, tmp_path: Path) -> None:
    result = run_cli(*ramp_mode.argv(), "--dsn", primary.dsn, "--table", table_name, *TINY_RAMP)
    assert result.code == 0, result.err
    header = list(read_csv(ramp_mode.csv_path(tmp_path))[0])
    assert header == list(MODES[ramp_mode.name].run.row_type.COLUMNS)


def _stop(info: StandbyInfo) -> None:
    data = conninfo_to_dict(info.dsn)["host"]
    standby_module._run([str(standby_module._bin_dir() / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop"],
                        standby_module._system_user(), "stop the standby")


def test_a_standby_stopped_mid_ramp_is_its_own_status_and_the_ramp_finishes(
        run_cli, hooks, ramp_mode: RampMode, primary: ServerInfo, table_name: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, short_tmp: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    with embedded_standby(primary) as doomed:
        hooks.before[2] = lambda: _stop(doomed)
        result = run_cli(*ramp_mode.argv(), "--dsn", primary.dsn, "--standby-dsn", doomed.dsn, "--table", table_name,
                         *TINY_RAMP)
    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert len(rows) == 3  # the ramp finished
    for row in rows:
        ramp_mode.assert_intact_ok(row)  # the primary's measurements are whole
    assert [row["standby_status"] for row in rows] == [OK, CONNECTION_LOST, CONNECTION_LOST]
    assert rows[0]["standby_read_s"] != "" and rows[1]["standby_replay_s"] == rows[1]["standby_read_s"] == ""
    assert rows[1]["standby_error"].startswith("standby 1: ") and "\n" not in rows[1]["standby_error"]
    assert [path for path in short_tmp.iterdir() if path.name.startswith("pgstress-")] == []


def test_a_record_the_standby_serves_differently_is_verify_failed(pair: tuple[str, StandbyInfo],
                                                                   table_name: str) -> None:
    primary_dsn, standby = pair
    codec = get_codec("ndjson_zstd")
    with psycopg.connect(primary_dsn, autocommit=True) as conn:
        table = prepare_table(conn, TableSql(table_name, codec.column_type), drop=True, truncate=False)
        writer = SyncDatabase(primary_dsn, table, 0)
        try:
            payload = encode_record(codec, 2000, 42, (1,), StageClock())
            written = RecordWork((1,), record_id=writer.write(payload), expected=expected_of(payload))
            other = encode_record(codec, 2000, 42, (2,), StageClock())  # another record's hashes
            wrong = RecordWork((1,), record_id=written.record_id, expected=expected_of(other))
        finally:
            writer.close()
        probe = StandbyProbe([StandbyLink(standby, table, codec, 0)], primary_dsn, ())
        try:
            measures = [StandbyMeasure(standby.name)]
            assert written.record_id is not None
            probe.wait_replay(measures, written_at=time.perf_counter(), record_ids=[written.record_id])
            assert measures[0].replay_s is not None
            probe.read(measures, [written])
            assert measures[0].status == OK and measures[0].read_s is not None
            measures = [StandbyMeasure(standby.name, replay_s=0.0)]
            probe.read(measures, [wrong])
            assert measures[0].status == VERIFY_FAILED and measures[0].read_s is None
            assert f"{standby.name}: VerifyError" in measures[0].error
        finally:
            probe.close()
            conn.execute(f'DROP TABLE "{table_name}"')


def test_several_standbys_keep_the_worst_in_the_columns_and_each_in_standby_each() -> None:
    row = SyncRow(iter=1, epochs=1000)
    fill_standbys(row, [StandbyMeasure("standby 1", lag_start_bytes=1 << 20, replay_s=0.5, read_s=0.25),
                        StandbyMeasure("standby 2", status=CONNECTION_LOST, error="standby 2: gone",
                                       lag_start_bytes=3 << 20)])
    assert (row.standby_status, row.standby_error) == (CONNECTION_LOST, "standby 2: gone")
    assert (row.standby_replay_s, row.standby_read_s, row.standby_lag_start_mb) == (0.5, 0.25, 3.0)
    assert row.standby_each == ("standby 1: OK replay_s=0.5000 read_s=0.2500 lag_start_mb=1.000;"
                                " standby 2: CONNECTION_LOST replay_s= read_s= lag_start_mb=3.000")
    assert row.status == OK and row.error == ""  # the primary's own status is untouched


def test_a_write_the_standby_never_shows_is_timeout_after_the_replay_timeout(pair: tuple[str, StandbyInfo],
                                                                             table_name: str) -> None:
    primary_dsn, standby = pair
    codec = get_codec("ndjson_zstd")
    # a table the primary never created: the standby can never show a record of it
    probe = StandbyProbe([StandbyLink(standby, TableSql(table_name, codec.column_type), codec, 0)], primary_dsn, (),
                         replay_timeout_s=0.2)
    try:
        measures = [StandbyMeasure(standby.name)]
        started = time.perf_counter()
        probe.wait_replay(measures, written_at=started, record_ids=[1])
        waited = time.perf_counter() - started
    finally:
        probe.close()
    assert measures[0].status == TIMEOUT and measures[0].replay_s is None
    assert measures[0].error == (f"{standby.name}: had not replayed the write 0.2 s after its commit"
                                 " (--standby-replay-timeout)")
    assert 0.2 <= waited < 30  # it gave up at the timeout, not at the 60 s default


def test_the_replay_timeout_is_60_s_unless_given() -> None:
    assert replay_timeout(parse_config(["--standby-dsn", "host=/s"])) == STANDBY_REPLAY_TIMEOUT_S == 60
    assert replay_timeout(parse_config(["--standby-dsn", "host=/s", "--standby-replay-timeout", "5"])) == 5



SECRET = "n0t-the-standby-pw-52"  # trust auth ignores it; it must still never be written anywhere


def test_a_standby_password_is_nowhere_and_the_json_record_has_the_standby_columns(
        run_cli, primary: ServerInfo, standby: StandbyInfo, table_name: str, tmp_path: Path) -> None:
    given = make_conninfo(standby.dsn, password=SECRET)
    record = tmp_path / "run.json"
    result = run_cli("--dsn", primary.dsn, "--standby-dsn", given, "--table", table_name, *TINY_RAMP,
                     "--export-json", str(record))
    assert result.code == 0, result.err
    written = [path.read_text(encoding="utf-8") for path in tmp_path.iterdir() if path.is_file()]
    assert len(written) >= 4  # the CSV, its run record, the report, the JSON record
    assert all(SECRET not in text for text in [*written, result.out, result.err])
    assert "password=***" in (tmp_path / "report.md").read_text(encoding="utf-8")
    rows = read_run_json(record)["ramps"][0]["rows"]
    assert [row["standby_status"] for row in rows] == [OK] * 3
    assert all(row["standby_read_s"] > 0 for row in rows)
