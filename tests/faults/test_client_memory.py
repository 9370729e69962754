"""The client runs out of memory: a real MemoryError, caused by a tight RLIMIT_AS in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO, RampMode, assert_report_breaking, read_csv

CHILD = Path(__file__).with_name("memory_child.py")


def test_memory_error_in_the_client(embedded_dsn: str, table_name: str, ramp_mode: RampMode, tmp_path: Path) -> None:
    """Iteration 2 (30 MiB bson values) gets 16 MiB of address space: CLIENT_MEMORY; iteration 3 is OK again."""
    report = tmp_path / "report.md"
    child = subprocess.run(
        [sys.executable, str(CHILD), "2", "16", *ramp_mode.argv(), "--dsn", embedded_dsn,
         "--table", table_name, "--drop-table", "--payload-format", "bson", "--start-epochs", "1000",
         "--end-epochs", "199000", "--step-epochs", "99000", "--memory-trace", "off",
         ramp_mode.csv_option, str(ramp_mode.csv_path(tmp_path)), "--report-md", str(report)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])},
    )  # fmt: skip

    assert child.returncode == 0, child.stderr
    assert "Traceback" not in child.stderr
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "CLIENT_MEMORY", "OK"]
    ramp_mode.assert_intact_ok(rows[0])
    ramp_mode.assert_intact_ok(rows[2])
    assert ramp_mode.assert_failed(rows[1], "CLIENT_MEMORY", failed=ramp_mode.concurrency).startswith("MemoryError: ")
    ramp_mode.assert_nothing_written(rows[1])
    assert_report_breaking(report, 2, 100000, "CLIENT_MEMORY", "MemoryError")
