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
from pgstress.run.faults import Fault
from pgstress.run.iteration import LevelResult, Phase, fill_common
from pgstress.run.level_events import ENCODED, FETCHED, SILENT, STORED, VERIFIED, LevelEvents
from pgstress.run.measure import StageClock, mib
from pgstress.run.record import (
    Expected,
    Fetched,
    RecordWork,
    Stream,
    check_stored_columns,
    decode_and_verify,
    encode_record,
    expected_of,
    record_outcome,
    timed_verify,
)
from pgstress.workload.payloads import Codec
from pgstress.workload.shape import EpochShape
from pgstress.workload.template import run_shape


class SyncDriver:
    """psycopg calls for one record at a time; a failed statement leaves the connection usable or dropped."""

    def __init__(self, config: RunConfig, dsn: str, table: TableSql, codec: Codec, secrets: tuple[str, ...],
                 events: LevelEvents = SILENT) -> None:
        self.config = config
        self.codec = codec
        self.shape: EpochShape = run_shape(config.float_decimals, config.epoch_template)
        self.secrets = secrets
        self.events = events
        self.db = SyncDatabase(dsn, table, config.statement_timeout_ms, config.write_method)

    def streams(self, iteration: int) -> list[Stream]:
        return [(iteration,)]

    def revive(self) -> None:
        self.db.revive()

    def recover(self, lost: bool) -> None:
        self.db.recover(lost)

    def flush_stats(self) -> None:
        self.db.conn.execute(FLUSH_STATS)

    def server_pids(self) -> list[int]:
        return [self.db.conn.info.backend_pid]

    def close(self) -> None:
        self.db.close()

    def write(self, epochs: int, streams: list[Stream]) -> list[RecordWork]:
        (stream,) = streams
        record = RecordWork(stream, clock=StageClock(self.events))
        with record_outcome(record, self.secrets, self.events, STORED, self._after_failure):
            started = time.perf_counter()
            payload = encode_record(self.codec, epochs, self.config.seed, stream, record.clock, self.shape)
            record.cpu_span = (started, time.perf_counter())
            record.size, record.expected = payload.size, expected_of(payload)
            self.events.record_step(ENCODED)
            try:
                with record.clock.stage("insert"):
                    record.record_id = self.db.write(payload)
            finally:
                record.db_span = (record.cpu_span[1], time.perf_counter())
        return [record]

    def encode_only(self, epochs: int, streams: list[Stream]) -> None:
        for stream in streams:
            encode_record(self.codec, epochs, self.config.seed, stream, StageClock(self.events), self.shape)
            self.events.record_step(ENCODED)

    def read(self, written: list[RecordWork]) -> list[RecordWork]:
        return [self._read_one(record) for record in written]

    def _read_one(self, written: RecordWork) -> RecordWork:
        assert written.record_id is not None and written.expected is not None
        record = RecordWork(written.stream, clock=StageClock(self.events), record_id=written.record_id,
                            expected=written.expected)
        with record_outcome(record, self.secrets, self.events, VERIFIED, self._after_failure):
            started = time.perf_counter()
            try:
                with record.clock.stage("select"):
                    fetched = self._fetch(written.record_id)
            finally:
                record.db_span = (started, time.perf_counter())
            release = fetched.release
            try:
                record.size = fetched.size
                self.events.record_step(FETCHED)
                record.cpu_span = timed_verify(fetched, written.expected, record.clock)
            finally:
                del fetched  # the record's bytes are freed before the phase goes on
                release()
        return record

    def _fetch(self, record_id: int) -> Fetched:
        """The record's one value, with its stored epochs and content hash checked after the value."""
        cursor, view, stored_epochs, stored_hash = self.db.fetch(record_id)

        def verify(expected: Expected, clock: StageClock) -> None:
            decode_and_verify(self.codec, view, expected, clock, self.shape)
            check_stored_columns((stored_epochs, stored_hash), expected)

        return Fetched(len(view), verify, cursor.close)

    def _after_failure(self, fault: Fault) -> None:
        self.db.recover(lost=fault.status == CONNECTION_LOST)


def _phase_s(phase: Phase) -> float:
    """The phase's wall time without the hashing kept for verification (reported as verify_s)."""
    return phase.measure.wall_s - phase.stage_s("verify")


def sync_row(level: LevelResult, payload_format: str) -> SyncRow:
    """The row of one sync iteration. A phase that did not finish leaves its columns empty."""
    row = SyncRow(iter=level.iteration, epochs=level.epochs, format=payload_format)
    fill_common(row, level)
    failure = level.failure()
    if failure is not None:
        row.status, row.error = failure.fault.status, failure.fault.message
    write, read = level.write, level.read
    if write is not None:
        (record,) = write.records
        if record.size:
            row.client_payload_mb = mib(record.size)  # known once encoded: the size that failed is the finding
        if record.ok:
            row.gen_s, row.encode_s, row.insert_s = (write.stage_s(name) for name in ("gen", "encode", "insert"))
            row.write_s = _phase_s(write)
            row.write_rss_delta_mb, row.write_rss_peak_mb = write.measure.rss_delta_mb, write.measure.rss_peak_mb
    if read is not None and read.records[0].ok:
        row.select_s, row.decode_s = read.stage_s("select"), read.stage_s("decode")
        row.read_s = _phase_s(read)
        row.read_rss_delta_mb, row.read_rss_peak_mb = read.measure.rss_delta_mb, read.measure.rss_peak_mb
        row.total_s = (row.write_s or 0.0) + row.read_s
        row.eps = row.epochs / row.total_s if row.total_s > 0 else None
    fill_access(row, level.access)
    if row.status == OK and level.stored:
        payload_bytes, row_bytes = next(iter(level.stored.values()))
        row.db_payload_mb, row.db_row_mb = mib(payload_bytes), mib(row_bytes)
    if level.table_bytes is not None:
        row.db_table_mb = mib(level.table_bytes)
    return row


@contextmanager
def open_sync(config: RunConfig, dsn: str, table: TableSql, codec: Codec, secrets: tuple[str, ...],
              events: LevelEvents = SILENT, driver_type: type[SyncDriver] = SyncDriver) -> Iterator[SyncDriver]:
    """Sync mode's driver for one ramp (its table pinned); its connection is closed however the ramp ends.
    `driver_type`: the layout's driver (run/layout_drivers.py)."""
    driver = driver_type(config, dsn, table, codec, secrets, events)
    try:
        yield driver
    finally:
        driver.close()
