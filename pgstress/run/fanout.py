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
from pgstress.db.asyncpg_adapter import FanoutDatabase
from pgstress.db.schema import TableSql
from pgstress.db.server import ServerUnavailable, describe_target
from pgstress.db.server_measures import FLUSH_STATS
from pgstress.redaction import scrub
from pgstress.rows import AsyncRow, Row
from pgstress.run.access import fill_access
from pgstress.run.event_loop import LoopRunner
from pgstress.run.faults import classify
from pgstress.run.iteration import LevelResult, Phase, fill_common, fill_rss, most_frequent_fault
from pgstress.run.latency import Span, busy_s, latency_percentiles_ms, only_s
from pgstress.run.level_events import ENCODED, FETCHED, STORED, VERIFIED, record_step
from pgstress.run.measure import StageClock, mib
from pgstress.run.memory_guard import MemoryGuard, default_memory_limit_mb
from pgstress.run.record import (
    Expected,
    RecordWork,
    Stream,
    check_stored_columns,
    decode_and_verify,
    encode_record,
    expected_of,
)
from pgstress.workload.payloads import Codec, EncodedPayload

T = TypeVar("T")


def codec_threads(concurrency: int) -> int:
    """Threads for generating, encoding and decoding: one per CPU, never more than C."""
    return max(1, min(concurrency, os.cpu_count() or 1))


@dataclass
class FanoutDriver:
    """asyncpg calls for C records at once, driven from the (synchronous) iteration template."""

    config: RunConfig
    codec: Codec
    runner: LoopRunner
    db: FanoutDatabase
    executor: Executor
    secrets: tuple[str, ...]

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

    # writes

    def write(self, epochs: int, streams: list[Stream]) -> list[RecordWork]:
        return self._run(self._gather([self._write_one(epochs, stream) for stream in streams]))

    def _encode(self, epochs: int, stream: Stream, clock: StageClock) -> tuple[EncodedPayload, Span]:
        started = time.perf_counter()
        payload = encode_record(self.codec, epochs, self.config.seed, stream, clock)
        return payload, (started, time.perf_counter())

    def encode_only(self, epochs: int, streams: list[Stream]) -> None:
        """The write batch's client work without the database: all C values alive at once."""
        futures = [self.executor.submit(self._encode, epochs, stream, StageClock()) for stream in streams]
        for future in as_completed(futures):  # every value stays held by its future until all are done
            future.result()
            record_step(ENCODED)
        del futures

    async def _write_one(self, epochs: int, stream: Stream) -> RecordWork:
        record = RecordWork(stream)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            payload, record.cpu_span = await loop.run_in_executor(
                self.executor, self._encode, epochs, stream, record.clock)
            record.size = payload.size
            record.expected = expected_of(payload)
            record_step(ENCODED)
            insert_started = time.perf_counter()
            try:
                record.record_id = await self.db.insert(payload)
            finally:
                record.db_span = (insert_started, time.perf_counter())
                del payload
        except Exception as exc:  # noqa: BLE001 - one record's fault is counted, its siblings go on
            record.fault = classify(exc, *self.secrets, value_size=record.size or None)
        record.latency_s = time.perf_counter() - started
        record_step(STORED, record.ok)
        return record

    # reads

    def read(self, written: list[RecordWork]) -> list[RecordWork]:
        return self._run(self._gather([self._read_one(record) for record in written]))

    def _decode(self, view: memoryview, expected: Expected, clock: StageClock) -> Span:
        started = time.perf_counter()
        decode_and_verify(self.codec, view, expected, clock)
        return started, time.perf_counter()

    async def _read_one(self, written: RecordWork) -> RecordWork:
        assert written.record_id is not None and written.expected is not None
        record = RecordWork(written.stream, record_id=written.record_id, expected=written.expected)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            try:
                view, stored_epochs, stored_hash = await self.db.fetch(written.record_id)
            finally:
                record.db_span = (started, time.perf_counter())
            record.size = len(view)
            record_step(FETCHED)
            try:
                record.cpu_span = await loop.run_in_executor(
                    self.executor, self._decode, view, written.expected, record.clock)
            finally:
                del view
            check_stored_columns((stored_epochs, stored_hash), written.expected)
        except Exception as exc:  # noqa: BLE001 - one record's fault is counted, its siblings go on
            record.fault = classify(exc, *self.secrets, value_size=record.size or None)
        record.latency_s = time.perf_counter() - started
        record_step(VERIFIED, record.ok)
        return record

    @staticmethod
    async def _gather(records: list[Coroutine[Any, Any, RecordWork]]) -> list[RecordWork]:
        return list(await asyncio.gather(*records))


