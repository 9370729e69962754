"""The floor: the work pgstress measures in sync mode, with nothing around it.

Per record size of a linear ramp: generate the epochs pgstress generates for that iteration (its own
`generate(epochs, seed, (iteration,))`, iterations counted from 1), encode them with its own codec, store
the value by one binary COPY into a plain table, select it back by id (binary results) and decode it
with the codec, consuming every chunk. No hashing, no verification, no tracemalloc, no size queries, no
server statistics; the cyclic GC is off during each iteration's work (as timeit does) and collected
between iterations, and the table is truncated between iterations (outside the timing), as pgstress does.

Run: python bench/floor.py [--dsn DSN] [--payload-format F] [--start-epochs N ...] [--json PATH]
Without --dsn it starts a throwaway embedded PostgreSQL (pgstress's embedded_server()) and reports its
start time separately. Its table (--table, default floor_records) is dropped and recreated.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # the script's wall time starts here, before its imports

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import pq, sql  # noqa: E402
from psycopg.abc import Buffer  # noqa: E402
from psycopg.adapt import Loader  # noqa: E402

from pgstress.db.copy_binary import COPY_SIGNATURE, COPY_TRAILER, JSONB_VERSION, jsonb_text  # noqa: E402
from pgstress.db.server import embedded_server  # noqa: E402
from pgstress.workload.epochs import generate  # noqa: E402
from pgstress.workload.payloads import Codec, CodecOptions, format_names, get_codec  # noqa: E402

IMPORTS_S = time.perf_counter() - T0

CONTENT_HASH = b"0" * 32  # a placeholder as long as pgstress's hash (32 hex digits): nothing is hashed


class RawLoader(Loader):
    """Binary results handed over as a view of libpq's buffer, without a copy (as pgstress reads)."""

    format = pq.Format.BINARY

    def load(self, data: Buffer) -> memoryview:
        return memoryview(data)


def write(conn: psycopg.Connection, table: sql.Identifier, codec: Codec, iteration: int, epochs: int,
          seed: int, jsonb: bool) -> int:
    """Generate (pgstress's sync stream: (iteration,)), encode, binary COPY of one row with id = iteration
    (committed: autocommit); returns the encoded size."""
    data = codec.encode_stream(chunk.as_dicts() for chunk in generate(epochs, seed, (iteration,)))
    prefix = JSONB_VERSION if jsonb else b""
    head = COPY_SIGNATURE + struct.pack("!hiqi", 4, 8, iteration, len(prefix) + len(data)) + prefix
    tail = struct.pack("!iii", 4, epochs, len(CONTENT_HASH)) + CONTENT_HASH + COPY_TRAILER
    query = sql.SQL("COPY {} (id, payload, epochs, content_hash) FROM STDIN (FORMAT BINARY)").format(table)
    with conn.cursor() as cursor, cursor.copy(query) as copy:
        copy.write(head)
        copy.write(memoryview(data))  # psycopg sends it in 4 MiB slices of the view, no copy
        copy.write(tail)
    return len(data)


def read(conn: psycopg.Connection, table: sql.Identifier, codec: Codec, record_id: int, jsonb: bool) -> int:
    """One SELECT by id with binary results, then decode every chunk; returns the epochs decoded."""
    query = sql.SQL("SELECT payload, epochs, content_hash FROM {} WHERE id = %s").format(table)
    with conn.cursor(binary=True) as cursor:
        cursor.execute(query, [record_id])
        found = cursor.fetchone()
        assert found is not None
        view: memoryview = jsonb_text(found[0]) if jsonb else found[0]
        count = sum(len(chunk) for chunk in codec.decode_stream(view))
        del view, found
    return count


