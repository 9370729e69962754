"""Async mode over asyncpg: at each level C records are written at once, then read back at once.

The iteration itself is run/iteration.py; here are only the fan-out's driver calls and its row.
A pool of exactly C connections lives across the whole ramp on one persistent event loop
(run/event_loop.py). Generation, encoding and decoding run in a pool of min(C, CPUs) threads, so
codecs that release the GIL (zstd) use several cores and the event loop keeps sending and
receiving while they work; more threads than cores only fight over the GIL
(bench/fanout_overlap.py compares). Each record's failure is its own: it is counted and
classified, and its siblings carry on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pgstress import interrupts
from pgstress.config import RunConfig
from pgstress.db.asyncpg_adapter import AsyncDatabase
from pgstress.db.schema import TableSql
from pgstress.db.server import ServerUnavailable
from pgstress.db.server_measures import FLUSH_STATS
from pgstress.redaction import scrub
from pgstress.rows import AsyncRow, Row
from pgstress.run.access import fill_access
from pgstress.run.event_loop import LoopRunner
from pgstress.run.iteration import LevelResult, Phase, fill_common
from pgstress.run.latency import Span, busy_s, latency_percentiles_ms, only_s
from pgstress.run.level_events import ENCODED, FETCHED, SILENT, STORED, VERIFIED, LevelEvents
from pgstress.run.measure import StageClock, mib
from pgstress.run.memory_guard import MemoryGuard, default_memory_limit_mb
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
from pgstress.target import describe_target
from pgstress.workload.payloads import Codec, EncodedPayload
from pgstress.workload.shape import EpochShape
from pgstress.workload.template import run_shape

T = TypeVar("T")


def codec_threads(concurrency: int) -> int:
    """Threads for generating, encoding and decoding: one per CPU, never more than C."""
    return max(1, min(concurrency, os.cpu_count() or 1))


@dataclass
class AsyncDriver:
    """asyncpg calls for C records at once, driven from the (synchronous) iteration template."""

    config: RunConfig
    codec: Codec
    runner: LoopRunner
    db: AsyncDatabase
    executor: Executor
    secrets: tuple[str, ...]
    events: LevelEvents = SILENT

    @property
    def shape(self) -> EpochShape:
        return run_shape(self.config.float_decimals, self.config.epoch_template)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            return self.runner.run(coroutine)
        except asyncio.CancelledError:
            # Only an interrupt cancels the level's task; the runner says so with KeyboardInterrupt unless the
            # cancellation was counted twice on its way through the driver (a second signal, or asyncpg's own).
            raise KeyboardInterrupt from None

    def streams(self, iteration: int) -> list[Stream]:
        return [(iteration, index) for index in range(self.config.async_concurrency)]

    def revive(self) -> None:
        self._run(self.db.replace_dead_connections())

    def recover(self, lost: bool) -> None:
        """The pool replaces a lost connection itself; `revive` checks them all before the next level."""

    def flush_stats(self) -> None:
        self._run(self.db.on_every_connection(FLUSH_STATS))

    def server_pids(self) -> list[int]:
        return self._run(self.db.backend_pids())

    # writes

    def write(self, epochs: int, streams: list[Stream]) -> list[RecordWork]:
        return self._run(self._gather([self._write_one(epochs, stream) for stream in streams]))

    def _encode(self, epochs: int, stream: Stream, clock: StageClock) -> tuple[EncodedPayload, Span]:
        started = time.perf_counter()
        payload = encode_record(self.codec, epochs, self.config.seed, stream, clock, self.shape)
        return payload, (started, time.perf_counter())

    def encode_only(self, epochs: int, streams: list[Stream]) -> None:
        """The write batch's client work without the database: all C values alive at once."""
        futures = [self.executor.submit(self._encode, epochs, stream, StageClock(self.events)) for stream in streams]
        for future in as_completed(futures):  # every value stays held by its future until all are done
            future.result()
            self.events.record_step(ENCODED)
        del futures

    async def _write_one(self, epochs: int, stream: Stream) -> RecordWork:
        record = RecordWork(stream, clock=StageClock(self.events))
        loop = asyncio.get_running_loop()
        with record_outcome(record, self.secrets, self.events, STORED):  # the pool replaces a lost connection
            payload, record.cpu_span = await loop.run_in_executor(
                self.executor, self._encode, epochs, stream, record.clock)
            record.size = payload.size
            record.expected = expected_of(payload)
            self.events.record_step(ENCODED)
            insert_started = time.perf_counter()
            try:
                record.record_id = await self.db.insert(payload)
            finally:
                record.db_span = (insert_started, time.perf_counter())
                del payload
        return record

    # reads

    def read(self, written: list[RecordWork]) -> list[RecordWork]:
        return self._run(self._gather([self._read_one(record) for record in written]))

    async def _fetch(self, record_id: int) -> Fetched:
        """The record's one value, with its stored epochs and content hash checked after the value."""
        view, stored_epochs, stored_hash = await self.db.fetch(record_id)

        def verify(expected: Expected, clock: StageClock) -> None:
            decode_and_verify(self.codec, view, expected, clock, self.shape)
            check_stored_columns((stored_epochs, stored_hash), expected)

        return Fetched(len(view), verify)

    async def _read_one(self, written: RecordWork) -> RecordWork:
        assert written.record_id is not None and written.expected is not None
        record = RecordWork(written.stream, clock=StageClock(self.events), record_id=written.record_id,
                            expected=written.expected)
        loop = asyncio.get_running_loop()
        with record_outcome(record, self.secrets, self.events, VERIFIED):
            started = time.perf_counter()
            try:
                fetched = await self._fetch(written.record_id)
            finally:
                record.db_span = (started, time.perf_counter())
            record.size = fetched.size
            self.events.record_step(FETCHED)
            try:
                record.cpu_span = await loop.run_in_executor(
                    self.executor, timed_verify, fetched, written.expected, record.clock)
            finally:
                del fetched  # the record's bytes are freed before its siblings' are decoded
        return record

    @staticmethod
    async def _gather(records: list[Coroutine[Any, Any, RecordWork]]) -> list[RecordWork]:
        return list(await asyncio.gather(*records))


