"""Charts: what is drawn (read back from the PNG files themselves), and the report's links to them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib.image
import pytest
from helpers import read_chart_data, read_csv

from pgstress.config import RunConfig
from pgstress.host import collect_host
from pgstress.output.base import RampPlan, RampResult, RunContext, RunResult
from pgstress.output.charts import (
    ASYNC_CHARTS,
    SYNC_CHARTS,
    ChartsOutput,
    ChartSpec,
    PlottedChart,
    Series,
    chart_links,
    chart_path,
    draw_chart,
)
from pgstress.output.files import OutputFailed
from pgstress.rows import AsyncRow, Row, SyncRow
from pgstress.run.ramp import RampOutcome
from pgstress.target import ServerDetails, ServerInfo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_NAMES = ("time", "eps", "size", "memory", "rss")
IMAGE_LINK = re.compile(r"^!\[([^\]]+)\]\(([^)]+\.png)\)$", re.M)


def sync_row(iteration: int, epochs: int, status: str = "OK", trace: bool = True) -> SyncRow:
    if status != "OK":
        return SyncRow(iter=iteration, epochs=epochs, status=status, error="boom")
    return SyncRow(iter=iteration, epochs=epochs, status="OK", write_s=epochs / 1e4, read_s=epochs / 2e4,
                   total_s=epochs * 1.5e-4, eps=epochs / (epochs * 1.5e-4), client_payload_mb=epochs / 3000,
                   db_payload_mb=epochs / 9000, write_peak_mb=epochs / 500 if trace else None,
                   read_peak_mb=epochs / 700 if trace else None, write_rss_peak_mb=80.0, read_rss_peak_mb=90.0)


def draw_charts(specs: Sequence[ChartSpec], ramps: dict[str, list[Row]], report_md: Path) -> list[PlottedChart]:
    drawn = (draw_chart(spec, ramps, chart_path(report_md, spec.name)) for spec in specs)
    return [chart for chart in drawn if chart is not None]


def finished_run(rows: list[Row], report_md: Path) -> RunResult:
    config = RunConfig(report_md=str(report_md))
    context = RunContext(config, collect_host(), ServerInfo("", "--dsn", False), ServerDetails())
    return RunResult(context, [RampResult(RampPlan(config, "t"), RampOutcome(rows=rows))])


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _channels = matplotlib.image.imread(path).shape
    assert (width, height) == (800, 450)


def test_each_sync_chart_plots_every_ok_iteration_and_marks_the_failures(tmp_path: Path) -> None:
    rows = [sync_row(1, 1000), sync_row(2, 2000), sync_row(3, 3000), sync_row(4, 4000, "DB_LIMIT"),
            sync_row(5, 5000, "DB_LIMIT")]
    charts = draw_charts(SYNC_CHARTS, {"": rows}, tmp_path / "out" / "rep.md")
    assert [chart.name for chart in charts] == ["time", "eps", "size", "memory", "rss"]
    expected_labels = {"time": 2, "eps": 1, "size": 2, "memory": 2, "rss": 2}
    for chart in charts:
        assert chart.path == tmp_path / "out" / f"rep_{chart.name}.png"
        assert_valid_png(chart.path)
        assert len(chart.lines) == expected_labels[chart.name]
        for points in chart.lines.values():
            assert [epochs for epochs, _ in points] == [1000, 2000, 3000]
        assert chart.failures == {"": [4000, 5000]}
        assert chart.breaking == {"": 4000}
        assert read_chart_data(chart.path) == chart.data()
    write_s = next(c for c in charts if c.name == "time").lines["write (generate + encode + insert + commit)"]
    assert write_s == [(1000, 0.1), (2000, 0.2), (3000, 0.3)]


def test_series_without_values_are_left_out_and_an_empty_chart_is_not_drawn(tmp_path: Path) -> None:
    rows = [sync_row(1, 1000, trace=False), sync_row(2, 2000, trace=False)]
    charts = draw_charts(SYNC_CHARTS, {"": rows}, tmp_path / "rep.md")
    assert [c.name for c in charts] == ["time", "eps", "size", "rss"]  # no tracemalloc figures: no such chart
    nothing = [SyncRow(iter=1, epochs=1000, status="ERROR")]
    assert draw_chart(SYNC_CHARTS[0], {"": nothing}, tmp_path / "empty.png") is None
    assert not (tmp_path / "empty.png").exists()


def test_several_ramps_share_a_chart_one_line_each(tmp_path: Path) -> None:
    ramps = {
        "bson": [sync_row(1, 1000), sync_row(2, 2000)],
        "jsonb": [sync_row(1, 1000), sync_row(2, 2000, "DB_LIMIT")],
    }
    chart = draw_chart(SYNC_CHARTS[1], ramps, tmp_path / "eps.png")
    assert chart is not None
    assert {label: len(points) for label, points in chart.lines.items()} == {"bson": 2, "jsonb": 1}
    assert chart.failures == {"jsonb": [2000]}
    assert chart.breaking == {"jsonb": 2000}


def test_async_charts_are_specs_over_the_same_drawing(tmp_path: Path) -> None:
    percentiles = [f"{phase}_{name}_ms" for phase in ("write", "read") for name in ("p50", "p95", "p99", "max")]
    rows = [AsyncRow(iter=i, concurrency=2, epochs=i * 1000, status="OK", write_rps=10.0 / i, read_rps=20.0 / i,
                     **{name: float(i * k) for name, k in zip(percentiles, (1, 2, 3, 4, 1, 2, 3, 4))})
            for i in (1, 2, 3)]
    charts = draw_charts([spec for spec in ASYNC_CHARTS if spec.name in ("rps", "write_latency", "read_latency")],
                         {"": rows}, tmp_path / "rep.md")
    assert [c.name for c in charts] == ["rps", "write_latency", "read_latency"]
    assert [len(c.lines) for c in charts] == [2, 4, 4]
    assert charts[1].lines["p99"] == [(1000, 3.0), (2000, 6.0), (3000, 9.0)]
    for chart in charts:
        assert_valid_png(chart.path)


def test_a_crowded_chart_gets_its_legend_below_and_grows_to_fit(tmp_path: Path) -> None:
    ramps = {name: [sync_row(1, 1000), sync_row(2, 2000)] for name in ("bson", "jsonb", "ndjson_zstd")}
    chart = draw_chart(SYNC_CHARTS[0], ramps, tmp_path / "time.png")
    assert chart is not None and len(chart.lines) == 6
    height, width, _ = matplotlib.image.imread(chart.path).shape
    assert width == 800 and height > 450


def test_a_custom_spec_needs_nothing_else(tmp_path: Path) -> None:
    spec = ChartSpec("db_row", "Row size", "MiB", (Series("db_payload_mb", "payload"),))
    chart = draw_chart(spec, {"": [sync_row(1, 900)]}, tmp_path / "row.png")
    assert chart is not None and chart.lines == {"payload": [(900, 0.1)]}


def test_charts_can_be_turned_off_and_a_file_that_cannot_be_written_is_the_runs_failure(tmp_path: Path) -> None:
    off = finished_run([sync_row(1, 1000)], tmp_path / "r.md")
    ChartsOutput(SYNC_CHARTS, tmp_path / "r.md", enabled=False).finish(off)
    assert off.charts == [] and off.files == []
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    blocked = finished_run([sync_row(1, 1000)], blocker / "r.md")
    with pytest.raises(OutputFailed, match=r"could not write .*a_file/r_time.png: "):
        ChartsOutput(SYNC_CHARTS, blocker / "r.md").finish(blocked)  # the session records it: exit status 4
    assert blocked.charts == [] and blocked.files == []
    assert [path.name for path in tmp_path.rglob("*") if path.name != "a_file"] == []  # no half-written PNG


def test_the_output_draws_what_has_values_and_names_what_has_none(tmp_path: Path) -> None:
    result = finished_run([sync_row(1, 1000, trace=False), sync_row(2, 2000, trace=False)], tmp_path / "r.md")
    ChartsOutput(SYNC_CHARTS, tmp_path / "r.md").finish(result)
    assert [chart.name for chart in result.charts] == ["time", "eps", "size", "rss"]
    assert result.files == [chart.path for chart in result.charts]
    assert result.charts_not_drawn == ["memory (Python memory of one record's write and read (tracemalloc peak))"]


def test_links_are_relative_to_the_report(tmp_path: Path) -> None:
    charts = draw_charts(SYNC_CHARTS[:1], {"": [sync_row(1, 1000)]}, tmp_path / "reports" / "r.md")
    assert chart_links(charts, tmp_path / "reports" / "r.md") == [
        "![Time to write and to read one record](r_time.png)", ""]


# --- a real run -----------------------------------------------------------------------------------------------

RAMP = ("--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000")


def test_a_run_writes_the_charts_the_report_links_them(run_cli, server_dsn, db, table_name, tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--quiet", *RAMP, charts=True)
    assert result.code == 0, result.err
    links = IMAGE_LINK.findall(report.read_text())
    assert [target for _, target in links] == [f"report_{name}.png" for name in CHART_NAMES]
    csv_rows = read_csv(tmp_path / "iteration_results.csv")
    for _title, target in links:
        path = tmp_path / target
        assert_valid_png(path)
        data = read_chart_data(path)
        assert data["failures"] == {} and data["breaking"] == {}
        for points in data["lines"].values():  # one point per successful iteration, at its size
            assert [epochs for epochs, _ in points] == [int(row["epochs"]) for row in csv_rows]
    eps = read_chart_data(tmp_path / "report_eps.png")["lines"]
    assert [value for _, value in next(iter(eps.values()))] == pytest.approx([float(r["eps"]) for r in csv_rows])


def test_no_charts_writes_none_and_links_none(run_cli, server_dsn, db, table_name, tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--quiet", "--no-charts", *RAMP)
    assert result.code == 0, result.err
    assert list(tmp_path.glob("*.png")) == []
    text = (tmp_path / "report.md").read_text()
    assert "## Charts" not in text and IMAGE_LINK.search(text) is None
