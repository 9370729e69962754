"""A concurrency sweep's answer (`--async-concurrency 1,4,16,64`): at which C this server stores the most epochs
per second, and where each C breaks.

The measure is `write_eps` = epochs x writes_ok / write_s: epochs stored per second by a level's whole write
batch of C records. Each C ran its own ramp; they are compared at the record sizes they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pgstress.output.analysis import find_points
from pgstress.output.base import RampResult
from pgstress.output.comparison import NOT_RUN, compared_levels, metric_cell
from pgstress.output.tables import Column, markdown_table
from pgstress.output.words import count, listed
from pgstress.rows import OK, AsyncRow

MEASURE = "write_eps"


@dataclass(frozen=True)
class SweepGroup:
    """The ramps of one payload format and compression method, one per C, in ascending C."""

    name: str  # what else varies ("bson lz4"); empty when only C does
    runs: list[RampResult]

    @property
    def concurrencies(self) -> list[int]:
        return [run.config.async_concurrency for run in self.runs]


def group_name(label: str) -> str:
    """The group of a sweep's ramp: its label ("bson lz4 C=4") without the C; empty when only C varies."""
    return " ".join(part for part in label.split() if not part.startswith("C="))


def sweep_groups(runs: Sequence[RampResult]) -> list[SweepGroup]:
    """The sweep's ramps grouped by everything but C, in the order they ran, each group ordered by C."""
    groups: dict[str, list[RampResult]] = {}
    for run in runs:
        groups.setdefault(group_name(run.plan.label), []).append(run)
    return [SweepGroup(name, sorted(found, key=lambda run: run.config.async_concurrency))
            for name, found in groups.items()]


def _c(run: RampResult) -> str:
    return f"C={run.config.async_concurrency}"


def _ok(run: RampResult, epochs: int) -> AsyncRow | None:
    found = next((row for row in run.rows if row.epochs == epochs and row.status == OK), None)
    return found if isinstance(found, AsyncRow) else None


def shared_sizes(runs: Sequence[RampResult]) -> list[int]:
    """The record sizes at which every C of `runs` has a successful level with its write time."""
    sizes = sorted({row.epochs for run in runs for row in run.rows})
    return [epochs for epochs in sizes
            if all((row := _ok(run, epochs)) is not None and row.write_s for run in runs)]


def overall_write_eps(run: RampResult, sizes: Sequence[int]) -> float:
    """Epochs stored per second over the write batches of `sizes`: all their epochs over all their write time."""
    rows = [row for epochs in sizes if (row := _ok(run, epochs)) is not None]
    seconds = sum(row.write_s or 0.0 for row in rows)
    return sum(row.epochs * row.writes_ok for row in rows) / seconds if seconds > 0 else 0.0


def best_at(runs: Sequence[RampResult], epochs: int) -> str:
    """The C with the highest write_eps at one size (among the Cs that succeeded there)."""
    found = [(row.write_eps, run) for run in runs if (row := _ok(run, epochs)) is not None and row.write_eps]
    return _c(max(found, key=lambda pair: pair[0])[1]) if found else NOT_RUN


def _breaking_text(run: RampResult) -> str:
    row = find_points(run.rows).breaking
    return "none reached" if row is None else f"{row.epochs:,} epochs (iteration {row.iter}, {row.status})"


def sweep_table(group: SweepGroup) -> str:
    """write_eps by record size (rows) and C (columns), and the best C at each size."""
    levels = compared_levels(group.runs)
    columns = [Column("epochs", lambda epochs: f"{epochs:,}"), *(_measure_column(run) for run in group.runs),
               Column("best C", lambda epochs: best_at(group.runs, epochs))]
    return markdown_table(levels, columns)


def _measure_column(run: RampResult) -> Column:
    return Column(_c(run), lambda epochs: metric_cell(run, epochs, MEASURE), 0)


def per_c_table(group: SweepGroup, sizes: Sequence[int]) -> str:
    def best(run: RampResult) -> str:
        row = find_points(run.rows).optimal
        return "none" if row is None else f"{row.efficiency or 0:,.0f} at {row.epochs:,} epochs"

    columns = [
        Column("C", _c),
        Column("iterations run", lambda run: f"{len(run.rows)} of {run.outcome.planned_levels}"),
        Column(f"write_eps over the {count(len(sizes), 'shared size')}",
               lambda run: overall_write_eps(run, sizes) if sizes else NOT_RUN, 0),
        Column("highest write_eps", best),
        Column("breaking point", _breaking_text),
    ]
    return markdown_table(group.runs, columns)


