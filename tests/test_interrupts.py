"""Stop signals at any moment, once or twice in a row: exit 130, one line, a report marked INTERRUPTED
whenever an iteration finished, and no process (initdb included) and no temporary directory left.

Real signals to a real `python main.py` on its own embedded server (TMPDIR is the test's own short directory,
so whatever it leaves is seen). The moment is found by watching the process, never by sleeping: its
libraries being loaded, its initdb running, its first chart on disk. (A signal in the milliseconds
before main.py's first line, while Python itself starts, is Python's to handle.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from helpers import REPO, read_csv, tmpfs, wait_until

from pgstress.target import LIBPQ_VARIABLES

TINY = ["--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000", "--memory-trace", "off"]


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


# A library's import-time code that swallows everything (a finaliser, a callback, `except BaseException: pass`)
# while a real SIGTERM arrives: the KeyboardInterrupt the handler raised never reaches pgstress.
SWALLOWED_WHILE_IMPORTING = """
import os, signal, sys
fired = []
def hook(event, args):
    if event == "import" and args[0] == os.environ["SWALLOWED_AT"] and not fired:
        fired.append(True)
        try:
            signal.raise_signal(signal.SIGTERM)
        except BaseException:
            pass
sys.addaudithook(hook)
from pgstress.entry import main
sys.argv = ["pgstress", *sys.argv[1:]]
sys.exit(main())
"""

COMPARED = [str(REPO / "tests" / "compare" / "data" / name) for name in ("bson-copy.json", "bson-insert.json")]


SWALLOWED = {"run, loading pgstress": ("run", "psycopg"), "compare, loading pgstress": ("compare", "psycopg"),
             "compare, loading matplotlib to draw": ("compare", "matplotlib")}


@pytest.mark.parametrize("moment", SWALLOWED, ids=SWALLOWED)
def test_a_signal_whose_interrupt_an_import_swallowed_still_stops_the_command(moment: str, server_dsn: str,
                                                                              tmp_path: Path) -> None:
    command, module = SWALLOWED[moment]
    out = tmp_path / "out"
    out.mkdir()
    args = (["compare", *COMPARED, "--report-md", str(out / "c.md")] if command == "compare" else
            ["--dsn", server_dsn, "--table", f"swallowed_{os.getpid()}", *TINY, "--results-csv", str(out / "r.csv"),
             "--report-md", str(out / "r.md")])
    done = subprocess.run([sys.executable, "-c", SWALLOWED_WHILE_IMPORTING, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "SWALLOWED_AT": module})
    assert done.returncode == 130, done.stderr
    line = ("pgstress compare: interrupted (SIGTERM)" if command == "compare" else
            "pgstress: interrupted (SIGTERM) before any iteration finished")
    assert done.stderr == line + "\n"
    assert done.stdout == "" or module == "matplotlib"  # the terminal table comes before the chart
    assert [path.name for path in out.iterdir()] in ([], ["c_ratios.png"])  # the report never


def _blocked_writing_stdout(pid: int) -> bool:
    return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()  # the kernel's wait: a write to a full pipe


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_while_compare_prints_is_one_line(signum: signal.Signals, tmp_path: Path) -> None:
    """Its stdout a pipe already full, compare stops in the middle of printing its table (after reading the runs,
    before drawing): the signal lands there. Exit 130, one line, no report, no temporary file."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"x" * 4096)
    os.set_blocking(write_end, True)
    report = tmp_path / "c.md"
    proc = subprocess.Popen([sys.executable, "main.py", "compare", *COMPARED, "--report-md", str(report)], cwd=REPO,
                            stdout=write_end, stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    drained = threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(read_end, 65536), b"")])
    try:
        wait_until(lambda: proc.poll() is not None or _blocked_writing_stdout(proc.pid), "compare printing")
        proc.send_signal(signum)
        drained.start()  # what it still flushes on its way out
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drained.join(timeout=60)
        os.close(read_end)
    assert proc.returncode == 130, err
    assert err == f"pgstress compare: interrupted ({signum.name})\n"
    assert list(tmp_path.iterdir()) == []
