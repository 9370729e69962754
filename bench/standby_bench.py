"""What a huge row costs a streaming standby, per format, mode and standby kind (bench/results.md's standby section).

    python bench/standby_bench.py run [--sizes 100000,500000,1000000] [--formats bson,jsonb,ndjson_zstd]
                                      [--modes sync,async] [--out DIR] [--timeout S] [--skip-done]
    python bench/standby_bench.py table [--out DIR]

`run` starts one real pgstress run at a time (`main.py --standby embedded [--synchronous-standby]`, one size,
`--repeat 3`, memory trace off, async mode with `--async-concurrency 2`), each bounded by `timeout`, sizes
outermost so every combination's smaller sizes are measured before any larger one. Each run's CSV lands in
DIR and one line per run in DIR/runs.jsonl: what it ran, its exit status, its wall time and
the load average (1 min) before and after it, which matters on a shared machine. jsonb stops at 500k: 1M epochs
exceed jsonb's 268,435,455-byte limit. `table` prints the markdown table of medians (min-max) of the 3 repetitions
(async mode: write_s and the reads are the level's, its C records at once; the WAL is per record).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JSONB_LIMIT_EPOCHS = 500_000
CONCURRENCY = 2
REPEAT = 3


def run_name(size: int, fmt: str, mode: str, synchronous: bool) -> str:
    return f"{mode}_{fmt}_{size}_{'syncsb' if synchronous else 'asyncsb'}"


def command(size: int, fmt: str, mode: str, synchronous: bool, out: Path) -> list[str]:
    name = run_name(size, fmt, mode, synchronous)
    csv_option = "--results-csv" if mode == "sync" else "--async-results-csv"
    args = [sys.executable, str(ROOT / "main.py"), "--mode", mode, "--standby", "embedded",
            "--payload-format", fmt, "--start-epochs", str(size), "--end-epochs", str(size),
            "--step-epochs", str(size), "--repeat", str(REPEAT), "--memory-trace", "off", "--no-charts",
            "--quiet", csv_option, str(out / f"{name}.csv"), "--report-md", str(out / f"{name}.md")]  # fmt: skip
    if mode == "async":
        args += ["--async-concurrency", str(CONCURRENCY)]
    if synchronous:
        args.append("--synchronous-standby")
    return args


def measure(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for size in [int(s) for s in args.sizes.split(",")]:
        for mode in args.modes.split(","):
            for fmt in args.formats.split(","):
                if fmt == "jsonb" and size > JSONB_LIMIT_EPOCHS:
                    continue
                for synchronous in (False, True):
                    name = run_name(size, fmt, mode, synchronous)
                    if args.skip_done and (out / f"{name}.csv").exists():
                        continue
                    load_before = os.getloadavg()[0]
                    started = time.monotonic()
                    cmd = ["timeout", str(args.timeout), *command(size, fmt, mode, synchronous, out)]
                    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    entry = {"name": name, "size": size, "format": fmt, "mode": mode, "synchronous": synchronous,
                             "exit": done.returncode, "wall_s": round(time.monotonic() - started, 1),
                             "load_before": load_before, "load_after": os.getloadavg()[0],
                             "at": time.strftime("%H:%M:%S"), "stderr": done.stderr[-400:]}  # fmt: skip
                    with (out / "runs.jsonl").open("a") as log:
                        log.write(json.dumps(entry) + "\n")
                    print(json.dumps(entry), flush=True)


def cell(values: list[float], digits: int) -> str:
    if not values:
        return "—"
    median = statistics.median(values)
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def table(args: argparse.Namespace) -> None:
    out = Path(args.out)
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines() if line.strip()]
    latest = {run["name"]: run for run in runs}
    print("| mode | format | epochs | standby | WAL per record, MiB | write_s | standby_replay_s | "
          "standby_read_s | primary read_s | lag at start, MiB | status | load 1 min |")  # fmt: skip
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|")
    for run in sorted(latest.values(), key=lambda r: (r["mode"], r["format"], r["size"], r["synchronous"])):
        path = out / f"{run['name']}.csv"
        rows = list(csv.DictReader(path.open())) if path.exists() else []
        def floats(column: str, rows: list[dict[str, str]] = rows) -> list[float]:
            return [float(row[column]) for row in rows if row.get(column)]

        # async mode's wal_mb is the level's (its C records): per record, over the records it wrote
        wal = [float(row["wal_mb"]) / max(1, int(row.get("writes_ok") or 1)) for row in rows if row.get("wal_mb")]
        statuses = sorted({f"{row['status']}/{row.get('standby_status', '')}" for row in rows}) or [
            f"exit {run['exit']}"
        ]
        print(f"| {run['mode']} | {run['format']} | {run['size']:,} | "
              f"{'synchronous' if run['synchronous'] else 'asynchronous'} | {cell(wal, 2)} | "
              f"{cell(floats('write_s'), 3)} | {cell(floats('standby_replay_s'), 4)} | "
              f"{cell(floats('standby_read_s'), 3)} | {cell(floats('read_s'), 3)} | "
              f"{cell(floats('standby_lag_start_mb'), 3)} | "
              f"{', '.join(statuses)} (n={len(rows)}) | {run['load_before']:.1f}-{run['load_after']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["run", "table"])
    parser.add_argument("--sizes", default="100000,500000,1000000")
    parser.add_argument("--formats", default="bson,jsonb,ndjson_zstd")
    parser.add_argument("--modes", default="sync,async")
    parser.add_argument("--out", default=str(ROOT / "bench" / "standby-runs"))
    parser.add_argument("--timeout", type=int, default=900, help="seconds one run may take (default: 900)")
    parser.add_argument("--skip-done", action="store_true", help="skip a run whose CSV is already in DIR")
    args = parser.parse_args()
    measure(args) if args.what == "run" else table(args)


if __name__ == "__main__":
    main()
