"""The report of a compared run: one ramp per payload format (`--payload-format all`), per TOAST compression
method (`--toast-compression all`), per C of a concurrency sweep, or per combination, each on its own table,
compared side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pgstress.config import ALL_COMPRESSIONS, ALL_FORMATS, ALL_LAYOUTS, RunConfig, compared_noun, is_compared
from pgstress.output.analysis import Points, find_points
from pgstress.output.base import RampResult, RunResult
from pgstress.output.markdown import (
    POINTS_HEADING,
    SERVER_HEADING,
    TITLE,
    Metric,
    ReportParts,
    chart_section,
    format_pointer,
    interrupted_banner,
    notes_section,
    ramp_conclusion,
    render_context,
    what_ran,
)
from pgstress.output.memory_pass import memory_pass_lines
from pgstress.output.noise import with_rep
from pgstress.output.repetitions import size_rows
from pgstress.output.server_side import server_section
from pgstress.output.shape_table import measured_on, shape_caveat
from pgstress.output.standby_compared import HEADING as STANDBY_HEADING
from pgstress.output.standby_compared import StandbyRamp, standby_comparison
from pgstress.output.tables import Column, col, markdown_table
from pgstress.output.usage import usage_section
from pgstress.output.words import count, listed
from pgstress.rows import OK, Row

MAX_COMPARED_LEVELS = 12  # rows per side-by-side table; the full table holds every iteration
NOISE_PERCENT = 10  # a speed lead smaller than this is not called a win (single runs vary 10-30 %)


def _format(run: RampResult) -> str:
    """How the comparison names a ramp: what varies between the ramps (the format, the method, or both)."""
    return run.plan.label or run.config.payload_format


def _points(run: RampResult) -> Points:
    return find_points(run.rows)


def _sizes(run: RampResult) -> list[Row]:
    """One row per size: with --repeat, the medians of its repetitions (output/repetitions.py)."""
    return size_rows(run.rows)


NOT_RUN = "—"


def _all_sizes(n: int) -> str:
    return "the one size" if n == 1 else f"all {n} sizes"


def compared_levels(runs: Sequence[RampResult], limit: int = MAX_COMPARED_LEVELS) -> list[int]:
    """The record sizes the side-by-side tables show: evenly spaced over every size any format ran,
    first and last included, plus each format's breaking point."""
    levels = sorted({row.epochs for run in runs for row in run.rows})
    if len(levels) > limit:
        picks = {levels[round(i * (len(levels) - 1) / (limit - 1))] for i in range(limit)}
    else:
        picks = set(levels)
    picks |= {row.epochs for run in runs if (row := _points(run).breaking) is not None}
    return sorted(picks)


def metric_cell(run: RampResult, epochs: int, field: str) -> object:
    """The value at that size; the status when the iteration failed; NOT_RUN when it never ran."""
    row = next((r for r in _sizes(run) if r.epochs == epochs), None)
    if row is None:
        return NOT_RUN
    if row.status != OK:
        return row.status
    value = getattr(row, field, None)
    return NOT_RUN if value is None else value


def _metric_column(run: RampResult, metric: Metric) -> Column:
    return Column(_format(run), lambda epochs: metric_cell(run, epochs, metric.field), metric.digits)


def side_by_side_table(runs: Sequence[RampResult], metric: Metric, levels: Sequence[int]) -> str:
    columns = [Column("epochs", lambda epochs: f"{epochs:,}"), *(_metric_column(run, metric) for run in runs)]
    return markdown_table(levels, columns)


def _ok_row(run: RampResult, epochs: int) -> Row | None:
    return next((r for r in _sizes(run) if r.epochs == epochs and r.status == OK), None)


def _largest_working(run: RampResult) -> int | None:
    points = _points(run)
    if points.breaking is not None:
        return points.stability.epochs if points.stability is not None else None
    return max((r.epochs for r in _sizes(run) if r.status == OK), default=None)


