"""The client runs out of memory: a real MemoryError, libpq's or asyncpg's allocation failure, caused by a
tight RLIMIT_AS (what `ulimit -v` sets) in a child process. Whatever layer fails to allocate, the
iteration is CLIENT_MEMORY (never DB_LIMIT, never ERROR) and the run goes on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ASYNC, REPO, SYNC, RampMode, assert_report_breaking, read_csv

CHILD = Path(__file__).with_name("memory_child.py")
# Iteration 2 stores 100,000-epoch bson records (~30 MiB each); iteration 3 (199,000) runs unsqueezed.
RAMP = ["--payload-format", "bson", "--start-epochs", "1000", "--end-epochs", "199000", "--step-epochs", "99000",
        "--memory-trace", "off"]
TWO_LEVELS = ["--end-epochs", "100000"]  # that the run goes on after CLIENT_MEMORY is shown once (sync, write)
# Where each layer reports a failed allocation (which one a headroom hits is measured here, not promised).
ALLOCATION_MESSAGES = (
    "MemoryError: ",  # Python, encoding or decoding (bson's decoder included)
    "out of memory for query result",  # libpq, building the result
    "cannot allocate memory for input buffer",  # libpq, receiving it
    "could not allocate memory for what the server sent",  # asyncpg's transport, receiving it
)


def _squeezed_run(mode: RampMode, phase: str, headroom_mib: int, dsn: str, table: str, tmp_path: Path,
                  *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), "2", phase, str(headroom_mib), *mode.argv(), "--dsn", dsn, "--table", table,
         "--drop-table", *RAMP, *extra, mode.csv_option, str(mode.csv_path(tmp_path)),
         "--report-md", str(tmp_path / "r.md")],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])},
    )  # fmt: skip


def test_memory_error_in_the_client(embedded_dsn: str, table_name: str, ramp_mode: RampMode, tmp_path: Path) -> None:
    """Iteration 2 (30 MiB bson values) gets 16 MiB of address space to encode in: CLIENT_MEMORY; iteration 3
    is OK again."""
    goes_on = not ramp_mode.fans_out  # that the run goes on is shown once, in sync mode
    child = _squeezed_run(ramp_mode, "write", 16, embedded_dsn, table_name, tmp_path,
                          *([] if goes_on else TWO_LEVELS))

    assert child.returncode == 0, child.stderr
    assert "Traceback" not in child.stderr
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "CLIENT_MEMORY", *(["OK"] if goes_on else [])]
    for row in (rows[0], *rows[2:]):
        ramp_mode.assert_intact_ok(row)
    assert ramp_mode.assert_failed(rows[1], "CLIENT_MEMORY", failed=ramp_mode.concurrency).startswith("MemoryError: ")
    ramp_mode.assert_nothing_written(rows[1])
    assert_report_breaking(tmp_path / "r.md", 2, 100000, "CLIENT_MEMORY", "MemoryError")


# On Python 3.10 the squeezed async read can hang instead (seen once in CI): asyncpg loses the result
# it could not allocate and waits for it forever, a level a stop signal still ends (run/event_loop.py's grace)
# but nothing else does. Known and said in the README; the case runs on 3.11 and later.
ASYNC_READ_SQUEEZE = pytest.param(ASYNC, 8, id="async-transport", marks=pytest.mark.skipif(
    sys.version_info < (3, 11), reason="Python 3.10: asyncpg may wait forever for a result it could not allocate"))


@pytest.mark.parametrize(("mode", "headroom_mib"), [pytest.param(SYNC, 40, id="sync-libpq"),
                                                    pytest.param(SYNC, 80, id="sync-decoder"), ASYNC_READ_SQUEEZE])
def test_memory_runs_out_reading_back(mode: RampMode, headroom_mib: int, embedded_dsn: str, table_name: str,
                                      tmp_path: Path) -> None:
    """The records are stored; reading them back gets too little address space (libpq's result buffer, the
    bson decoder, asyncpg's transport): CLIENT_MEMORY, not the DB_LIMIT or ERROR those layers' errors look
    like, and the next iteration is OK."""
    child = _squeezed_run(mode, "read", headroom_mib, embedded_dsn, table_name, tmp_path, *TWO_LEVELS)

    assert child.returncode == 0, child.stderr
    assert "Traceback" not in child.stderr
    rows = read_csv(mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "CLIENT_MEMORY"]
    cause = mode.assert_failed(rows[1], "CLIENT_MEMORY", failed=mode.concurrency)
    assert any(message in cause for message in ALLOCATION_MESSAGES), cause
    assert rows[1]["read_s"] == "" if not mode.fans_out else rows[1]["reads_ok"] == "0"  # no read finished


def test_the_async_memory_guard_keeps_within_ulimit_v(embedded_dsn: str, table_name: str, tmp_path: Path) -> None:
    """A real `ulimit -v` on the whole run: the fan-out's memory guard takes the address space it leaves as its
    limit and refuses the level that would not fit (CLIENT_MEMORY, not run) instead of letting the level
    fail in asyncpg, which can lose a result it could not allocate and wait for it forever."""
    csv = tmp_path / "a.csv"
    command = (f"ulimit -v {1_000_000}; exec {sys.executable} main.py --mode async --async-concurrency 2"
               f" --dsn '{embedded_dsn}' --table {table_name} --drop-table --payload-format bson --memory-trace off"
               f" --start-epochs 60000 --end-epochs 3000000 --step-epochs 60000 --no-charts --quiet"
               f" --async-results-csv {csv} --report-md {tmp_path / 'r.md'}")
    child = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120)

    assert child.returncode == 0, child.stderr
    rows = read_csv(csv)
    *ran, refused = rows
    assert ran and ran[0]["status"] == "OK"
    # the guard extrapolates from what the levels cost in resident memory, not in address space: a level it let
    # run may still fail to allocate, as CLIENT_MEMORY; never another status, and the ramp never hangs
    assert {row["status"] for row in ran} <= {"OK", "CLIENT_MEMORY"}
    assert refused["status"] == "CLIENT_MEMORY" and refused["write_s"] == ""
    assert "of the address space ulimit -v leaves); level not run, ramp stopped" in refused["error"]
