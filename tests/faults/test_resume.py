"""--resume continues a ramp whose CSV already holds finished iterations, after checking that it
is the same ramp; the rest is appended and the report covers the whole ramp."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest
from helpers import ASYNC, RampMode, install_hooks, read_csv
from psycopg import sql

from pgstress.cli import parse_config
from pgstress.output.run_record import ramp_identity, recorded_identity, run_record_path, server_identity
from pgstress.rows import SyncRow
from pgstress.target import LIBPQ_VARIABLES

RAMP = ["--start-epochs", "1000", "--end-epochs", "4000", "--step-epochs", "1000", "--memory-trace", "off"]

UNREACHABLE = "host=127.0.0.1 port=1"


def _interrupt() -> None:
    raise KeyboardInterrupt  # what Ctrl-C (or SIGTERM) raises in the run


def _epochs_in_table(db: psycopg.Connection, table: str) -> list[int]:
    query = sql.SQL("SELECT epochs FROM {} ORDER BY id").format(sql.Identifier(table))
    return [epochs for (epochs,) in db.execute(query)]


def _interrupted_run(run_cli, hooks, argv: list[str], csv: Path) -> bytes:
    hooks.before[3] = _interrupt
    first = run_cli(*argv)
    hooks.before.clear()
    assert first.code == 130, first.err
    assert [row["iter"] for row in read_csv(csv)] == ["1", "2"]
    return csv.read_bytes()


@pytest.mark.parametrize("keep", [False, True], ids=["truncating", "keeping data"])
def test_resume_finishes_an_interrupted_ramp(server_dsn: str, db: psycopg.Connection, table_name: str,
                                             ramp_mode: RampMode, hooks, run_cli, tmp_path: Path, keep: bool) -> None:
    csv = ramp_mode.csv_path(tmp_path)
    argv = [*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, *RAMP]
    argv += ["--keep-data-between-iterations"] if keep else []
    earlier = _interrupted_run(run_cli, hooks, argv, csv)
    assert json.loads(run_record_path(csv).read_text())["ramp"]["seed"] == 42

    result = run_cli(*argv, "--resume")

    assert result.code == 0, result.err
    assert csv.read_bytes().startswith(earlier)  # the earlier rows are untouched, the rest appended
    rows = read_csv(csv)
    assert [(row["iter"], row["epochs"]) for row in rows] == [("1", "1000"), ("2", "2000"), ("3", "3000"),
                                                              ("4", "4000")]
    for row in rows:
        ramp_mode.assert_intact_ok(row)
    assert ramp_mode.progress(3, 4, 3000, "OK") in result.out
    assert ramp_mode.progress(2, 4, 2000, "OK") not in result.out  # iterations 1-2 were not run again
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "INTERRUPTED" not in report
    assert "## Resumed run" in report and "iterations run now: 3-4" in report
    table_lines = [line for line in report.split("## Complete comparison table")[1].splitlines()
                   if line.startswith("| ") and "epochs" not in line]
    assert [line.split("|")[1].strip() for line in table_lines[:4]] == ["1", "2", "3", "4"]
    assert "4 of 4 planned iterations ran" in report
    each = ramp_mode.concurrency
    assert _epochs_in_table(db, table_name) == ([1000] * each + [2000] * each + [3000] * each + [4000] * each
                                                if keep else [4000] * each)


@pytest.mark.parametrize(("option", "value"), [("--seed", "7"), ("--payload-format", "bson"),
                                               ("--end-epochs", "5000"), ("--keep-data-between-iterations", None),
                                               ("--async-concurrency", "3")])
def test_resume_refuses_another_ramp(server_dsn: str, db: psycopg.Connection, table_name: str, ramp_mode: RampMode,
                                     hooks, run_cli, tmp_path: Path, option: str, value: str | None) -> None:
    csv = ramp_mode.csv_path(tmp_path)
    argv = [*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, *RAMP]
    earlier = _interrupted_run(run_cli, hooks, argv, csv)
    report_before = (tmp_path / "report.md").read_bytes()
    table_before = _epochs_in_table(db, table_name)

    changed = [*argv, option] + ([value] if value else [])
    if option in argv:
        changed = [*argv[: argv.index(option)], option, value, *argv[argv.index(option) + 2:]]
    result = run_cli(*changed, "--resume")

    assert result.code == 2
    lines = result.err.splitlines()
    assert len(lines) == 1 and "holds a different ramp" in lines[0] and option in lines[0], result.err
    assert csv.read_bytes() == earlier
    assert (tmp_path / "report.md").read_bytes() == report_before
    assert _epochs_in_table(db, table_name) == table_before


def test_resume_needs_the_csv_and_its_run_record(ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    csv = ramp_mode.csv_path(tmp_path)
    missing = run_cli(*ramp_mode.argv(), *RAMP, "--dsn", "host=127.0.0.1 port=1", "--resume")
    assert missing.code == 2 and "does not exist, so there is nothing to resume" in missing.err

    csv.write_text("iter,epochs,status\n", encoding="utf-8")
    unrecorded = run_cli(*ramp_mode.argv(), *RAMP, "--dsn", "host=127.0.0.1 port=1", "--resume")
    assert unrecorded.code == 2 and ".run.json is missing" in unrecorded.err
    assert len(unrecorded.err.splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == [csv.name]


def test_resume_of_a_finished_ramp_runs_nothing_and_rewrites_the_report(
        server_dsn: str, db: psycopg.Connection, table_name: str, ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    csv = ramp_mode.csv_path(tmp_path)
    argv = [*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, *RAMP]
    assert run_cli(*argv).code == 0
    finished = csv.read_bytes()
    (tmp_path / "report.md").unlink()

    result = run_cli(*argv, "--resume")

    assert result.code == 0, result.err
    assert csv.read_bytes() == finished
    assert "epochs OK" not in result.out  # no iteration ran
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "iterations run now: none" in report and "4 of 4 planned iterations ran" in report


def test_resumed_async_ramp_guards_memory_from_the_earlier_levels(server_dsn: str, db: psycopg.Connection,
                                                                  table_name: str, run_cli, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory guard of a resumed fan-out extrapolates from the levels read back from the CSV: with a
    tiny --max-client-memory-mb (not part of the ramp's identity) the first level it would run is refused."""
    hooks = install_hooks(monkeypatch.setattr)
    csv = ASYNC.csv_path(tmp_path)
    # bson (~320 B/epoch): the encoded bytes alone put level 3 over 1 MiB, whatever the RSS history of
    # this test process (a long pytest run may show no resident growth at all for these small levels).
    argv = [*ASYNC.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson", *RAMP]
    earlier = _interrupted_run(run_cli, hooks, argv, csv)

    result = run_cli(*argv, "--resume", "--max-client-memory-mb", "1")

    assert result.code == 0, result.err
    assert csv.read_bytes().startswith(earlier)
    rows = read_csv(csv)
    assert [(row["iter"], row["status"]) for row in rows] == [("1", "OK"), ("2", "OK"), ("3", "CLIENT_MEMORY")]
    assert "exceeds --max-client-memory-mb 1; level not run, ramp stopped" in rows[2]["error"]
    assert float(rows[2]["estimated_client_mb"]) > 1 and rows[2]["write_s"] == ""
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "was stopped by the client memory guard" in report and "iterations run now: 3-4" in report


# --- damaged input -----------------------------------------------------------------------------------------------

def test_a_cut_last_line_is_dropped_and_its_iteration_runs_again(server_dsn: str, db: psycopg.Connection,
                                                                 table_name: str, ramp_mode: RampMode, hooks, run_cli,
                                                                 tmp_path: Path) -> None:
    """The run died while writing row 2 (what a kill -9 or a power cut can leave): the line without its end is
    dropped, the notice says so in one line, iteration 2 runs again, and nothing is fused onto the cut line."""
    csv = ramp_mode.csv_path(tmp_path)
    argv = [*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, *RAMP]
    whole = _interrupted_run(run_cli, hooks, argv, csv)
    first_row_end = whole.index(b"\r\n", whole.index(b"\r\n") + 2) + 2
    cut = whole[:first_row_end] + whole[first_row_end:-20]  # row 2 loses its last 20 bytes and its line end
    csv.write_bytes(cut)

    result = run_cli(*argv, "--resume")

    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        f"pgstress: --resume: the last line of {csv} was cut off ({len(cut) - first_row_end} bytes without a line"
        " end); it is dropped, and the ramp goes on after iteration 1"]
    assert csv.read_bytes().startswith(whole[:first_row_end])
    rows = read_csv(csv)
    assert [(row["iter"], row["epochs"]) for row in rows] == [("1", "1000"), ("2", "2000"), ("3", "3000"),
                                                              ("4", "4000")]
    for row in rows:
        ramp_mode.assert_intact_ok(row)