def _memory_peak(row: Row) -> tuple[float, str] | None:
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


@dataclass(frozen=True)
class _Verdict:
    """One concern's bullet, and who wins it (none: a lead within the noise, or nothing to choose between)."""

    bullet: str
    winners: tuple[str, ...] = ()
    reason: str = ""


def _smallest_on_disk(rows: dict[str, Row], parts: ReportParts, level: int) -> _Verdict | None:
    stored = {name: value for name, row in rows.items() if (value := getattr(row, parts.stored_field)) is not None}
    if not stored:
        return None
    best, rest = _ranking(stored, "MiB", 2, lowest=True)
    per_epoch = stored[best] * 1048576 / level
    return _Verdict(f"**smallest on disk: {best}**, {stored[best]:,.2f} MiB per record ({per_epoch:,.0f} bytes per"
                    f" epoch){rest}.", (best,), "smallest on disk")


def _fastest(compared: Sequence[RampResult], shared: Sequence[int], parts: ReportParts) -> _Verdict | None:
    """Speed over every size all of them completed, not one size: a single iteration is too noisy."""
    seconds = {_format(run): [getattr(_ok_row(run, epochs), parts.seconds_field) for epochs in shared]
               for run in compared}
    # Epochs handled in that time: one record per size in sync mode, a level's C records in async mode.
    handled = {_format(run): sum(epochs * parts.records(row) for epochs in shared
                                 if (row := _ok_row(run, epochs)) is not None) for run in compared}
    speed = {name: handled[name] / sum(spent) for name, spent in seconds.items()
             if None not in spent and sum(spent) > 0}
    if not speed:
        return None
    best, rest = _ranking(speed, "epochs/s", 0, lowest=False)
    ordered = sorted(speed.values(), reverse=True)
    margin = (ordered[0] / ordered[1] - 1) * 100 if len(ordered) > 1 else None
    close = margin is not None and margin < NOISE_PERCENT
    noise = f"; only {margin:.0f} % ahead of the next, within one run's noise" if close else ""
    bullet = (f"**fastest: {best}**, {sum(seconds[best]):,.2f} s {parts.speed_words} the"
              f" {count(len(shared), 'size')}, {speed[best]:,.0f} epochs/s{rest}{noise}.")
    return _Verdict(bullet) if close else _Verdict(bullet, (best,), "fastest")


def _lowest_memory(rows: dict[str, Row]) -> _Verdict | None:
    peaks = {name: peak for name, row in rows.items() if (peak := _memory_peak(row)) is not None}
    if not peaks:
        return None
    kind = next(iter(peaks.values()))[1]
    best, rest = _ranking({name: value for name, (value, _) in peaks.items()}, "MiB", 1, lowest=True)
    return _Verdict(f"**lowest client memory: {best}**, {peaks[best][0]:,.1f} MiB {kind} of the heavier phase{rest}.",
                    (best,), "lowest memory")


def _largest_that_works(runs: Sequence[RampResult], noun: str, where: str) -> _Verdict | None:
    largest = {_format(run): _largest_working(run) for run in runs}
    broken = {_format(run): row for run in runs if (row := _points(run).breaking) is not None}
    working = {name: epochs for name, epochs in largest.items() if epochs is not None}
    if not working:
        return None
    top = max(working.values())
    if not broken:
        return _Verdict(f"**largest size that works:** no {noun} broke{where}; all worked up to {top:,} epochs"
                        " (the end of the ramp).")
    leaders = tuple(name for name, epochs in working.items() if epochs == top)
    each = "; ".join(f"{name}: {epochs:,} epochs" if epochs is not None else f"{name}: none"
                     for name, epochs in largest.items())
    breaks = "; ".join(f"{name} broke at {row.epochs:,} epochs ({row.status})" for name, row in broken.items())
    return _Verdict(f"**largest size that works: {listed(leaders)}** ({each}); {breaks}.", leaders,
                    "largest size that works")


