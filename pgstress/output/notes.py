"""The report's appendix, "how the figures were obtained": each mode's notes, about the run they sit in."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pgstress.config import ALL_FORMATS, RunConfig
from pgstress.output.words import listed
from pgstress.rows import Row
from pgstress.workload.payloads import format_names, get_codec
from pgstress.workload.payloads.pgarrays_codec import ARRAYS_FORMAT


def trace_note(config: RunConfig, passes: str) -> list[str]:
    """How the tracemalloc peaks are taken, and which iterations `auto` plans them for (which rows lack one, and
    why, is said with the conclusion: output/missing_peaks.py); nothing with `--memory-trace off`."""
    if not config.trace_stride:
        return []
    text = (f"- `write_peak_mb` / `read_peak_mb` are tracemalloc peaks of {passes}, because tracemalloc slows"
            " allocation 2.5-6x and would distort the timings.")
    if config.mode == "async":
        text += " A peak always covers every record of its level: a pass is taken whole or not at all."
    if config.memory_trace == "auto":
        sampled = config.sampled_iterations()
        planned = (f"iterations {', '.join(map(str, sampled))} (every {config.trace_stride}th and the last)"
                   if sampled else "every iteration")
        cost = " (about 4x a whole level at C = 100)" if config.mode == "async" else ""
        text += (f" That pass costs 3-4x the client work it repeats{cost}, so `--memory-trace auto` plans it for"
                 f" {planned} of this {config.ramp_length}-iteration ramp, within a budget of the ramp's time;"
                 " `--memory-trace on` takes it for every iteration.")
    return [text]


# Where the cost of psycopg's default non-blocking send against libpq's blocking send was measured: one machine's
# figures stay in the bench, the report links them.
DRIVER_COST = ("for a 306 MiB value it was many times the server's own execution on the machine measured, see"
               " bench/results.md, section I")
SYNC_WRITE_METHODS = {
    "insert_blocking": "Write method `insert_blocking` (the default): one parameterised INSERT per record over"
    " psycopg (bytea as a binary parameter, jsonb as text) with the connection's libpq in blocking mode"
    " (`conn.pgconn.nonblocking = 0`, how psycopg2 and libpq's own clients send), so libpq hands the whole message"
    " to the kernel itself; the connection is in autocommit, so `insert_s` includes the commit. psycopg 3's own"
    f" default send costs far more for huge values, which is the driver, not PostgreSQL: {DRIVER_COST};"
    " `--write-method insert` measures that.",
    "insert": "Write method `insert`: one parameterised INSERT per record over psycopg (bytea as a binary"
    " parameter, jsonb as text) sent as psycopg 3 sends it by default, libpq in non-blocking mode with psycopg"
    " flushing the message piece by piece; `insert_s` includes the commit. For values of hundreds of MiB most of"
    f" it is that send: {DRIVER_COST}. `--write-method insert_blocking` sends the same INSERT the fast way.",
    "copy": "Write method `copy`: one binary `COPY ... FROM STDIN (FORMAT BINARY)` per record over psycopg, the"
    " value streamed in 1 MiB chunks (the floor of what the server needs); `insert_s` includes the commit.",
}
ASYNC_WRITE_METHODS = {
    "insert": "Write method `insert`: one parameterised INSERT per record over asyncpg (bytea as a binary"
    " parameter, jsonb in its binary form: a version byte, then the JSON text), each committed as it returns.",
    "copy": "Write method `copy`: one binary COPY per record through asyncpg's `copy_to_table`, the value"
    " streamed in 1 MiB chunks, each committed as it returns.",
}
SIZES_NOTE = "Sizes are MiB (2^20 bytes)."
def _arrays_sizes_note(config: RunConfig) -> str:
    """pgarrays has no one payload column: what its sizes sum, said only where it ran."""
    if config.payload_format not in (ARRAYS_FORMAT, ALL_FORMATS):
        return ""
    return (" pgarrays stores a record in one array column per key: its sizes are summed over those columns, as"
            " sent (the binary arrays' bytes) and as stored (`pg_column_size` of each).")


def _verify_note() -> str:
    """How a record read back is proved the one written, per format: by its bytes where the codec gets them back
    unchanged (`Codec.returns_bytes_sent`), else by its decoded values."""
    by_bytes = [name for name in format_names() if get_codec(name).returns_bytes_sent]
    by_values = [name for name in format_names() if name not in by_bytes]
    return (f"- Every record read back is decoded in full and its epochs counted; then proved what was written:"
            f" {listed(by_bytes)} by a SHA-256 of the bytes read against that of the bytes sent (the server"
            f" returns a bytea, and a binary array, unchanged and the encoder is deterministic),"
            f" {listed(by_values)}, which the"
            " server rewrites, by a hash of the decoded epochs' values and their types.")


VERIFY_NOTE = _verify_note()


def server_notes(config: RunConfig, per_level: str) -> list[str]:
    """What the server-side columns mean; `per_level` says how a level's records add up ('' in sync mode)."""
    statement = "COPY" if config.write_method == "copy" else "INSERT"
    unused = (" With STORAGE EXTERNAL the server never compresses the value, so the compression method is not used."
              if config.storage == "external" and config.toast_compression != "default" else "")
    copy_note = (" A COPY's execution includes receiving the streamed value from the client, so with"
                 " `--write-method copy` it also holds the transfer." if config.write_method == "copy" else "")
    return [
        "- Server side, read between the timed phases on a separate connection (never inside them): `wal_mb` is the"
        " WAL the write phase generated (`pg_wal_lsn_diff` of `pg_current_wal_insert_lsn()` before and after it:"
        " the value, the TOAST and heap tuples, index entries, the commit, full-page images after a checkpoint);"
        " `heap_mb` / `toast_mb` are the table's main relation (`pg_relation_size`) and its TOAST relation with"
        " its index (`pg_total_relation_size` of the TOAST table) after the write; `stored_compression` is what"
        " the stored values use (`pg_column_compression`: pglz, lz4, or none when stored uncompressed). These are"
        " filled for a failed write too: what the attempt cost.",
        f"- `server_write_ms` / `server_read_ms`: the server's own execution time of this table's {statement} and"
        f" SELECT{per_level} (`pg_stat_statements` total_exec_time, the difference across the phase; statements that"
        " failed are not recorded). It excludes receiving an INSERT's parameter and converting it at bind (for jsonb:"
        " parsing the JSON text), and the commit's WAL flush; a SELECT's includes detoasting the value and sending it"
        f" to the client.{copy_note} `insert_s` minus `server_write_ms` is therefore the driver, the wire, bind and"
        " the commit.",
        "- `io_written_mb`, `io_extended_mb`, `io_fsyncs` (PostgreSQL 16+): `pg_stat_io` differences across the"
        " write phase for relations, summed over all server processes (this run's backends publish their"
        " statistics first; the checkpointer and background writer publish on their own schedule)."
        " `checkpoints`: checkpoints the server counted from the write phase's start to the read phase's end"
        " (a checkpoint is counted when it completes). `other_sessions`: other client sessions or autovacuum"
        " workers not idle at the start or the end of the write phase (or whose state this role cannot see);"
        " above 0, `wal_mb` and the I/O columns may include their work.",
        f"- `toast_compression` / `storage`: the payload column's COMPRESSION and STORAGE as configured"
        f" (`--toast-compression {config.toast_compression}`, `--storage {config.storage}`).{unused}",
    ]


