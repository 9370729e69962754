"""The report's "How it will be used" section (--access): per format, at the largest record size every compared
ramp completed, the time of each way the record is used afterwards, what it moved, and which format to choose
for each use, in words with the numbers. One function, `usage_section`, which both reports call.

A run without --access has no such section (the seed's report is unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pgstress.config import CHUNKED_LAYOUT, LAYOUTS, RunConfig
from pgstress.output.base import RampResult
from pgstress.output.charts import ChartSpec, chart
from pgstress.output.repetitions import size_rows
from pgstress.output.tables import Column, cell, markdown_table
from pgstress.rows import OK, Row
from pgstress.run.access import FULL, extra_accesses
from pgstress.run.access_chunked import how_done_chunked
from pgstress.run.access_work import how_done

HEADING = "How it will be used"
MIB = 1024 * 1024


@dataclass(frozen=True)
class _Use:
    """One way the record is used, as the recommendation words it."""

    access: str
    words: Callable[[RampResult], str]  # "to read a window of 1,000 epochs"
    seconds: str  # the row's time column
    moved: Callable[[Row], str]  # what it moved, in words


def _mib(value: float | int | None) -> str:
    return "?" if value is None else f"{value / MIB:,.2f} MiB"


USES = (
    _Use(FULL, lambda run: "to read the whole record", "read_s", lambda row: ""),
    _Use("range", lambda run: f"to read a window of {run.config.range_epochs:,} epochs", "range_read_s",
         lambda row: f"{_mib(row.range_bytes)} received"),
    _Use("metric", lambda run: f"to read one metric ({run.config.metric}) of every epoch", "metric_read_s",
         lambda row: f"{_mib(row.metric_bytes)} received"),
    _Use("append", lambda run: "to append epochs", "append_s",
         lambda row: "?" if row.append_wal_mb is None else f"{row.append_wal_mb:,.2f} MiB of WAL"),
)


_ACCESS_SERIES = {
    "range": ("range_read_s", "range: a window of epochs"),
    "metric": ("metric_read_s", "metric: one metric of every epoch"),
    "append": ("append_s", "append: the record grown in place"),
}


def access_charts(config: RunConfig) -> tuple[ChartSpec, ...]:
    """The chart of each access's time against the record's size, beside the full read; none without --access."""
    accesses = extra_accesses(config.access)
    if not accesses:
        return ()
    return (chart("access", "Time of each way the record is used after it is written", "seconds",
                  ("read_s", "full read"), *(_ACCESS_SERIES[access] for access in accesses)),)


def _name(run: RampResult) -> str:
    return run.plan.label or run.config.payload_format


def _measured(runs: Sequence[RampResult]) -> bool:
    return any(extra_accesses(run.config.access) for run in runs)


def _largest_common(runs: Sequence[RampResult]) -> int | None:
    """The largest record size at which every ramp has a successful row (the medians of its repetitions)."""
    done = [{row.epochs for row in size_rows(run.rows) if row.status == OK} for run in runs]
    common = set.intersection(*done) if done else set()
    return max(common) if common else None


def _row_at(run: RampResult, epochs: int) -> Row:
    return next(row for row in size_rows(run.rows) if row.epochs == epochs and row.status == OK)


def usage_section(runs: Sequence[RampResult], stored_field: str, level: int = 2) -> list[str]:
    """The section, or nothing when the run measured no access. `stored_field`: one record's stored size (MiB)."""
    if not runs or not _measured(runs):
        return []
    heading = "#" * level
    epochs = _largest_common(runs)
    out = [f"{heading} {HEADING}", ""]
    if epochs is None:
        return [*out, "No record size was completed by every format compared, so there is nothing to set side by"
                " side.", ""]
    accesses = extra_accesses(runs[0].config.access)
    rows = {_name(run): _row_at(run, epochs) for run in runs}
    mode_words = " (an async level: its C records at once; bytes and WAL are theirs together)" \
        if runs[0].config.mode == "async" else ""
    out += [f"At {epochs:,} epochs, the largest record size every compared ramp completed{mode_words}; each"
            " access timed on its own after the full read, outside write_s and read_s, and verified.", ""]
    columns = [Column("format", lambda item: item[0]),
               Column("write s", lambda item: item[1].write_s, 3),
               Column("full read s", lambda item: item[1].read_s, 3)]
    if "range" in accesses:
        columns += [Column("range read s", lambda item: item[1].range_read_s, 3),
                    Column("range received MiB", lambda item: _in_mib(item[1].range_bytes), 3)]
    if "metric" in accesses:
        columns += [Column("metric read s", lambda item: item[1].metric_read_s, 3),
                    Column("metric received MiB", lambda item: _in_mib(item[1].metric_bytes), 3)]
    if "append" in accesses:
        columns += [Column("append s", lambda item: item[1].append_s, 3),
                    Column("append WAL MiB", lambda item: item[1].append_wal_mb, 2)]
    columns.append(Column("stored MiB", lambda item: getattr(item[1], stored_field, None), 2))
    out += [markdown_table(list(rows.items()), columns), ""]
    out += _layout_table(runs, rows, columns)
    out += ["How each access was done:", ""]
    for run in runs:
        how = (how_done_chunked if run.config.layout == CHUNKED_LAYOUT else how_done)(run.config.payload_format,
                                                                                       accesses)
        out.append(f"- **{_name(run)}**: " + "; ".join(f"{access}: {text}" for access, text in how.items()))
    if any(run.config.storage == "external" and run.config.payload_format != "jsonb" for run in runs):
        out += ["", "With `--storage external` the bytea values are stored uncompressed, so a `substring` of one could"
                " read only the TOAST chunks it needs; but where an epoch lies inside a zstd frame or a BSON document"
                " is unknown without an index, so their window and metric are still read whole here."]
    out += ["", "Which to choose, by use:", ""]
    out += [line for use in USES if use.access in (FULL, *accesses)
            if (line := _recommend(use, runs, rows)) is not None]
    return [*out, ""]


