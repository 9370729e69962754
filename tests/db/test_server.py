"""Where the server comes from: --dsn, PG_DSN, libpq's own PG* variables, else an embedded PostgreSQL that is
started (retried once), used, stopped and removed, also on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import psycopg
import psycopg.conninfo
import pytest
from helpers import REPO, interrupt_after_two_rows, read_csv

from pgstress.db.server import ServerUnavailable, _start_embedded, embedded_server
from pgstress.target import LIBPQ_VARIABLES, libpq_environment, resolve_dsn

SECRET = "n0t-the-real-pw-71"  # trust/peer auth ignores it; it must still never be printed
_KEYWORD_TO_VARIABLE = {"host": "PGHOST", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("PG_DSN", raising=False)
    for name in LIBPQ_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_order_is_dsn_then_pg_dsn_then_libpq_variables_then_embedded(clean_env: pytest.MonkeyPatch) -> None:
    assert resolve_dsn(None) == (None, "embedded")
    clean_env.setenv("PGSERVICE", "mydb")
    assert resolve_dsn(None) == ("", "libpq environment")
    clean_env.setenv("PG_DSN", "host=elsewhere")
    assert resolve_dsn(None) == ("host=elsewhere", "PG_DSN")
    assert resolve_dsn("host=given") == ("host=given", "--dsn")


def test_the_password_variable_is_masked(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PGHOST", "/run/pg")
    clean_env.setenv("PGPASSWORD", SECRET)
    assert libpq_environment() == (("PGHOST", "/run/pg"), ("PGPASSWORD", "***"))


def test_a_run_connects_through_libpq_variables_and_says_so(run_cli, server_dsn, db, table_name,
                                                            clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    params = psycopg.conninfo.conninfo_to_dict(server_dsn)
    expected = []
    for keyword, variable in _KEYWORD_TO_VARIABLE.items():
        if params.get(keyword):
            clean_env.setenv(variable, str(params[keyword]))
            expected.append(f"{variable}={params[keyword]}")
    clean_env.setenv("PGPASSWORD", SECRET)
    order = {name: i for i, name in enumerate(LIBPQ_VARIABLES)}
    expected = sorted([*expected, "PGPASSWORD=***"], key=lambda item: order[item.split("=")[0]])

    result = run_cli("--table", table_name, "--quiet", "--no-charts",
                     "--start-epochs", "1000", "--end-epochs", "2000", "--step-epochs", "1000")
    assert result.code == 0, result.err
    report = (tmp_path / "report.md").read_text()
    assert f"Connection: libpq environment variables ({', '.join(expected)}); no --dsn or PG_DSN given" in report
    assert "- Kind: user-provided server" in report
    assert db.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (1,)  # it wrote where libpq pointed
    for text in (result.out, result.err, report, (tmp_path / "iteration_results.csv").read_text()):
        assert SECRET not in text


def test_embedded_start_retries_once_then_reports_one_line(tmp_path: Path) -> None:
    calls = []

    def flaky(pgdata: Path, cleanup_mode: str) -> str:
        calls.append(pgdata.name)
        if len(calls) == 1:
            raise RuntimeError("initdb exited 1")
        return "server"

    assert _start_embedded(flaky, tmp_path) == "server"
    assert calls == ["pgdata", "pgdata-retry"]

    def broken(pgdata: Path, cleanup_mode: str) -> str:
        raise RuntimeError("initdb exited 1")

    with pytest.raises(ServerUnavailable, match="could not start the embedded PostgreSQL: initdb exited 1"):
        _start_embedded(broken, tmp_path)


def user_env(short_tmp: Path) -> dict[str, str]:
    """The user's environment with no DSN; TMPDIR puts the embedded data directory under short_tmp."""
    env = {k: v for k, v in os.environ.items() if k != "PG_DSN" and k not in LIBPQ_VARIABLES}
    env["TMPDIR"] = str(short_tmp)
    return env


def postgres_processes_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "postgres" in (proc.info["name"] or "") and str(path) in cmdline:
            found.append(proc)
    return found


def test_no_dsn_runs_on_an_embedded_server_and_removes_it(tmp_path: Path, short_tmp: Path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "main.py", "--start-epochs", "1000", "--end-epochs", "2000", "--step-epochs", "1000",
            "--create-dirs", "--results-csv", str(out / "r.csv"), "--report-md", str(out / "r.md")]  # fmt: skip
    done = subprocess.run(argv, cwd=REPO, env=user_env(short_tmp), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert [r["status"] for r in read_csv(out / "r.csv")] == ["OK", "OK"]
    report = (out / "r.md").read_text()
    assert "embedded throwaway server" in report
    assert "Version: PostgreSQL 18" in report
    assert not postgres_processes_under(short_tmp)
    assert not [p for p in short_tmp.iterdir() if p.name.startswith("pgstress-")]  # data directory removed


def test_a_tmpdir_too_long_for_a_socket_puts_the_server_under_tmp(monkeypatch: pytest.MonkeyPatch,
                                                                  short_tmp: Path) -> None:
    long_dir = short_tmp / ("d" * 100)
    long_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long_dir))
    with embedded_server() as info:
        assert info.pgdata is not None and info.pgdata.parent.parent == Path("/tmp")
        with psycopg.connect(info.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not info.pgdata.parent.exists()
    assert not [p for p in long_dir.iterdir() if p.name.startswith("pgstress-")]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "terminal closed"])
def test_ctrl_c_writes_an_interrupted_report_and_stops_the_server(signum: int, tmp_path: Path,
                                                                  short_tmp: Path) -> None:
    out = tmp_path / "out"
    csv_path, report_path = out / "r.csv", out / "r.md"
    args = ["--start-epochs", "20000", "--end-epochs", "2000000", "--step-epochs", "20000",
            "--create-dirs", "--results-csv", str(csv_path), "--report-md", str(report_path)]  # fmt: skip
    returncode, err = interrupt_after_two_rows(args, signum, env=user_env(short_tmp))
    assert returncode == 130, err
    assert "Traceback" not in err
    rows = read_csv(csv_path)
    assert len(rows) >= 2 and all(r["status"] == "OK" for r in rows)
    assert [int(r["epochs"]) for r in rows] == [20000 * (i + 1) for i in range(len(rows))]
    report = report_path.read_text()
    assert "INTERRUPTED" in report
    assert f"after {len(rows)} of 100 planned iterations" in report
    assert not postgres_processes_under(short_tmp)  # stopped (pg_ctl -w) before the tool exited
