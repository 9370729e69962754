"""`pgstress compare`: what differs first, every measure at the common sizes with its ratio to the first run,
and a verdict per measure that claims only what the repetitions support; bad input is one line, exit 2,
nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, read_chart_data, table_after

from pgstress import cli
from pgstress.compare.verdicts import CANNOT_TELL, MIXED, NO_DIFFERENCE, Measure, SizePair, judge
from pgstress.output.reading import MAX_INPUT_BYTES
from pgstress.output.run_record import run_record_path

DATA = Path(__file__).with_name("data")  # bench/compare_write_methods.py's real records: bson, copy and insert
WRITE = Measure("write_s", "write time, s")
EPS = Measure("eps", "throughput", lower_is_better=False)


def test_a_verdict_needs_three_repetitions_apart_at_most_sizes() -> None:
    apart = [SizePair(1000, [1.0, 1.1, 1.2], [1.5, 1.6, 1.7]), SizePair(2000, [2.0, 2.1], [3.0, 3.1, 3.2]),
             SizePair(3000, [3.0, 3.3, 3.6], [3.5, 3.7, 3.9])]
    assert judge(WRITE, apart[:1]).verdict == "slower"
    assert judge(EPS, apart[:1]).verdict == "faster"  # higher epochs/s is better
    assert judge(WRITE, apart[1:2]).verdict == CANNOT_TELL  # two repetitions: apart by chance 1 time in 3
    assert judge(WRITE, apart).verdict == NO_DIFFERENCE  # apart at 1 size of the 3 measured: not most
    wider = SizePair(4000, [4.0, 4.1, 4.2], [5.0, 5.1, 5.2])
    assert judge(WRITE, [*apart, wider]).verdict == NO_DIFFERENCE  # 2 of 4: half is not most
    assert judge(WRITE, [*apart, wider, SizePair(5000, [5.0, 5.1, 5.2], [6.0, 6.1, 6.2])]).verdict == "slower"
    overlapping = judge(WRITE, [apart[2], SizePair(4000, [4.0, 4.1, 4.2], [4.1, 4.2, 4.3]), apart[0]])
    assert overlapping.verdict == NO_DIFFERENCE and "apart at 1,000 epochs only" in overlapping.reason
    mixed = judge(WRITE, [apart[0], SizePair(2000, [2.0, 2.1, 2.2], [1.0, 1.1, 1.2])])
    assert mixed.verdict == MIXED and mixed.reason == "faster at 2,000 epochs, slower at 1,000 epochs"
    single = [SizePair(1000, [1.0], [1.3]), SizePair(2000, [2.0], [2.0])]
    assert judge(WRITE, single).verdict == CANNOT_TELL  # one sample shows no noise; one size of two is unknown
    assert judge(WRITE, single[1:]).verdict == NO_DIFFERENCE  # the very same value
    assert judge(WRITE, [SizePair(1000, [1.0, 2.0], [2.0, 1.0])]).verdict == NO_DIFFERENCE  # the same measurements
    assert judge(WRITE, apart[:1]).geometric_mean == pytest.approx(1.6 / 1.1)


def _compare(run_cli_args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(["compare", *run_cli_args])
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _verdicts(out: str, run: str) -> dict[str, str]:
    """measure -> verdict from the terminal table (one later run)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("measure"))
    found = {}
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        measure, _ratio, verdict = line.split(maxsplit=2)
        found[measure] = verdict
    assert run in lines[start]
    return found


