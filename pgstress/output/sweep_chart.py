"""The concurrency sweep's chart beside the report: write_eps against C, one line per record size, and where
each C broke. Drawn like output/charts.py (matplotlib's object API on the Agg canvas)."""

from __future__ import annotations

import sys
from pathlib import Path

from pgstress.config import RunConfig, ramp_configs, ramp_label
from pgstress.output.base import Output, RunResult
from pgstress.output.charts import PlottedChart, chart_path, keep_chart, save_png
from pgstress.output.comparison import compared_levels
from pgstress.output.files import OutputFailed
from pgstress.output.paths import PlannedFile
from pgstress.output.sweep import SweepGroup, group_name, sweep_groups
from pgstress.rows import OK, AsyncRow

MAX_SIZES = 6  # lines on the chart: more would hide each other; the report's table has every size compared


def chart_name(group_name: str) -> str:
    """The chart's name part (<report stem>_<name>.png): one chart per format and compression method compared."""
    return "sweep" + (f"_{group_name.replace(' ', '_')}" if group_name else "")


def planned_chart_names(config: RunConfig) -> list[str]:
    """The name of every chart a sweep run may draw, known from its options before it runs."""
    if not config.concurrency_sweep:
        return []
    names = [chart_name(group_name(ramp_label(config, ramp))) for ramp in ramp_configs(config)]
    return list(dict.fromkeys(names))


def chart_sizes(group: SweepGroup) -> list[int]:
    """Up to MAX_SIZES record sizes, evenly spread over those compared, the largest included."""
    levels = compared_levels(group.runs)
    if len(levels) <= MAX_SIZES:
        return levels
    return sorted({levels[round(i * (len(levels) - 1) / (MAX_SIZES - 1))] for i in range(MAX_SIZES)})


def draw_sweep_chart(group: SweepGroup, path: Path) -> PlottedChart | None:
    """write_eps by C for each record size; None when no level succeeded."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    title = "Write throughput by concurrency" + (f" ({group.name})" if group.name else "")
    chart = PlottedChart("sweep", title, path)
    for epochs in chart_sizes(group):
        label = f"{epochs:,} epochs per record"
        rows = [(run.config.async_concurrency, run, next((r for r in run.rows if r.epochs == epochs), None))
                for run in group.runs]
        points = [(c, float(row.write_eps)) for c, _run, row in rows
                  if isinstance(row, AsyncRow) and row.status == OK and row.write_eps]
        if points:
            chart.lines[label] = points
        failed = [c for c, _run, row in rows if row is not None and row.status != OK]
        if failed:
            chart.failures[label] = failed
    for run in group.runs:
        first = next((row for row in run.rows if row.status != OK), None)
        if first is not None:
            chart.breaking[f"C={run.config.async_concurrency}"] = int(first.epochs)
    if not chart.lines:
        return None

    figure = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, points in chart.lines.items():
        xs, ys = zip(*points)
        axes.plot(xs, ys, marker="o", markersize=4, label=label)
    bottom = axes.get_xaxis_transform()  # x in data, y in axes fraction: marks sit on the x axis
    for name, epochs in chart.breaking.items():
        c = int(name.removeprefix("C="))
        axes.plot([c], [0.03], linestyle="none", marker="X", markersize=10, color="#d62728", transform=bottom,
                  clip_on=False)
        axes.annotate(f"breaks at {epochs:,}", (c, 0.03), xycoords=bottom, xytext=(0, 8), textcoords="offset points",
                      ha="center", fontsize="small", color="#d62728")
    concurrencies = group.concurrencies
    if min(concurrencies) > 0 and max(concurrencies) / min(concurrencies) >= 8:
        axes.set_xscale("log", base=2)  # 1, 4, 16, 64: equal steps
    axes.xaxis.set_major_locator(FixedLocator(concurrencies))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    axes.set_title(title)
    axes.set_xlabel("C: records written at once, each over its own connection")
    axes.set_ylabel("write_eps: epochs stored per second")
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:,.0f}"))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    save_png(figure, path, chart.data())
    return chart


class SweepChartsOutput(Output):
    """With a sweep over C, one chart per payload format and compression method, linked from the report; a failure
    to draw costs the chart (one line on stderr), never the report."""

    def __init__(self, config: RunConfig) -> None:
        self.report_md = config.report_md
        self.enabled = not config.no_charts
        self.names = planned_chart_names(config)

    def planned_files(self) -> list[PlannedFile]:
        if not self.enabled:
            return []
        return [PlannedFile("--report-md", str(chart_path(self.report_md, name)), f"chart {name!r}")
                for name in self.names]

    def finish(self, result: RunResult) -> None:
        if not self.enabled or not result.config.concurrency_sweep:
            return
        try:
            for group in sweep_groups(result.ramps):
                name = chart_name(group.name)
                chart = draw_sweep_chart(group, chart_path(self.report_md, name))
                keep_chart(result, chart, f"{name} (write throughput by concurrency)")
        except OutputFailed:
            raise  # a file that cannot be written is the run's failure (exit status 4), the report still comes
        except Exception as exc:  # noqa: BLE001 - matplotlib or file trouble: say so and carry on
            print(f"pgstress: sweep chart not drawn: {type(exc).__name__}: {exc}", file=sys.stderr)
