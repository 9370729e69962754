"""The concurrent ramp over asyncpg: at each level C records are written at once, then read back at once.

A pool of exactly C connections lives across the whole ramp on one persistent event loop
(`asyncio.Runner`); `run_ramp` drives the levels exactly as in sync mode. Generation, encoding
and decoding run in a pool of min(C, CPUs) threads, so codecs that release the GIL (zstd) use
several cores and the event loop keeps sending and receiving while they work; more threads than
cores only fight over the GIL (bench/fanout_overlap.py compares). Each record's failure is its own: it is
counted and classified, and its siblings carry on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import psycopg.conninfo

from pgstress.config import RunConfig, dsn_password, scrub
from pgstress.environment import HostInfo, ServerDetails
from pgstress.epochs import generate
from pgstress.faults import OK, ClientMemoryGuard, Fault, classify
from pgstress.measure import MIB, PhaseMeasure, PhaseMeter, StageClock, mib, traced_peak_mb
from pgstress.payloads import (
    Codec,
    CodecOptions,
    EncodedPayload,
    VerifyError,
    decode_and_verify,
    encode_epochs,
    get_codec,
)
from pgstress.ramp import RampOutcome, RowSink, run_ramp
from pgstress.report import (
    ASYNC_BREAKDOWN_COLUMNS,
    ASYNC_COLUMNS,
    RunRecord,
    async_measurement_notes,
    fanout_sections,
    render,
    write_report,
)
from pgstress.results import AsyncRow, CsvSink
from pgstress.schema import TableSql
from pgstress.server import ServerInfo, ServerUnavailable, describe_target

APPLICATION_NAME = "pgstress-fanout"
DEFAULT_MEMORY_SHARE = 0.8  # of the RAM available when the run starts
_CLOSE_TIMEOUT_S = 10.0
_JSONB_VERSION = b"\x01"  # binary jsonb = a format version byte, then the JSON text

Span = tuple[float, float]


# --- where the pool connects -------------------------------------------------------------------


def asyncpg_connect_args(dsn: str) -> dict[str, Any]:
    """asyncpg keyword arguments for a libpq DSN (asyncpg itself parses only the URL form)."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    args: dict[str, Any] = {}
    host = params.get("host") or params.get("hostaddr")
    if host:
        hosts = str(host).split(",")
        args["host"] = hosts if len(hosts) > 1 else hosts[0]
    if params.get("port"):
        ports = [int(p) for p in str(params["port"]).split(",")]
        args["port"] = ports if len(ports) > 1 else ports[0]
    for libpq_name, asyncpg_name in (("user", "user"), ("password", "password"), ("dbname", "database"),
                                     ("passfile", "passfile"), ("sslmode", "ssl")):
        if params.get(libpq_name):
            args[asyncpg_name] = params[libpq_name]
    if params.get("connect_timeout"):
        args["timeout"] = float(params["connect_timeout"])  # type: ignore[arg-type]
    return args


# --- client memory: what the process holds, what the machine has, what a level will need -------


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: macOS bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MIB


def available_ram_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / MIB
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_limit_mb() -> float | None:
    available = available_ram_mb()
    return available * DEFAULT_MEMORY_SHARE if available else None


@dataclass
class MemoryGuard:
    """Refuses a level whose client memory, extrapolated from the levels already run, passes the limit.

    The unit is one record-epoch (C records x N epochs). The cost per unit is taken from the
    largest level measured so far (small levels are dominated by fixed costs and would
    over-estimate less reliably than they under-estimate): the highest of its resident growth
    above the ramp's start, its tracemalloc peaks and the encoded bytes it held.
    """

    limit_mb: float | None
    per_unit_mb: float | None = None
    _largest_units: int = 0

    def observe(self, units: int, *measured_mb: float | None) -> None:
        known = [value for value in measured_mb if value is not None and value > 0]
        if not known or units < self._largest_units:
            return
        self._largest_units = units
        self.per_unit_mb = max(known) / units

    def estimate_mb(self, units: int) -> float | None:
        return None if self.per_unit_mb is None else self.per_unit_mb * units

    def refusal(self, units: int) -> str | None:
        """Why a level of `units` record-epochs must not run, or None."""
        estimate = self.estimate_mb(units)
        if self.limit_mb is None or estimate is None or estimate <= self.limit_mb:
            return None
        return (
            f"estimated client memory {estimate:,.1f} MiB for this level exceeds --max-client-memory-mb"
            f" {self.limit_mb:,.0f}; level not run, ramp stopped"
        )