DAMAGED_ROWS = {
    "a short row in the middle": lambda lines: [lines[0], lines[1][:30], lines[2]],
    "a row fused onto another": lambda lines: [lines[0], lines[1][:-5] + lines[2]],
    "a value that is no number": lambda lines: [lines[0], "x" + lines[1], lines[2]],
    "an unknown status": lambda lines: [lines[0], lines[1].replace(",OK,", ",FINE,", 1), lines[2]],
    "another header": lambda lines: ["iter,epochs,status", *lines[1:]],
    "a NaN time": lambda lines: [lines[0], _cell(lines[1], "write_s", "nan"), lines[2]],
    "a negative time": lambda lines: [lines[0], lines[1], _cell(lines[2], "read_s", "-1.0")],
    "an infinite size": lambda lines: [lines[0], _cell(lines[1], "db_payload_mb", "inf"), lines[2]],
    "a size of zero epochs": lambda lines: [lines[0], _cell(lines[1], "epochs", "0"), lines[2]],
}


def _cell(line: str, column: str, value: str) -> str:
    cells = line.split(",")
    cells[SyncRow.COLUMNS.index(column)] = value
    return ",".join(cells)


@pytest.mark.parametrize("damage", DAMAGED_ROWS, ids=DAMAGED_ROWS)
def test_a_damaged_csv_is_refused(damage: str, run_cli, tmp_path: Path) -> None:
    """Damage anywhere but a cut last line: exit 2, one line saying where, nothing written."""
    csv = tmp_path / "iteration_results.csv"
    header = ",".join(SyncRow.COLUMNS)
    row = ",".join("OK" if name == "status" else "" if name in ("error", "format") else "1"
                   for name in SyncRow.COLUMNS)
    lines = [header, row, row.replace("1,1,", "2,1,", 1)]
    csv.write_bytes(("\r\n".join(DAMAGED_ROWS[damage](lines)) + "\r\n").encode())
    (tmp_path / "iteration_results.csv.run.json").write_text(json.dumps(
        {"pgstress": "0.1.0",
         "ramp": ramp_identity(parse_config(["--dsn", UNREACHABLE, *RAMP]), server_identity(UNREACHABLE))}))
    before = sorted((path.name, path.read_bytes()) for path in tmp_path.iterdir())

    result = run_cli("--dsn", "host=127.0.0.1 port=1", *RAMP, "--resume")

    assert result.code == 2, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pgstress: error: --resume: {csv} "), result.err
    assert lines[0].endswith("refusing to continue it (run without --resume)") or "not this ramp's" in lines[0]
    assert sorted((path.name, path.read_bytes()) for path in tmp_path.iterdir()) == before