@contextmanager
def open_async(config: RunConfig, dsn: str, table: TableSql, codec: Codec, secrets: tuple[str, ...],
                events: LevelEvents = SILENT, codec_executor: Executor | None = None,
                driver_type: type[AsyncDriver] = AsyncDriver,
                database: type[AsyncDatabase] = AsyncDatabase) -> Iterator[AsyncDriver]:
    """The fan-out's event loop, its pool of exactly C connections and its codec threads, for one ramp.

    Codec work runs in a pool of `codec_threads(C)` threads unless `codec_executor` is given (bench/
    passes one that runs it inline on the event loop, to show what the threads buy). `driver_type` and
    `database`: the layout's (run/layout_drivers.py).
    """
    # The pool retries lost connections in the background and logs each failure with a traceback;
    # the failures that matter are already counted per record.
    logging.getLogger("asyncpg.pool").setLevel(logging.CRITICAL)
    concurrency = config.async_concurrency
    threads = ThreadPoolExecutor(codec_threads(concurrency), thread_name_prefix="pgstress-codec")
    with LoopRunner() as runner, threads, codec_executor or threads as pool:
        try:
            db = runner.run(database.open(dsn, table, concurrency, config.statement_timeout_ms,
                                                config.write_method))
        except Exception as exc:  # noqa: BLE001 - any pool failure is reported in one line
            detail = scrub(" ".join(str(exc).split()) or type(exc).__name__, *secrets)
            raise ServerUnavailable(
                f"cannot open {concurrency} asyncpg connections to {describe_target(dsn)}: {detail}"
            ) from None
        try:
            yield driver_type(config, codec, runner, db, pool, secrets, events)
        finally:
            with interrupts.deferred():  # the pool is closed whatever signals arrive (bounded by its own timeout)
                runner.run(db.close())


def async_guard(config: RunConfig, earlier: Sequence[Row]) -> MemoryGuard:
    """The memory guard of a fan-out ramp; a resumed ramp's earlier levels teach it as levels it ran itself."""
    if config.max_client_memory_mb:
        guard = MemoryGuard(float(config.max_client_memory_mb))
    else:
        guard = MemoryGuard(default_memory_limit_mb(), from_machine=True)
    for row in earlier:
        if isinstance(row, AsyncRow):
            guard.observe(row.concurrency * row.epochs, row.measured_client_mb, row.write_peak_mb, row.read_peak_mb,
                          row.payload_total_mb)
    return guard


def _spans(records: list[RecordWork], kind: str) -> list[Span]:
    spans = [record.cpu_span if kind == "cpu" else record.db_span for record in records]
    return [span for span in spans if span is not None]


