"""Stop signals at any moment, once or twice in a row: exit 130, one line, a report marked INTERRUPTED
whenever an iteration finished, and no process (initdb included) and no temporary directory left.

Real signals to a real `python main.py` on its own embedded server (TMPDIR is the test's own short directory,
so whatever it leaves is seen). The moment is found by watching the process, never by sleeping: its
libraries being loaded, its initdb running, its first chart on disk. (A signal in the milliseconds
before main.py's first line, while Python itself starts, is Python's to handle.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from helpers import REPO, read_csv, tmpfs, wait_until

from pgstress.target import LIBPQ_VARIABLES


def _processes_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(path) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _loading_libraries(pid: int, directory: Path) -> bool:
    return "psycopg" in Path(f"/proc/{pid}/maps").read_text()  # imported while pgstress's modules load


def _running_initdb(pid: int, directory: Path) -> bool:
    return any("initdb" in " ".join(proc.cmdline()) for proc in _processes_under(directory) if proc.pid != pid)


def _drawing_charts(pid: int, directory: Path) -> bool:
    return (directory / "out" / "r_time.png").exists()


MOMENTS: dict[str, tuple[Callable[[int, Path], bool], list[signal.Signals]]] = {
    "importing, Ctrl-C": (_loading_libraries, [signal.SIGINT]),
    "importing, SIGTERM": (_loading_libraries, [signal.SIGTERM]),
    "initdb, SIGTERM": (_running_initdb, [signal.SIGTERM]),
    "initdb, Ctrl-C twice": (_running_initdb, [signal.SIGINT, signal.SIGINT]),
    "charts, terminal closed": (_drawing_charts, [signal.SIGHUP]),
    "charts, Ctrl-C then SIGTERM": (_drawing_charts, [signal.SIGINT, signal.SIGTERM]),
}


@pytest.mark.parametrize("moment", MOMENTS, ids=MOMENTS)
def test_a_signal_at_any_moment_leaves_nothing_behind(moment: str, short_tmp: Path) -> None:
    reached, signals = MOMENTS[moment]
    env = {k: v for k, v in os.environ.items() if k != "PG_DSN" and k not in LIBPQ_VARIABLES}
    env["TMPDIR"] = str(short_tmp)
    out = short_tmp / "out"
    proc = subprocess.Popen(
        [sys.executable, "main.py", "--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000",
         "--memory-trace", "off", "--create-dirs", "--results-csv", str(out / "r.csv"), "--report-md",
         str(out / "r.md")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: reached(proc.pid, short_tmp) or proc.poll() is not None, moment)
        for signum in signals:
            proc.send_signal(signum)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 130, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pgstress: interrupted ({signals[0].name})"), err
    assert _processes_under(short_tmp) == []  # the server, initdb, pg_ctl: all gone
    assert [path.name for path in short_tmp.iterdir() if path.name.startswith("pgstress-")] == []
    assert not [path for path in short_tmp.rglob(".pgstress-*")]  # no half-written file
    if reached is _drawing_charts:
        assert lines[0].endswith("the report covers the 3 iterations that finished")
        assert [row["status"] for row in read_csv(out / "r.csv")] == ["OK"] * 3
        assert "> **INTERRUPTED**" in (out / "r.md").read_text(encoding="utf-8")
    else:
        assert lines[0].endswith("before any iteration finished")
        assert not out.exists()


def test_a_temporary_directory_that_cannot_be_used_is_one_line(run_cli, short_tmp: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded server's directory goes under TMPDIR; on a read-only filesystem: exit 1, one line naming it."""
    for name in ("PG_DSN", *LIBPQ_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    with tmpfs(short_tmp / "ro", "ro,size=64k") as read_only:
        monkeypatch.setattr(tempfile, "tempdir", str(read_only))  # what TMPDIR decided (Python reads it once)
        monkeypatch.setenv("TMPDIR", str(read_only))
        result = run_cli("--start-epochs", "1000", "--end-epochs", "1000")
    assert result.code == 1
    assert result.err.splitlines() == [
        f"pgstress: cannot create the embedded server's temporary directory under {read_only} (TMPDIR):"
        " Read-only file system"]
    assert [path.name for path in short_tmp.iterdir()] == ["ro"]
