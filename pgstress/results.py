"""Result rows and the CSV writer that appends and flushes each one as soon as it exists."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any, ClassVar


@dataclass
class SyncRow:
    """One sync iteration. Sizes in MiB, times in seconds; None = not measured (failed before)."""

    iter: int
    epochs: int
    status: str
    write_s: float | None = None
    read_s: float | None = None
    total_s: float | None = None
    eps: float | None = None
    client_payload_mb: float | None = None
    db_payload_mb: float | None = None
    db_row_mb: float | None = None
    write_peak_mb: float | None = None
    read_peak_mb: float | None = None
    write_rss_delta_mb: float | None = None
    read_rss_delta_mb: float | None = None
    error: str = ""
    # extras, after the spec's columns
    format: str = ""
    gen_s: float | None = None
    encode_s: float | None = None
    insert_s: float | None = None
    select_s: float | None = None
    decode_s: float | None = None
    verify_s: float | None = None
    write_rss_peak_mb: float | None = None
    read_rss_peak_mb: float | None = None

    SPEC_COLUMNS: ClassVar[tuple[str, ...]] = (
        "iter", "epochs", "status", "write_s", "read_s", "total_s", "eps", "client_payload_mb",
        "db_payload_mb", "db_row_mb", "write_peak_mb", "read_peak_mb", "write_rss_delta_mb",
        "read_rss_delta_mb", "error",
    )  # fmt: skip

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    @property
    def efficiency(self) -> float | None:
        """The figure the optimal point maximises: epochs per second."""
        return self.eps


def column_names(row_type: type) -> list[str]:
    return [f.name for f in fields(row_type)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


class CsvSink:
    """Writes the header once, then appends and flushes one row at a time."""

    def __init__(self, path: str | Path, row_type: type, *, append: bool = False) -> None:
        self.path = Path(path)
        self._columns = column_names(row_type)
        self._file: IO[str] | None = None
        self._append = append

    def write(self, row: object) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a" if self._append else "w", newline="", encoding="utf-8")
            if not self._append or self._file.tell() == 0:
                csv.writer(self._file).writerow(self._columns)
        csv.writer(self._file).writerow([_cell(getattr(row, name)) for name in self._columns])
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass
class AsyncRow:
    """One async fan-out level: C records written at once, then read back at once.

    `write_s` / `read_s` are wall times of the whole concurrent batch; latencies are per record.
    """

    iter: int
    concurrency: int
    epochs: int
    status: str
    write_s: float | None = None
    read_s: float | None = None
    write_rps: float | None = None
    read_rps: float | None = None
    writes_ok: int = 0
    writes_total: int = 0
    reads_ok: int = 0
    reads_total: int = 0
    payload_total_mb: float | None = None
    payload_per_record_mb: float | None = None
    db_table_mb: float | None = None
    write_peak_mb: float | None = None
    read_peak_mb: float | None = None
    write_rss_delta_mb: float | None = None
    read_rss_delta_mb: float | None = None
    error: str = ""
    # extras, after the spec's columns
    format: str = ""
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
    verify_s: float | None = None
    write_rss_peak_mb: float | None = None
    read_rss_peak_mb: float | None = None
    estimated_client_mb: float | None = None
    measured_client_mb: float | None = None

    SPEC_COLUMNS: ClassVar[tuple[str, ...]] = (
        "iter", "concurrency", "epochs", "status", "write_s", "read_s", "write_rps", "read_rps", "writes_ok",
        "writes_total", "reads_ok", "reads_total", "payload_total_mb", "payload_per_record_mb", "db_table_mb",
        "write_peak_mb", "read_peak_mb", "write_rss_delta_mb", "read_rss_delta_mb", "error",
    )  # fmt: skip

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    @property
    def efficiency(self) -> float | None:
        """The figure the optimal point maximises: epochs stored per second across the batch."""
        return self.write_eps
