"""Output that cannot be written: refused before the server is contacted when it can be known up front
(exit 2, one line naming the option, nothing written).

The refusals run against a closed port: had the server been contacted, the exit status would be 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TINY_RAMP, tmpfs

NO_SERVER = ["--dsn", "host=127.0.0.1 port=1 connect_timeout=5"]


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


@pytest.mark.parametrize("option", ["--results-csv", "--async-results-csv", "--report-md"])
def test_a_read_only_directory_is_refused_before_the_server(option: str, run_cli, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
        mode = ["--mode", "async"] if option == "--async-results-csv" else []
        result = run_cli(*mode, *NO_SERVER, *TINY_RAMP, option, str(read_only / "out" / "file"))
        _refused(result, option, "is not writable (read-only filesystem)")