def test_a_csv_of_an_earlier_pgstress_without_the_appended_columns_is_refused(run_cli, tmp_path: Path) -> None:
    """A sync CSV written before `db_table_mb` was appended: appending rows of more columns would break it."""
    csv = tmp_path / "iteration_results.csv"
    older = list(SyncRow.COLUMNS[:SyncRow.COLUMNS.index("db_table_mb")])  # everything before the appended ones
    row = ",".join("OK" if name == "status" else "" if name in ("error", "format") else "1" for name in older)
    csv.write_bytes(("\r\n".join([",".join(older), row]) + "\r\n").encode())
    run_record_path(csv).write_text(json.dumps(
        {"pgstress": "0.1.0",
         "ramp": ramp_identity(parse_config(["--dsn", UNREACHABLE, *RAMP]), server_identity(UNREACHABLE))}))
    before = sorted((path.name, path.read_bytes()) for path in tmp_path.iterdir())

    result = run_cli("--dsn", UNREACHABLE, *RAMP, "--resume")

    assert result.code == 2, result.err
    assert result.err.splitlines() == [
        f"pgstress: error: --resume: {csv} was written by an earlier pgstress, without the column(s)"
        f" {', '.join(SyncRow.COLUMNS[SyncRow.COLUMNS.index('db_table_mb'):])} that this one appends; refusing to"
        " continue it (run without --resume)"]
    assert sorted((path.name, path.read_bytes()) for path in tmp_path.iterdir()) == before


