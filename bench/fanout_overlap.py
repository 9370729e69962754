"""What running codec work in threads buys the async fan-out: threads vs inline on the event loop.

    python bench/fanout_overlap.py --dsn "host=/var/run/postgresql dbname=pgstress_test" \
        --payload-format ndjson_zstd --epochs 100000 --concurrency 8

One level per mode, tracemalloc off; prints the batch wall times and the client-CPU / database-wait split.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from pgstress.config import RunConfig
from pgstress.db.control import TableControl
from pgstress.db.ownership import TableClaim
from pgstress.db.schema import TableSql, prepare_table
from pgstress.redaction import secrets_in_use
from pgstress.rows import OK, AsyncRow, Row
from pgstress.run.async_mode import async_guard, async_row, open_async
from pgstress.run.iteration import Iteration, LevelResult
from pgstress.run.ramp import run_ramp
from pgstress.workload.payloads import Codec, format_names, get_codec


class InlineExecutor(Executor):
    """Runs each job at once in the calling thread: on the event loop, which it blocks meanwhile."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed back like a thread pool would
            future.set_exception(exc)
        return future


def run_level(config: RunConfig, dsn: str, table: TableSql, codec: Codec, executor: Executor | None) -> AsyncRow:
    """The fan-out's one level as a ramp runs it, its codec work in `executor` (None: pgstress's own threads)."""
    secrets = secrets_in_use(dsn)
    rows: list[Row] = []

    def to_row(level: LevelResult) -> AsyncRow:
        return async_row(level, config.payload_format, config.async_concurrency)

    control = TableControl(TableClaim(dsn, [table.table], config.statement_timeout_ms), table)
    try:
        with open_async(config, dsn, table, codec, secrets, codec_executor=executor) as driver:
            iteration = Iteration(config, driver, control, to_row, secrets, async_guard(config, []))
            run_ramp(config.epoch_ramp(), iteration, rows.append,
                     max_consecutive_failures=config.max_consecutive_failures, first_iter=config.start_iter)
    finally:
        control.claim.close()
    (row,) = rows
    assert isinstance(row, AsyncRow)
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--payload-format", choices=format_names(), default="ndjson_zstd")
    p.add_argument("--epochs", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--table", default="pgstress_bench_overlap")
    args = p.parse_args()
    codec = get_codec(args.payload_format)
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        table = prepare_table(conn, TableSql(args.table, codec.column_type), drop=True, truncate=True)
    print(f"{args.concurrency} x {args.epochs:,} epochs, {args.payload_format}, load average {os.getloadavg()[0]:.2f}")
    print("| codec work | write_s | write cpu-s (cores) | encoding busy | db-only wait | read_s | read cpu-s (cores)"
          " | decoding busy | db-only wait |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    try:
        cores = os.cpu_count() or 1
        modes: list[tuple[str, Executor | None]] = [
            (f"{args.concurrency} threads (= C)", None),
            (f"{cores} threads (= CPUs)", ThreadPoolExecutor(cores)),
            ("inline on the loop", InlineExecutor()),
        ]
        for name, executor in modes:
            config = RunConfig(mode="async", write_method="insert",
                               table=args.table, payload_format=args.payload_format,
                               start_epochs=args.epochs, end_epochs=args.epochs, async_concurrency=args.concurrency,
                               memory_trace="off")  # fmt: skip
            r = run_level(config, args.dsn, table, codec, executor)
            assert r.status == OK, r.error
            print(f"| {name} | {r.write_s:.2f} | {r.write_cpu_s:.2f} ({r.write_cpu_s / r.write_s:.2f})"
                  f" | {r.write_encode_busy_s / r.write_s:.0%} | {r.write_db_only_s / r.write_s:.0%}"
                  f" | {r.read_s:.2f} | {r.read_cpu_s:.2f} ({r.read_cpu_s / r.read_s:.2f})"
                  f" | {r.read_decode_busy_s / r.read_s:.0%} | {r.read_db_only_s / r.read_s:.0%} |", flush=True)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(TableSql(args.table, codec.column_type).drop())


if __name__ == "__main__":
    main()
