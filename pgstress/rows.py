"""The typed row contract: one result row per sync iteration or async level, as every output reads it.

A row's fields are its CSV columns; `COLUMNS` puts those every run writes in the CSV's order, the spec's
columns first, then the extras; the optional groups follow them when a run uses their feature (columns.py).
Sizes are MiB, times seconds; None means not measured (the iteration failed before that measurement).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, ClassVar, Final


class Status(str, Enum):
    """The status of a row: OK, or the class of the failure (see run/faults.py for how each is recognised). It
    is its name wherever it is written (CSV, JSON, report), and equal to it."""

    OK = "OK"
    DB_LIMIT = "DB_LIMIT"
    TIMEOUT = "TIMEOUT"
    CONNECTION_LOST = "CONNECTION_LOST"
    CLIENT_MEMORY = "CLIENT_MEMORY"
    VERIFY_FAILED = "VERIFY_FAILED"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


# The statuses by their short names, for the comparisons that read best that way (`row.status == OK`).
OK: Final = Status.OK
DB_LIMIT: Final = Status.DB_LIMIT
TIMEOUT: Final = Status.TIMEOUT
CONNECTION_LOST: Final = Status.CONNECTION_LOST
CLIENT_MEMORY: Final = Status.CLIENT_MEMORY
VERIFY_FAILED: Final = Status.VERIFY_FAILED
ERROR: Final = Status.ERROR


# The columns both modes append after their own extras: the payload column's settings, then what the server paid.
SERVER_COLUMNS = (
    "toast_compression", "storage", "wal_mb", "heap_mb", "toast_mb", "stored_compression", "server_write_ms",
    "server_read_ms", "io_written_mb", "io_extended_mb", "io_fsyncs", "checkpoints", "other_sessions",
)  # fmt: skip
# The optional column groups (columns.py puts each in a run's CSV only when the run uses its feature). The access
# phases' columns, with --access beyond the full read:
ACCESS_COLUMNS = (
    "range_read_s", "range_bytes", "metric_read_s", "metric_bytes", "append_s", "append_sent_bytes",
    "append_received_bytes", "append_wal_mb",
)  # fmt: skip


# The standbys' columns, with --standby-dsn or --standby embedded. With several standbys, the measures are the worst
# standby's (the first status that is not OK with its message, the longest times, the largest lag) and
# `standby_each` holds every standby's own, in the order given (empty with one standby).
STANDBY_COLUMNS = (
    "standby_status", "standby_replay_s", "standby_read_s", "standby_lag_start_mb", "standby_error", "standby_each",
)  # fmt: skip


# The columns a run asking for a layout other than one value per record (--layout chunked or all) appends after
# the row type's own (pgstress/columns.py); a run of the value layout alone has none of them.
LAYOUT_COLUMNS = ("layout", "chunk_epochs")


@dataclass(kw_only=True)
class Row:
    """What every row has, whatever the mode."""

    iter: int  # the size's place in the ramp; its repetitions share it
    epochs: int
    rep: int = 1  # which repetition of this size (--repeat), from 1
    status: Status = Status.OK
    error: str = ""
    format: str = ""
    write_s: float | None = None
    read_s: float | None = None
    write_peak_mb: float | None = None
    read_peak_mb: float | None = None
    write_rss_delta_mb: float | None = None
    read_rss_delta_mb: float | None = None
    write_rss_peak_mb: float | None = None
    read_rss_peak_mb: float | None = None
    verify_s: float | None = None
    insert_s: float | None = None  # sync: the insert stage; async: summed over the level's stored records
    select_s: float | None = None  # sync: the select stage; async: summed over the level's records read
    # The payload column as configured, and what the server paid (db/server_measures.py); empty: not measured.
    toast_compression: str = ""
    storage: str = ""
    wal_mb: float | None = None
    heap_mb: float | None = None
    toast_mb: float | None = None
    stored_compression: str = ""
    server_write_ms: float | None = None
    server_read_ms: float | None = None
    io_written_mb: float | None = None
    io_extended_mb: float | None = None
    io_fsyncs: int | None = None
    checkpoints: int | None = None
    other_sessions: int | None = None
    zstd_level: int | None = None  # ndjson_zstd's level (tells the ramps of --zstd-level 1,3,19 apart); else empty
    # The access phases (--access, run/access.py), each timed apart from write_s/read_s; empty: not asked (the
    # default) or not finished. Bytes are what the access received from (sent to) the server, every record's.
    range_read_s: float | None = None
    range_bytes: int | None = None
    metric_read_s: float | None = None
    metric_bytes: int | None = None
    append_s: float | None = None
    append_sent_bytes: int | None = None
    append_received_bytes: int | None = None
    append_wal_mb: float | None = None
    # The record's layout (--layout) and the chunked layout's epochs per chunk; in the CSV only with --layout.
    layout: str = ""
    chunk_epochs: int | None = None
    # The standbys (run/standby_measure.py), measured only with --standby-dsn / --standby embedded.
    standby_status: str = ""
    standby_replay_s: float | None = None
    standby_read_s: float | None = None
    standby_lag_start_mb: float | None = None
    standby_error: str = ""  # the first failed standby's message, one line, named
    standby_each: str = ""

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    # The column the optimal efficiency point maximises, and how the report names it.
    EFFICIENCY: ClassVar[str] = "eps"

    @property
    def efficiency(self) -> float | None:
        value = getattr(self, self.EFFICIENCY)
        return None if value is None else float(value)


@dataclass(kw_only=True)
class SyncRow(Row):
    """One sync iteration: one record written, then read back."""

    total_s: float | None = None
    eps: float | None = None
    client_payload_mb: float | None = None
    db_payload_mb: float | None = None
    db_row_mb: float | None = None
    gen_s: float | None = None
    encode_s: float | None = None
    decode_s: float | None = None
    db_table_mb: float | None = None  # pg_total_relation_size after the iteration (appended after the extras)

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "iter", "epochs", "status", "write_s", "read_s", "total_s", "eps", "client_payload_mb", "db_payload_mb",
        "db_row_mb", "write_peak_mb", "read_peak_mb", "write_rss_delta_mb", "read_rss_delta_mb", "error",
        # extras
        "rep", "format", "gen_s", "encode_s", "insert_s", "select_s", "decode_s", "verify_s", "write_rss_peak_mb",
        "read_rss_peak_mb", *SERVER_COLUMNS, "db_table_mb", "zstd_level",
    )  # fmt: skip


@dataclass(kw_only=True)
class AsyncRow(Row):
    """One async level: C records written at once, then read back at once.

    `write_s` / `read_s` are wall times of the whole concurrent batch; latencies are per record.
    """

    concurrency: int = 1
    write_rps: float | None = None
    read_rps: float | None = None
    writes_ok: int = 0
    writes_total: int = 0
    reads_ok: int = 0
    reads_total: int = 0
    payload_total_mb: float | None = None
    payload_per_record_mb: float | None = None
    db_table_mb: float | None = None
    write_eps: float | None = None
    read_eps: float | None = None
    write_p50_ms: float | None = None
    write_p95_ms: float | None = None
    write_p99_ms: float | None = None
    write_max_ms: float | None = None
    read_p50_ms: float | None = None
    read_p95_ms: float | None = None
    read_p99_ms: float | None = None
    read_max_ms: float | None = None
    failures: str = ""
    db_payload_per_record_mb: float | None = None
    write_latency_sum_s: float | None = None
    read_latency_sum_s: float | None = None
    write_cpu_s: float | None = None
    write_encode_busy_s: float | None = None
    write_db_only_s: float | None = None
    read_cpu_s: float | None = None
    read_decode_busy_s: float | None = None
    read_db_only_s: float | None = None
    estimated_client_mb: float | None = None
    measured_client_mb: float | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "iter", "concurrency", "epochs", "status", "write_s", "read_s", "write_rps", "read_rps", "writes_ok",
        "writes_total", "reads_ok", "reads_total", "payload_total_mb", "payload_per_record_mb", "db_table_mb",
        "write_peak_mb", "read_peak_mb", "write_rss_delta_mb", "read_rss_delta_mb", "error",
        # extras
        "rep", "format", "write_eps", "read_eps", "write_p50_ms", "write_p95_ms", "write_p99_ms", "write_max_ms",
        "read_p50_ms", "read_p95_ms", "read_p99_ms", "read_max_ms", "failures", "db_payload_per_record_mb",
        "write_latency_sum_s", "read_latency_sum_s", "write_cpu_s", "write_encode_busy_s", "write_db_only_s",
        "read_cpu_s", "read_decode_busy_s", "read_db_only_s", "verify_s", "write_rss_peak_mb", "read_rss_peak_mb",
        "estimated_client_mb", "measured_client_mb", "insert_s", "select_s", *SERVER_COLUMNS, "zstd_level",
    )  # fmt: skip
    EFFICIENCY: ClassVar[str] = "write_eps"


@dataclass(frozen=True)
class FieldKind:
    """What a row field holds: its type (int, float, str or Status) and whether it may be empty (None)."""

    base: type
    optional: bool

    def from_text(self, text: str) -> Any:
        """The field's value from a CSV cell (an empty cell is None where the field may be empty); raises
        ValueError when the text is not of the field's type."""
        if text == "" and self.optional:
            return None
        if self.base is Status:
            return Status(text)
        if self.base is int:
            return int(text)
        if self.base is float:
            return float(text)
        return text

    def from_json(self, value: object) -> Any:
        """The field's value from a JSON value; raises ValueError when it is not of the field's type (a bool is
        no number, an int is a float)."""
        if value is None and self.optional:
            return None
        if self.base is Status and isinstance(value, str):
            return Status(value)
        if self.base is str and isinstance(value, str):
            return value
        if self.base in (int, float) and isinstance(value, int | float) and not isinstance(value, bool):
            if self.base is int and not isinstance(value, int):
                raise ValueError(f"{value!r}, not a whole number")
            return value
        raise ValueError(f"{value!r}, not {'a number' if self.base in (int, float) else 'text'}")


_KINDS: dict[str, dict[str, FieldKind]] = {}


def field_kinds(row_type: type[Any]) -> dict[str, FieldKind]:
    """Every field of a dataclass (a row type, the run's configuration) and its kind, from the type annotations
    (the one reading of them)."""
    key = f"{row_type.__module__}.{row_type.__qualname__}"
    if key not in _KINDS:
        _KINDS[key] = _read_kinds(row_type)
    return _KINDS[key]


def _read_kinds(row_type: type[Any]) -> dict[str, FieldKind]:
    hints = typing.get_type_hints(row_type)
    kinds = {}
    for found in fields(row_type):
        hint = hints[found.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
            else (hint,)
        bases = [arg for arg in args if arg is not type(None)]
        kinds[found.name] = FieldKind(bases[0], len(bases) < len(args))
    return kinds
