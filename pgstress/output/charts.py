"""Charts beside the report: each metric against the record size, failures marked, the break drawn.

A chart is a `ChartSpec`: a file name, a title, a y-axis label with its unit, and the row fields
to draw; each mode lists its own (modes.py). Several ramps (one per payload format) share one
chart, one colour each. Drawing uses matplotlib's object API on the Agg canvas: no display, no
pyplot global state.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgstress.output.base import Output, RunResult
from pgstress.output.files import OutputFailed, write_atomic
from pgstress.output.paths import PlannedFile
from pgstress.output.repetitions import group_sizes, is_repeated, size_rows
from pgstress.rows import OK, Row


@dataclass(frozen=True)
class Series:
    field: str  # a row attribute; rows without it (or with None) contribute no point
    label: str
    linestyle: str = "-"


@dataclass(frozen=True)
class ChartSpec:
    name: str  # file name part: <report stem>_<name>.png
    title: str
    ylabel: str
    series: tuple[Series, ...]


@dataclass
class PlottedChart:
    """What was drawn: the file, and the data behind every line (for checking and for tests)."""

    name: str
    title: str
    path: Path
    # legend label -> (epochs, value): the value, or with --repeat the median of the size's repetitions
    lines: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    bands: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)  # label -> (epochs, min, max)
    failures: dict[str, list[int]] = field(default_factory=dict)  # ramp label -> epochs of failed iterations
    breaking: dict[str, int] = field(default_factory=dict)  # ramp label -> epochs of the breaking point

    def data(self) -> dict[str, Any]:
        return {"lines": {label: [list(point) for point in points] for label, points in self.lines.items()},
                "bands": {label: [list(point) for point in points] for label, points in self.bands.items()},
                "failures": self.failures, "breaking": self.breaking}


_LINE_STYLES = ("-", "--", "-.", ":")


def chart(name: str, title: str, ylabel: str, *series: tuple[str, str]) -> ChartSpec:
    """A chart of (field, legend label) series, drawn solid, dashed, dash-dotted and dotted in turn."""
    return ChartSpec(name, title, ylabel, tuple(Series(field, label, _LINE_STYLES[i % len(_LINE_STYLES)])
                                                for i, (field, label) in enumerate(series)))


def _memory_charts(what: str, write: str, read: str) -> tuple[ChartSpec, ChartSpec]:
    """The tracemalloc and resident-memory charts of `what` (the same columns in both modes)."""
    return (
        chart("memory", f"Python memory of {what} (tracemalloc peak)", "MiB",
              ("write_peak_mb", write), ("read_peak_mb", read)),
        chart("rss", f"Resident memory of the whole process during {what} (RSS peak)", "MiB",
              ("write_rss_peak_mb", write), ("read_rss_peak_mb", read)),
    )


def _latency_chart(phase: str) -> ChartSpec:
    return chart(f"{phase}_latency", f"Latency of one record's {phase}", "milliseconds",
                 *((f"{phase}_{name}_ms", name) for name in ("p50", "p95", "p99", "max")))


SYNC_CHARTS: tuple[ChartSpec, ...] = (
    chart("time", "Time to write and to read one record", "seconds",
          ("write_s", "write (generate + encode + insert + commit)"), ("read_s", "read (select + decode)")),
    chart("eps", "Write + read throughput of one record", "epochs / second",
          ("eps", "eps = epochs / (write_s + read_s)")),
    chart("size", "Size of one record", "MiB",
          ("client_payload_mb", "as sent by the client"), ("db_payload_mb", "stored (pg_column_size, after TOAST)")),
    *_memory_charts("one record's write and read", "write", "read"),
)
ASYNC_CHARTS: tuple[ChartSpec, ...] = (
    chart("time", "Wall time of the whole concurrent batch", "seconds",
          ("write_s", "write batch (C records generated, encoded, inserted)"),
          ("read_s", "read batch (C records selected, decoded)")),
    chart("eps", "Throughput summed over the concurrent records", "epochs / second",
          ("write_eps", "write_eps = epochs x writes_ok / write_s"),
          ("read_eps", "read_eps = epochs x reads_ok / read_s")),
    chart("size", "Size of one record", "MiB",
          ("payload_per_record_mb", "as sent by the client"),
          ("db_payload_per_record_mb", "stored (pg_column_size, after TOAST)")),
    *_memory_charts("a level's C records, written at once and read at once", "write batch", "read batch"),
    chart("rps", "Records per second across the concurrent batch", "records / second",
          ("write_rps", "writes"), ("read_rps", "reads")),
    _latency_chart("write"),
    _latency_chart("read"),
)

DATA_KEY = "pgstress-data"  # PNG text chunk holding what was plotted, so the file can be checked
_LEGEND_INSIDE_MAX = 4
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def chart_path(report_md: str | Path, name: str) -> Path:
    report = Path(report_md)
    return report.with_name(f"{report.stem}_{name}.png")


def _epochs_text(value: float, _position: object = None) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def _points(rows: Sequence[Row], name: str) -> list[tuple[int, float]]:
    """(epochs, value) of every size that succeeded: its value, or the median of its repetitions."""
    points = []
    for row in size_rows(rows):
        value = getattr(row, name, None)
        if row.status == OK and isinstance(value, int | float):
            points.append((int(row.epochs), float(value)))
    return points


def _bands(rows: Sequence[Row], name: str) -> list[tuple[int, float, float]]:
    """(epochs, min, max) of the repetitions of every size that succeeded; empty when none was repeated."""
    if not is_repeated(rows):
        return []
    return [(size.epochs, *band) for size in group_sizes(rows) if size.all_ok and (band := size.band(name))]


def draw_chart(spec: ChartSpec, ramps: Mapping[str, Sequence[Row]], path: Path) -> PlottedChart | None:
    """Draw one chart for one or more ramps (label -> rows); None when no series has a point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    chart = PlottedChart(spec.name, spec.title, path)
    several = len(ramps) > 1
    plotted = [(label, rows, series, _points(rows, series.field)) for label, rows in ramps.items()
               for series in spec.series]
    if not any(points for *_, points in plotted):
        return None

    entries = sum(1 for *_, points in plotted if points) + 2 * sum(
        1 for rows in ramps.values() if any(row.status != OK for row in rows))
    legend_below = entries > _LEGEND_INSIDE_MAX
    extra_height = 0.22 * -(-entries // 2) + 0.3 if legend_below else 0.0
    figure = Figure(figsize=(8, 4.5 + extra_height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colours = {label: _COLOURS[i % len(_COLOURS)] for i, label in enumerate(ramps)}
    series_colours = {s.field: _COLOURS[i % len(_COLOURS)] for i, s in enumerate(spec.series)}
    for label, rows, series, points in plotted:
        if not points:
            continue
        legend = series.label
        if several:
            legend = f"{label}: {series.label}" if len(spec.series) > 1 else label
        colour = colours[label] if several else series_colours[series.field]
        xs, ys = zip(*points)
        band = _bands(rows, series.field)
        if band:
            legend += " (median, min–max band)"
            band_xs, lows, highs = zip(*band)
            axes.fill_between(band_xs, lows, highs, color=colour, alpha=0.18, linewidth=0)
            chart.bands[legend] = band
        axes.plot(xs, ys, linestyle=series.linestyle, marker="o", markersize=3, color=colour, label=legend)
        chart.lines[legend] = points

    bottom = axes.get_xaxis_transform()  # x in data, y in axes fraction: marks sit on the x axis
    for label, every_row in ramps.items():
        rows = size_rows(every_row)  # a size failed when any of its repetitions did
        failed = [int(row.epochs) for row in rows if row.status != OK]
        if not failed:
            continue
        chart.failures[label] = failed
        colour = colours[label] if several else "#d62728"
        prefix = f"{label}: " if several else ""
        axes.plot(failed, [0.02] * len(failed), linestyle="none", marker="X", markersize=9, color=colour,
                  transform=bottom, clip_on=False, label=f"{prefix}failed iteration")
        first = next(row for row in rows if row.status != OK)
        chart.breaking[label] = int(first.epochs)
        axes.axvline(first.epochs, color=colour, linestyle="--", linewidth=1.2,
                     label=f"{prefix}breaking point: {first.epochs:,} epochs ({first.status})")

    axes.set_title(spec.title)
    axes.set_xlabel("record size (epochs per record)")
    axes.set_ylabel(spec.ylabel)
    axes.xaxis.set_major_formatter(FuncFormatter(_epochs_text))
    axes.set_ylim(bottom=0)
    if axes.get_ylim()[1] >= 10_000:
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:,.0f}"))
    axes.grid(True, alpha=0.3)
    if legend_below:  # many lines: a legend inside would hide them
        figure.legend(*axes.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize="small")
    else:
        axes.legend(fontsize="small", loc="best")
    save_png(figure, path, chart.data())
    return chart


def save_png(figure: Any, path: Path, data: Mapping[str, Any]) -> None:
    """The figure as a PNG carrying its plotted data (tests read it back); never half a PNG, even on a full disk."""
    png = io.BytesIO()
    figure.savefig(png, format="png", metadata={DATA_KEY: json.dumps(data)})
    write_atomic(path, png.getvalue())


class ChartsOutput(Output):
    """Draws a mode's charts beside the report, one colour per ramp; a failure to draw costs the charts
    (one line on stderr), never the report."""

    def __init__(self, specs: Sequence[ChartSpec], report_md: str | Path, *, enabled: bool = True) -> None:
        self.specs = specs
        self.report_md = report_md
        self.enabled = enabled

    def planned_files(self) -> list[PlannedFile]:
        if not self.enabled:
            return []
        return [PlannedFile("--report-md", str(chart_path(self.report_md, spec.name)), f"chart {spec.name!r}")
                for spec in self.specs]

    def finish(self, result: RunResult) -> None:
        if not self.enabled:
            return
        ramps = {ramp.plan.label: ramp.rows for ramp in result.ramps}
        try:
            for spec in self.specs:
                chart = draw_chart(spec, ramps, chart_path(self.report_md, spec.name))
                keep_chart(result, chart, f"{spec.name} ({spec.title})")
        except OutputFailed:
            raise  # a file that cannot be written is the run's failure (exit status 4), the report still comes
        except Exception as exc:  # noqa: BLE001 - matplotlib trouble: say so and carry on
            print(f"pgstress: charts not drawn: {type(exc).__name__}: {exc}", file=sys.stderr)


def keep_chart(result: RunResult, chart: PlottedChart | None, name: str) -> None:
    """A drawn chart joins the run's charts (the report links them) and files; one without a point is named
    among those not drawn."""
    if chart is None:
        result.charts_not_drawn.append(name)
    else:
        result.charts.append(chart)
        result.files.append(chart.path)


def chart_links(charts: Sequence[PlottedChart], report_md: str | Path) -> list[str]:
    """Markdown that shows each chart, linked relative to the report."""
    base = Path(report_md).parent
    lines: list[str] = []
    for chart in charts:
        try:
            relative = chart.path.relative_to(base)
        except ValueError:
            relative = chart.path
        lines += [f"![{chart.title}]({relative.as_posix()})", ""]
    return lines