def _choice(names: Sequence[str], verdicts: Sequence[_Verdict], noun: str, where: str = "") -> str | None:
    """The one to choose when it wins more concerns than any other; else that none wins outright. `where` names the
    part of a sweep compared (" at C = 4"), so that each C's verdict is its own sentence."""
    wins: dict[str, list[str]] = {name: [] for name in names}
    for verdict in verdicts:
        for name in verdict.winners:
            wins[name].append(verdict.reason)
    ranked = sorted(wins.items(), key=lambda item: len(item[1]), reverse=True)
    if ranked[0][1] and (len(ranked) == 1 or len(ranked[0][1]) > len(ranked[1][1])):
        name, reasons = ranked[0]
        return f"On these numbers **{name}** is the {noun} to choose{where}: {', '.join(reasons)}."
    if any(reasons for _, reasons in ranked):
        return f"No {noun} wins outright{where}: choose by the concern that matters most to you."
    return None


def recommendation(runs: Sequence[RampResult], parts: ReportParts, noun: str = "format", *, where: str = "",
                   noise: bool = True) -> list[str]:
    """Markdown lines that pick a `noun` (format, compression, combination) per concern, written from the numbers.
    `where` says which part of a sweep they compare (" at C = 4"); `noise`: whether to end with how far the numbers
    can be trusted (a sweep says it once after its Cs)."""
    if not runs:
        return [f"No {noun} ran, so there is nothing to compare."]
    intro: list[str] = []
    verdicts: list[_Verdict | None] = []
    compared = [run for run in runs if any(row.status == OK for row in run.rows)]
    left_out = [_format(run) for run in runs if run not in compared]
    if left_out:
        intro.append(f"{listed(left_out)} had no successful iteration and is left out of the size, speed and"
                     " memory comparison.")
    shared = [epochs for epochs in sorted({r.epochs for run in compared for r in run.rows})
              if all(_ok_row(run, epochs) is not None for run in compared)]
    if shared and len(compared) > 1:
        level = shared[-1]
        rows = {_format(run): row for run in compared if (row := _ok_row(run, level)) is not None}
        sizes = f"{where.strip().capitalize()}, sizes" if where else "Sizes"
        intro.append(f"{sizes} compared at {level:,} epochs, the largest record every compared {noun} wrote and read"
                     f" back; speed over {_all_sizes(len(shared))} that every one of them completed:")
        verdicts += [_smallest_on_disk(rows, parts, level), _fastest(compared, shared, parts), _lowest_memory(rows)]
    elif len(compared) > 1:
        intro.append(f"No record size succeeded in every {noun}, so they cannot be compared at one size.")
    verdicts.append(_largest_that_works(runs, noun, where))
    found = [verdict for verdict in verdicts if verdict is not None]
    choice = _choice([_format(run) for run in runs], found, noun, where)
    closing = [choice] if choice else []
    if noise:
        closing.append(noise_sentence(runs))
    lines = [" ".join(intro), ""] if intro else []
    if found:
        lines += [f"- {verdict.bullet}" for verdict in found] + [""]
    return [*lines, " ".join(closing)]


def noise_sentence(runs: Sequence[RampResult]) -> str:
    repetitions = max(_points(run).repetitions for run in runs)
    measured = "single measurements" if repetitions == 1 else f"medians of up to {repetitions} repetitions"
    return f"These are {measured} on this machine; differences under ~{NOISE_PERCENT} % can be noise."


def _percent(new: float, old: float) -> str:
    change = (new / old - 1) * 100
    return f"{abs(change):.0f} % {'larger' if change > 0 else 'smaller'}" if round(change) else "the same size"


def _against(new: float | None, old: float | None, what: str, digits: int, unit: str) -> str:
    if new is None or old is None:
        return ""
    return f", {what} {new:,.{digits}f} {unit} against {old:,.{digits}f} {unit}"


