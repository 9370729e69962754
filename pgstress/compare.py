"""`--payload-format all`: one ramp per format, each on its own table, and the report comparing them.

The loop takes the ramp to run as a function of the per-format configuration, so either runner
(sync today; the async fan-out later) plugs into it; the report is written from the rows alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pgstress.analysis import Points, conclusion, find_points
from pgstress.config import RunConfig
from pgstress.environment import ServerDetails
from pgstress.measure import release_freed_memory
from pgstress.payloads import format_names
from pgstress.ramp import RampOutcome
from pgstress.report import (
    MEASUREMENT_NOTES,
    Column,
    RunRecord,
    col,
    compression_text,
    markdown_table,
    render_context,
)

MAX_COMPARED_LEVELS = 12  # rows per side-by-side table; the full table holds every iteration
NOISE_PERCENT = 10  # a speed lead smaller than this is not called a win (single runs vary 10-30 %)


@dataclass
class FormatRun:
    """One format's ramp: its configuration (own table), what happened, and its table."""

    config: RunConfig
    outcome: RampOutcome
    table_bytes: int | None = None
    details: ServerDetails | None = None

    @property
    def format(self) -> str:
        return self.config.payload_format

    @property
    def points(self) -> Points:
        return find_points(self.outcome.rows)


def format_configs(config: RunConfig) -> list[RunConfig]:
    """One configuration per registered format, each on the table `<table>_<format>`."""
    return [replace(config, payload_format=name, table=f"{config.table}_{name}") for name in format_names()]


def longest_table_suffix() -> int:
    return max(len(f"_{name}") for name in format_names())


def run_each_format(configs: Sequence[RunConfig],
                    run_one: Callable[[RunConfig], tuple[RampOutcome, int | None]]) -> list[FormatRun]:
    """Run the formats one after another; an interrupted ramp ends the whole run there."""
    runs: list[FormatRun] = []
    for config in configs:
        release_freed_memory()  # each format's resident peaks start from a trimmed heap, not the last one's
        outcome, table_bytes = run_one(config)
        runs.append(FormatRun(config, outcome, table_bytes))
        if outcome.interrupted:
            break
    return runs


@dataclass(frozen=True)
class Metric:
    field: str
    title: str
    digits: int


COMPARED_METRICS = (
    Metric("write_s", "Write time (generate + encode + insert + commit), seconds", 3),
    Metric("read_s", "Read time (select + decode), seconds", 3),
    Metric("eps", "Throughput, epochs per second of write + read", 0),
    Metric("client_payload_mb", "Size as sent by the client, MiB", 2),
    Metric("db_payload_mb", "Size stored (pg_column_size, after TOAST), MiB", 2),
    Metric("write_peak_mb", "Write tracemalloc peak, MiB", 1),
    Metric("read_peak_mb", "Read tracemalloc peak, MiB", 1),
    Metric("write_rss_peak_mb", "Write resident (RSS) peak, MiB", 1),
    Metric("read_rss_peak_mb", "Read resident (RSS) peak, MiB", 1),
)
NOT_RUN = "—"


def compared_levels(runs: Sequence[FormatRun], limit: int = MAX_COMPARED_LEVELS) -> list[int]:
    """The record sizes the side-by-side tables show: evenly spaced over every size any format ran,
    first and last included, plus each format's breaking point."""
    levels = sorted({row.epochs for run in runs for row in run.outcome.rows})
    if len(levels) > limit:
        picks = {levels[round(i * (len(levels) - 1) / (limit - 1))] for i in range(limit)}
    else:
        picks = set(levels)
    picks |= {run.points.breaking.epochs for run in runs if run.points.breaking is not None}
    return sorted(picks)


def metric_cell(run: FormatRun, epochs: int, field: str) -> Any:
    """The value at that size; the status when the iteration failed; NOT_RUN when it never ran."""
    row = next((r for r in run.outcome.rows if r.epochs == epochs), None)
    if row is None:
        return NOT_RUN
    if row.status != "OK":
        return row.status
    value = getattr(row, field, None)
    return NOT_RUN if value is None else value


def side_by_side_table(runs: Sequence[FormatRun], metric: Metric, levels: Sequence[int]) -> str:
    columns = [Column("epochs", lambda epochs: f"{epochs:,}")] + [
        Column(run.format, lambda epochs, _run=run: metric_cell(_run, epochs, metric.field), metric.digits)
        for run in runs
    ]
    return markdown_table(levels, columns)


def _ok_row(run: FormatRun, epochs: int) -> Any | None:
    return next((r for r in run.outcome.rows if r.epochs == epochs and r.status == "OK"), None)


def _largest_working(run: FormatRun) -> int | None:
    points = run.points
    if points.breaking is not None:
        return points.stability.epochs if points.stability is not None else None
    return max((r.epochs for r in run.outcome.rows if r.status == "OK"), default=None)