def test_insert_is_slower_than_copy_on_real_rows(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """bench/compare_write_methods.py's records (bson, 3 repetitions per size where `insert` costs ~2x COPY's
    write): compare calls insert slower on write_s, and the other way round faster."""
    copy_run, insert_run = DATA / "bson-copy.json", DATA / "bson-insert.json"
    code, out, err = _compare([str(copy_run), str(insert_run), "--report-md", str(tmp_path / "c.md")], capsys)
    assert code == 0, err
    assert "--write-method: copy | insert" in out  # what differs comes first
    verdicts = _verdicts(out, "bson-insert.json")
    assert verdicts["write_s"] == "slower"
    assert verdicts["read_s"] == NO_DIFFERENCE  # the same SELECT: apart at 500k only (another load), not most
    assert verdicts["client_payload_mb"] == NO_DIFFERENCE  # the same seed: the same bytes were sent
    report = (tmp_path / "c.md").read_text(encoding="utf-8")
    rows = table_after(report, "#### write time, s (`write_s`)")
    assert rows[0] == ["epochs", "bson-copy.json", "bson-insert.json", "ratio"]
    ratios = [float(row[3].rstrip("x")) for row in rows[1:]]
    assert all(ratio > 1.4 for ratio in ratios), rows
    chart = read_chart_data(tmp_path / "c_ratios.png")
    assert [point[0] for point in chart["lines"]["bson-insert.json write_s"]] == [250_000, 500_000]

    code, out, _ = _compare([str(insert_run), str(copy_run)], capsys)
    assert code == 0 and _verdicts(out, "bson-copy.json")["write_s"] == "faster"


@pytest.fixture(scope="module")
def real_run(embedded_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One real tiny sync run with 3 repetitions per size, its JSON record, CSV and run record."""
    folder = tmp_path_factory.mktemp("run")
    code = cli.main(["--dsn", embedded_dsn, "--table", "compare_real_run", "--drop-table", "--start-epochs", "1000",
                     "--end-epochs", "3000", "--step-epochs", "1000", "--memory-trace", "off", "--repeat", "3",
                     "--quiet", "--no-charts", "--results-csv", str(folder / "run.csv"), "--report-md",
                     str(folder / "run.md"), "--export-json", str(folder / "run.json")])
    assert code == 0
    yield folder


def test_a_run_compared_with_itself_differs_in_nothing(real_run: Path, capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    record, csv = real_run / "run.json", real_run / "run.csv"
    for other in (record, csv):  # the JSON record, and the CSV read with its run record
        code, out, err = _compare([str(record), str(other), "--report-md", str(tmp_path / "self.md"), "--no-charts"],
                                  capsys)
        assert code == 0, err
        verdicts = _verdicts(out, other.name)
        assert {"write_s", "read_s", "total_s", "eps", "db_payload_mb"} <= set(verdicts)
        assert set(verdicts.values()) == {NO_DIFFERENCE}, verdicts
        assert "3 common size(s), 1,000 to 3,000 epochs" in out
    report = (tmp_path / "self.md").read_text(encoding="utf-8")
    assert report.index("## What differs between the runs") < report.index("## Verdicts")
    assert "Rule: At one size" in report


def _edited(real_run: Path, tmp_path: Path, name: str, edit: Any) -> Path:
    """The real run's record, changed by `edit` (which changes the record it is given)."""
    record = json.loads((real_run / "run.json").read_text(encoding="utf-8"))
    edit(record)
    path = tmp_path / name
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def _keep_sizes(*sizes: int) -> Any:
    def edit(record: dict[str, Any]) -> None:
        for ramp in record["ramps"]:
            ramp["rows"] = [row for row in ramp["rows"] if row["epochs"] in sizes]
    return edit


def test_runs_of_different_ramps_compare_their_common_sizes_only(real_run: Path, capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    low = _edited(real_run, tmp_path, "low.json", _keep_sizes(1000, 2000))
    high = _edited(real_run, tmp_path, "high.json", _keep_sizes(2000, 3000))
    code, out, err = _compare([str(low), str(high), "--report-md", str(tmp_path / "c.md")], capsys)
    assert code == 0, err
    assert "1 common size(s), 2,000 epochs:" in out
    rows = table_after((tmp_path / "c.md").read_text(encoding="utf-8"), "#### write time, s (`write_s`)")
    assert [row[0] for row in rows[1:]] == ["2,000"]

    apart = _edited(real_run, tmp_path, "apart.json", _keep_sizes(3000))
    code, out, err = _compare([str(low), str(apart), "--report-md", str(tmp_path / "none.md")], capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "no record size in common" in err and "1,000-2,000 epochs" in err and "3,000-3,000 epochs" in err
    assert not (tmp_path / "none.md").exists()


def _schema_version_2(record: dict[str, Any]) -> None:
    record["schema_version"] = 2


def _not_ours(record: dict[str, Any]) -> None:
    del record["schema"]


def _text_in_a_number(record: dict[str, Any]) -> None:
    record["ramps"][0]["rows"][1]["write_s"] = "fast"


def _async(record: dict[str, Any]) -> None:
    record["mode"] = "async"


def _no_rows(record: dict[str, Any]) -> None:
    del record["ramps"][0]["rows"]


def _row_edit(column: str, value: Any) -> Any:
    def edit(record: dict[str, Any]) -> None:
        record["ramps"][0]["rows"][1][column] = value
    return edit


def _missing_column(record: dict[str, Any]) -> None:
    del record["ramps"][0]["rows"][2]["read_s"]


def _repeat_true(record: dict[str, Any]) -> None:
    record["config"]["repeat"] = True


BAD = [("missing.json", _missing_column, "row 3 (iter 1) is not a pgstress sync row: has no read_s"),
       ("nan.json", _row_edit("write_s", float("nan")), "write_s is nan (not a finite number)"),
       ("negative.json", _row_edit("read_s", -0.5), "read_s is -0.5 (negative)"),
       ("infinite.json", _row_edit("db_payload_mb", float("inf")), "db_payload_mb is inf (not a finite number)"),
       ("negative-size.json", _row_edit("client_payload_mb", -1), "client_payload_mb is -1 (negative)"),
       ("bool.json", _row_edit("epochs", True), "epochs is True, not a number"),
       ("float-iter.json", _row_edit("iter", 1.5), "iter is 1.5, not a whole number"),
       ("status.json", _row_edit("status", "FINE"), "status 'FINE' is not a pgstress status"),
       ("repeat-true.json", _repeat_true, "its options are not those of a pgstress run (repeat is True, not a whole"),
       ("unreadable.json", None, "not valid JSON"), ("v2.json", _schema_version_2, "schema version 2"),
       ("other.json", _not_ours, "not a pgstress run record"), ("edited.json", _text_in_a_number, "write_s is 'fast'"),
       ("async.json", _async, "is not a pgstress async row: has no concurrency"),  # sync rows said async
       ("cut.json", _no_rows, "not a complete pgstress run record")]


@pytest.mark.parametrize(("name", "edit", "message"), BAD, ids=[name for name, _, _ in BAD])
def test_bad_input_is_one_line_exit_2_nothing_written(real_run: Path, capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path, name: str, edit: Any, message: str) -> None:
    if edit is None:
        bad = tmp_path / name
        bad.write_text('{"schema": "pgstress-run", "rows": [', encoding="utf-8")
    else:
        bad = _edited(real_run, tmp_path, name, edit)
    code, out, err = _compare([str(real_run / "run.json"), str(bad), "--report-md", str(tmp_path / "c.md")], capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and message in err, err
    assert name in err
    assert not (tmp_path / "c.md").exists()


def test_a_csv_needs_its_run_record(real_run: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lonely = tmp_path / "lonely.csv"
    lonely.write_bytes((real_run / "run.csv").read_bytes())
    code, _out, err = _compare([str(real_run / "run.json"), str(lonely)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "lonely.csv.run.json is missing" in err
    assert run_record_path(real_run / "run.csv").is_file()
    missing = _compare([str(real_run / "run.json"), str(tmp_path / "nowhere.json")], capsys)
    assert missing[0] == 2 and "nowhere.json: cannot be read" in missing[2]
    alone = _compare([str(real_run / "run.json")], capsys)
    assert alone[0] == 2 and "two runs or more" in alone[2]
    unwritable = _compare([str(real_run / "run.json")] * 2 + ["--report-md", "/proc/comparison.md"], capsys)
    assert unwritable[0] == 2 and unwritable[1] == "" and "argument --report-md" in unwritable[2]


def _copied(real_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The real run's CSV with its run record and its JSON record, in tmp_path: b.csv, b.csv.run.json, b.json."""
    csv, record = tmp_path / "b.csv", tmp_path / "b.json"
    csv.write_bytes((real_run / "run.csv").read_bytes())
    run_record_path(csv).write_bytes(run_record_path(real_run / "run.csv").read_bytes())
    record.write_bytes((real_run / "run.json").read_bytes())
    return csv, record


OVERWRITTEN = {  # --report-md (and the ratio chart beside it) naming a file compare reads
    "report = the CSV": (["b.csv", "b.json", "--report-md", "b.csv"], "(the report) is the same file as"),
    "report = the JSON": (["b.csv", "b.json", "--report-md", "b.json"], "(the report) is the same file as"),
    "report = the CSV's run record": (["b.csv", "b.json", "--report-md", "b.csv.run.json"],
                                      "(the run record beside run 1)"),
    "ratio chart = the JSON": (["b.csv", "b_ratios.png", "--report-md", "b.md"], "(the ratio chart)"),
    "report = a hard link of the JSON": (["b.csv", "b.json", "--report-md", "link.md"], "(run 2)"),
    "report = the CSV by another name": (["b.csv", "b.json", "--report-md", "sub/../b.csv"], "(run 1)"),
}


@pytest.mark.parametrize("case", OVERWRITTEN, ids=OVERWRITTEN)
def test_no_output_of_compare_is_one_of_its_inputs(case: str, real_run: Path, capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before any run is read: exit 2, one line naming --report-md, every file as it was."""
    _csv, record = _copied(real_run, tmp_path)
    (tmp_path / "b_ratios.png").write_bytes(record.read_bytes())
    (tmp_path / "link.md").hardlink_to(record)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    argv, fragment = OVERWRITTEN[case]
    code, out, err = _compare(argv, capsys)
    assert (code, out) == (2, ""), err
    assert len(err.splitlines()) == 1 and "argument --report-md:" in err and fragment in err, err
    assert "which is read" in err
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_a_csv_of_another_shape_is_refused(real_run: Path, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    """The CSV route: a NaN or a negative time in a row, and a run record whose repetition count is `true`."""
    csv, record_json = _copied(real_run, tmp_path)
    lines = csv.read_bytes().decode("utf-8").split("\r\n")
    header = lines[0].split(",")
    for name, value, message in (("write_s", "nan", "write_s is nan (not a finite number)"),
                                 ("total_s", "-2.0", "total_s is -2.0 (negative)")):
        cells = lines[1].split(",")
        cells[header.index(name)] = value
        bad = tmp_path / f"{name}.csv"
        bad.write_bytes("\r\n".join([lines[0], ",".join(cells), *lines[2:]]).encode("utf-8"))
        run_record_path(bad).write_bytes(run_record_path(csv).read_bytes())
        code, out, err = _compare([str(csv), str(bad)], capsys)
        assert (code, out) == (2, "") and err.splitlines() == [
            f"pgstress compare: error: {bad}: not a pgstress sync CSV (line 2: {message})"], err
    record = json.loads(run_record_path(csv).read_text(encoding="utf-8"))
    record["ramp"]["repeat"] = True
    run_record_path(csv).write_text(json.dumps(record), encoding="utf-8")
    code, out, err = _compare([str(record_json), str(csv)], capsys)
    assert (code, out) == (2, "") and err.splitlines() == [
        f"pgstress compare: error: {run_record_path(csv)}: not a pgstress run record (repeat is True, not a whole"
        " number)"], err


LIMITED = """
import resource, sys
from pgstress import cli, entry
size = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size * 1024 + 256 * 1024 * 1024, resource.RLIM_INFINITY))
sys.argv = ["pgstress", *sys.argv[1:]]
sys.exit(entry.main())
"""  # as `ulimit -v`: the process may take 256 MiB more than it has once pgstress is loaded


def _limited_compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LIMITED, "compare", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_compare_refuses_what_is_no_file_pgstress_wrote(real_run: Path, tmp_path: Path) -> None:
    """/dev/zero (read whole, it ran the machine out of memory), a pipe (read, it waits for a writer forever), a
    directory and a file larger than pgstress writes: exit 2, one line, nothing read."""
    record = real_run / "run.json"
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.write(b"{")
        handle.truncate(MAX_INPUT_BYTES + 1)  # sparse: no disk spent
    cases = {"/dev/zero": "is not a regular file (a device, pipe or socket)",
             str(fifo): "is not a regular file (a device, pipe or socket)",
             str(tmp_path): "is not a regular file (a directory)",
             str(huge): "is larger than any file pgstress writes (more than 64 MiB)"}
    for path, message in cases.items():
        done = _limited_compare(str(record), path, "--report-md", str(tmp_path / "c.md"))
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr == f"pgstress compare: error: {path} {message}\n"
    assert not (tmp_path / "c.md").exists()


def test_running_out_of_memory_while_reading_is_one_line(real_run: Path, tmp_path: Path) -> None:
    """A record within the bound whose rows take more memory than the process may have (ulimit -v): one line,
    no traceback."""
    big = tmp_path / "big.json"
    with big.open("w", encoding="ascii") as handle:  # ~60 MiB of numbers: several times that once parsed
        handle.write('{"schema": "pgstress-run", "padding": [')
        handle.write("1.5," * (15 * 1024 * 1024))
        handle.write('1.5]}')
    done = _limited_compare(str(real_run / "run.json"), str(big))
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr == f"pgstress compare: error: {big}: not enough memory to read its rows\n"