def sync_notes(config: RunConfig, rows: Sequence[Row], memory_limit_mb: float | None,
               server_memory: str | None = None) -> list[str]:
    trace = trace_note(config, "the same client-side work, repeated in an untimed pass after each timed"
                               " phase (generate + encode; select + decode + verify)")
    return [
        "- Times are wall-clock `time.perf_counter()` seconds with tracemalloc **off**.",
        "- `write_s` = generate + encode + insert + commit; `read_s` = select + decode back to Python objects."
        " The hashing done for verification is excluded from both and reported as `verify_s`.",
        *trace,
        f"- {SYNC_WRITE_METHODS[config.write_method]}",
        "- `*_rss_peak_mb` is the phase's own resident peak (Linux VmHWM, reset at the phase start via"
        " /proc/self/clear_refs); `*_rss_delta_mb` is how far the phase raised the process's resident"
        " high-water mark (0 when it set no new high).",
        "- `eps` = epochs / (write_s + read_s): the write + read throughput of one record, the figure the optimal"
        " efficiency point maximises.",
        "- `db_payload_mb` = `pg_column_size(payload)` (after TOAST compression); `db_row_mb` = `pg_column_size(t.*)`;"
        f" `db_table_mb` = `pg_total_relation_size` after the iteration. {SIZES_NOTE}{_arrays_sizes_note(config)}",
        *server_notes(config, ""),
        VERIFY_NOTE,
    ]


