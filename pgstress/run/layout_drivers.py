"""The drivers of the chunked layout (--layout chunked): sync and async mode's drivers with a record written as its
chunks (run/layout.py) in one transaction and read back in chunk order, everything else theirs."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractContextManager

from pgstress.config import CHUNKED_LAYOUT, RunConfig
from pgstress.db.chunked_io import ChunkedAsyncDatabase, ChunkedSyncDatabase
from pgstress.db.schema import TableSql
from pgstress.run.async_mode import AsyncDriver, open_async
from pgstress.run.iteration import Driver
from pgstress.run.latency import Span
from pgstress.run.layout import ChunkedPayload, encode_chunked, verify_chunks
from pgstress.run.level_events import ENCODED, FETCHED, SILENT, STORED, VERIFIED, LevelEvents
from pgstress.run.measure import StageClock
from pgstress.run.record import Expected, RecordWork, Stream, record_outcome
from pgstress.run.sync import SyncDriver, open_sync
from pgstress.workload.payloads import Codec


class ChunkedSyncDriver(SyncDriver):
    """Sync mode's driver for the chunked table."""

    db: ChunkedSyncDatabase

    def __init__(self, config: RunConfig, dsn: str, table: TableSql, codec: Codec, secrets: tuple[str, ...],
                 events: LevelEvents = SILENT) -> None:
        super().__init__(config, dsn, table, codec, secrets, events)
        self.db = ChunkedSyncDatabase(dsn, table, config.statement_timeout_ms, config.write_method)

    def _encode(self, epochs: int, stream: Stream, clock: StageClock) -> ChunkedPayload:
        return encode_chunked(self.codec, epochs, self.config.seed, stream, self.config.chunk_epochs, clock,
                              self.shape)

    def write(self, epochs: int, streams: list[Stream]) -> list[RecordWork]:
        (stream,) = streams
        record = RecordWork(stream, clock=StageClock(self.events))
        with record_outcome(record, self.secrets, self.events, STORED, self._after_failure):
            started = time.perf_counter()
            payload = self._encode(epochs, stream, record.clock)
            record.cpu_span = (started, time.perf_counter())
            record.size, record.expected = payload.size, payload.expected
            self.events.record_step(ENCODED)
            try:
                with record.clock.stage("insert"):
                    record.record_id = self.db.write_chunks(payload.chunks, payload.chunk_epochs)
            finally:
                record.db_span = (record.cpu_span[1], time.perf_counter())
        return [record]

    def encode_only(self, epochs: int, streams: list[Stream]) -> None:
        for stream in streams:
            self._encode(epochs, stream, StageClock(self.events))
            self.events.record_step(ENCODED)

    def _read_one(self, written: RecordWork) -> RecordWork:
        assert written.record_id is not None and written.expected is not None
        record = RecordWork(written.stream, clock=StageClock(self.events), record_id=written.record_id,
                            expected=written.expected)
        with record_outcome(record, self.secrets, self.events, VERIFIED, self._after_failure):
            started = time.perf_counter()
            try:
                with record.clock.stage("select"):
                    cursor, chunks = self.db.fetch_chunks(written.record_id)
            finally:
                record.db_span = (started, time.perf_counter())
            try:
                record.size = sum(len(data) for _number, data, _epochs in chunks)
                self.events.record_step(FETCHED)
                decoding = time.perf_counter()
                verify_chunks(self.codec, chunks, written.expected, record.clock, self.config.chunk_epochs,
                              self.shape)
                record.cpu_span = (decoding, time.perf_counter())
            finally:
                del chunks
                cursor.close()
        return record


class ChunkedAsyncDriver(AsyncDriver):
    """Async mode's driver for the chunked table (its `db` a ChunkedAsyncDatabase)."""

    def _encode_chunked(self, epochs: int, stream: Stream, clock: StageClock) -> tuple[ChunkedPayload, Span]:
        started = time.perf_counter()
        payload = encode_chunked(self.codec, epochs, self.config.seed, stream, self.config.chunk_epochs, clock,
                                 self.shape)
        return payload, (started, time.perf_counter())

    def encode_only(self, epochs: int, streams: list[Stream]) -> None:
        futures = [self.executor.submit(self._encode_chunked, epochs, stream, StageClock(self.events))
                   for stream in streams]
        for future in futures:  # every record's chunks stay held by its future until all are done
            future.result()
            self.events.record_step(ENCODED)
        del futures

    @property
    def chunked_db(self) -> ChunkedAsyncDatabase:
        assert isinstance(self.db, ChunkedAsyncDatabase)
        return self.db

    async def _write_one(self, epochs: int, stream: Stream) -> RecordWork:
        record = RecordWork(stream, clock=StageClock(self.events))
        loop = asyncio.get_running_loop()
        with record_outcome(record, self.secrets, self.events, STORED):
            payload, record.cpu_span = await loop.run_in_executor(
                self.executor, self._encode_chunked, epochs, stream, record.clock)
            record.size, record.expected = payload.size, payload.expected
            self.events.record_step(ENCODED)
            insert_started = time.perf_counter()
            try:
                record.record_id = await self.chunked_db.write_chunks(payload.chunks, payload.chunk_epochs)
            finally:
                record.db_span = (insert_started, time.perf_counter())
                del payload
        return record

    def _verify(self, chunks: list[tuple[int, memoryview, int]], expected: Expected, clock: StageClock) -> Span:
        started = time.perf_counter()
        verify_chunks(self.codec, chunks, expected, clock, self.config.chunk_epochs, self.shape)
        return started, time.perf_counter()

    async def _read_one(self, written: RecordWork) -> RecordWork:
        assert written.record_id is not None and written.expected is not None
        record = RecordWork(written.stream, clock=StageClock(self.events), record_id=written.record_id,
                            expected=written.expected)
        loop = asyncio.get_running_loop()
        with record_outcome(record, self.secrets, self.events, VERIFIED):
            started = time.perf_counter()
            try:
                chunks = await self.chunked_db.fetch_chunks(written.record_id)
            finally:
                record.db_span = (started, time.perf_counter())
            record.size = sum(len(data) for _number, data, _epochs in chunks)
            self.events.record_step(FETCHED)
            try:
                record.cpu_span = await loop.run_in_executor(
                    self.executor, self._verify, chunks, written.expected, record.clock)
            finally:
                del chunks
        return record


def open_sync_layout(config: RunConfig, dsn: str, table: TableSql, codec: Codec, secrets: tuple[str, ...],
                     events: LevelEvents = SILENT) -> AbstractContextManager[Driver]:
    """Sync mode's driver for the ramp's layout."""
    if config.layout == CHUNKED_LAYOUT:
        return open_sync(config, dsn, table, codec, secrets, events, driver_type=ChunkedSyncDriver)
    return open_sync(config, dsn, table, codec, secrets, events)


def open_async_layout(config: RunConfig, dsn: str, table: TableSql, codec: Codec, secrets: tuple[str, ...],
                      events: LevelEvents = SILENT) -> AbstractContextManager[Driver]:
    """Async mode's driver for the ramp's layout."""
    if config.layout == CHUNKED_LAYOUT:
        return open_async(config, dsn, table, codec, secrets, events, driver_type=ChunkedAsyncDriver,
                          database=ChunkedAsyncDatabase)
    return open_async(config, dsn, table, codec, secrets, events)