def _memory_peak(row: Any) -> tuple[float, str] | None:
    traced = [v for v in (row.write_peak_mb, row.read_peak_mb) if v is not None]
    if traced:
        return max(traced), "tracemalloc peak"
    resident = [v for v in (row.write_rss_peak_mb, row.read_rss_peak_mb) if v is not None]
    return (max(resident), "resident peak") if resident else None


def _ranking(values: dict[str, float], unit: str, digits: int, *, lowest: bool) -> tuple[str, str]:
    """The winner and a phrase listing the others, e.g. 'against 3.1 MiB (jsonb), 4.0 MiB (bson)'."""
    ordered = sorted(values.items(), key=lambda item: item[1], reverse=not lowest)
    winner = ordered[0][0]
    others = ", ".join(f"{value:,.{digits}f} {unit} ({name})" for name, value in ordered[1:])
    return winner, (f" against {others}" if others else "")


def recommendation(runs: Sequence[FormatRun]) -> list[str]:
    """Markdown lines that pick a format per concern, written from the numbers."""
    if not runs:
        return ["No format ran, so there is nothing to compare."]
    intro: list[str] = []
    bullets: list[str] = []
    wins: dict[str, list[str]] = {run.format: [] for run in runs}
    compared = [run for run in runs if any(row.status == "OK" for row in run.outcome.rows)]
    left_out = [run.format for run in runs if run not in compared]
    if left_out:
        intro.append(f"{' and '.join(left_out)} had no successful iteration and is left out of the size, speed and"
                     " memory comparison.")
    shared = [epochs for epochs in sorted({r.epochs for run in compared for r in run.outcome.rows})
              if all(_ok_row(run, epochs) is not None for run in compared)]
    if shared and len(compared) > 1:
        level = shared[-1]
        rows = {run.format: _ok_row(run, level) for run in compared}
        intro.append(f"Sizes compared at {level:,} epochs, the largest record every compared format wrote and read"
                     f" back; speed over all {len(shared)} sizes that every one of them completed:")
        stored = {name: row.db_payload_mb for name, row in rows.items() if row.db_payload_mb is not None}
        if stored:
            best, rest = _ranking(stored, "MiB", 2, lowest=True)
            per_epoch = stored[best] * 1048576 / level
            bullets.append(f"**smallest on disk: {best}**, {stored[best]:,.2f} MiB per record"
                           f" ({per_epoch:,.0f} bytes per epoch){rest}.")
            wins[best].append("smallest on disk")
        # Speed over every size all formats completed, not one size: a single iteration is too noisy.
        seconds = {run.format: [_ok_row(run, epochs).total_s for epochs in shared] for run in compared}
        speed = {name: sum(shared) / sum(spent) for name, spent in seconds.items()
                 if None not in spent and sum(spent) > 0}
        if speed:
            best, rest = _ranking(speed, "epochs/s", 0, lowest=False)
            ordered = sorted(speed.values(), reverse=True)
            margin = (ordered[0] / ordered[1] - 1) * 100 if len(ordered) > 1 else None
            close = f"; only {margin:.0f} % ahead of the next, within one run's noise" if margin is not None \
                and margin < NOISE_PERCENT else ""
            bullets.append(f"**fastest: {best}**, {sum(seconds[best]):,.2f} s to write and read one record of each of"
                           f" the {len(shared)} sizes, {speed[best]:,.0f} epochs/s{rest}{close}.")
            if not close:
                wins[best].append("fastest")
        peaks = {name: peak for name, row in rows.items() if (peak := _memory_peak(row)) is not None}
        if peaks:
            kind = next(iter(peaks.values()))[1]
            best, rest = _ranking({name: value for name, (value, _) in peaks.items()}, "MiB", 1, lowest=True)
            bullets.append(f"**lowest client memory: {best}**, {peaks[best][0]:,.1f} MiB {kind} of the"
                           f" heavier phase{rest}.")
            wins[best].append("lowest memory")
    elif len(compared) > 1:
        intro.append("No record size succeeded in every format, so they cannot be compared at one size.")
    largest = {run.format: _largest_working(run) for run in runs}
    broken = {run.format: run.points.breaking for run in runs if run.points.breaking is not None}
    working = {name: epochs for name, epochs in largest.items() if epochs is not None}
    if working:
        top = max(working.values())
        leaders = [name for name, epochs in working.items() if epochs == top]
        if broken:
            each = "; ".join(f"{name}: {epochs:,} epochs" if epochs is not None else f"{name}: none"
                             for name, epochs in largest.items())
            breaks = "; ".join(f"{name} broke at {row.epochs:,} epochs ({row.status})" for name, row in broken.items())
            bullets.append(f"**largest size that works: {' and '.join(leaders)}** ({each}); {breaks}.")
            for name in leaders:
                wins[name].append("largest size that works")
        else:
            bullets.append(f"**largest size that works:** no format broke; all worked up to {top:,} epochs"
                           " (the end of the ramp).")
    closing: list[str] = []
    ranked = sorted(wins.items(), key=lambda item: len(item[1]), reverse=True)
    if ranked[0][1] and (len(ranked) == 1 or len(ranked[0][1]) > len(ranked[1][1])):
        name, reasons = ranked[0]
        closing.append(f"On these numbers **{name}** is the format to choose: {', '.join(reasons)}.")
    elif any(reasons for _, reasons in ranked):
        closing.append("No format wins outright: choose by the concern that matters most to you.")
    closing.append(f"These are single measurements on this machine; differences under ~{NOISE_PERCENT} % can be noise.")
    lines = [" ".join(intro), ""] if intro else []
    if bullets:
        lines += [f"- {bullet}" for bullet in bullets] + [""]
    return [*lines, " ".join(closing)]


