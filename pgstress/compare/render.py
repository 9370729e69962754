"""What `compare` shows: what differs between the runs first, then every measure side by side at the
common sizes with its ratio to the first run, the geometric mean of the ratios and the verdict; as
markdown, as a table on the terminal, and as a chart of the ratios."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgstress.compare.loading import LoadedRun
from pgstress.compare.verdicts import CANNOT_TELL, MIN_REPETITIONS, NO_DIFFERENCE, SizePair, Verdict
from pgstress.output.charts import save_png
from pgstress.output.standby_compared import HEADING as STANDBY_HEADING
from pgstress.output.standby_compared import StandbyRamp, standby_comparison
from pgstress.output.tables import Column, markdown_table
from pgstress.rows import Row

# Options that say where outputs go or how the run was driven, not what was measured.
NOT_COMPARED = frozenset({"results_csv", "async_results_csv", "report_md", "export_json", "quiet", "no_charts",
                          "resume", "fail_on_break", "drop_table", "truncate_before_start", "dsn", "server"})
RULE = (f"At one size, a run is called faster or slower (smaller or larger) than the first only when the min–max"
        f" ranges of their successful repetitions do not overlap, with {MIN_REPETITIONS} repetitions or more on each"
        " side (were both the same thing, 3 and 3 would fall apart by chance 1 time in 10); a measure gets that"
        " verdict when it holds at most of the common sizes (more than half) and the opposite at none. Otherwise the"
        " difference is within the noise, or, with fewer repetitions, cannot be told. Repetitions run back to"
        " back, so their range is the noise within a run; runs made at different times also differ by what else"
        " the machine was doing (see the load averages above): compare a rerun of the same configuration with the"
        " first to see that part.")


@dataclass
class Comparison:
    """One group of paired ramps (a run's only ramp, or the same format and compression in every run)."""

    key: str  # empty when every run has one ramp
    sizes: list[int]
    verdicts: list[list[Verdict]] = field(default_factory=list)  # per later run, per measure
    rows: list[Sequence[Row]] = field(default_factory=list)  # per run, the paired ramp's rows (its standby measures)


def run_names(runs: Sequence[LoadedRun]) -> list[str]:
    """How the reports name each run: its file name, or its path where two file names are the same."""
    names = [run.path.name for run in runs]
    return names if len(set(names)) == len(names) else [str(run.path) for run in runs]


def _text(value: Any) -> str:
    if value is None:
        return "(not recorded)"
    if isinstance(value, list | tuple) and all(isinstance(item, float) for item in value):
        return ", ".join(f"{item:.2f}" for item in value)  # the load averages
    return str(value)


def _differences(what: str, values: Sequence[dict[str, Any] | None]) -> list[list[str]]:
    """[name, value in each run] of every key whose value differs between the runs that recorded it (what one
    run did not record is not a difference: `not_recorded` says so once)."""
    keys: list[str] = []
    for found in values:
        keys += [key for key in (found or {}) if key not in keys and key.replace("-", "_") not in NOT_COMPARED]
    rows = []
    for key in keys:
        recorded = {_text(found[key]) for found in values if found is not None and found.get(key) is not None}
        if len(recorded) > 1:
            rows.append([f"{what}{key}", *(_text((found or {}).get(key)) for found in values)])
    return rows


def not_recorded(runs: Sequence[LoadedRun]) -> list[str]:
    """Runs read from a CSV, which lacks the server's version and settings, the machine and how it ended."""
    return [f"{name} was read from a CSV and its run record: its server version and settings, machine and end"
            " are not recorded, so they are not compared" for name, run in zip(run_names(runs), runs)
            if run.host is None]


def differences(runs: Sequence[LoadedRun]) -> list[list[str]]:
    """What differs between the runs' configurations, servers and machines, and how each ended."""
    rows = [["how the run ended", *(run.status for run in runs)]]
    recorded = [run.host is not None for run in runs]  # a CSV's run record names fewer options
    options = [{key.replace("_", "-"): value for key, value in run.config.items()} for run in runs]
    shared = set.intersection(*(set(found) for found in options))
    rows += _differences("--", [{key: value for key, value in found.items() if key in shared or all(recorded)}
                                for found in options])
    rows += _differences("server ", [{key: value for key, value in run.server.items() if key != "settings"}
                                     for run in runs])
    rows += _differences("server setting ", [run.server.get("settings") for run in runs])
    rows += _differences("host ", [{key: value for key, value in run.host.items() if key not in ("packages",
                                                                                                 "started_at")}
                                   if run.host is not None else None for run in runs])
    rows += _differences("package ", [run.host.get("packages") if run.host else None for run in runs])
    return rows


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _median(values: list[float], digits: int) -> str:
    if not values:
        return "—"
    median = statistics.median(values)
    if len(values) > 1 and min(values) != max(values):
        return f"{median:,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"
    return f"{median:,.{digits}f}"


def _cell(values: list[float], failed: int, digits: int) -> str:
    text = _median(values, digits)
    return f"{text}, {failed} failed" if failed else text


def _digits(pairs: Sequence[SizePair]) -> int:
    largest = max((value for pair in pairs for value in (*pair.a, *pair.b)), default=0.0)
    return 0 if largest >= 1000 else 2 if largest >= 10 else 3


def verdict_text(verdict: Verdict) -> str:
    return verdict.verdict if verdict.verdict in (NO_DIFFERENCE, CANNOT_TELL) else f"**{verdict.verdict}**"


def measure_table(names: Sequence[str], verdicts: Sequence[Verdict]) -> str:
    """One measure at every common size: the first run, then each other run with its ratio to the first."""
    digits = _digits([pair for verdict in verdicts for pair in verdict.pairs])
    first = verdicts[0].pairs
    columns = [Column("epochs", lambda i: f"{first[i].epochs:,}"),
               Column(f"{names[0]}", lambda i: _cell(first[i].a, first[i].a_failed, digits))]
    for name, verdict in zip(names[1:], verdicts):
        columns += _other_run_columns(name, verdict, digits)
    return markdown_table(range(len(first)), columns)


def _other_run_columns(name: str, verdict: Verdict, digits: int) -> list[Column]:
    pairs = verdict.pairs
    return [Column(name, lambda i: _cell(pairs[i].b, pairs[i].b_failed, digits)),
            Column("ratio", lambda i: _ratio(pairs[i].ratio))]


def _cell_column(title: str, index: int) -> Column:
    """The column showing cell `index` of each row (a list of strings)."""
    return Column(title, lambda row: row[index])


def render_markdown(runs: Sequence[LoadedRun], comparisons: Sequence[Comparison], chart: Path | None,
                    report: Path) -> str:
    names = run_names(runs)
    out = ["# pgstress comparison", "",
           f"Runs compared, each against the first ({names[0]}): " + ", ".join(
               f"`{run.path}` ({run.mode}, {run.repetitions} repetition(s) per size)" for run in runs) + ".", "",
           "## What differs between the runs", ""]
    out += [markdown_table(differences(runs), [_cell_column("", 0),
                                               *(_cell_column(name, i + 1) for i, name in enumerate(names))]), ""]
    out += [f"- {line}." for line in not_recorded(runs)]
    out += ["", "Options, server and machine not listed are the same in every run that recorded them.", "",
            "## Verdicts", "", f"Rule: {RULE} Ratios are medians of the run over medians of the first run;"
            " the geometric mean is taken over the common sizes.", ""]
    for comparison in comparisons:
        title = f" ({comparison.key})" if comparison.key else ""
        out += [f"### Summary{title}: {len(comparison.sizes)} common size(s), {_span(comparison.sizes)}", ""]
        out += [summary_markdown(names, comparison), ""]
        for measure_verdicts in zip(*comparison.verdicts):
            measure = measure_verdicts[0].measure
            out += [f"#### {measure.title} (`{measure.field}`){title}", "",
                    measure_table(names, measure_verdicts), ""]
            out += [f"- {name}: {verdict_text(verdict)} ({verdict.reason}); geometric mean of the ratios"
                    f" {_ratio(verdict.geometric_mean) or 'n/a'}" for name, verdict in zip(names[1:], measure_verdicts)]
            out.append("")
    for comparison in comparisons:
        out += standby_comparison(standby_ramps(runs, comparison), "run",
                                  f"## {STANDBY_HEADING}, run by run{f' ({comparison.key})' if comparison.key else ''}")
    if chart is not None:
        try:
            link = chart.relative_to(report.parent)
        except ValueError:
            link = chart
        out += ["## Chart", "", f"![Ratios to {names[0]}]({link.as_posix()})", ""]
    return "\n".join(out)


def standby_ramps(runs: Sequence[LoadedRun], comparison: Comparison) -> list[StandbyRamp]:
    """Each run's paired ramp as the standby comparison names it, with whether its standby was synchronous."""
    return [StandbyRamp(name, rows, bool(run.config.get("synchronous_standby")))
            for name, run, rows in zip(run_names(runs), runs, comparison.rows)]


def _span(sizes: Sequence[int]) -> str:
    return f"{sizes[0]:,} epochs" if len(sizes) == 1 else f"{sizes[0]:,} to {sizes[-1]:,} epochs"


def summary_markdown(names: Sequence[str], comparison: Comparison) -> str:
    rows = _summary_rows(names, comparison)
    columns = [_cell_column("measure", 0)]
    for i, name in enumerate(names[1:]):
        columns += [_cell_column(f"{name}: geometric mean ratio", 1 + 2 * i),
                    _cell_column(f"{name}: verdict", 2 + 2 * i)]
    return markdown_table(rows, columns)


def _summary_rows(names: Sequence[str], comparison: Comparison) -> list[list[str]]:
    rows = []
    for measure_verdicts in zip(*comparison.verdicts):
        row = [measure_verdicts[0].measure.field]
        for verdict in measure_verdicts:
            row += [_ratio(verdict.geometric_mean) or "n/a", verdict.verdict]
        rows.append(row)
    return rows


def terminal_lines(runs: Sequence[LoadedRun], comparisons: Sequence[Comparison]) -> list[str]:
    """The plain-text table the terminal gets: what differs, then per measure the ratio and the verdict."""
    names = run_names(runs)
    lines = [f"pgstress compare: {', '.join(names[1:])} against {names[0]}"]
    lines += [f"  {row[0]}: " + " | ".join(row[1:]) for row in differences(runs)]
    lines += [f"  ({line})" for line in not_recorded(runs)]
    for comparison in comparisons:
        title = f" ({comparison.key})" if comparison.key else ""
        lines.append(f"{len(comparison.sizes)} common size(s){title}, {_span(comparison.sizes)}:")
        header = ["measure", *(f"{name} {part}" for name in names[1:] for part in ("ratio", "verdict"))]
        table = [header, *_summary_rows(names, comparison)]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    lines.append(f"rule: {RULE}")
    return lines


CHARTED = ("write_s", "read_s", "total_s", "write_eps", "db_payload_mb", "db_payload_per_record_mb")


def draw_ratios(names: Sequence[str], comparisons: Sequence[Comparison], path: Path) -> dict[str, Any] | None:
    """A chart of the main measures' ratios to the first run at each common size, with the band the
    repetitions allow; None when there is nothing to draw. Its data is kept in the PNG's text chunk."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data: dict[str, Any] = {"lines": {}, "bands": {}}
    figure = Figure(figsize=(8, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for comparison in comparisons:
        for name, verdicts in zip(names[1:], comparison.verdicts):
            for verdict in verdicts:
                if verdict.measure.field not in CHARTED:
                    continue
                points = [(pair.epochs, ratio) for pair in verdict.pairs if (ratio := pair.ratio) is not None]
                if not points:
                    continue
                label = " ".join(part for part in (name, comparison.key, verdict.measure.field) if part)
                line = axes.plot(*zip(*points), marker="o", markersize=3, label=label)[0]
                data["lines"][label] = [list(point) for point in points]
                band = [(pair.epochs, *found) for pair in verdict.pairs if (found := pair.ratio_band) is not None]
                if band:
                    xs, lows, highs = zip(*band)
                    axes.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.15, linewidth=0)
                    data["bands"][label] = [list(point) for point in band]
    if not data["lines"]:
        return None
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_title(f"Ratio to {names[0]} (median / median; band: the repetitions' range)")
    axes.set_xlabel("record size (epochs per record)")
    axes.set_ylabel("ratio (1 = the same)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    save_png(figure, path, data)  # written aside and renamed, as a run's charts: never half a PNG
    return data