def best_c_words(group: SweepGroup, sizes: Sequence[int], noise_percent: float,
                 planned: Sequence[int] = ()) -> list[str]:
    """The answer in words: the best C from the numbers, and where each C broke. `planned`: every C of the sweep;
    those without a ramp here never started (the run was interrupted before them)."""
    lines: list[str] = []
    where = f" for {group.name}" if group.name else ""  # each format's verdict its own sentence, never one repeated
    not_run = [f"C={c}" for c in planned if c not in group.concurrencies]
    if not_run:
        lines.append(f"- {listed(not_run)} did not run: the run was interrupted before.")
    idle = [_c(run) for run in group.runs if not any(row.status == OK for row in run.rows)]
    working = [run for run in group.runs if _c(run) not in idle]
    if len(working) > 1 and sizes:
        speeds = sorted(((overall_write_eps(run, sizes), run) for run in working), key=lambda pair: -pair[0])
        (top, best), (second, runner_up) = speeds[0], speeds[1]
        others = ", ".join(f"{speed:,.0f} epochs/s ({_c(run)})" for speed, run in speeds[1:])
        span = f"{sizes[0]:,} epochs" if len(sizes) == 1 else f"{sizes[0]:,} to {sizes[-1]:,} epochs"
        which = "record size" if len(sizes) == 1 else f"{len(sizes)} record sizes"
        lines.append(f"- **Most epochs per second{where}: {_c(best)}**, {top:,.0f} epochs/s of write_eps over the"
                     f" {which} every C completed ({span}), against {others}.")
        lead = (top / second - 1) * 100 if second > 0 else None
        if lead is not None and lead < noise_percent:
            lines.append(f"- {_c(best)} is only {lead:.0f} % ahead of {_c(runner_up)}{where}, within one run's noise:"
                         f" either C stores about as fast here.")
    elif len(working) > 1:
        lines.append(f"- No record size succeeded at every C{where}, so the Cs cannot be compared at one size; see"
                     " each C's highest write_eps above.")
    elif working:
        lines.append(f"- Only {_c(working[0])} has successful levels{where}, so there is no other C to compare it"
                     " with.")
    if idle:
        lines.append(f"- {listed(idle)} had no successful level{where}.")
    broken = [(run, row) for run in group.runs if (row := find_points(run.rows).breaking) is not None]
    intact = [run for run in group.runs if find_points(run.rows).breaking is None]
    if broken:
        breaks = "; ".join(f"{_c(run)} broke at {row.epochs:,} epochs ({row.status}: {row.error or 'no message'})"
                           for run, row in broken)
        held = (f"; {', '.join(_c(run) for run in intact)} did not break up to"
                f" {max((row.epochs for run in intact for row in run.rows), default=0):,} epochs" if intact else "")
        lines.append(f"- **Where it breaks{where}:** {breaks}{held}.")
    else:
        top_size = max((row.epochs for run in group.runs for row in run.rows), default=0)
        which = "no C that ran broke; each" if not_run else "no C broke; every C"
        of = f" of {group.name}" if group.name else ""  # said once per format (method) it is true of
        lines.append(f"- **Where it breaks:** {which}{of} worked up to {top_size:,} epochs.")
    return lines


def sweep_answer(runs: Sequence[RampResult], noise_percent: float, planned: Sequence[int] = ()) -> list[str]:
    """The report's answer to a sweep: per format and compression, the tables and the best C in words. `planned`:
    every C of the sweep, so that a C an interrupted run never reached is named as such."""
    groups = sweep_groups(runs)
    each = " each" if len(groups) > 1 else ""
    out = [f"`write_eps` = epochs x writes_ok / write_s: epochs stored per second by a level's whole write batch of C"
           f" records; the tables{each} give it per record size and C ({NOT_RUN}: that C's ramp had stopped; a"
           " status: that level failed).", ""]
    for group in groups:
        if group.name:
            out += [f"### {group.name}: concurrency compared", ""]
        sizes = shared_sizes([run for run in group.runs if any(row.status == OK for row in run.rows)])
        out += [*best_c_words(group, sizes, noise_percent, planned), ""]
        out += [sweep_table(group), "", per_c_table(group, sizes), ""]
    return out