RUN_RECORDS = {
    "not JSON": b"{\"ramp\": ",
    "a list": b"[1, 2, 3]",
    "a string": b"\"ramp\"",
    "ramp not an object": b"{\"ramp\": 5}",
    "nested too deep": b"[" * 100_000 + b"]" * 100_000,
    "not UTF-8": b"\xff\xfe\x00garbage",
    "empty": b"",
}


@pytest.mark.parametrize("record", RUN_RECORDS, ids=RUN_RECORDS)
def test_a_malformed_run_record_is_refused(record: str, run_cli, tmp_path: Path) -> None:
    csv = tmp_path / "iteration_results.csv"
    csv.write_text(",".join(SyncRow.COLUMNS) + "\r\n", encoding="utf-8")
    run_record_path(csv).write_bytes(RUN_RECORDS[record])

    result = run_cli("--dsn", "host=127.0.0.1 port=1", *RAMP, "--resume")

    assert result.code == 2, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1 and f"{run_record_path(csv)} is not a pgstress run record" in lines[0], result.err
    assert "Traceback" not in result.err


def test_a_run_record_that_is_a_directory_is_refused(run_cli, tmp_path: Path) -> None:
    csv = tmp_path / "iteration_results.csv"
    csv.write_text(",".join(SyncRow.COLUMNS) + "\r\n", encoding="utf-8")
    run_record_path(csv).mkdir()
    result = run_cli("--dsn", "host=127.0.0.1 port=1", *RAMP, "--resume")
    assert result.code == 2 and len(result.err.splitlines()) == 1, result.err


def _identity(**changes: object) -> bytes:
    ramp = {**ramp_identity(parse_config(["--dsn", UNREACHABLE, *RAMP]), server_identity(UNREACHABLE)), **changes}
    return json.dumps({"pgstress": "0.1.0", "ramp": ramp}).encode()


@pytest.mark.parametrize("changes", [{"repeat": True}, {"seed": 4.2}, {"start_epochs": "1000"}],
                         ids=["repeat true", "a float seed", "a text size"])
def test_a_run_record_of_another_type_is_refused(changes: dict[str, object], run_cli, tmp_path: Path) -> None:
    """`"repeat": true` equals 1 in Python: it passed as the same ramp. A value of a type pgstress never records
    is no run record."""
    csv = tmp_path / "iteration_results.csv"
    csv.write_text(",".join(SyncRow.COLUMNS) + "\r\n", encoding="utf-8")
    run_record_path(csv).write_bytes(_identity(**changes))
    result = run_cli("--dsn", UNREACHABLE, *RAMP, "--resume")
    assert result.code == 2, result.err
    (name, value), = changes.items()
    assert result.err.splitlines() == [f"pgstress: error: --resume: {run_record_path(csv)} is not a pgstress run"
                                       f" record ({name} is {value!r}, not a whole number)"]


def test_a_csv_that_is_a_pipe_is_refused_without_waiting(run_cli, tmp_path: Path) -> None:
    csv = tmp_path / "iteration_results.csv"
    os.mkfifo(csv)
    run_record_path(csv).write_bytes(_identity())
    result = run_cli("--dsn", "host=127.0.0.1 port=1", *RAMP, "--resume")
    assert result.code == 2, result.err
    assert result.err.splitlines() == [f"pgstress: error: argument --results-csv: {csv} (the CSV) is not a regular"
                                       " file (a device, pipe or socket)"]


def test_a_run_record_that_is_a_pipe_is_refused_without_waiting(run_cli, tmp_path: Path) -> None:
    csv = tmp_path / "iteration_results.csv"
    csv.write_text(",".join(SyncRow.COLUMNS) + "\r\n", encoding="utf-8")
    os.mkfifo(run_record_path(csv))
    result = run_cli("--dsn", "host=127.0.0.1 port=1", *RAMP, "--resume")
    assert result.code == 2, result.err
    assert result.err.splitlines() == [f"pgstress: error: --resume: {run_record_path(csv)} is not a pgstress run"
                                       " record (is not a regular file (a device, pipe or socket))"]