@contextmanager
def server(dsn: str | None) -> Iterator[tuple[str, float | None]]:
    """(dsn, seconds the embedded server took to start, None with --dsn)."""
    if dsn is not None:
        yield dsn, None
        return
    started = time.perf_counter()
    with embedded_server() as info:
        yield info.dsn, time.perf_counter() - started


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the embedded server is stopped and removed on the way out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=None, help="server to use (default: a throwaway embedded one)")
    parser.add_argument("--payload-format", choices=format_names(), default="ndjson_zstd")
    parser.add_argument("--start-epochs", type=int, default=5_000)
    parser.add_argument("--end-epochs", type=int, default=250_000)
    parser.add_argument("--step-epochs", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--zstd-level", type=int, default=3)
    parser.add_argument("--table", default="floor_records", help="dropped and recreated")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if not 0 < args.start_epochs <= args.end_epochs or args.step_epochs <= 0:
        parser.error("need 0 < --start-epochs <= --end-epochs and --step-epochs > 0")
    signal.signal(signal.SIGTERM, _interrupt)

    codec = get_codec(args.payload_format, CodecOptions(zstd_level=args.zstd_level))
    jsonb = codec.column_type == "JSONB"
    table = sql.Identifier(args.table)
    sizes = range(args.start_epochs, args.end_epochs + 1, args.step_epochs)
    rows: list[dict[str, float | int]] = []
    with server(args.dsn) as (dsn, server_start_s), psycopg.connect(dsn, autocommit=True) as conn:
        for type_name in ("bytea", "jsonb"):
            conn.adapters.register_loader(type_name, RawLoader)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        conn.execute(sql.SQL("CREATE TABLE {} (id BIGINT PRIMARY KEY, payload {} NOT NULL,"
                             " epochs INTEGER NOT NULL, content_hash TEXT NOT NULL)")
                     .format(table, sql.SQL(codec.column_type)))  # fmt: skip
        print(f"{'iter':>4} {'epochs':>9} {'write_s':>9} {'read_s':>9} {'MiB':>8}", flush=True)
        for iteration, epochs in enumerate(sizes, start=1):
            if iteration > 1:
                conn.execute(sql.SQL("TRUNCATE TABLE {}").format(table))
            gc.disable()
            started = time.perf_counter()
            size = write(conn, table, codec, iteration, epochs, args.seed, jsonb)
            written = time.perf_counter()
            count = read(conn, table, codec, iteration, jsonb)
            done = time.perf_counter()
            gc.enable()
            gc.collect()
            if count != epochs:  # a count, after the clock: a floor that lost data is no floor
                raise SystemExit(f"iteration {iteration}: decoded {count} epochs, wrote {epochs}")
            row = {"iter": iteration, "epochs": epochs, "write_s": written - started, "read_s": done - written,
                   "encoded_bytes": size}  # fmt: skip
            rows.append(row)
            print(f"{iteration:>4} {epochs:>9,} {row['write_s']:>9.3f} {row['read_s']:>9.3f}"
                  f" {size / 1048576:>8.2f}", flush=True)  # fmt: skip
        conn.execute(sql.SQL("DROP TABLE {}").format(table))
        stopping = time.perf_counter()
    server_stop_s = None if server_start_s is None else time.perf_counter() - stopping
    write_s, read_s = sum(r["write_s"] for r in rows), sum(r["read_s"] for r in rows)
    wall_s = time.perf_counter() - T0
    summary = {"payload_format": args.payload_format, "seed": args.seed, "zstd_level": args.zstd_level,
               "ramp": [args.start_epochs, args.end_epochs, args.step_epochs], "iterations": len(rows),
               "server": "embedded" if args.dsn is None else "--dsn", "imports_s": IMPORTS_S,
               "server_start_s": server_start_s, "server_stop_s": server_stop_s,
               "write_s": write_s, "read_s": read_s, "work_s": write_s + read_s, "wall_s": wall_s,
               "rows": rows}  # fmt: skip
    start_text = "" if server_start_s is None else (
        f", embedded server start {server_start_s:.2f} s and stop {server_stop_s or 0:.2f} s")
    print(f"measured work (write + read) {write_s + read_s:.3f} s (write {write_s:.3f}, read {read_s:.3f});"
          f" script wall {wall_s:.2f} s from start; in it imports {IMPORTS_S:.2f} s{start_text}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
