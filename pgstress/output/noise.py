"""The report's account of the noise: each size's median and min–max over its repetitions (`--repeat`),
and a warning, as hyperfine gives one, naming the sizes whose repetitions spread widely."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from pgstress.output.repetitions import SPREAD_WARNING, TIMED, SizeRepetitions, group_sizes, is_repeated, noisy_sizes
from pgstress.output.tables import Column, col, markdown_table
from pgstress.output.words import count
from pgstress.rows import Row


def with_rep(rows: Sequence[Row], columns: Sequence[Column]) -> list[Column]:
    """The full table's columns, with the repetition's number after `iter` when sizes were repeated."""
    if not is_repeated(rows):
        return list(columns)
    at = next((i + 1 for i, column in enumerate(columns) if column.title == "iter"), 0)
    return [*columns[:at], col("rep"), *columns[at:]]


def median_cell(size: SizeRepetitions, name: str, digits: int) -> str:
    """`median (min–max)` of a measure over the size's successful repetitions; empty when none has it."""
    median, band = size.median(name), size.band(name)
    if median is None or band is None:
        return ""
    if band[0] == band[1]:
        return f"{median:,.{digits}f}"
    return f"{median:,.{digits}f} ({band[0]:,.{digits}f}–{band[1]:,.{digits}f})"


def _percent(value: float) -> str:
    return f"{value * 100:.0f} %"


def spread_sentences(rows: Sequence[Row]) -> list[str]:
    """How far the repetitions of a size spread, over the whole ramp, and which sizes spread too far."""
    sizes = group_sizes(rows)
    lines = []
    for name in TIMED:
        spreads = [spread for size in sizes if (spread := size.spread(name)) is not None]
        if spreads:
            lines.append(f"- `{name}`: the repetitions of a size spread (max/min − 1) by {_percent(min(spreads))} to"
                         f" {_percent(max(spreads))}, median {_percent(statistics.median(spreads))}, over"
                         f" {count(len(spreads), 'size')}.")
    noisy = noisy_sizes(rows)
    if noisy:
        listed = ", ".join(f"{size.epochs:,} epochs ({name} {_percent(spread)})" for size, name, spread in noisy)
        lines += ["", f"> **Warning: noisy measurements.** At {len(noisy)} of {count(len(sizes), 'size')} the"
                      " repetitions"
                      f" differ by more than {_percent(SPREAD_WARNING)}: {listed}. Differences smaller than that"
                      " between sizes, or between runs, are not findings. Other programs were probably busy;"
                      " a quieter machine or more repetitions narrow it."]
    return lines


def _median_column(name: str, digits: int) -> Column:
    return Column(f"{name} median (min–max)", lambda size: median_cell(size, name, digits))


def repetitions_section(rows: Sequence[Row], efficiency: str, stored: str) -> list[str]:
    """The report's "Repetitions" section (empty when each size ran once): per size, how many repetitions
    succeeded and the median (min–max) of the times, the efficiency figure and the stored size."""
    if not is_repeated(rows):
        return []
    columns = [Column("iter", lambda size: size.iter), Column("epochs", lambda size: f"{size.epochs:,}"),
               Column("ok / repetitions", lambda size: f"{len(size.ok)}/{len(size.rows)}"),
               *(_median_column(name, digits) for name, digits in
                 (("write_s", 3), ("read_s", 3), (efficiency, 0), (stored, 2)))]
    counts = {len(size.rows) for size in group_sizes(rows)}  # fewer at the size a stop or Ctrl-C cut short
    times = f"{'' if len(counts) == 1 else 'up to '}{max(counts)} times"
    return [f"## Repetitions: each size measured {times}, median and min–max", "",
            f"Each size was measured {times} in a row (`--repeat`), each repetition writing"
            " a fresh record from its own generator stream. Every figure here, in the points and the conclusion"
            " above and in the charts is the median of the size's successful repetitions, with their min–max in"
            " parentheses (the charts' bands); the full table below lists every repetition.", "",
            markdown_table(group_sizes(rows), columns), "", *spread_sentences(rows), ""]