def test_resume_keeps_the_standby_setup_and_refuses_another(run_cli, hooks, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded standby is part of the ramp: resumed with it again the ramp finishes, its rows measured on the
    standby; resumed with it made synchronous, one line and exit 2, the CSV untouched."""
    for name in ("PG_DSN", *LIBPQ_VARIABLES):  # the embedded server, which --standby embedded clones
        monkeypatch.delenv(name, raising=False)
    argv = ["--standby", "embedded", *RAMP]
    csv = tmp_path / "iteration_results.csv"
    earlier = _interrupted_run(run_cli, hooks, argv, csv)
    assert json.loads(run_record_path(csv).read_text())["ramp"]["standby"] == "embedded"

    refused = run_cli(*argv, "--synchronous-standby", "--resume")

    assert refused.code == 2, refused.err
    assert refused.err.splitlines() == [f"pgstress: error: --resume: {csv} holds a different ramp:"
                                        " --synchronous-standby False there, True now"]
    assert csv.read_bytes() == earlier

    resumed = run_cli(*argv, "--resume")

    assert resumed.code == 0, resumed.err
    rows = read_csv(csv)
    assert [row["iter"] for row in rows] == ["1", "2", "3", "4"]
    assert [row["standby_status"] for row in rows] == ["OK"] * 4
    assert all(float(row["standby_read_s"]) > 0 for row in rows)


STANDBY_A = "host=/standby-a port=5433"
A = ["--standby-dsn", STANDBY_A]
STANDBY_CHANGES = {
    "a standby then, none now": (A, [], f"--standby-dsn ['{STANDBY_A}'] there, [] now"),
    "none then, a standby now": ([], A, f"--standby-dsn [] there, ['{STANDBY_A}'] now"),
    "another standby now": (A, ["--standby-dsn", "host=/standby-b port=5433 password=n0t-shown-77"],
                            f"--standby-dsn ['{STANDBY_A}'] there, ['password=*** host=/standby-b port=5433'] now"),
    "another replay timeout": ([*A, "--standby-replay-timeout", "5"], A,
                               "--standby-replay-timeout 5 there, None now"),
}


@pytest.mark.parametrize("change", STANDBY_CHANGES, ids=STANDBY_CHANGES)
def test_resume_refuses_other_standbys_before_connecting(change: str, run_cli, tmp_path: Path) -> None:
    then, now, difference = STANDBY_CHANGES[change]
    csv = tmp_path / "iteration_results.csv"
    csv.write_text(",".join(SyncRow.COLUMNS) + "\r\n", encoding="utf-8")
    config = parse_config(["--dsn", UNREACHABLE, *RAMP, *then])
    run_record_path(csv).write_text(json.dumps(
        {"pgstress": "0.1.0", "ramp": recorded_identity(ramp_identity(config, server_identity(UNREACHABLE)))}))
    before = sorted((path.name, path.read_bytes()) for path in tmp_path.iterdir())

    result = run_cli("--dsn", UNREACHABLE, *RAMP, *now, "--resume")

    assert result.code == 2, result.err
    assert result.err.splitlines() == [f"pgstress: error: --resume: {csv} holds a different ramp: {difference}"]
    assert sorted((path.name, path.read_bytes()) for path in tmp_path.iterdir()) == before


def test_a_run_without_standbys_writes_the_run_record_it_always_wrote() -> None:
    identity = recorded_identity(ramp_identity(parse_config(["--dsn", UNREACHABLE, *RAMP]),
                                               server_identity(UNREACHABLE)))
    assert not {"standby", "standby_dsn", "synchronous_standby"} & set(identity)
    with_standby = recorded_identity(ramp_identity(parse_config(["--dsn", UNREACHABLE, *RAMP, "--standby-dsn",
                                                                 "host=/s password=pw"]), server_identity(UNREACHABLE)))
    assert with_standby["standby_dsn"] == ["password=*** host=/s"]
    assert "standby" not in with_standby and "synchronous_standby" not in with_standby
