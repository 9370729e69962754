"""--repeat N: each size measured N times in a row, each repetition a fresh record; one row per repetition,
the report and charts on medians with min–max bands, the breaking point where any repetition failed."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import TINY_RAMP, create_pgstress_table, read_chart_data, read_csv, read_run_json, report_points
from psycopg import sql

from pgstress.output.repetitions import group_sizes, noisy_sizes, size_rows
from pgstress.rows import SyncRow
from pgstress.run.iteration import repetition_streams
from pgstress.workload.epochs import ContentHash, generate

RAMP_OF_4 = ["--start-epochs", "1000", "--end-epochs", "4000", "--step-epochs", "1000", "--memory-trace", "off"]


def content_hash(epochs: int, stream: tuple[int, ...], seed: int = 42) -> str:
    content = ContentHash()
    for chunk in generate(epochs, seed, stream):
        content.update_table(chunk.table)
    return content.hexdigest()


def test_each_repetition_writes_a_fresh_record_and_the_first_keeps_todays_bytes() -> None:
    assert repetition_streams([(3,)], 1) == [(3,)]
    sync = [repetition_streams([(3,)], rep)[0] for rep in (1, 2, 3)]
    fanout = [stream for rep in (1, 2) for stream in repetition_streams([(3, 0), (3, 1)], rep)]
    for streams in (sync, fanout):
        hashes = [content_hash(100, stream) for stream in streams]
        assert len(set(hashes)) == len(hashes), streams


def _rep(iteration: int, rep: int, status: str = "OK", **values: float) -> SyncRow:
    return SyncRow(iter=iteration, epochs=iteration * 1000, rep=rep, status=status, **values)


def test_a_size_is_summed_up_by_the_medians_of_its_successful_repetitions() -> None:
    rows = [_rep(1, 1, write_s=1.0, eps=300.0), _rep(1, 2, write_s=3.0, eps=100.0), _rep(1, 3, write_s=2.0, eps=200.0),
            _rep(2, 1, write_s=4.0, eps=500.0), _rep(2, 2, "ERROR"), _rep(2, 3, write_s=6.0, eps=400.0)]
    rows[4].error = "boom"
    first, second = size_rows(rows)
    assert (first.write_s, first.eps, first.status) == (2.0, 200.0, "OK")
    assert (second.write_s, second.eps, second.status) == (5.0, 450.0, "ERROR")  # medians of the two that worked
    assert second.error == "1 of 3 repetitions failed; first: boom"
    sizes = group_sizes(rows)
    assert sizes[0].band("write_s") == (1.0, 3.0) and sizes[0].spread("write_s") == pytest.approx(2.0)
    assert [(size.epochs, name) for size, name, _ in noisy_sizes(rows)] == [(1000, "write_s"), (2000, "write_s")]
    single = [_rep(1, 1, eps=1.0)]
    assert size_rows(single) == single  # measured once: the row itself


def test_repeat_3_on_a_4_size_ramp_one_repetition_rejected_for_real(
        server_dsn: str, db: psycopg.Connection, table_name: str, run_cli, tmp_path: Path) -> None:
    """A CHECK constraint rejects exactly one record, repetition 2 of the 2,000-epoch size (by its content hash):
    12 rows, that size is the breaking point with 1 of 3 repetitions failed, the ramp goes on."""
    create_pgstress_table(db, table_name, "ndjson_zstd")
    rejected = content_hash(2000, repetition_streams([(2,)], 2)[0])
    db.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT one_in_three CHECK (content_hash <> {})").format(
        sql.Identifier(table_name), sql.Literal(rejected)))

    result = run_cli("--dsn", server_dsn, "--table", table_name, *RAMP_OF_4, "--repeat", "3",
                     "--export-json", str(tmp_path / "run.json"), charts=True)

    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "iteration_results.csv")
    assert [(row["iter"], row["epochs"], row["rep"]) for row in rows] == [
        (str(i), str(i * 1000), str(rep)) for i in (1, 2, 3, 4) for rep in (1, 2, 3)]
    failed = [(row["iter"], row["rep"], row["status"]) for row in rows if row["status"] != "OK"]
    assert failed == [("2", "2", "ERROR")]
    assert "one_in_three" in rows[4]["error"] and "23514" in rows[4]["error"]  # check_violation
    assert "[2/4 rep 2/3] 2,000 epochs ERROR" in result.out

    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    points = report_points(report)
    assert points["Breaking point"].startswith("iteration 2, 2,000 epochs, status ERROR")
    assert points["Breaking point"].endswith("(1 of 3 repetitions failed)")
    assert points["Stability point"].startswith("iteration 1, 1,000 epochs, status OK")
    assert "(median of its repetitions)" in points["Optimal efficiency point"]
    assert "where 1 of its 3 repetitions failed" in report
    # The medians table: the size that failed once keeps the median of its other two repetitions.
    ok_reps = {rep: float(row["write_s"]) for rep, row in enumerate(rows[3:6], 1) if row["status"] == "OK"}
    median_2000 = (ok_reps[1] + ok_reps[3]) / 2
    medians = report.split("## Repetitions: each size measured 3 times, median and min–max")[1]
    assert f"| 2 | 2,000 | 2/3 | {median_2000:,.3f} (" in medians
    for i in (1, 3, 4):
        times = sorted(float(row["write_s"]) for row in rows[(i - 1) * 3:i * 3])
        assert f"| {i} | {i * 1000:,} | 3/3 | {times[1]:,.3f} ({times[0]:,.3f}–{times[2]:,.3f}) |" in medians

    chart = read_chart_data(tmp_path / "report_time.png")
    (write_label,) = [label for label in chart["lines"] if label.startswith("write")]
    assert write_label.endswith("(median, min–max band)")
    # Sizes whose every repetition succeeded are drawn: the median, and the band from the min to the max.
    assert [epochs for epochs, _ in chart["lines"][write_label]] == [1000, 3000, 4000]
    for (epochs, median), (band_epochs, low, high) in zip(chart["lines"][write_label], chart["bands"][write_label]):
        times = sorted(float(row["write_s"]) for row in rows if row["epochs"] == str(epochs))
        assert (band_epochs, low, median, high) == (epochs, times[0], times[1], times[2])
    assert chart["breaking"] == {"": 2000} and chart["failures"] == {"": [2000]}

    record = read_run_json(tmp_path / "run.json")
    (ramp,) = record["ramps"]
    assert record["status"] == ramp["status"] == "finished" and ramp["repetitions"] == 3
    assert [(row["iter"], row["rep"], row["status"]) for row in ramp["rows"]] == [
        (int(row["iter"]), int(row["rep"]), row["status"]) for row in rows]
    assert ramp["rows"][4]["error"] == rows[4]["error"]
    breaking = ramp["points"]["breaking"]
    assert (breaking["epochs"], breaking["failed_repetitions"], breaking["repetitions"]) == (2000, 1, 3)
    assert ramp["points"]["median_of_repetitions"] is True


def test_repeat_with_resume_finishes_the_size_cut_short(server_dsn: str, db: psycopg.Connection, table_name: str,
                                                        hooks, run_cli, tmp_path: Path) -> None:
    calls = []

    def interrupt_on_the_second_repetition() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    hooks.before[2] = interrupt_on_the_second_repetition
    argv = ["--dsn", server_dsn, "--table", table_name, *TINY_RAMP, "--repeat", "2"]
    assert run_cli(*argv).code == 130
    hooks.before.clear()
    csv = tmp_path / "iteration_results.csv"
    assert [(row["iter"], row["rep"]) for row in read_csv(csv)] == [("1", "1"), ("1", "2"), ("2", "1")]

    refused = run_cli(*argv[:-1], "3", "--resume")
    assert refused.code == 2 and "--repeat 2 there, 3 now" in refused.err

    result = run_cli(*argv, "--resume")

    assert result.code == 0, result.err
    rows = read_csv(csv)
    assert [(row["iter"], row["rep"], row["status"]) for row in rows] == [
        (str(i), str(rep), "OK") for i in (1, 2, 3) for rep in (1, 2)]
    assert "[1/3 rep" not in result.out and "[2/3 rep 2/2] 2,000 epochs OK" in result.out
    hashes = [content_hash(int(row["epochs"]), repetition_streams([(int(row["iter"]),)], int(row["rep"]))[0])
              for row in rows]
    stored = db.execute(sql.SQL("SELECT content_hash FROM {}").format(sql.Identifier(table_name))).fetchall()
    assert stored == [(hashes[-1],)]  # truncated between repetitions too: only the last record is left
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Iterations 1-1 and the first 1 repetition(s) of iteration 2 were measured by an earlier run" in report
    assert "3 of 3 planned iterations ran" in report
