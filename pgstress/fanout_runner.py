"""The concurrent ramp over asyncpg: at each level C records are written at once, then read back at once.

A pool of exactly C connections lives across the whole ramp on one persistent event loop
(`asyncio.Runner`); `run_ramp` drives the levels exactly as in sync mode. Generation, encoding
and decoding run in a pool of min(C, CPUs) threads, so codecs that release the GIL (zstd) use
several cores and the event loop keeps sending and receiving while they work; more threads than
cores only fight over the GIL (bench/fanout_overlap.py compares). The level itself is in
fanout_level.py, the driver calls in fanout_db.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from pgstress.charts import ASYNC_BASE_CHARTS, ASYNC_CHARTS, PlottedChart, chart_links, charts_for_report
from pgstress.config import RunConfig, scrub
from pgstress.environment import HostInfo, ServerDetails, utc_now_text
from pgstress.fanout_db import FanoutDatabase
from pgstress.fanout_level import FanoutLevel
from pgstress.faults import secrets_in_use
from pgstress.memory_guard import MemoryGuard, default_memory_limit_mb
from pgstress.payloads import CodecOptions, get_codec
from pgstress.progress import Progress
from pgstress.ramp import STOP_SIGNALS, RampOutcome, RowSink, run_ramp
from pgstress.report import (
    ASYNC_BREAKDOWN_COLUMNS,
    ASYNC_COLUMNS,
    RunRecord,
    async_measurement_notes,
    fanout_sections,
    render,
    write_report,
)
from pgstress.results import AsyncRow
from pgstress.resume import Resumption, results_sink
from pgstress.schema import TableSql
from pgstress.server import ServerInfo, ServerUnavailable, describe_target


def codec_threads(concurrency: int) -> int:
    """Threads for generating, encoding and decoding: one per CPU, never more than C."""
    return max(1, min(concurrency, os.cpu_count() or 1))


@dataclass
class FanoutResult:
    outcome: RampOutcome
    table_bytes: int | None
    memory_limit_mb: float | None


@contextmanager
def _stop_signals_as_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP take Ctrl-C's path: inside `runner.run` asyncio.Runner then cancels the level's task.

    Raising KeyboardInterrupt straight from their handler can land inside asyncpg's protocol
    callbacks, and that crashed the interpreter (SIGSEGV) instead of ending the ramp.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, lambda signum, frame: signal.raise_signal(signal.SIGINT))
                for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_fanout(config: RunConfig, dsn: str, sinks: list[RowSink], on_row: Callable[[AsyncRow], None] | None = None,
               codec_executor: Executor | None = None, earlier: Sequence[AsyncRow] = ()) -> FanoutResult:
    """Run the whole fan-out ramp on one event loop and one pool of exactly C connections.

    Codec work runs in a pool of `codec_threads(C)` threads unless `codec_executor` is given (bench/ passes one that
    runs it inline on the event loop, to show what the threads buy). `earlier` are the rows a resumed ramp already
    holds: the memory guard extrapolates from them as from levels it ran itself.
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
    with _stop_signals_as_ctrl_c(), asyncio.Runner() as runner, threads, codec_executor or threads as pool:
        try:
            db = runner.run(FanoutDatabase.open(dsn, table, concurrency, config.statement_timeout_ms,
                                                config.write_method))
        except Exception as exc:  # noqa: BLE001 - any pool failure is reported in one line
            detail = scrub(" ".join(str(exc).split()) or type(exc).__name__, *secrets_in_use(config.dsn, dsn))
            raise ServerUnavailable(
                f"cannot open {concurrency} asyncpg connections to {describe_target(dsn)}: {detail}"
            ) from None
        try:
            level = FanoutLevel(config, db, codec, runner, pool, MemoryGuard(limit), secrets_in_use(config.dsn, dsn))
            for row in earlier:
                level.observe_memory(row)
            outcome = run_ramp(levels, level, sinks, max_consecutive_failures=config.max_consecutive_failures,
                               on_row=on_row, first_iter=config.start_iter)
            try:
                table_bytes: int | None = runner.run(db.total_size())
            except Exception:  # noqa: BLE001 - the final size is a nicety; a dead server leaves it unknown
                table_bytes = None
        finally:
            runner.run(db.close())
    return FanoutResult(outcome, table_bytes, limit)


def fanout_progress_line(row: AsyncRow, total: int) -> str:
    counts = f" writes {row.writes_ok}/{row.writes_total} reads {row.reads_ok}/{row.reads_total}"
    timing = f" write {row.write_s:.3f}s" if row.write_s is not None else ""
    timing += f" read {row.read_s:.3f}s" if row.read_s is not None else ""
    eps = f" write_eps {row.write_eps:,.0f}" if row.write_eps else ""
    error = f" - {row.error}" if row.error else ""
    return f"[{row.iter}/{total}] {row.concurrency} x {row.epochs:,} epochs {row.status}{counts}{timing}{eps}{error}"


def run_fanout_report(config: RunConfig, server: ServerInfo, host: HostInfo, details: ServerDetails,
                      progress: Progress, resumption: Resumption | None = None) -> tuple[RunRecord, list[PlottedChart]]:
    """The async mode end to end: the ramp, its CSV (appended to when resuming), the report over the whole ramp
    and its charts."""
    title = (f"async fan-out ramp, {config.async_concurrency} concurrent records per level, {config.payload_format}"
             f" into {config.table}, against {server.describe()}")
    runner_config = resumption.runner_config if resumption else config
    done_before = len(config.epoch_ramp()) - len(runner_config.epoch_ramp())
    with results_sink(config, resumption) as sink, \
            progress.ramp(title, runner_config.epoch_ramp(), "", done_before) as tracker:
        result = run_fanout(runner_config, server.dsn, [sink], on_row=lambda row: progress.row(tracker, row),
                            earlier=resumption.previous if resumption else ())
    outcome = resumption.merge(result.outcome) if resumption else result.outcome
    record = RunRecord(
        config=config, host=host, server=server, server_details=details, outcome=outcome,
        table_bytes=result.table_bytes, finished_at=utc_now_text(),
        columns=list(ASYNC_COLUMNS), breakdown_columns=list(ASYNC_BREAKDOWN_COLUMNS),
        efficiency_unit="epochs/s", efficiency_name="write_eps",
        extra_sections=fanout_sections(outcome.rows) + (resumption.report_section() if resumption else []),
        table_intro=[f"### Async fan-out table ({config.async_concurrency} concurrent records per level)", ""],
        measurement_notes=async_measurement_notes(config, result.memory_limit_mb, os.cpu_count()),
    )
    charts = charts_for_report((*ASYNC_BASE_CHARTS, *ASYNC_CHARTS), {"": outcome.rows}, config.report_md,
                               enabled=not config.no_charts)
    record.chart_lines = chart_links(charts, config.report_md)
    write_report(config.report_md, render(record))
    return record, charts
