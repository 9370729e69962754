"""Output that cannot be written: refused before the server is contacted when it can be known up front
(exit 2, one line naming the option, nothing written), and a disk that fills mid-run ends the run
cleanly (exit 4, one line naming the file, every row already written intact, the report still written
where its own path allows). The client's files: one server (the embedded one) is enough.

The refusals run against a closed port: had the server been contacted, the exit status would be 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SYNC, TINY_RAMP, RampMode, fill_up, read_csv, tmpfs

from pgstress.output.run_record import run_record_path

NO_SERVER = ["--dsn", "host=127.0.0.1 port=1 connect_timeout=5"]
SWEEP = ["--mode", "async", "--async-concurrency", "1,2"]


def _refused(result, option: str, *fragments: str) -> str:
    assert result.code == 2, (result.code, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pgstress: error: argument {option}: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.out == ""
    return lines[0]


CASES = {
    "names a directory": (lambda d: ["--report-md", str(d)], "--report-md", "is a directory"),
    "ends with a slash": (lambda d: ["--results-csv", f"{d}/new/"], "--results-csv", "names a directory"),
    "under a file": (lambda d: ["--results-csv", str(d / "file" / "r.csv")], "--results-csv", "is not a directory"),
    "a device": (lambda d: ["--report-md", "/dev/null"], "--report-md", "not a regular file"),
    "a full device": (lambda d: ["--results-csv", "/dev/full"], "--results-csv", "not a regular file"),
    "a name too long": (lambda d: ["--report-md", str(d / ("r" * 250 + ".md"))], "--report-md", "too long"),
    "CSV = report": (lambda d: ["--results-csv", str(d / "x"), "--report-md", str(d / "x")], "--report-md",
                     "is the same file as"),
    "CSV = a chart": (lambda d: ["--results-csv", str(d / "r_time.png"), "--report-md", str(d / "r.md")],
                      "--report-md", "(chart 'time') is the same file as"),
    "report = the run record": (lambda d: ["--results-csv", str(d / "r.csv"), "--report-md", str(d / "r.csv.run.json")],
                                "--report-md", "is the same file as"),
    "same file by another name": (lambda d: ["--results-csv", str(d / "x.csv"), "--report-md", f"{d}/sub/../x.csv"],
                                  "--report-md", "is the same file as"),
    # a sweep over C draws one chart per format and compression method: <report stem>_sweep[_<format>...].png
    "CSV = the sweep chart": (lambda d: [*SWEEP, "--report-md", str(d / "q.md"), "--async-results-csv",
                                         str(d / "q_sweep.png")], "--report-md", "(chart 'sweep') is the same file"),
    "JSON = the sweep chart": (lambda d: [*SWEEP, "--report-md", str(d / "q.md"), "--export-json",
                                          str(d / "q_sweep.png")], "--export-json", "(chart 'sweep')"),
    "JSON = a format's sweep chart": (lambda d: [*SWEEP, "--payload-format", "all", "--report-md", str(d / "q.md"),
                                                 "--export-json", str(d / "q_sweep_bson.png")], "--export-json",
                                      "(chart 'sweep_bson')"),
    "CSV = a method's sweep chart": (lambda d: [*SWEEP, "--toast-compression", "all", "--report-md", str(d / "q.md"),
                                                "--async-results-csv", str(d / "q_sweep_lz4.png")],
                                     "--report-md", "(chart 'sweep_lz4') is the same file as"),
}


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_an_output_that_cannot_be_written_is_refused_before_the_server(case: str, run_cli, tmp_path: Path) -> None:
    make_argv, option, fragment = CASES[case]
    (tmp_path / "file").write_text("a file, not a directory")
    (tmp_path / "sub").mkdir()
    before = sorted(tmp_path.rglob("*"))
    result = run_cli(*NO_SERVER, *TINY_RAMP, *make_argv(tmp_path), charts=True)
    _refused(result, option, fragment)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even a directory


def test_a_hard_link_is_the_same_file(run_cli, tmp_path: Path) -> None:
    (tmp_path / "q.md").write_text("a report")
    (tmp_path / "q.csv").hardlink_to(tmp_path / "q.md")
    result = run_cli(*NO_SERVER, *TINY_RAMP, "--results-csv", str(tmp_path / "q.csv"), "--report-md",
                     str(tmp_path / "q.md"))
    _refused(result, "--report-md", "(the report) is the same file as")
    assert (tmp_path / "q.md").read_text() == "a report"


RESUMED = {  # --resume reads the CSV (and appends to it) and its run record: no other output may be either
    "the sweep chart is the CSV": ([*SWEEP, "--report-md", "q.md", "--async-results-csv", "q_sweep.png"],
                                   "--report-md", "(chart 'sweep') is the same file as"),
    "the JSON record is the run record": (["--results-csv", "q.csv", "--export-json", "q.csv.run.json"],
                                          "--export-json", "is the same file as q.csv.run.json (the run record of"),
    "the report is the CSV": (["--results-csv", "q.csv", "--report-md", "./q.csv"], "--report-md",
                              "(the report) is the same file as"),
}


@pytest.mark.parametrize("case", RESUMED, ids=RESUMED)
def test_resume_refuses_an_output_that_is_its_input_before_reading_it(case: str, run_cli, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv, option, fragment = RESUMED[case]
    for name in ("q.csv", "q_sweep.png"):
        Path(name).write_text("iter,epochs\r\n1,1000\r\n")
        run_record_path(name).write_text("{}")
    before = {path: path.read_bytes() for path in tmp_path.iterdir()}
    result = run_cli(*NO_SERVER, *TINY_RAMP, "--resume", *argv, charts=True)
    _refused(result, option, fragment)
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == before


@pytest.mark.parametrize("option", ["--results-csv", "--async-results-csv", "--report-md"])
def test_a_read_only_directory_is_refused_before_the_server(option: str, run_cli, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
        mode = ["--mode", "async"] if option == "--async-results-csv" else []
        result = run_cli(*mode, *NO_SERVER, *TINY_RAMP, option, str(read_only / "out" / "file"))
        _refused(result, option, "is not writable (read-only filesystem)")


def _fill_mid_run(mode: RampMode, report_dir: Path | None, dsn: str, table: str, hooks, run_cli,
                  tmp_path: Path) -> tuple[object, Path, Path, int]:
    """A ramp whose CSV is on a small tmpfs, filled to the last byte after iteration 2: the first row that needs
    one more page fails (the part of it written is cut back), and the ramp stops there."""
    small = tmp_path / "small"
    csv = small / "results.csv"
    report = (report_dir or small) / "report.md"
    hooks.after[2] = lambda row: fill_up(small)
    result = run_cli(*mode.argv(), "--dsn", dsn, "--table", table, "--memory-trace", "off",
                     "--start-epochs", "100", "--end-epochs", "6000", "--step-epochs", "100",
                     mode.csv_option, str(csv), "--report-md", str(report))
    assert result.code == 4, result.err
    assert "Traceback" not in result.err
    assert csv.read_bytes().endswith(b"\r\n")  # whole lines only
    rows = read_csv(csv)
    saved = len(rows)
    assert saved >= 2 and [int(row["iter"]) for row in rows] == list(range(1, saved + 1))
    assert all(row["status"] == "OK" for row in rows)
    assert result.err.splitlines()[0] == f"pgstress: could not write {csv}: No space left on device [Errno 28]"
    assert not [path for path in small.iterdir() if path.name.startswith(".pgstress-")]  # no temporary file
    assert f"[{saved + 1}/60]" in result.out and f"[{saved + 2}/60]" not in result.out  # it stopped there
    return result, csv, report, saved


def test_a_disk_that_fills_mid_run_ends_it_cleanly(embedded_dsn: str, embedded_db, table_name: str,
                                                   ramp_mode: RampMode, hooks, run_cli, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=64k"):
        result, csv, report, saved = _fill_mid_run(ramp_mode, tmp_path, embedded_dsn, table_name, hooks, run_cli,
                                                   tmp_path)
    assert len(result.err.splitlines()) == 1
    text = report.read_text(encoding="utf-8")
    assert f"The ramp was stopped because a result could not be saved (could not write {csv}" in text
    assert f"{saved + 1} of 60 planned iterations ran" in text and "INTERRUPTED" not in text


def test_a_report_on_the_full_disk_is_one_more_line(embedded_dsn: str, embedded_db, table_name: str, hooks, run_cli,
                                                     tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=64k"):
        result, _csv, report, _saved = _fill_mid_run(SYNC, None, embedded_dsn, table_name, hooks, run_cli, tmp_path)
        assert result.err.splitlines()[1:] == [
            f"pgstress: could not write {report}: No space left on device [Errno 28]"]
        assert not report.exists()


@pytest.mark.parametrize("stdout", ["a full device", "a closed pipe"])
def test_a_terminal_that_cannot_be_written_does_not_sink_the_run(stdout: str, embedded_dsn: str, table_name: str,
                                                                 tmp_path: Path) -> None:
    """Progress is not a result: with stdout on /dev/full, or a pipe whose reader is gone (`| head -1`), the
    run goes on silently, writes its CSV and report, and says so in one line."""
    argv = [sys.executable, "main.py", "--dsn", embedded_dsn, "--table", table_name, *TINY_RAMP, "--no-charts",
            "--results-csv", str(tmp_path / "r.csv"), "--report-md", str(tmp_path / "r.md")]
    if stdout == "a full device":
        with open("/dev/full", "w") as full:
            done = subprocess.run(argv, cwd=REPO, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
        code, err = done.returncode, done.stderr
    else:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()  # the title line, then the reader goes away
        proc.stdout.close()
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    reason = "No space left on device" if stdout == "a full device" else "Broken pipe"
    assert code == 0, err
    assert err.splitlines() == [f"pgstress: could not write to stdout ({reason}); the run goes on without"
                                " progress lines"]
    assert [row["status"] for row in read_csv(tmp_path / "r.csv")] == ["OK", "OK", "OK"]
    assert "- **Breaking point:** none reached" in (tmp_path / "r.md").read_text(encoding="utf-8")