def _points_table(runs: Sequence[FormatRun], unit: str) -> str:
    def breaking(run: FormatRun) -> str:
        row = run.points.breaking
        return "none reached" if row is None else f"{row.epochs:,} epochs (iteration {row.iter}, {row.status})"

    def stability(run: FormatRun) -> str:
        row = run.points.stability
        return "none" if row is None else f"{row.epochs:,} epochs"

    def optimal(run: FormatRun) -> str:
        row = run.points.optimal
        return "none" if row is None else f"{row.epochs:,} epochs, {row.efficiency:,.0f} {unit}"

    columns = [
        Column("format", lambda run: run.format),
        Column("iterations run", lambda run: f"{len(run.outcome.rows)} of {run.outcome.planned_levels}"),
        Column("breaking point", breaking), Column("stability point", stability),
        Column("optimal efficiency point", optimal),
    ]
    return markdown_table(runs, columns)


@dataclass
class ComparisonRecord:
    """What the comparison report is written from: the shared context and each format's run."""

    context: RunRecord  # config (payload_format all), host, server, server settings
    runs: list[FormatRun]
    chart_lines: list[str]
    planned_formats: int

    @property
    def interrupted(self) -> bool:
        return any(run.outcome.interrupted for run in self.runs)


def render_comparison(record: ComparisonRecord) -> str:
    runs, unit = record.runs, record.context.efficiency_unit
    out = ["# PostgreSQL huge-payload stress test report: payload formats compared", ""]
    if record.interrupted:
        out += [f"> **INTERRUPTED** (Ctrl-C) during format {len(runs)} of {record.planned_formats};"
                " this report covers what finished.", ""]
    shared_context = replace(record.context, server_details=replace(record.context.server_details,
                                                                    payload_column_compression=None))
    out += render_context(shared_context, {run.config.table: run.table_bytes for run in runs})
    compression = [f"- `payload` column compression of `{run.config.table}`: {compression_text(run.details)}"
                   for run in runs if run.details is not None and run.details.payload_column_compression]
    if compression:
        out[-1:-1] = compression

    out += ["## 4. Breaking point, stability point, optimal efficiency point of each format", "",
            _points_table(runs, unit), ""]
    for run in runs:
        if run.points.breaking is not None and run.points.breaking.error:
            out.append(f"- {run.format} breaking error: {run.points.breaking.error}")
    if any(run.points.breaking is not None for run in runs):
        out.append("")

    out += ["## 5. Recommendation", "", *recommendation(runs), ""]
    out += ["### Each format on its own", ""]
    for run in runs:
        rows = run.outcome.rows
        said = conclusion(rows, run.points, interrupted=run.outcome.interrupted, stop_reason=run.outcome.stop_reason,
                          planned=run.outcome.planned_levels, unit=unit)
        out += [f"- **{run.format}**: " + " ".join(said)]
    out.append("")

    levels = compared_levels(runs)
    all_levels = {row.epochs for run in runs for row in run.outcome.rows}
    out += ["## 6. Side by side at the same record sizes", ""]
    shown = f"{len(levels)} of the {len(all_levels)} record sizes run" if len(levels) < len(all_levels) else \
        "every record size run"
    out += [f"Each table shows {shown} (the full table is below and in the CSV). A status instead of a number:"
            f" that iteration failed; {NOT_RUN}: not measured (the format's ramp had stopped, or the column was"
            " not measured).", ""]
    for metric in COMPARED_METRICS:
        out += [f"### {metric.title}", "", side_by_side_table(runs, metric, levels), ""]

    if record.chart_lines:
        out += ["## 7. Charts", "", *record.chart_lines]

    out += ["## 8. Complete table of every iteration", ""]
    all_rows = [row for run in runs for row in run.outcome.rows]
    columns = [col("format"), *record.context.columns]
    out += [markdown_table(all_rows, columns) if all_rows else "_No iteration finished._", ""]
    if all_rows and record.context.breakdown_columns:
        out += ["### Where the time and memory went", "",
                markdown_table(all_rows, [col("format"), *record.context.breakdown_columns]), ""]
    out += ["## How the figures were obtained", "", *MEASUREMENT_NOTES(record.context.config),
            "- Each format ran its own ramp on its own table (`<table>_<format>`), one after another in one process;"
            " freed memory was handed back to the OS between formats, but a later format's resident (RSS) peaks"
            " can still include memory an earlier one left behind: compare formats by the tracemalloc peaks.",
            ""]
    return "\n".join(out)
