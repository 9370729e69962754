"""One level of the fan-out: C records generated, encoded and inserted at once, then read back at once.

Each record's failure is its own: it is counted and classified, and its siblings carry on. A level
with any failure has one status, the class of its most frequent failure; the counts per class are
in `failures`, the count of that class in `error`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from pgstress.config import RunConfig
from pgstress.epochs import generate
from pgstress.fanout_db import FanoutDatabase
from pgstress.faults import OK, ClientMemoryGuard, Fault, classify
from pgstress.latency import Span, busy_s, only_s, set_latency_columns
from pgstress.measure import PhaseMeasure, PhaseMeter, StageClock, mib, traced_peak_mb
from pgstress.memory_guard import MemoryGuard, current_rss_mb
from pgstress.payloads import Codec, EncodedPayload, check_stored_columns, decode_and_verify, encode_epochs
from pgstress.ramp import StopRamp
from pgstress.results import AsyncRow


@dataclass
class RecordOutcome:
    """One record's write or read within a batch."""

    latency_s: float
    fault: Fault | None = None
    record_id: int | None = None
    expected: tuple[int, str] | None = None
    size: int = 0
    cpu_span: Span | None = None  # generate + encode, or decode + verify
    db_span: Span | None = None  # insert, or select
    verify_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.fault is None


@dataclass
class BatchMeasure:
    outcomes: list[RecordOutcome]
    phase: PhaseMeasure
    cpu_s: float

    @property
    def ok(self) -> list[RecordOutcome]:
        return [o for o in self.outcomes if o.ok]

    def cpu_spans(self) -> list[Span]:
        return [o.cpu_span for o in self.outcomes if o.cpu_span]

    def db_spans(self) -> list[Span]:
        return [o.db_span for o in self.outcomes if o.db_span]