# --- time accounting over a concurrent batch ----------------------------------------------------


def _merged(spans: Sequence[Span]) -> list[Span]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def busy_s(spans: Sequence[Span]) -> float:
    """Wall time during which at least one of the spans was running."""
    return sum(end - start for start, end in _merged(spans))


def only_s(spans: Sequence[Span], excluding: Sequence[Span]) -> float:
    """Wall time covered by `spans` while none of `excluding` was running."""
    inside, outside = _merged(spans), _merged(excluding)
    overlap, j = 0.0, 0
    for start, end in inside:
        while j < len(outside) and outside[j][1] <= start:
            j += 1
        k = j
        while k < len(outside) and outside[k][0] < end:
            overlap += min(end, outside[k][1]) - max(start, outside[k][0])
            k += 1
    return busy_s(inside) - overlap


def latency_percentiles_ms(latencies_s: Sequence[float]) -> tuple[float, float, float, float] | None:
    """p50, p95, p99 (linear interpolation) and max, in milliseconds."""
    if not latencies_s:
        return None
    values = np.asarray(latencies_s) * 1000.0
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return float(p50), float(p95), float(p99), float(values.max())


# --- the database side --------------------------------------------------------------------------


def _jsonb_to_binary(text: bytes | bytearray) -> bytes:
    return _JSONB_VERSION + text


def _raw(value: bytes) -> bytes:
    return value


async def _init_connection(conn: asyncpg.Connection) -> None:
    """jsonb travels as the codec's own JSON text: asyncpg neither re-encodes nor parses it."""
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=_jsonb_to_binary, decoder=_raw, format="binary")


class ServerUnreachable(ConnectionRefusedError):
    """The pool could not (re)connect: asyncpg surfaces this as a bare OSError, psycopg as OperationalError."""


