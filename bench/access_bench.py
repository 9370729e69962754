"""How the record is used afterwards, per format and layout (bench/results.md's issue 17 section).

    python bench/access_bench.py run [--sizes 100000,500000,1000000] [--cells bson:value,bson:chunked,...]
                                     [--out DIR] [--timeout S] [--skip-done]
    python bench/access_bench.py table [--out DIR]

`run` starts one real pgstress run at a time on its own embedded server (sync mode, `--access all`, one size,
`--repeat 3`, `--memory-trace off`, the default window, metric, append and `--chunk-epochs`), each bounded by
`timeout`, sizes outermost so every cell's smaller sizes are measured before any larger one. Each run's CSV lands
in DIR and one line per run in DIR/runs.jsonl: what it ran, its exit status, its wall time and the load average
(1 min) before and after it, which matters on a shared machine. pgarrays has no chunked layout; jsonb's value
layout stops at 500k (1M epochs exceed jsonb's 268,435,455-byte limit: the run records DB_LIMIT), while its
chunked layout, 10,000 epochs a row, holds 1M. `table` prints the markdown table of medians of the 3 repetitions (times
with their min-max).
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
JSONB_VALUE_LIMIT_EPOCHS = 500_000
REPEAT = 3
CELLS = "bson:value,bson:chunked,jsonb:value,jsonb:chunked,ndjson_zstd:value,ndjson_zstd:chunked,pgarrays:value"
MIB = 1024 * 1024


def run_name(size: int, fmt: str, layout: str) -> str:
    return f"{fmt}_{layout}_{size}"


def command(size: int, fmt: str, layout: str, out: Path) -> list[str]:
    name = run_name(size, fmt, layout)
    return [sys.executable, str(ROOT / "main.py"), "--mode", "sync", "--payload-format", fmt, "--layout", layout,
            "--access", "all", "--start-epochs", str(size), "--end-epochs", str(size), "--step-epochs", str(size),
            "--repeat", str(REPEAT), "--memory-trace", "off", "--no-charts", "--quiet", "--drop-table",
            "--table", f"access_bench_{fmt}_{layout}",
            "--results-csv", str(out / f"{name}.csv"), "--report-md", str(out / f"{name}.md")]  # fmt: skip


def measure(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key != "PG_DSN"}  # the embedded server, always
    cells = [tuple(c.split(":")) for c in args.cells.split(",")]
    for size in [int(s) for s in args.sizes.split(",")]:
        for fmt, layout in cells:
            if fmt == "jsonb" and layout == "value" and size > JSONB_VALUE_LIMIT_EPOCHS and not args.jsonb_limit:
                continue
            name = run_name(size, fmt, layout)
            if args.skip_done and (out / f"{name}.csv").exists():
                continue
            load_before = os.getloadavg()[0]
            started = time.monotonic()
            cmd = ["timeout", str(args.timeout), *command(size, fmt, layout, out)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            entry = {"name": name, "size": size, "format": fmt, "layout": layout, "exit": done.returncode,
                     "wall_s": round(time.monotonic() - started, 1), "load_before": load_before,
                     "load_after": os.getloadavg()[0], "at": time.strftime("%H:%M:%S"),
                     "stderr": done.stderr[-400:]}  # fmt: skip
            with (out / "runs.jsonl").open("a") as log:
                log.write(json.dumps(entry) + "\n")
            print(json.dumps(entry), flush=True)


def median(rows: list[dict[str, str]], column: str, scale: float = 1.0, digits: int = 3, spread: bool = False) -> str:
    values = [float(row[column]) / scale for row in rows if row.get(column)]
    if not values:
        return "—"
    text = f"{statistics.median(values):.{digits}f}"
    # times move with the shared machine's load: their min-max says what a difference must beat
    return f"{text} ({min(values):.{digits}f}-{max(values):.{digits}f})" if spread else text


def seconds(rows: list[dict[str, str]], column: str) -> str:
    return median(rows, column, spread=True)


def table(args: argparse.Namespace) -> None:
    out = Path(args.out)
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines() if line.strip()]
    latest = {run["name"]: run for run in runs}
    order = {cell: i for i, cell in enumerate(CELLS.split(","))}
    print("| format | layout | epochs | ok | write s | full read s | range read s | range MiB | metric read s | "
          "metric MiB | append s | append WAL MiB | stored MiB | load 1 min |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for run in sorted(latest.values(), key=lambda r: (r["size"], order[f"{r['format']}:{r['layout']}"])):
        path = out / f"{run['name']}.csv"
        rows = list(csv.DictReader(path.open())) if path.exists() else []
        ok = [row for row in rows if row["status"] == "OK"]
        statuses = sorted({row["status"] for row in rows if row["status"] != "OK"}) or (
            [] if rows else [f"exit {run['exit']}"]
        )
        failed = f" {', '.join(statuses)}" if statuses else ""
        print(f"| {run['format']} | {run['layout']} | {run['size']:,} | {len(ok)}/{REPEAT}{failed} | "
              f"{seconds(ok, 'write_s')} | {seconds(ok, 'read_s')} | {seconds(ok, 'range_read_s')} | "
              f"{median(ok, 'range_bytes', MIB, 2)} | {seconds(ok, 'metric_read_s')} | "
              f"{median(ok, 'metric_bytes', MIB, 2)} | {seconds(ok, 'append_s')} | "
              f"{median(ok, 'append_wal_mb', 1, 1)} | {median(ok, 'db_payload_mb', 1, 1)} | "
              f"{run['load_before']:.1f}-{run['load_after']:.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["run", "table"])
    parser.add_argument("--sizes", default="100000,500000,1000000")
    parser.add_argument("--cells", default=CELLS, help="format:layout pairs, comma-separated")
    parser.add_argument("--out", default=str(ROOT / "bench" / "access-runs"))
    parser.add_argument("--timeout", type=int, default=900, help="seconds one run may take (default: 900)")
    parser.add_argument("--skip-done", action="store_true", help="skip a run whose CSV is already in DIR")
    parser.add_argument("--jsonb-limit", action="store_true", help="also run jsonb's value layout past its limit")
    args = parser.parse_args()
    measure(args) if args.what == "run" else table(args)


if __name__ == "__main__":
    main()
