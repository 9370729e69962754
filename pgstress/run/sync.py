"""Sync mode over psycopg 3: one record per iteration, written, then read back and verified.

The iteration itself is run/iteration.py; here are only sync mode's driver calls and its row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from pgstress.config import RunConfig
from pgstress.db.psycopg_adapter import SyncDatabase
from pgstress.db.schema import TableSql
from pgstress.db.server_measures import FLUSH_STATS
from pgstress.rows import CONNECTION_LOST, OK, SyncRow
from pgstress.run.access import fill_access
from pgstress.run.faults import classify
from pgstress.run.iteration import LevelResult, Phase, fill_common, fill_rss, most_frequent_fault
from pgstress.run.measure import StageClock, mib
from pgstress.run.record import (
    RecordWork,
    Stream,
    check_stored_columns,
    decode_and_verify,
    encode_record,
    expected_of,
)
from pgstress.workload.payloads import Codec


class SyncDriver:
    """psycopg calls for one record at a time; a failed statement leaves the connection usable or dropped."""

    def __init__(self, config: RunConfig, dsn: str, table: TableSql, codec: Codec, secrets: tuple[str, ...]) -> None:
        self.config = config
        self.codec = codec
        self.secrets = secrets
        self.db = SyncDatabase(dsn, table, config.statement_timeout_ms, config.write_method)

    def streams(self, iteration: int) -> list[Stream]:
        return [(iteration,)]

    def revive(self) -> None:
        self.db.revive()

    def recover(self, lost: bool) -> None:
        self.db.recover(lost)

    def flush_stats(self) -> None:
        self.db.conn.execute(FLUSH_STATS)

    def close(self) -> None:
        self.db.close()

    def write(self, epochs: int, streams: list[Stream]) -> list[RecordWork]:
        (stream,) = streams
        record = RecordWork(stream)
        started = time.perf_counter()
        try:
            payload = encode_record(self.codec, epochs, self.config.seed, stream, record.clock)
            record.size, record.expected = payload.size, expected_of(payload)
            with record.clock.stage("insert"):
                record.record_id = self.db.write(payload)
        except Exception as exc:  # noqa: BLE001 - the record's failure is the iteration's status
            self._failed(record, exc)
        record.latency_s = time.perf_counter() - started
        return [record]

    def encode_only(self, epochs: int, streams: list[Stream]) -> None:
        for stream in streams:
            encode_record(self.codec, epochs, self.config.seed, stream, StageClock())

    def read(self, written: list[RecordWork]) -> list[RecordWork]:
        return [self._read_one(record) for record in written]

    def _read_one(self, written: RecordWork) -> RecordWork:
        assert written.record_id is not None and written.expected is not None
        record = RecordWork(written.stream, record_id=written.record_id, expected=written.expected)
        started = time.perf_counter()
        try:
            with record.clock.stage("select"):
                cursor, view, stored_epochs, stored_hash = self.db.fetch(written.record_id)
            try:
                record.size = len(view)
                decode_and_verify(self.codec, view, written.expected, record.clock)
            finally:
                del view
                cursor.close()
            check_stored_columns((stored_epochs, stored_hash), written.expected)
        except Exception as exc:  # noqa: BLE001 - the record's failure is the iteration's status
            self._failed(record, exc)
        record.latency_s = time.perf_counter() - started
        return record

    def _failed(self, record: RecordWork, exc: Exception) -> None:
        record.fault = classify(exc, *self.secrets, value_size=record.size or None)
        self.db.recover(lost=record.fault.status == CONNECTION_LOST)


def _phase_s(phase: Phase) -> float:
    """The phase's wall time without the hashing kept for verification (reported as verify_s)."""
    return phase.measure.wall_s - phase.stage_s("verify")


def sync_row(level: LevelResult, payload_format: str) -> SyncRow:
    """The row of one sync iteration. A phase that did not finish leaves its columns empty."""
    row = SyncRow(iter=level.iteration, epochs=level.epochs, format=payload_format)
    fill_common(row, level)
    faults = [level.fault] if level.fault is not None else level.record_faults
    if faults:
        first, _counts = most_frequent_fault(faults)
        row.status, row.error = first.status, first.message
    write, read = level.write, level.read
    if write is not None:
        (record,) = write.records
        if record.size:
            row.client_payload_mb = mib(record.size)  # known once encoded: the size that failed is the finding
        if record.ok:
            row.gen_s, row.encode_s, row.insert_s = (write.stage_s(name) for name in ("gen", "encode", "insert"))
            row.write_s = _phase_s(write)
            fill_rss(row, "write", write)
    if read is not None and read.records[0].ok:
        row.select_s, row.decode_s = read.stage_s("select"), read.stage_s("decode")
        row.read_s = _phase_s(read)
        fill_rss(row, "read", read)
        row.total_s = (row.write_s or 0.0) + row.read_s
        row.eps = row.epochs / row.total_s if row.total_s > 0 else None
    fill_access(row, level.access)
    if row.status == OK and level.stored:
        payload_bytes, row_bytes = next(iter(level.stored.values()))
        row.db_payload_mb, row.db_row_mb = mib(payload_bytes), mib(row_bytes)
    return row


@contextmanager
def open_sync(config: RunConfig, dsn: str, table: TableSql, codec: Codec,
              secrets: tuple[str, ...]) -> Iterator[SyncDriver]:
    """Sync mode's driver for one ramp (its table pinned); its connection is closed however the ramp ends."""
    driver = SyncDriver(config, dsn, table, codec, secrets)
    try:
        yield driver
    finally:
        driver.close()
