"""The real size limits, reached for real (too slow and too big for the test suite).

    python bench/real_limits.py [--dsn DSN] [--case jsonb|message|all]

jsonb    the sync runner writes one 600,000-epoch jsonb record (~263 MB of JSON text, ~302 MB as
         jsonb): PostgreSQL refuses it with SQLSTATE 54000 (jsonb's 268,435,455-byte limit). Expected:
         status DB_LIMIT, the message naming the limit and the excess. ~1 GB of server memory, ~15 s.
message  one bytea value of MaxAllocSize + 1,000 bytes through the runner's own insert: the server
         drops the connection (no SQLSTATE). Expected: DB_LIMIT, "1 GiB message limit". ~2 GB of
         client memory.

Without --dsn each case runs on a throwaway embedded server. Exit status 0 when every case ends as
expected. Run one heavy measurement at a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from pgstress.config import RunConfig
from pgstress.db.psycopg_adapter import SyncDatabase
from pgstress.db.schema import TableSql, prepare_table
from pgstress.db.server import open_server
from pgstress.rows import DB_LIMIT
from pgstress.run.faults import MAX_ALLOC, classify
from pgstress.session import run_session
from pgstress.target import ServerInfo
from pgstress.workload.payloads import EncodedPayload

JSONB_EPOCHS = 600_000


def jsonb_case(server: ServerInfo) -> tuple[str, str]:
    """Through the sync mode's whole run (no files written), exactly as a ramp would reach it."""
    config = RunConfig(dsn=server.dsn, table="pgstress_real_limit_jsonb", payload_format="jsonb",
                       start_epochs=JSONB_EPOCHS, end_epochs=JSONB_EPOCHS, step_epochs=1, drop_table=True,
                       memory_trace="off")  # fmt: skip
    try:
        row = run_session(config, server, outputs=[]).ramps[0].rows[0]
        return row.status, row.error
    finally:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(TableSql(config.table, "JSONB").drop())


def message_case(server: ServerInfo) -> tuple[str, str]:
    """The runner's own insert and classification, with a value just past MaxAllocSize."""
    dsn = server.dsn
    table = TableSql("pgstress_real_limit_bytea", "BYTEA")
    with psycopg.connect(dsn, autocommit=True) as conn:
        table = prepare_table(conn, table, drop=True, truncate=False)
    db = SyncDatabase(dsn, table, statement_timeout_ms=0)
    payload = EncodedPayload(data=bytes(MAX_ALLOC + 1000), epochs=0, content_hash="")
    try:
        db.insert(payload)
        return "OK", "the server accepted a value past MaxAllocSize"
    except psycopg.Error as exc:
        fault = classify(exc, value_size=payload.size)
        return fault.status, fault.message
    finally:
        db.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(table.drop())


CASES = {"jsonb": jsonb_case, "message": message_case}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    args = parser.parse_args()
    failures = 0
    for name in CASES if args.case == "all" else [args.case]:
        with open_server(args.dsn) as server:
            started = time.perf_counter()
            status, message = CASES[name](server)
            elapsed = time.perf_counter() - started
        verdict = "as expected" if status == DB_LIMIT else "UNEXPECTED"
        failures += status != DB_LIMIT
        print(f"{name}: {status} ({verdict}, {elapsed:.1f} s)\n  {message}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