def _method_against(payload_format: str, base: RampResult, other: RampResult, parts: ReportParts) -> str | None:
    """One method against the baseline for one format: the largest size both completed, and the speed over all."""
    shared = [epochs for epochs in sorted({row.epochs for row in other.rows})
              if _ok_row(base, epochs) is not None and _ok_row(other, epochs) is not None]
    if not shared:
        return None
    new_method, old_method = other.config.toast_compression, base.config.toast_compression
    top = shared[-1]
    new, old = _ok_row(other, top), _ok_row(base, top)
    assert new is not None and old is not None
    if new.write_s is None or old.write_s is None:
        return None
    text = (f"- **{payload_format} with {new_method}**: write {new.write_s:,.3f} s against {old.write_s:,.3f} s with"
            f" {old_method} at {top:,} epochs")
    new_stored, old_stored = getattr(new, parts.stored_field), getattr(old, parts.stored_field)
    if new_stored and old_stored:
        text += (f", {_percent(new_stored, old_stored)} on disk ({new_stored:,.2f} MiB against {old_stored:,.2f} MiB"
                 f" per record, stored as {new.stored_compression or '?'} against {old.stored_compression or '?'})")
    text += _against(new.wal_mb, old.wal_mb, "WAL", 2, "MiB")
    new_server = new.server_write_ms / 1000 if new.server_write_ms is not None else None
    old_server = old.server_write_ms / 1000 if old.server_write_ms is not None else None
    text += _against(new_server, old_server, "the server's own write", 3, "s")
    new_total = sum(row.write_s or 0.0 for epochs in shared if (row := _ok_row(other, epochs)) is not None)
    old_total = sum(row.write_s or 0.0 for epochs in shared if (row := _ok_row(base, epochs)) is not None)
    if new_total <= 0 or old_total <= 0:
        return text + "."
    speed = old_total / new_total
    over = f"over the {len(shared)} sizes both completed" if len(shared) > 1 else "at that size"
    text += f"; {over}, writes took {new_total:,.2f} s with {new_method} against {old_total:,.2f} s with {old_method}"
    # Sizes are exact; only the times are noisy.
    faster, slower = speed > 1 + NOISE_PERCENT / 100, speed < 1 / (1 + NOISE_PERCENT / 100)
    disk = _percent(new_stored, old_stored) if new_stored and old_stored else ""
    larger = bool(new_stored and old_stored and round((new_stored / old_stored - 1) * 100) > 0)
    if new.stored_compression == old.stored_compression == "none":
        verdict = ("neither method compresses these bytes (both stored them uncompressed), so the choice makes no"
                   " difference")
    elif faster and larger:
        verdict = (f"{new_method} writes {speed:.1f}x faster for {disk.replace(' larger', ' more')} disk: choose"
                   f" {new_method} unless disk space matters more to you than write time")
    elif faster:
        verdict = f"{new_method} writes {speed:.1f}x faster and stores no more: choose {new_method}"
    elif slower:
        verdict = f"{old_method} writes {1 / speed:.1f}x faster: keep {old_method}"
    else:
        verdict = (f"the write times differ by less than {NOISE_PERCENT} %, within one run's noise: choose by the"
                   " size on disk")
    return f"{text}: {verdict}."


def storage_recommendation(runs: Sequence[RampResult], parts: ReportParts) -> list[str]:
    """Per payload format, each TOAST compression method against the first one run (pglz), in words with numbers."""
    groups: dict[str, list[RampResult]] = {}
    for run in runs:
        groups.setdefault(run.config.payload_format, []).append(run)
    lines = []
    for payload_format, group in groups.items():
        if len({run.config.toast_compression for run in group}) < 2:
            continue
        lines += [line for other in group[1:] if (line := _method_against(payload_format, group[0], other, parts))]
    return lines


