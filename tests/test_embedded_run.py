"""`python main.py` as a user runs it: no DSN → embedded server, gone afterwards; Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from cli_helpers import interrupt_after_two_rows

from pgstress.results import read_rows
from pgstress.server import LIBPQ_VARIABLES

REPO = Path(__file__).resolve().parent.parent


def user_env(tmp_path: Path) -> dict[str, str]:
    """The user's environment with no DSN; TMPDIR puts the embedded data directory under tmp_path."""
    env = {k: v for k, v in os.environ.items() if k != "PG_DSN" and k not in LIBPQ_VARIABLES}
    env["TMPDIR"] = str(tmp_path)
    return env


def postgres_processes_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "postgres" in (proc.info["name"] or "") and str(path) in cmdline:
            found.append(proc)
    return found


def test_no_dsn_runs_on_an_embedded_server_and_removes_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "main.py", "--start-epochs", "1000", "--end-epochs", "2000", "--step-epochs", "1000",
            "--results-csv", str(out / "r.csv"), "--report-md", str(out / "r.md")]  # fmt: skip
    done = subprocess.run(argv, cwd=REPO, env=user_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert [r["status"] for r in read_rows(out / "r.csv")] == ["OK", "OK"]
    report = (out / "r.md").read_text()
    assert "embedded throwaway server" in report
    assert "Version: PostgreSQL 18" in report
    assert not postgres_processes_under(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("pgstress-")]  # data directory removed


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "terminal closed"])
def test_ctrl_c_writes_an_interrupted_report_and_stops_the_server(signum: int, tmp_path: Path) -> None:
    out = tmp_path / "out"
    csv_path, report_path = out / "r.csv", out / "r.md"
    args = ["--start-epochs", "20000", "--end-epochs", "2000000", "--step-epochs", "20000",
            "--results-csv", str(csv_path), "--report-md", str(report_path)]  # fmt: skip
    returncode, err = interrupt_after_two_rows(args, signum, env=user_env(tmp_path))
    assert returncode == 130, err
    assert "Traceback" not in err
    rows = read_rows(csv_path)
    assert len(rows) >= 2 and all(r["status"] == "OK" for r in rows)
    assert [int(r["epochs"]) for r in rows] == [20000 * (i + 1) for i in range(len(rows))]
    report = report_path.read_text()
    assert "INTERRUPTED" in report
    assert f"after {len(rows)} of 100 planned iterations" in report
    assert not postgres_processes_under(tmp_path)  # stopped (pg_ctl -w) before the tool exited