@dataclass(frozen=True)
class BatchFigures:
    """What a write batch and a read batch are measured by alike."""

    wall_s: float
    total: int
    ok: int
    rps: float | None  # successful records per second of the batch
    eps: float | None  # their epochs per second
    latencies_ms: tuple[float | None, float | None, float | None, float | None]  # p50, p95, p99, max (successful)
    latency_sum_s: float
    cpu_s: float
    codec_busy_s: float  # some record generating/encoding, or decoding/verifying
    db_only_s: float  # only waiting for the database
    database_s: float | None  # the successful records' time in their database call, summed
    rss_delta_mb: float
    rss_peak_mb: float | None


def batch_figures(phase: Phase, epochs: int) -> BatchFigures:
    wall_s, ok = phase.measure.wall_s, len(phase.ok)
    latencies = latency_percentiles_ms([record.latency_s for record in phase.ok])
    database = [end - start for start, end in _spans(phase.ok, "db")]
    return BatchFigures(
        wall_s=wall_s, total=len(phase.records), ok=ok,
        rps=ok / wall_s if wall_s > 0 else None, eps=epochs * ok / wall_s if wall_s > 0 else None,
        latencies_ms=latencies if latencies is not None else (None, None, None, None),
        latency_sum_s=sum(record.latency_s for record in phase.records), cpu_s=phase.cpu_s,
        codec_busy_s=busy_s(_spans(phase.records, "cpu")),
        db_only_s=only_s(_spans(phase.records, "db"), _spans(phase.records, "cpu")),
        database_s=sum(database) if database else None,
        rss_delta_mb=phase.measure.rss_delta_mb, rss_peak_mb=phase.measure.rss_peak_mb,
    )


def async_row(level: LevelResult, payload_format: str, concurrency: int) -> AsyncRow:
    """The row of one level. With failures, its status is that of its most frequent failure, whose count
    leads the error; `failures` counts every class. A failure of the whole level has no count."""
    row = AsyncRow(iter=level.iteration, concurrency=concurrency, epochs=level.epochs, format=payload_format,
                   estimated_client_mb=level.estimated_client_mb, measured_client_mb=level.client_mb)
    fill_common(row, level)
    if level.write is not None:
        w = batch_figures(level.write, level.epochs)
        row.write_s, row.writes_total, row.writes_ok = w.wall_s, w.total, w.ok
        row.write_rps, row.write_eps = w.rps, w.eps
        row.write_p50_ms, row.write_p95_ms, row.write_p99_ms, row.write_max_ms = w.latencies_ms
        row.write_latency_sum_s, row.write_cpu_s, row.write_encode_busy_s = w.latency_sum_s, w.cpu_s, w.codec_busy_s
        row.write_db_only_s, row.insert_s = w.db_only_s, w.database_s
        row.write_rss_delta_mb, row.write_rss_peak_mb = w.rss_delta_mb, w.rss_peak_mb
        sent = [record.size for record in level.write.records if record.size]
        if sent:
            row.payload_total_mb = mib(sum(sent))
            row.payload_per_record_mb = row.payload_total_mb / len(sent)
    if level.read is not None:
        r = batch_figures(level.read, level.epochs)
        row.read_s, row.reads_total, row.reads_ok = r.wall_s, r.total, r.ok
        row.read_rps, row.read_eps = r.rps, r.eps
        row.read_p50_ms, row.read_p95_ms, row.read_p99_ms, row.read_max_ms = r.latencies_ms
        row.read_latency_sum_s, row.read_cpu_s, row.read_decode_busy_s = r.latency_sum_s, r.cpu_s, r.codec_busy_s
        row.read_db_only_s, row.select_s = r.db_only_s, r.database_s
        row.read_rss_delta_mb, row.read_rss_peak_mb = r.rss_delta_mb, r.rss_peak_mb
    fill_access(row, level.access)
    stored = level.stored_payload_bytes()
    if stored:
        row.db_payload_per_record_mb = mib(sum(stored) / len(stored))
    if level.table_bytes is not None:
        row.db_table_mb = mib(level.table_bytes)
    failure = level.failure()
    if failure is not None and not failure.counts:  # the level failed as a whole
        row.status, row.error = failure.fault.status, failure.fault.message
    elif failure is not None:
        first, counts = failure.fault, failure.counts
        row.status = first.status
        row.failures = ";".join(f"{name}={n}" for name, n in counts.most_common())
        row.error = (
            f"{first.status} x{counts[first.status]} of {concurrency} records (writes {row.writes_ok}/"
            f"{row.writes_total} ok, reads {row.reads_ok}/{row.reads_total} ok): {first.message}"
        )
    return row