def _points_table(runs: Sequence[RampResult], unit: str, noun: str) -> str:
    def breaking(run: RampResult) -> str:
        row = _points(run).breaking
        return "none reached" if row is None else f"{row.epochs:,} epochs (iteration {row.iter}, {row.status})"

    def stability(run: RampResult) -> str:
        row = _points(run).stability
        return "none" if row is None else f"{row.epochs:,} epochs"

    def optimal(run: RampResult) -> str:
        row = _points(run).optimal
        return "none" if row is None else f"{row.epochs:,} epochs, {row.efficiency or 0:,.0f} {unit}"

    columns = [
        Column(noun, lambda run: _format(run)),
        Column("iterations run", lambda run: f"{len(_sizes(run))} of {run.outcome.planned_levels}"),
        Column("breaking point", breaking), Column("stability point", stability),
        Column("optimal efficiency point", optimal),
    ]
    return markdown_table(runs, columns)


def compared_title(config: RunConfig) -> str:
    """What the report compares: "payload formats compared", "... and concurrency levels (a sweep over C) compared"."""
    varied = [what for what, varies in (("payload formats", config.payload_format == ALL_FORMATS),
                                        ("TOAST compression methods", config.toast_compression == ALL_COMPRESSIONS),
                                        ("zstd levels", bool(config.zstd_sweep)),
                                        ("concurrency levels (a sweep over C)", bool(config.concurrency_sweep)),
                                        ("layouts (one value per record, or chunk rows)",
                                         config.layout == ALL_LAYOUTS))
              if varies]
    listed = varied[0] if len(varied) == 1 else ", ".join(varied[:-1]) + " and " + varied[-1]
    return f"{listed} compared"


def _recommendations(runs: Sequence[RampResult], parts: ReportParts, noun: str, where: str = "",
                     noise: bool = True) -> list[str]:
    out = [*recommendation(runs, parts, noun, where=where, noise=noise), ""]
    storage = storage_recommendation(runs, parts)
    if storage:
        out += ["### TOAST compression", "", *storage, ""]
    return out


def render_comparison(result: RunResult, parts: ReportParts, planned_ramps: int, answer: Sequence[str] = ()) -> str:
    """The report of a run of one ramp per format, per compression method, per C of a sweep, or per combination.
    A sweep's `answer` (output/sweep.py) leads the Recommendation section; formats or methods compared besides are
    compared at each C, since throughput across different C is the sweep's question, not theirs."""
    runs, unit, config = result.ramps, parts.throughput.unit, result.config
    noun = compared_noun(config)
    all_rows = result.rows
    support = runs[0].details.measures if runs and runs[0].details is not None else None
    notes = parts.notes(result.config, all_rows, runs[0].memory_limit_mb if runs else None,
                        runs[0].server_memory if runs else None)
    tables = ", ".join(f"`{run.config.table}`" for run in runs)
    sections = [
        interrupted_banner(f"during {noun} {len(runs)} of {planned_ramps}") if result.interrupted else [],
        what_ran(result),
        _points_section(runs, unit, noun),
        _recommendation_section(result, parts, noun, answer),
        _side_by_side_section(result, parts, noun),
        _table_section(result, parts),
        server_section(all_rows, result.config, support, result.context.server.embedded, SERVER_HEADING),
        standby_comparison([StandbyRamp(_format(run), run.rows, run.config.synchronous_standby) for run in runs],
                           noun, f"### {STANDBY_HEADING}, {noun} by {noun}") if result.context.standbys else [],
        parts.sections(all_rows),
        chart_section(result),
        render_context(result, parts),
        notes_section([*notes, *memory_pass_lines(runs),
                       f"- Each {noun} ran its own ramp on its own table ({tables}), one after another in one"
                       f" process; freed memory was handed back to the OS between ramps, but a later {noun}'s"
                       " resident (RSS) peaks can still include memory an earlier one left behind: compare them by"
                       " the tracemalloc peaks."]),
    ]
    return "\n".join([f"{TITLE}: {compared_title(config)}", "", *(line for section in sections for line in section)])