class FanoutDatabase:
    """asyncpg calls for one table over a pool of exactly C connections."""

    def __init__(self, pool: asyncpg.Pool, table: TableSql) -> None:
        self.pool = pool
        self.table = table
        self._jsonb = table.column_type == "JSONB"
        self._insert = table.insert(("$1", "$2", "$3")).as_string(None)
        self._select = table.select_payload("$1").as_string(None)
        self._sizes = table.sizes("$1").as_string(None)
        self._truncate = table.truncate().as_string(None)
        self._total_size = table.total_size().as_string(None)

    @classmethod
    async def open(cls, dsn: str, table: TableSql, connections: int, statement_timeout_ms: int) -> FanoutDatabase:
        pool = await asyncpg.create_pool(
            min_size=connections,
            max_size=connections,
            max_inactive_connection_lifetime=0,  # keep all C open for the whole ramp
            init=_init_connection,
            server_settings={"statement_timeout": str(statement_timeout_ms), "application_name": APPLICATION_NAME},
            **asyncpg_connect_args(dsn),
        )
        return cls(pool, table)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self.pool.acquire()
        except OSError as exc:  # a vanished socket is FileNotFoundError, a dead port ConnectionRefusedError
            raise ServerUnreachable(f"cannot reach the server: {exc}") from exc
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    async def insert(self, payload: EncodedPayload) -> int:
        async with self.connection() as conn:
            return int(await conn.fetchval(self._insert, payload.data, payload.epochs, payload.content_hash))

    async def fetch(self, record_id: int) -> tuple[memoryview, int, str]:
        async with self.connection() as conn:
            found = await conn.fetchrow(self._select, record_id)
        if found is None:
            raise LookupError(f"record {record_id} is not in table {self.table.table!r}")
        data, epochs, content_hash = found
        view = memoryview(data)
        if self._jsonb:
            if view[:1] != _JSONB_VERSION:
                raise VerifyError(f"unknown binary jsonb version {bytes(view[:1])!r}")
            view = view[1:]
        return view, int(epochs), str(content_hash)

    async def payload_size(self, record_id: int) -> int:
        async with self.connection() as conn:
            found = await conn.fetchrow(self._sizes, record_id)
        return int(found[0]) if found else 0

    async def truncate(self) -> None:
        async with self.connection() as conn:
            await conn.execute(self._truncate)

    async def total_size(self) -> int:
        async with self.connection() as conn:
            return int(await conn.fetchval(self._total_size))

    async def close(self) -> None:
        """Cancel whatever an interrupt left running, then close the pool (terminate if it hangs)."""
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        try:
            await asyncio.wait_for(self.pool.close(), _CLOSE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a pool that cannot close cleanly is terminated
            self.pool.terminate()


# --- one level ----------------------------------------------------------------------------------


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
                 executor: Executor, guard: MemoryGuard, levels: list[int]) -> None:
        self.config = config
        self.db = db
        self.codec = codec
        self.runner = runner
        self.executor = executor
        self.guard = guard
        self.meter = PhaseMeter()
        self.start_rss_mb = current_rss_mb()
        self.guard_stop: str | None = None
        self._levels = levels  # run_ramp's own list: shortening it ends the ramp after this level
        self._secret = dsn_password(config.dsn)

    def __call__(self, iteration: int, epochs: int) -> AsyncRow:
        concurrency = self.config.async_concurrency
        row = AsyncRow(iter=iteration, concurrency=concurrency, epochs=epochs, status=OK, format=self.codec.name)
        units = concurrency * epochs
        row.estimated_client_mb = self.guard.estimate_mb(units)
        refusal = self.guard.refusal(units)
        if refusal is not None:
            fault = classify(ClientMemoryGuard(refusal))
            row.status, row.error = fault.status, fault.message
            self.guard_stop = refusal
            del self._levels[iteration - self.config.start_iter + 1 :]
            return row
        try:
            self._run(row, iteration, epochs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a level-wide fault (truncate, pool) is this level's status
            fault = classify(exc, self._secret)
            row.status, row.error = fault.status, fault.message
        return row

    def _run(self, row: AsyncRow, iteration: int, epochs: int) -> None:
        if iteration > self.config.start_iter and not self.config.keep_data_between_iterations:
            self.runner.run(self.db.truncate())
        streams = [(iteration, index) for index in range(self.config.async_concurrency)]
        phase_peaks: list[float | None] = []

        writes = self._timed(lambda: self._write_batch(epochs, streams))
        phase_peaks.append(writes.phase.rss_peak_mb)
        self._record_writes(row, writes, epochs)
        written = [(o.record_id, o.expected) for o in writes.ok if o.record_id is not None and o.expected]
        if self.config.memory_trace and any(o.size for o in writes.outcomes):
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
            if self.config.memory_trace:
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
        self.guard.observe(self.config.async_concurrency * epochs, row.measured_client_mb, row.write_peak_mb,
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
            outcome.fault = classify(exc, self._secret)
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
            if (stored_epochs, stored_hash) != expected:
                raise VerifyError("the row's epochs/content_hash columns differ from what was written")
        except Exception as exc:  # noqa: BLE001 - one record's fault is counted, its siblings go on
            outcome.fault = classify(exc, self._secret)
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
        _set_latencies(row, "write", [o.latency_s for o in writes.ok])
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
        _set_latencies(row, "read", [o.latency_s for o in reads.ok])
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


def _set_latencies(row: AsyncRow, phase: str, latencies: list[float]) -> None:
    found = latency_percentiles_ms(latencies)
    if found is None:
        return
    for name, value in zip(("p50", "p95", "p99", "max"), found):
        setattr(row, f"{phase}_{name}_ms", value)


# --- the ramp and the report --------------------------------------------------------------------


def codec_threads(concurrency: int) -> int:
    """Threads for generating, encoding and decoding: one per CPU, never more than C."""
    return max(1, min(concurrency, os.cpu_count() or 1))


@dataclass
class FanoutResult:
    outcome: RampOutcome
    table_bytes: int | None
    memory_limit_mb: float | None


def run_fanout(config: RunConfig, dsn: str, sinks: list[RowSink], on_row: Callable[[AsyncRow], None] | None = None,
               codec_executor: Executor | None = None) -> FanoutResult:
    """Run the whole fan-out ramp on one event loop and one pool of exactly C connections.

    Codec work runs in a pool of `codec_threads(C)` threads unless `codec_executor` is given (bench/ passes one that
    runs it inline on the event loop, to show what the threads buy).
    """
    # The pool retries lost connections in the background and logs each failure with a traceback;
    # the failures that matter are already counted per record.
    logging.getLogger("asyncpg.pool").setLevel(logging.CRITICAL)
    codec = get_codec(config.payload_format, CodecOptions(zstd_level=config.zstd_level))
    table = TableSql(config.table, codec.column_type)
    limit = float(config.max_client_memory_mb) if config.max_client_memory_mb else default_memory_limit_mb()
    levels = config.epoch_ramp()
    concurrency = config.async_concurrency
    threads = ThreadPoolExecutor(codec_threads(concurrency), thread_name_prefix="pgstress-codec")
    with asyncio.Runner() as runner, threads, codec_executor or threads as pool:
        try:
            db = runner.run(FanoutDatabase.open(dsn, table, concurrency, config.statement_timeout_ms))
        except Exception as exc:  # noqa: BLE001 - any pool failure is reported in one line
            detail = scrub(" ".join(str(exc).split()) or type(exc).__name__, dsn_password(dsn))
            raise ServerUnavailable(
                f"cannot open {concurrency} asyncpg connections to {describe_target(dsn)}: {detail}"
            ) from None
        try:
            level = FanoutLevel(config, db, codec, runner, pool, MemoryGuard(limit), levels)
            outcome = run_ramp(levels, level, sinks, max_consecutive_failures=config.max_consecutive_failures,
                               on_row=on_row, first_iter=config.start_iter)
            if level.guard_stop is not None and not outcome.interrupted:
                outcome.stop_reason = f"was stopped by the client memory guard ({level.guard_stop})"
            try:
                table_bytes: int | None = runner.run(db.total_size())
            except Exception:  # noqa: BLE001 - the final size is a nicety; a dead server leaves it unknown
                table_bytes = None
        finally:
            runner.run(db.close())
    return FanoutResult(outcome, table_bytes, limit)


def _progress_line(row: AsyncRow, total: int) -> str:
    counts = f" writes {row.writes_ok}/{row.writes_total} reads {row.reads_ok}/{row.reads_total}"
    timing = f" write {row.write_s:.3f}s" if row.write_s is not None else ""
    timing += f" read {row.read_s:.3f}s" if row.read_s is not None else ""
    eps = f" write_eps {row.write_eps:,.0f}" if row.write_eps else ""
    error = f" - {row.error}" if row.error else ""
    return f"[{row.iter}/{total}] {row.concurrency} x {row.epochs:,} epochs {row.status}{counts}{timing}{eps}{error}"


def run_fanout_report(config: RunConfig, server: ServerInfo, host: HostInfo, details: ServerDetails) -> int:
    """The async mode end to end: the ramp, its CSV, the report, the summary lines."""
    from pgstress.cli import finish  # cli dispatches here; the summary lines are shared with sync mode

    total = len(config.epoch_ramp())
    source = "embedded PostgreSQL" if server.embedded else server.public_dsn
    print(f"pgstress: async fan-out ramp of {total} levels x {config.async_concurrency} concurrent records,"
          f" {config.payload_format}, against {source}", flush=True)
    with CsvSink(config.async_results_csv, AsyncRow) as sink:
        result = run_fanout(config, server.dsn, [sink], on_row=lambda row: print(_progress_line(row, total),
                                                                                 flush=True))
    rows = result.outcome.rows
    record = RunRecord(
        config=config, host=host, server=server, server_details=details, outcome=result.outcome,
        table_bytes=result.table_bytes, finished_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        columns=list(ASYNC_COLUMNS), breakdown_columns=list(ASYNC_BREAKDOWN_COLUMNS),
        efficiency_unit="epochs/s", efficiency_name="write_eps",
        extra_sections=fanout_sections(rows),
        table_intro=[f"### Async fan-out table ({config.async_concurrency} concurrent records per level)", ""],
        measurement_notes=async_measurement_notes(config, result.memory_limit_mb, os.cpu_count()),
    )
    write_report(config.report_md, render(record))
    return finish(record, [config.async_results_csv])