def async_notes(config: RunConfig, rows: Sequence[Row], memory_limit_mb: float | None,
                server_memory: str | None = None) -> list[str]:
    """`server_memory`: what of the server the memory guard counted (run/server_memory.py)."""
    sweep = config.concurrency_sweep  # a sweep's notes speak of C, each ramp having its own
    c = "C" if sweep else str(config.async_concurrency)
    cpu_count = os.cpu_count()
    threads = "" if sweep else f" = {max(1, min(config.async_concurrency, cpu_count or 1))}"
    each = f" (C = {', '.join(map(str, sweep))}, one ramp each)" if sweep else ""
    first = " (of a sweep, that of the first C: a later C starts from what the earlier ones of its format cost)" \
        if sweep else ""
    trace = trace_note(config, "untimed passes after each timed batch: for writes, generating and encoding"
                               " all C records again, concurrently in the same thread pool and holding all C"
                               " values at once (no database work); for reads, the whole read batch again")
    limit = (f"{memory_limit_mb:,.0f} MiB" + (" (`--max-client-memory-mb`)" if config.max_client_memory_mb
                                              else " (80 % of the RAM available at the start, or of the"
                                                   " address space `ulimit -v` left, whichever is less)")
             if memory_limit_mb else "none (the available RAM could not be read)")
    return [
        f"- Each level starts {'C' if sweep else f'C = {c}'} tasks at once over a pool of exactly {c} asyncpg"
        f" connections{each}, each with `statement_timeout` = {config.statement_timeout_ms} ms. A write task generates"
        f" and encodes its own record (codec work runs in a pool of min(C, CPUs){threads} threads: more threads than"
        " cores only fight"
        " over the GIL) and stores it; then every record written is read back concurrently by id"
        " (SELECT, then decode and verify in the thread pool).",
        f"- {ASYNC_WRITE_METHODS[config.write_method]}",
        "- `write_s` / `read_s` are wall-clock `time.perf_counter()` seconds of the whole concurrent batch, from"
        " starting the C tasks until the last one finished, with tracemalloc **off**. Unlike sync mode the"
        " content hash kept for verification is inside the batch (it overlaps other records' work and cannot be"
        " subtracted); its summed time is `verify_s`.",
        "- `write_rps` = writes_ok / write_s; `read_rps` = reads_ok / read_s; `write_eps` = epochs x writes_ok /"
        " write_s: the write throughput summed over the C concurrent records, the figure the optimal efficiency"
        " point maximises. `reads_total` counts the records that were written, the only ones that can be read.",
        "- Latency of one record: write = from its task's start to its INSERT returning; read = from its SELECT"
        f" to its verification. Percentiles use linear interpolation over the {c} records (with fewer than 100,"
        " p99 sits close to the maximum).",
        "- Client CPU vs database wait: `*_cpu_s` is this process's CPU time (all threads, user + system) during"
        " the batch; `write_encode_busy_s` / `read_decode_busy_s` is the wall time during which at least one"
        " record was generating/encoding (decoding/verifying); `*_db_only_s` is the wall time during which at least"
        " one INSERT (SELECT) was in flight and no record was doing client work. zstd (de)compression releases the"
        " GIL and runs on several cores at once; orjson, bson and building the epoch dicts hold it and take turns."
        f" A local server competes for the same {cpu_count or '?'} CPUs; its CPU time is not in `*_cpu_s`.",
        "- A level is OK only when every write and every read succeeded. Otherwise `status` is the most frequent"
        " failure class among its records, `error` starts with `CLASS xN of C records` and the ok/total counts,"
        " then the first message of that class, and `failures` counts every class.",
        *trace,
        f"- Memory guard (limit {limit}): before each level, its memory is estimated as C x epochs times"
        " the cost per record-epoch of the largest level already run (the highest of: resident growth above the"
        " ramp's start, timed and traced passes included; tracemalloc peaks; encoded bytes; how far this run's own"
        " server's private memory grew above the ramp's start, sampled every 0.1 s, which counts the copies of the"
        f" values its backends hold: {server_memory or 'not measured'}). Never the machine's available memory,"
        f" which other processes on a shared machine move. The first level always runs{first}."
        " A level over the limit is recorded as `CLIENT_MEMORY` without running, and the ramp stops."
        " `estimated_client_mb` / `measured_client_mb` show the estimate and what the level's client then used.",
        "- `*_rss_delta_mb` is how far the batch raised the process's resident high-water mark (0 when it set no"
        " new high). `db_table_mb` = `pg_total_relation_size` after the level; `db_payload_per_record_mb` = mean"
        f" `pg_column_size(payload)` of the level's records. {SIZES_NOTE}{_arrays_sizes_note(config)}",
        "- `insert_s` / `select_s`: each successful record's time in its INSERT (or COPY) / SELECT call, summed over"
        " the level's records (they overlap, so the sum can exceed the batch's wall time).",
        *server_notes(config, ", summed over the level's records (they run at once on C server processes)"),
        VERIFY_NOTE,
    ]