def _points_section(runs: Sequence[RampResult], unit: str, noun: str) -> list[str]:
    out = [f"## {POINTS_HEADING} of each {noun}", "", _points_table(runs, unit, noun), ""]
    broken = [(run, row) for run in runs if (row := _points(run).breaking) is not None]
    out += [f"- {_format(run)} breaking error: {row.error}" for run, row in broken if row.error]
    return [*out, ""] if broken else out


def _recommendation_section(result: RunResult, parts: ReportParts, noun: str, answer: Sequence[str]) -> list[str]:
    runs, config = result.ramps, result.config
    out = ["## Recommendation", "", measured_on(config), ""]
    if config.payload_format == ALL_FORMATS or len(config.zstd_levels) > 1:
        out += [shape_caveat(config), ""]
    others = replace(config, concurrency_sweep=())  # what is compared besides C
    if not config.concurrency_sweep:
        out += _recommendations(runs, parts, noun)
    else:
        out += answer
        if is_compared(others):
            for c in config.concurrency_sweep:
                at_c = [run for run in runs if run.config.async_concurrency == c]
                out += [f"### {compared_noun(others).capitalize()}s compared at C = {c}", "",
                        *_recommendations(at_c, parts, compared_noun(others), f" at C = {c}", noise=False)]
            out += [noise_sentence(runs), ""]
    out += usage_section(runs, parts.stored_field, level=3)
    out += format_pointer(config)
    return [*out, f"### Each {noun} on its own", "", *each_on_its_own(runs, parts, noun), ""]


def each_on_its_own(runs: Sequence[RampResult], parts: ReportParts, noun: str) -> list[str]:
    """Each ramp's conclusion, a sentence several ramps share said once for all of them: first what every ramp
    shares, then each ramp's own, then what some of them share."""
    said_by: dict[str, list[str]] = {}  # sentence -> the ramps that concluded it, in the order they ran
    for run in runs:
        for sentence in ramp_conclusion(run, parts):
            names = said_by.setdefault(sentence, [])
            if _format(run) not in names:
                names.append(_format(run))
    groups: dict[tuple[str, ...], list[str]] = {}
    for sentence, names in said_by.items():
        groups.setdefault(tuple(names), []).append(sentence)
    every = tuple(_format(run) for run in runs)
    order = [every, *((name,) for name in every if (name,) != every),
             *(names for names in groups if 1 < len(names) < len(every))]
    return [f"- **{f'Every {noun}' if names == every and len(every) > 1 else _listed(names)}**: "
            + " ".join(groups[names]) for names in order if names in groups]


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _side_by_side_section(result: RunResult, parts: ReportParts, noun: str) -> list[str]:
    runs = result.ramps
    levels = compared_levels(runs)
    all_levels = {row.epochs for run in runs for row in run.rows}
    out = ["## Side by side at the same record sizes", ""]
    shown = f"{len(levels)} of the {len(all_levels)} record sizes run" if len(levels) < len(all_levels) else \
        "every record size run"
    out += [f"Each table shows {shown} (the full table is below and in the CSV). A status instead of a number:"
            f" that iteration failed; {NOT_RUN}: not measured (the {noun}'s ramp had stopped, or the column was"
            " not measured).", ""]
    for metric in parts.compared:
        if any(getattr(row, metric.field, None) is not None for row in result.rows):  # e.g. no pg_stat_statements
            out += [f"### {metric.title}", "", side_by_side_table(runs, metric, levels), ""]
    return out


def _table_section(result: RunResult, parts: ReportParts) -> list[str]:
    all_rows = result.rows
    which = [col("format")] + ([col("toast_compression", "compression")]
                               if result.config.toast_compression == ALL_COMPRESSIONS else [])
    out = ["## Complete table of every iteration", ""]
    out += [markdown_table(all_rows, with_rep(all_rows, [*which, *parts.columns])) if all_rows else
            "_No iteration finished._", ""]
    if all_rows:
        out += ["### Where the time and memory went", "",
                markdown_table(all_rows, with_rep(all_rows, [*which, *parts.breakdown_columns])), ""]
    return out
