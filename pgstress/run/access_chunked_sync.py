"""Sync mode's access phases for the chunked layout: SyncAccess's loop and checks, with the window, the metric
and the append done on the record's chunk rows (run/access_chunked.py says how)."""

from __future__ import annotations

import time

from pgstress.config import CHUNKED_LAYOUT, RunConfig
from pgstress.db.access_sql import metric_path
from pgstress.db.chunked_io import ChunkedSyncDatabase
from pgstress.db.control import TableControl
from pgstress.db.copy_binary import jsonb_text
from pgstress.db.server_measures import wal_position
from pgstress.run.access import AccessMeasure, AccessPlan, AccessResult, RecordTruth, check_metric, check_window
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
from pgstress.run.access_sync import SyncAccess, sync_access
from pgstress.run.iteration import Driver, LevelResult
from pgstress.run.layout import verify_chunks
from pgstress.run.measure import StageClock
from pgstress.run.record import Expected, RecordWork
from pgstress.run.sync import SyncDriver
from pgstress.workload.payloads import Codec, VerifyError


def sync_access_layout(config: RunConfig, driver: Driver, control: TableControl,
                       secrets: tuple[str, ...]) -> SyncAccess | None:
    """Sync mode's access phases for the ramp's layout; None when the run asks only for the full read."""
    access = sync_access(config, driver, control, secrets)
    if access is None or config.layout != CHUNKED_LAYOUT:
        return access
    assert isinstance(driver, SyncDriver) and isinstance(driver.db, ChunkedSyncDatabase)
    return ChunkedSyncAccess(access.plan, driver.db, driver.codec, control, config.seed, secrets,
                             config.chunk_epochs)


class ChunkedSyncAccess(SyncAccess):
    """The access phases of sync mode's record stored as chunk rows."""

    db: ChunkedSyncDatabase

    def __init__(self, plan: AccessPlan, db: ChunkedSyncDatabase, codec: Codec, control: TableControl, seed: int,
                 secrets: tuple[str, ...], chunk_epochs: int) -> None:
        super().__init__(plan, db, codec, control, seed, secrets)
        self.chunk_epochs = chunk_epochs
        self._epochs = 0  # the record's size before its accesses (the level's)

    def __call__(self, level: LevelResult) -> AccessResult:
        self._epochs = level.epochs
        result = super().__call__(level)
        result.how = how_done_chunked(self.codec.name, self.plan.accesses)
        return result

    def _range(self, record: RecordWork, truth: RecordTruth) -> AccessMeasure:
        assert record.record_id is not None
        first, last = window_chunks(self._epochs, self.chunk_epochs, truth)
        started = time.perf_counter()
        if self.on_server:
            with self.db.conn.cursor(binary=True) as server_cursor:
                server_cursor.execute(self.db.sql.window_per_chunk(), {
                    "record": record.record_id, **window_parameters(self._epochs, self.chunk_epochs, truth)})
                parts = [(int(number), jsonb_text(view)) for number, view in server_cursor.fetchall()]
                got = window_from_server(parts, self._epochs, self.chunk_epochs, truth)
                size = sum(len(text) + 1 for _number, text in parts)  # the version byte came with each
                del parts
            seconds = time.perf_counter() - started
            check_window(got, truth)
            return AccessMeasure(seconds, received=size)
        cursor, chunks = self.db.fetch_chunks(record.record_id, first, last)
        try:
            got = window_from_chunks(self.codec, chunks, truth, self._epochs, self.chunk_epochs)
            size = received_bytes(chunks, self.db.jsonb)
        finally:
            del chunks
            cursor.close()
        seconds = time.perf_counter() - started
        check_window(got, truth)
        return AccessMeasure(seconds, received=size)

    def _metric(self, record: RecordWork, truth: RecordTruth) -> AccessMeasure:
        assert record.record_id is not None
        key = self.plan.metric
        started = time.perf_counter()
        if self.on_server:
            with self.db.conn.cursor(binary=True) as cursor:
                cursor.execute(self.db.sql.path_per_chunk(), [metric_path(key), record.record_id])
                parts = [(int(number), jsonb_text(view)) for number, view in cursor.fetchall()]
                values = metric_from_server(parts)
                size = sum(len(text) + 1 for _number, text in parts)  # the version byte came with each
                del parts
        else:
            cursor, chunks = self.db.fetch_chunks(record.record_id)
            try:
                values = metric_from_chunks(self.codec, chunks, key)
                size = received_bytes(chunks, self.db.jsonb)
            finally:
                del chunks
                cursor.close()
        seconds = time.perf_counter() - started
        check_metric(values, key, truth)
        return AccessMeasure(seconds, received=size)

    def _append(self, record: RecordWork, truth: RecordTruth) -> AccessMeasure:
        assert record.record_id is not None
        plan = append_plan(self._epochs, self.chunk_epochs, truth)
        before = wal_position(self.control.conn)
        started = time.perf_counter()
        received = sent = 0
        conn = self.db.conn
        with conn.transaction():
            if plan.fill:
                cursor, last = self.db.last_chunk(record.record_id)
                try:
                    received = received_bytes([last], self.db.jsonb)
                    filled, filled_epochs = filled_chunk(self.codec, last, plan, truth)
                finally:
                    del last
                    cursor.close()
                self.db.rewrite_chunk(conn, record.record_id, plan.last_chunk, filled, filled_epochs)
                sent += len(filled)
                del filled
            values, counts = new_chunk_values(self.codec, plan)
            self.db.put_chunks(conn, record.record_id, plan.last_chunk + 1, values, counts)
            sent += sum(len(value) for value in values)
            del values
        seconds = time.perf_counter() - started
        after = wal_position(self.control.conn)
        self._read_back(record.record_id, truth)
        wal = None if before is None or after is None else after - before
        return AccessMeasure(seconds, received=received, sent=sent, wal_bytes=wal)

    def _read_back(self, record_id: int, truth: RecordTruth) -> None:
        """The grown record, every chunk read and verified by its content (untimed)."""
        grown = Expected(truth.grown_epochs, truth.grown_hash)
        cursor, chunks = self.db.fetch_chunks(record_id)
        try:
            verify_chunks(self.codec, chunks, grown, StageClock(), self.chunk_epochs, self.plan.shape)
        except VerifyError as exc:
            raise VerifyError(f"the grown record: {exc}") from exc
        finally:
            del chunks
            cursor.close()