@contextmanager
def open_fanout(config: RunConfig, dsn: str, table: TableSql, codec: Codec, secrets: tuple[str, ...],
                codec_executor: Executor | None = None) -> Iterator[FanoutDriver]:
    """The fan-out's event loop, its pool of exactly C connections and its codec threads, for one ramp.

    Codec work runs in a pool of `codec_threads(C)` threads unless `codec_executor` is given (bench/
    passes one that runs it inline on the event loop, to show what the threads buy).
    """
    # The pool retries lost connections in the background and logs each failure with a traceback;
    # the failures that matter are already counted per record.
    logging.getLogger("asyncpg.pool").setLevel(logging.CRITICAL)
    concurrency = config.async_concurrency
    threads = ThreadPoolExecutor(codec_threads(concurrency), thread_name_prefix="pgstress-codec")
    with LoopRunner() as runner, threads, codec_executor or threads as pool:
        try:
            db = runner.run(FanoutDatabase.open(dsn, table, concurrency, config.statement_timeout_ms,
                                                config.write_method))
        except Exception as exc:  # noqa: BLE001 - any pool failure is reported in one line
            detail = scrub(" ".join(str(exc).split()) or type(exc).__name__, *secrets)
            raise ServerUnavailable(
                f"cannot open {concurrency} asyncpg connections to {describe_target(dsn)}: {detail}"
            ) from None
        try:
            yield FanoutDriver(config, codec, runner, db, pool, secrets)
        finally:
            with interrupts.deferred():  # the pool is closed whatever signals arrive (bounded by its own timeout)
                runner.run(db.close())


def fanout_guard(config: RunConfig, earlier: Sequence[Row]) -> MemoryGuard:
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


def _latency_columns(row: AsyncRow, prefix: str, records: list[RecordWork]) -> None:
    """`<prefix>_p50_ms`, `_p95_ms`, `_p99_ms` and `_max_ms` of the successful records; empty without any."""
    found = latency_percentiles_ms([record.latency_s for record in records if record.ok])
    if found is not None:
        for name, value in zip(("p50", "p95", "p99", "max"), found):
            setattr(row, f"{prefix}_{name}_ms", value)


def _spans(phase: Phase, kind: str) -> list[Span]:
    return [span for record in phase.records if (span := getattr(record, f"{kind}_span")) is not None]


def _batch_columns(row: AsyncRow, prefix: str, phase: Phase, epochs: int, work: str, database_stage: str) -> None:
    """The columns a write batch and a read batch fill alike (`prefix` write or read; `database_stage` insert_s or
    select_s: the successful records' time in their database call, summed)."""
    wall_s, ok = phase.measure.wall_s, len(phase.ok)
    setattr(row, f"{prefix}_s", wall_s)
    setattr(row, f"{prefix}s_total", len(phase.records))
    setattr(row, f"{prefix}s_ok", ok)
    if wall_s > 0:
        setattr(row, f"{prefix}_rps", ok / wall_s)
        setattr(row, f"{prefix}_eps", epochs * ok / wall_s)
    _latency_columns(row, prefix, phase.records)
    setattr(row, f"{prefix}_latency_sum_s", sum(record.latency_s for record in phase.records))
    setattr(row, f"{prefix}_cpu_s", phase.cpu_s)
    setattr(row, f"{prefix}_{work}_busy_s", busy_s(_spans(phase, "cpu")))
    setattr(row, f"{prefix}_db_only_s", only_s(_spans(phase, "db"), _spans(phase, "cpu")))
    stored = [record.db_span for record in phase.ok if record.db_span is not None]
    setattr(row, database_stage, sum(end - start for start, end in stored) if stored else None)
    fill_rss(row, prefix, phase)


def async_row(level: LevelResult, payload_format: str, concurrency: int) -> AsyncRow:
    """The row of one level. With failures, its status is that of its most frequent failure, whose count
    leads the error; `failures` counts every class. A failure of the whole level has no count."""
    row = AsyncRow(iter=level.iteration, concurrency=concurrency, epochs=level.epochs, format=payload_format,
                   estimated_client_mb=level.estimated_client_mb, measured_client_mb=level.client_mb)
    fill_common(row, level)
    if level.write is not None:
        _batch_columns(row, "write", level.write, level.epochs, "encode", "insert_s")
        sent = [record.size for record in level.write.records if record.size]
        if sent:
            row.payload_total_mb = mib(sum(sent))
            row.payload_per_record_mb = row.payload_total_mb / len(sent)
    if level.read is not None:
        _batch_columns(row, "read", level.read, level.epochs, "decode", "select_s")
    fill_access(row, level.access)
    stored = level.stored_payload_bytes()
    if stored:
        row.db_payload_per_record_mb = mib(sum(stored) / len(stored))
    if level.table_bytes is not None:
        row.db_table_mb = mib(level.table_bytes)
    if level.fault is not None:
        row.status, row.error = level.fault.status, level.fault.message
    elif level.record_faults:
        first, counts = most_frequent_fault(level.record_faults)
        row.status = first.status
        row.failures = ";".join(f"{name}={n}" for name, n in counts.most_common())
        row.error = (
            f"{first.status} x{counts[first.status]} of {concurrency} records (writes {row.writes_ok}/"
            f"{row.writes_total} ok, reads {row.reads_ok}/{row.reads_total} ok): {first.message}"
        )
    return row
