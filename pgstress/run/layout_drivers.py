"""The drivers of the chunked layout (--layout chunked): sync and async mode's drivers with a record written as its
chunks (run/layout.py) in one transaction and read back in chunk order, everything else theirs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from functools import partial

from pgstress.config import CHUNKED_LAYOUT, RunConfig
from pgstress.db.chunked_io import ChunkedAsyncDatabase, ChunkedSyncDatabase
from pgstress.db.schema import TableSql
from pgstress.run.async_mode import AsyncDriver, open_async
from pgstress.run.iteration import Driver
from pgstress.run.latency import Span
from pgstress.run.layout import ChunkedPayload, StoredChunk, encode_chunked, verify_chunks
from pgstress.run.level_events import ENCODED, SILENT, STORED, LevelEvents
from pgstress.run.measure import StageClock
from pgstress.run.record import Fetched, RecordWork, Stream, record_outcome
from pgstress.run.sync import SyncDriver, open_sync
from pgstress.workload.payloads import Codec
from pgstress.workload.shape import EpochShape


def fetched_chunks(codec: Codec, chunks: Sequence[StoredChunk], chunk_epochs: int, shape: EpochShape,
                   release: Callable[[], None] = lambda: None) -> Fetched:
    """A record's chunk rows as fetched: their bytes, verified together as the whole record."""
    return Fetched(sum(len(data) for _number, data, _epochs in chunks),
                   partial(verify_chunks, codec, chunks, chunk_epochs=chunk_epochs, shape=shape), release)


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

    def _fetch(self, record_id: int) -> Fetched:
        """Every chunk row of the record, in chunk order."""
        cursor, chunks = self.db.fetch_chunks(record_id)
        return fetched_chunks(self.codec, chunks, self.config.chunk_epochs, self.shape, cursor.close)


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

    async def _fetch(self, record_id: int) -> Fetched:
        """Every chunk row of the record, in chunk order."""
        chunks = await self.chunked_db.fetch_chunks(record_id)
        return fetched_chunks(self.codec, chunks, self.config.chunk_epochs, self.shape)


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
