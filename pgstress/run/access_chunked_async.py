"""Async mode's access phases for the chunked layout: AsyncAccess's batches of C records and checks, with the
window, the metric and the append done on each record's chunk rows (run/access_chunked.py says how)."""

from __future__ import annotations

import time

from pgstress.config import CHUNKED_LAYOUT, RunConfig
from pgstress.db.access_sql import metric_path
from pgstress.db.chunked_io import ChunkedAsyncDatabase
from pgstress.db.control import TableControl
from pgstress.db.copy_binary import jsonb_text
from pgstress.run.access import AccessMeasure, AccessPlan, AccessResult, RecordTruth
from pgstress.run.access_async import AsyncAccess, async_access
from pgstress.run.access_chunked import (
    append_plan,
    filled_chunk,
    how_done_chunked,
    metric_from_chunks,
    metric_from_server,
    new_chunk_values,
    received_bytes,
    window_chunks,
    window_from_chunks,
    window_from_server,
    window_parameters,
)
from pgstress.run.async_mode import AsyncDriver
from pgstress.run.iteration import Driver, LevelResult
from pgstress.run.layout import verify_chunks
from pgstress.run.measure import StageClock
from pgstress.run.record import Expected, RecordWork
from pgstress.workload.payloads import VerifyError


def async_access_layout(config: RunConfig, driver: Driver, control: TableControl,
                        secrets: tuple[str, ...]) -> AsyncAccess | None:
    """Async mode's access phases for the ramp's layout; None when the run asks only for the full read."""
    access = async_access(config, driver, control, secrets)
    if access is None or config.layout != CHUNKED_LAYOUT:
        return access
    return ChunkedAsyncAccess(access.plan, access.driver, control, secrets, config.chunk_epochs)


class ChunkedAsyncAccess(AsyncAccess):
    """The access phases of an async level's C records stored as chunk rows."""

    def __init__(self, plan: AccessPlan, driver: AsyncDriver, control: TableControl, secrets: tuple[str, ...],
                 chunk_epochs: int) -> None:
        super().__init__(plan, driver, control, secrets)
        self.chunk_epochs = chunk_epochs
        self._epochs = 0  # the records' size before their accesses (the level's)

    @property
    def db(self) -> ChunkedAsyncDatabase:
        assert isinstance(self.driver.db, ChunkedAsyncDatabase)
        return self.driver.db

    def __call__(self, level: LevelResult) -> AccessResult:
        self._epochs = level.epochs
        result = super().__call__(level)
        result.how = how_done_chunked(self.codec.name, self.plan.accesses)
        return result

    async def _range(self, record: RecordWork, truth: RecordTruth) -> tuple[AccessMeasure, object]:
        assert record.record_id is not None
        first, last = window_chunks(self._epochs, self.chunk_epochs, truth)
        started = time.perf_counter()
        if self.on_server:
            named = window_parameters(self._epochs, self.chunk_epochs, truth)
            async with self.db.connection() as conn:
                rows = await conn.fetch(self.db.sql.window_per_chunk().as_string(None), record.record_id,
                                        *(named[name] for name in ("first", "last", "k", "first_chunk",
                                                                   "last_chunk")))
            parts = [(int(number), jsonb_text(memoryview(data))) for number, data in rows]
            size = sum(len(text) + 1 for _number, text in parts)  # the version byte came with each
            window: object = await self._decode(lambda: window_from_server(parts, self._epochs, self.chunk_epochs,
                                                                           truth))
            return AccessMeasure(time.perf_counter() - started, received=size), window
        chunks = await self.db.fetch_chunks(record.record_id, first, last)
        size = received_bytes(chunks, self.db.jsonb)
        got = await self._decode(lambda: window_from_chunks(self.codec, chunks, truth, self._epochs,
                                                            self.chunk_epochs))
        return AccessMeasure(time.perf_counter() - started, received=size), got

    async def _metric(self, record: RecordWork, truth: RecordTruth) -> tuple[AccessMeasure, object]:
        assert record.record_id is not None
        key = self.plan.metric
        started = time.perf_counter()
        if self.on_server:
            async with self.db.connection() as conn:
                rows = await conn.fetch(self.db.sql.path_per_chunk().as_string(None), metric_path(key),
                                        record.record_id)
            parts = [(int(number), jsonb_text(memoryview(data))) for number, data in rows]
            size = sum(len(text) + 1 for _number, text in parts)  # the version byte came with each
            values: object = await self._decode(lambda: metric_from_server(parts))
        else:
            chunks = await self.db.fetch_chunks(record.record_id)
            size = received_bytes(chunks, self.db.jsonb)
            values = await self._decode(lambda: metric_from_chunks(self.codec, chunks, key))
        return AccessMeasure(time.perf_counter() - started, received=size), values

    async def _append(self, record: RecordWork, truth: RecordTruth) -> tuple[AccessMeasure, object]:
        assert record.record_id is not None
        record_id = record.record_id
        plan = append_plan(self._epochs, self.chunk_epochs, truth)
        started = time.perf_counter()
        received = sent = 0
        async with self.db.connection() as conn, conn.transaction():
            if plan.fill:
                row = await conn.fetchrow(self.db.sql.select_last().as_string(None), record_id)
                if row is None:
                    raise VerifyError(f"record {record_id} is no longer in table {self.db.table.table!r}")
                data = memoryview(row[1])
                last = (int(row[0]), jsonb_text(data) if self.db.jsonb else data, int(row[2]))
                received = len(data)
                filled, filled_epochs = await self._decode(lambda: filled_chunk(self.codec, last, plan, truth))
                await self.db.rewrite_chunk(conn, record_id, plan.last_chunk, filled, filled_epochs)
                sent += len(filled)
            values, counts = await self._decode(lambda: new_chunk_values(self.codec, plan))
            await self.db.put_chunks(conn, record_id, plan.last_chunk + 1, values, counts)
            sent += sum(len(value) for value in values)
        return AccessMeasure(time.perf_counter() - started, received=received, sent=sent), None

    def _check_append(self, record: RecordWork, truth: RecordTruth, got: object) -> None:
        """The grown record, every chunk read and verified by its content (untimed, one record at a time)."""
        assert record.record_id is not None
        grown = Expected(truth.grown_epochs, truth.grown_hash)
        chunks = self.driver._run(self.db.fetch_chunks(record.record_id))
        try:
            verify_chunks(self.codec, chunks, grown, StageClock(), self.chunk_epochs, self.plan.shape)
        except VerifyError as exc:
            raise VerifyError(f"the grown record: {exc}") from exc