def _layout_table(runs: Sequence[RampResult], rows: dict[str, Row], columns: list[Column]) -> list[str]:
    """When the run compares layouts: each measure of the table above as "value / chunked", one row per format (and
    whatever else the ramps differ by), so the two layouts of a format stand side by side. The chunked layout's
    sizes and bytes are its rows' sums."""
    layouts = {run.config.layout for run in runs}
    if layouts != set(LAYOUTS):
        return []
    pairs: dict[str, dict[str, Row]] = {}
    for run in runs:
        name = _name(run)
        base = name[:-len(run.config.layout)].strip() if name.endswith(run.config.layout) else name
        pairs.setdefault(base or run.config.payload_format, {})[run.config.layout] = rows[name]
    measures = columns[1:]
    head = "| format | " + " | ".join(column.title for column in measures) + " |"
    out = [f"The same, format by layout: each cell {' / '.join(LAYOUTS)} (the chunked layout's bytes and sizes are"
           " the sums over its chunk rows):", "", head,
           "|---|" + "---:|" * len(measures)]
    for base, by_layout in pairs.items():
        cells = [" / ".join(_cell(column, base, by_layout.get(layout)) for layout in LAYOUTS) for column in measures]
        out.append(f"| {base} | " + " | ".join(cells) + " |")
    return [*out, ""]


def _cell(column: Column, base: str, row: Row | None) -> str:
    return (cell(column.value((base, row)), column.digits) if row is not None else "") or "-"


def _in_mib(value: int | None) -> float | None:
    return None if value is None else value / MIB


def _recommend(use: _Use, runs: Sequence[RampResult], rows: dict[str, Row]) -> str | None:
    """"- to append epochs: **ndjson_zstd**, 0.02 s and 0.10 MiB of WAL, against 3.1 s and 120 MiB (bson)"."""
    timed = {name: value for name, row in rows.items() if (value := getattr(row, use.seconds)) is not None}
    if not timed:
        return None
    best = min(timed, key=lambda name: timed[name])
    what = use.words(runs[0])
    moved = use.moved(rows[best])
    line = f"- {what}: **{best}**, {timed[best]:,.3f} s" + (f" and {moved}" if moved else "")
    if len(timed) > 1:
        worst = max(timed, key=lambda name: timed[name])
        other = use.moved(rows[worst])
        line += f", against {timed[worst]:,.3f} s" + (f" and {other}" if other else "") + f" ({worst})"
    return line + "."

