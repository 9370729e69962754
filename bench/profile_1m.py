"""Where one 1M-epoch sync iteration's time goes, stage by stage, and how far each client stage is from
its library's own speed on the same bytes.

pgstress runs one iteration of --epochs (default 1,000,000) --repetitions times (`--repeat`, memory trace
off) on one server; the medians of its stage columns are set beside the libraries doing the same work
with nothing around it, best of the repetitions:

- gen: numpy drawing the same columns and turning them into the dicts an application holds (`generate`,
  `as_dicts`), i.e. pgstress's gen stage without its clock and the chunk-by-chunk hand-over;
- encode: the codec's own call on dicts already built (ndjson_zstd: orjson of all epochs, then one
  zstd compression of the whole text at the same level and threads; bson: `bson.encode` of the whole
  document; jsonb: `orjson.dumps`);
- decode: the same value decoded whole (ndjson_zstd: one zstd decompression, then one `orjson.loads`;
  bson: `bson.decode`; jsonb: `orjson.loads`);
- verify: one SHA-256 of the value (bson, ndjson_zstd), the hash of decoded values for jsonb (pgstress's).

Run: python bench/profile_1m.py [--dsn DSN] [--payload-format F] [--epochs N] [--repetitions N] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bson  # noqa: E402
import orjson  # noqa: E402
import zstandard  # noqa: E402
from floor import server  # noqa: E402  (bench/ is on sys.path when this script runs)

from pgstress.run.measure import StageClock  # noqa: E402
from pgstress.run.record import encode_epochs  # noqa: E402
from pgstress.workload.epochs import ContentHash, generate  # noqa: E402
from pgstress.workload.payloads import format_names, get_codec  # noqa: E402
from pgstress.workload.payloads.ndjson_zstd_codec import compression_params, ndjson_lines  # noqa: E402

STAGES = ("gen_s", "encode_s", "insert_s", "select_s", "decode_s", "verify_s")


def best(work: Callable[[], object], repetitions: int) -> float:
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def library_times(fmt: str, epochs: int, seed: int, repetitions: int) -> dict[str, float]:
    """The libraries' own time for each client stage on pgstress's bytes (iteration 1's record)."""
    chunks = list(generate(epochs, seed, (1,)))
    dicts = [epoch for chunk in chunks for epoch in chunk.as_dicts()]
    data = bytes(encode_epochs(get_codec(fmt), iter(chunks), StageClock()).data)
    times = {"gen_s": best(lambda: [chunk.as_dicts() for chunk in generate(epochs, seed, (1,))], repetitions)}
    if fmt == "ndjson_zstd":
        text = ndjson_lines(dicts)
        compressor = zstandard.ZstdCompressor(compression_params=compression_params(3))
        times["encode_s"] = best(lambda: compressor.compress(ndjson_lines(dicts)), repetitions)
        times["decode_s"] = best(lambda: orjson.loads(b"[" + zstandard.ZstdDecompressor().decompress(
            data, max_output_size=len(text)).replace(b"\n", b",")[:-1] + b"]"), repetitions)
    elif fmt == "bson":
        times["encode_s"] = best(lambda: bson.encode({"epochs": dicts}), repetitions)
        times["decode_s"] = best(lambda: bson.decode(data), repetitions)
    else:
        times["encode_s"] = best(lambda: orjson.dumps({"epochs": dicts}), repetitions)
        times["decode_s"] = best(lambda: orjson.loads(data), repetitions)
    if fmt == "jsonb":
        decoded = orjson.loads(data)["epochs"]
        times["verify_s"] = best(lambda: ContentHash().update_dicts(decoded), repetitions)
    else:
        times["verify_s"] = 2 * best(lambda: hashlib.sha256(data).digest(), repetitions)  # written and read
    return times


def pgstress_times(dsn: str, fmt: str, epochs: int, repetitions: int) -> list[dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "r.csv"
        done = subprocess.run(
            [sys.executable, "main.py", "--dsn", dsn, "--payload-format", fmt, "--start-epochs", str(epochs),
             "--end-epochs", str(epochs), "--repeat", str(repetitions), "--memory-trace", "off", "--drop-table",
             "--table", "profile_1m", "--no-charts", "--quiet", "--results-csv", str(results),
             "--report-md", str(Path(tmp) / "r.md")],
            cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        with results.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))


def render(fmt: str, epochs: int, rows: list[dict[str, str]], library: dict[str, float]) -> str:
    ok = [row for row in rows if row["status"] == "OK"]
    median = {stage: statistics.median(float(row[stage]) for row in ok) for stage in STAGES}
    spread = {stage: (min(float(row[stage]) for row in ok), max(float(row[stage]) for row in ok)) for stage in STAGES}
    total = statistics.median(float(row["total_s"]) for row in ok)
    largest = max(STAGES, key=median.__getitem__)
    lines = [f"### {fmt}, {epochs:,} epochs: pgstress's stages (median of {len(ok)} repetitions) and the libraries'"
             " own speed on the same bytes (best of as many)", "",
             "| stage | pgstress s (min–max) | share of total_s | library alone s | pgstress / library |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for stage in STAGES:
        low, high = spread[stage]
        alone = library.get(stage)
        ratio = f"{median[stage] / alone:.2f}×" if alone else "—"
        lines.append(f"| {stage} | {median[stage]:.3f} ({low:.3f}–{high:.3f}) | {median[stage] / total:.0%}"
                     f" | {f'{alone:.3f}' if alone else '— (the server)'} | {ratio} |")
    lines += ["", f"total_s (median): {total:.3f} s. The largest stage is **{largest}**"
              f" ({median[largest] / total:.0%} of total_s). `verify_s` is outside total_s.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn")
    parser.add_argument("--payload-format", choices=format_names(), action="append")
    parser.add_argument("--epochs", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    formats = args.payload_format or ["ndjson_zstd"]
    parts = [f"Load average before: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs", ""]
    with server(args.dsn) as (dsn, _started):
        for fmt in formats:
            rows = pgstress_times(dsn, fmt, args.epochs, args.repetitions)
            parts.append(render(fmt, args.epochs, rows, library_times(fmt, args.epochs, args.seed, args.repetitions)))
    parts.append(f"Load average after: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    text = "\n".join(parts) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