class FanoutLevel:
    """Everything one level does: C concurrent writes, then C concurrent reads, then the row."""

    def __init__(self, config: RunConfig, db: FanoutDatabase, codec: Codec, runner: asyncio.Runner,
                 executor: Executor, guard: MemoryGuard, secrets: tuple[str, ...]) -> None:
        self.config = config
        self.db = db
        self.codec = codec
        self.runner = runner
        self.executor = executor
        self.guard = guard
        self.meter = PhaseMeter()
        self.start_rss_mb = current_rss_mb()
        self._secrets = secrets

    def __call__(self, iteration: int, epochs: int) -> AsyncRow:
        concurrency = self.config.async_concurrency
        row = AsyncRow(iter=iteration, concurrency=concurrency, epochs=epochs, status=OK, format=self.codec.name)
        units = concurrency * epochs
        row.estimated_client_mb = self.guard.estimate_mb(units)
        refusal = self.guard.refusal(units)
        if refusal is not None:
            fault = classify(ClientMemoryGuard(refusal))
            row.status, row.error = fault.status, fault.message
            raise StopRamp(row, f"was stopped by the client memory guard ({refusal})")
        try:
            self._run(row, iteration, epochs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a level-wide fault (truncate, pool) is this level's status
            fault = classify(exc, *self._secrets)
            row.status, row.error = fault.status, fault.message
        return row

    def _run(self, row: AsyncRow, iteration: int, epochs: int) -> None:
        self.runner.run(self.db.replace_dead_connections())
        if iteration > self.config.start_iter and not self.config.keep_data_between_iterations:
            self.runner.run(self.db.truncate())
        streams = [(iteration, index) for index in range(self.config.async_concurrency)]
        phase_peaks: list[float | None] = []

        writes = self._timed(lambda: self._write_batch(epochs, streams))
        phase_peaks.append(writes.phase.rss_peak_mb)
        self._record_writes(row, writes, epochs)
        written = [(o.record_id, o.expected) for o in writes.ok if o.record_id is not None and o.expected]
        if self.config.traces_memory(iteration) and any(o.size for o in writes.outcomes):
            encoded = [s for s, o in zip(streams, writes.outcomes) if o.size]
            with self.meter.phase() as traced:
                row.write_peak_mb = traced_peak_mb(lambda: self._encode_all(epochs, encoded))
            phase_peaks.append(traced.rss_peak_mb)

        reads: list[RecordOutcome] = []
        if written:  # with nothing written there is no read batch to time
            read_batch = self._timed(lambda: self._read_batch(written))
            phase_peaks.append(read_batch.phase.rss_peak_mb)
            self._record_reads(row, read_batch, epochs)
            reads = read_batch.outcomes
            if self.config.traces_memory(iteration):
                with self.meter.phase() as traced:
                    row.read_peak_mb = traced_peak_mb(lambda: self.runner.run(self._read_batch(written)))
                phase_peaks.append(traced.rss_peak_mb)

        self._set_status(row, [*writes.outcomes, *reads])
        try:
            if written:
                sizes = self.runner.run(self._payload_sizes([record_id for record_id, _ in written]))
                row.db_payload_per_record_mb = mib(sum(sizes) / len(sizes))
            row.db_table_mb = mib(self.runner.run(self.db.total_size()))
        except Exception:
            if row.status == OK:
                raise
            # the records' own failures already say what went wrong; the sizes stay unknown

        known_peaks = [peak for peak in phase_peaks if peak is not None] or [current_rss_mb()]
        row.measured_client_mb = max(0.0, max(known_peaks) - self.start_rss_mb)
        self.observe_memory(row)

    def observe_memory(self, row: AsyncRow) -> None:
        """Teach the memory guard what this level's records cost the client."""
        self.guard.observe(row.concurrency * row.epochs, row.measured_client_mb, row.write_peak_mb,
                           row.read_peak_mb, row.payload_total_mb)

    def _timed(self, batch: Callable[[], Any]) -> BatchMeasure:
        cpu_started = time.process_time()
        with self.meter.phase() as phase:
            outcomes = self.runner.run(batch())
        return BatchMeasure(outcomes, phase, time.process_time() - cpu_started)

    # writes

    def _encode(self, epochs: int, stream: tuple[int, ...]) -> tuple[EncodedPayload, Span, float]:
        clock = StageClock()
        started = time.perf_counter()
        payload = encode_epochs(self.codec, generate(epochs, self.config.seed, stream), clock)
        return payload, (started, time.perf_counter()), clock.get("verify")

    def _encode_all(self, epochs: int, streams: list[tuple[int, ...]]) -> None:
        """The write batch's client work without the database: all C values alive at once."""
        futures = [self.executor.submit(self._encode, epochs, stream) for stream in streams]
        held = [future.result() for future in futures]
        del held

    async def _write_batch(self, epochs: int, streams: list[tuple[int, ...]]) -> list[RecordOutcome]:
        return list(await asyncio.gather(*(self._write_one(epochs, stream) for stream in streams)))

    async def _write_one(self, epochs: int, stream: tuple[int, ...]) -> RecordOutcome:
        started = time.perf_counter()
        outcome = RecordOutcome(latency_s=0.0)
        loop = asyncio.get_running_loop()
        try:
            payload, outcome.cpu_span, outcome.verify_s = await loop.run_in_executor(
                self.executor, self._encode, epochs, stream
            )
            outcome.size = payload.size
            outcome.expected = (payload.epochs, payload.content_hash)
            insert_started = time.perf_counter()
            try:
                outcome.record_id = await self.db.insert(payload)
            finally:
                outcome.db_span = (insert_started, time.perf_counter())
                del payload
        except Exception as exc:  # noqa: BLE001 - one record's fault is counted, its siblings go on
            outcome.fault = classify(exc, *self._secrets, value_size=outcome.size or None)
        outcome.latency_s = time.perf_counter() - started
        return outcome

    # reads

    def _decode(self, view: memoryview, expected: tuple[int, str]) -> tuple[Span, float]:
        clock = StageClock()
        started = time.perf_counter()
        decode_and_verify(self.codec, view, expected, clock)
        return (started, time.perf_counter()), clock.get("verify")

    async def _read_batch(self, written: list[tuple[int | None, tuple[int, str] | None]]) -> list[RecordOutcome]:
        return list(await asyncio.gather(*(self._read_one(record_id, expected) for record_id, expected in written)))

    async def _read_one(self, record_id: int | None, expected: tuple[int, str] | None) -> RecordOutcome:
        assert record_id is not None and expected is not None
        started = time.perf_counter()
        outcome = RecordOutcome(latency_s=0.0, record_id=record_id, expected=expected)
        loop = asyncio.get_running_loop()
        try:
            try:
                view, stored_epochs, stored_hash = await self.db.fetch(record_id)
            finally:
                outcome.db_span = (started, time.perf_counter())
            outcome.size = len(view)
            try:
                outcome.cpu_span, outcome.verify_s = await loop.run_in_executor(
                    self.executor, self._decode, view, expected
                )
            finally:
                del view
            check_stored_columns((stored_epochs, stored_hash), expected)
        except Exception as exc:  # noqa: BLE001 - one record's fault is counted, its siblings go on
            outcome.fault = classify(exc, *self._secrets, value_size=outcome.size or None)
        outcome.latency_s = time.perf_counter() - started
        return outcome

    async def _payload_sizes(self, record_ids: list[int]) -> list[int]:
        return list(await asyncio.gather(*(self.db.payload_size(record_id) for record_id in record_ids)))

    # the row

    @staticmethod
    def _record_writes(row: AsyncRow, writes: BatchMeasure, epochs: int) -> None:
        row.write_s = writes.phase.wall_s
        row.writes_total = len(writes.outcomes)
        row.writes_ok = len(writes.ok)
        row.write_rps = row.writes_ok / row.write_s if row.write_s > 0 else None
        row.write_eps = epochs * row.writes_ok / row.write_s if row.write_s > 0 else None
        encoded = [o.size for o in writes.outcomes if o.size]
        if encoded:
            row.payload_total_mb = mib(sum(encoded))
            row.payload_per_record_mb = row.payload_total_mb / len(encoded)
        set_latency_columns(row, "write", [o.latency_s for o in writes.ok])
        row.write_latency_sum_s = sum(o.latency_s for o in writes.outcomes)
        row.write_cpu_s = writes.cpu_s
        row.write_encode_busy_s = busy_s(writes.cpu_spans())
        row.write_db_only_s = only_s(writes.db_spans(), writes.cpu_spans())
        row.verify_s = sum(o.verify_s for o in writes.outcomes)
        row.write_rss_delta_mb, row.write_rss_peak_mb = writes.phase.rss_delta_mb, writes.phase.rss_peak_mb

    @staticmethod
    def _record_reads(row: AsyncRow, reads: BatchMeasure, epochs: int) -> None:
        row.read_s = reads.phase.wall_s
        row.reads_total = len(reads.outcomes)
        row.reads_ok = len(reads.ok)
        if row.read_s > 0:
            row.read_rps = row.reads_ok / row.read_s
            row.read_eps = epochs * row.reads_ok / row.read_s
        set_latency_columns(row, "read", [o.latency_s for o in reads.ok])
        row.read_latency_sum_s = sum(o.latency_s for o in reads.outcomes)
        row.read_cpu_s = reads.cpu_s
        row.read_decode_busy_s = busy_s(reads.cpu_spans())
        row.read_db_only_s = only_s(reads.db_spans(), reads.cpu_spans())
        row.verify_s = (row.verify_s or 0.0) + sum(o.verify_s for o in reads.outcomes)
        row.read_rss_delta_mb, row.read_rss_peak_mb = reads.phase.rss_delta_mb, reads.phase.rss_peak_mb

    @staticmethod
    def _set_status(row: AsyncRow, outcomes: list[RecordOutcome]) -> None:
        faults = [o.fault for o in outcomes if o.fault is not None]
        if not faults:
            return
        counts = Counter(fault.status for fault in faults)
        status, count = counts.most_common(1)[0]
        first = next(fault for fault in faults if fault.status == status)
        row.status = status
        row.failures = ";".join(f"{name}={n}" for name, n in counts.most_common())
        row.error = (
            f"{status} x{count} of {row.concurrency} records (writes {row.writes_ok}/{row.writes_total} ok,"
            f" reads {row.reads_ok}/{row.reads_total} ok): {first.message}"
        )
