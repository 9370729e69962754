"""Markdown tables: a column is a title, how to get its value from a row, and how many digits to show."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[Any], Any]
    digits: int | None = None  # None: not a number to round


def col(name: str, title: str | None = None, digits: int | None = None) -> Column:
    """The row attribute `name` as a column."""
    return Column(title or name, lambda row: getattr(row, name), digits)


def cell(value: Any, digits: int | None = None) -> str:
    if value is None or value == "":
        return ""
    if digits is not None and isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Any], columns: Sequence[Column]) -> str:
    lines = [
        "| " + " | ".join(c.title for c in columns) + " |",
        "|" + "|".join("---:" if c.digits is not None else "---" for c in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(c.value(row), c.digits) for c in columns) + " |")
    return "\n".join(lines)


def _ok_of(kind: str) -> Column:
    return Column(f"{kind} ok/total", lambda row: f"{getattr(row, kind + '_ok')}/{getattr(row, kind + '_total')}")


SYNC_COLUMNS = (
    col("iter"), col("epochs"), col("status"), col("write_s", digits=3), col("read_s", digits=3),
    col("total_s", digits=3), col("eps", digits=0), col("client_payload_mb", digits=2),
    col("db_payload_mb", digits=2), col("db_row_mb", digits=2), col("write_peak_mb", digits=1),
    col("read_peak_mb", digits=1), col("write_rss_delta_mb", digits=1), col("read_rss_delta_mb", digits=1),
    col("error"),
)  # fmt: skip
SYNC_BREAKDOWN_COLUMNS = (
    col("iter"), col("epochs"), col("gen_s", digits=3), col("encode_s", digits=3), col("insert_s", digits=3),
    col("select_s", digits=3), col("decode_s", digits=3), col("verify_s", digits=3),
    col("write_rss_peak_mb", digits=1), col("read_rss_peak_mb", digits=1),
)  # fmt: skip
ASYNC_COLUMNS = (
    col("iter"), col("concurrency", "C"), col("epochs"), col("status"), col("write_s", digits=3),
    col("read_s", digits=3), col("write_rps", digits=1), col("read_rps", digits=1), _ok_of("writes"), _ok_of("reads"),
    col("write_eps", digits=0), col("payload_per_record_mb", digits=2), col("payload_total_mb", digits=2),
    col("db_table_mb", digits=2), col("write_peak_mb", digits=1), col("read_peak_mb", digits=1),
    col("write_rss_delta_mb", digits=1), col("read_rss_delta_mb", digits=1), col("error"),
)  # fmt: skip
ASYNC_BREAKDOWN_COLUMNS = (
    col("iter"), col("epochs"), col("write_cpu_s", digits=3), col("write_encode_busy_s", digits=3),
    col("write_db_only_s", digits=3), col("write_latency_sum_s", digits=3), col("read_cpu_s", digits=3),
    col("read_decode_busy_s", digits=3), col("read_db_only_s", digits=3), col("read_latency_sum_s", digits=3),
    col("verify_s", digits=3), col("db_payload_per_record_mb", digits=2), col("estimated_client_mb", digits=1),
    col("measured_client_mb", digits=1),
)  # fmt: skip
ASYNC_LATENCY_COLUMNS = (
    col("iter"), col("epochs"), col("write_p50_ms", digits=1), col("write_p95_ms", digits=1),
    col("write_p99_ms", digits=1), col("write_max_ms", digits=1), col("read_p50_ms", digits=1),
    col("read_p95_ms", digits=1), col("read_p99_ms", digits=1), col("read_max_ms", digits=1),
)  # fmt: skip
