"""pgstress against the floor: the same ramp, on the same server, in the same run (issue 14, "Speed").

Each repetition runs, in alternating order, (a) pgstress itself (`python main.py --mode sync ...`) and
(b) `bench/floor.py`, the same generate + encode + store + select + decode with nothing around it, each
as a subprocess from the repository root with its wall time taken around the subprocess (Python's start
and imports included). pgstress's measured work is the sum of its CSV's `total_s`; the floor's is its
JSON's `work_s`. Writes a markdown table (per repetition and median) and, with --json, the same as JSON.
The floor stores by binary COPY; pgstress by its default --write-method (insert_blocking in sync mode):
`-- --write-method copy` makes the write the same statement on both sides.

Run: python bench/speed.py [--repetitions 3] [--payload-format F] [--start-epochs N ...] [-- PGSTRESS OPTIONS]
e.g. `python bench/speed.py -- --memory-trace off`. Without --dsn one embedded PostgreSQL serves every run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from floor import server  # noqa: E402  (bench/ is on sys.path when this script runs)

from pgstress.workload.payloads import format_names  # noqa: E402

Run = dict[str, Any]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed(command: list[str]) -> tuple[float, list[float], list[float]]:
    """Run a subprocess from the repository root; (wall s, load before, load after). A failure ends the bench."""
    load_before = _load()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"exit status {done.returncode}: {' '.join(command[:3])} ...")
    return wall, load_before, _load()


def pgstress_options(fmt: str, seed: int, ramp: list[str], extra: list[str]) -> list[str]:
    """pgstress's options but --dsn and its output files."""
    return ["--mode", "sync", "--payload-format", fmt, "--seed", str(seed), *ramp, "--drop-table",
            "--table", "speed_pgstress", "--no-charts", "--quiet", *extra]  # fmt: skip


def run_pgstress(dsn: str, options: list[str], tmp: Path) -> Run:
    results = tmp / "pgstress.csv"
    for stale in (results, tmp / "pgstress.csv.run.json"):
        stale.unlink(missing_ok=True)
    wall, before, after = timed([sys.executable, "main.py", "--dsn", dsn, *options, "--results-csv", str(results),
                                 "--report-md", str(tmp / "pgstress.md")])  # fmt: skip
    with results.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total = sum(float(r["total_s"]) for r in rows if r["total_s"])
    verify = sum(float(r["verify_s"]) for r in rows if r["verify_s"])
    traced = sum(1 for r in rows if r["write_peak_mb"] or r["read_peak_mb"])
    ok = sum(1 for r in rows if r["status"] == "OK")
    per_iteration = [{key: r[key] for key in ("iter", "epochs", "status", "write_s", "read_s", "verify_s")}
                     for r in rows]  # fmt: skip
    return {"wall_s": wall, "work_s": total, "verify_s": verify, "iterations": len(rows), "ok": ok,
            "traced": traced, "load_before": before, "load_after": after, "rows": per_iteration}  # fmt: skip


def run_floor(dsn: str, ramp: list[str], fmt: str, seed: int, tmp: Path) -> Run:
    out = tmp / "floor.json"
    out.unlink(missing_ok=True)
    wall, before, after = timed([sys.executable, "bench/floor.py", "--dsn", dsn, "--payload-format", fmt,
                                 "--seed", str(seed), *ramp, "--json", str(out)])  # fmt: skip
    floor = json.loads(out.read_text(encoding="utf-8"))
    return {"wall_s": wall, "work_s": floor["work_s"], "iterations": floor["iterations"],
            "script_wall_s": floor["wall_s"], "load_before": before, "load_after": after,
            "rows": floor["rows"]}  # fmt: skip


def checkpoint(dsn: str) -> bool:
    """Start every run from a checkpointed server (outside all timing); False where this role may not."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error:
        return False
    return True


def _f(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}"


def figures(rep: dict[str, Run]) -> dict[str, float]:
    p, f = rep["pgstress"], rep["floor"]
    return {"p_wall": p["wall_s"], "p_work": p["work_s"], "share": p["work_s"] / p["wall_s"],
            "verify": p["verify_s"], "verify_share": p["verify_s"] / p["work_s"] if p["work_s"] else 0.0,
            "f_wall": f["wall_s"], "f_work": f["work_s"], "ratio": p["wall_s"] / f["wall_s"],
            "work_ratio": p["work_s"] / f["work_s"]}  # fmt: skip


def render(reps: list[dict[str, Run]], meta: dict[str, Any]) -> str:
    head = ("| rep | order | pgstress wall s | pgstress work s (Σ total_s) | work / wall | Σ verify_s"
            " | verify_s / Σ total_s | traced iterations | floor wall s | floor work s | **pgstress wall / floor wall**"
            " | pgstress work / floor work | load 1 min before→after (pgstress; floor) |")
    lines = [head, "|" + " --- |" * 13]
    rows = [figures(rep) for rep in reps]

    def line(label: str, order: str, x: dict[str, float], traced: str, load: str) -> str:
        return (f"| {label} | {order} | {_f(x['p_wall'])} | {_f(x['p_work'], 3)} | {x['share']:.0%}"
                f" | {_f(x['verify'], 3)} | {x['verify_share']:.0%} | {traced} | {_f(x['f_wall'])}"
                f" | {_f(x['f_work'], 3)} | **{x['ratio']:.2f}×** | {x['work_ratio']:.2f}× | {load} |")  # fmt: skip

    for i, (rep, x) in enumerate(zip(reps, rows), start=1):
        p, f = rep["pgstress"], rep["floor"]
        load = (f"{p['load_before'][0]}→{p['load_after'][0]}; {f['load_before'][0]}→{f['load_after'][0]}")
        traced = f"{p['traced']} of {p['iterations']}"
        lines.append(line(str(i), str(rep["order"]), x, traced, load))
    median = {key: statistics.median(x[key] for x in rows) for key in rows[0]}
    lines.append(line("median", "", median, "", ""))
    ratios = [x["ratio"] for x in rows]
    n = len(rows)
    if n >= 3:
        verdict = (f"Over {n} repetitions pgstress took **{median['ratio']:.2f}×** the floor's wall time (median;"
                   f" min–max {min(ratios):.2f}–{max(ratios):.2f}×), and its measured work was"
                   f" {median['work_ratio']:.2f}× the floor's (min–max {min(x['work_ratio'] for x in rows):.2f}–"
                   f"{max(x['work_ratio'] for x in rows):.2f}×).")  # fmt: skip
    else:
        verdict = (f"**Too few samples: {n} repetition{'s' if n > 1 else ''}, each figure is a single sample**"
                   f" (the median of {n} is {'their mean' if n == 2 else 'that sample'}); ratio pgstress wall / floor"
                   f" wall {', '.join(f'{r:.2f}×' for r in ratios)}. No result should be read from this run:"
                   " use --repetitions 3 or more.")  # fmt: skip
    loads = [load for rep in reps for run in (rep["pgstress"], rep["floor"])
             for load in (run["load_before"][0], run["load_after"][0])]  # fmt: skip
    m = meta
    bad = [f"{name} rep {i}: {r['ok']} of {r['iterations']} iterations OK, {m['iterations']} planned"
           for i, rep in enumerate(reps, start=1) for name, r in [("pgstress", rep["pgstress"])]
           if r["ok"] != m["iterations"] or r["iterations"] != m["iterations"]]  # fmt: skip
    return "\n".join([
        "# pgstress against the floor", "",
        f"Command: `{m['command']}`", "",
        f"- Date: {m['date']}; machine: {m['cpus']} CPUs, {m['platform']}; Python {m['python']}",
        f"- Server: {m['server']} ({m['server_version']}){m['server_start']}; one server for every run",
        f"- Code: {m['commit']}",
        f"- Ramp: {m['ramp']} ({m['iterations']} iterations), {m['payload_format']}, seed {m['seed']};"
        f" pgstress options: `{m['pgstress_options']}`",
        f"- Load average (1 min) from {min(loads)} to {max(loads)} across the runs, on {m['cpus']} CPUs"
        f" (before/after each run in the table). CHECKPOINT before each run: {m['checkpoint']}.", "",
        *lines, "",
        "Wall times are taken around each subprocess (Python's start, imports, set-up, the report included);"
        " `work` is the measured work: pgstress's Σ `total_s` (write_s + read_s of every iteration) and the"
        " floor's write (generate + encode + binary COPY) + read (SELECT + decode). `verify_s` is pgstress's"
        " verification, outside `total_s`. `traced iterations`: rows with a tracemalloc peak (the untimed pass)."
        " The order of the two alternates between repetitions.", "",
        verdict, "",
        *(["**Not every iteration finished OK:** " + "; ".join(bad), ""] if bad else []),
    ])  # fmt: skip


def _commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return done.stdout.strip() or "unknown"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the embedded server is stopped and removed on the way out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="options after -- go to pgstress (e.g. -- --memory-trace off)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--dsn", default=None, help="server to use (default: one throwaway embedded server)")
    parser.add_argument("--payload-format", choices=format_names(), default="ndjson_zstd")
    parser.add_argument("--start-epochs", type=int, default=5_000)
    parser.add_argument("--end-epochs", type=int, default=250_000)
    parser.add_argument("--step-epochs", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results-speed.md"))
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args(own)
    if args.repetitions < 1 or not 0 < args.start_epochs <= args.end_epochs or args.step_epochs <= 0:
        parser.error("need --repetitions >= 1, 0 < --start-epochs <= --end-epochs and --step-epochs > 0")
    signal.signal(signal.SIGTERM, _interrupt)
    ramp = ["--start-epochs", str(args.start_epochs), "--end-epochs", str(args.end_epochs),
            "--step-epochs", str(args.step_epochs)]  # fmt: skip
    options = pgstress_options(args.payload_format, args.seed, ramp, extra)
    meta: dict[str, Any] = {
        "command": " ".join(["python bench/speed.py", *argv]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "commit": _commit(), "payload_format": args.payload_format, "seed": args.seed,
        "ramp": f"{args.start_epochs:,} → {args.end_epochs:,} / {args.step_epochs:,}",
        "iterations": len(range(args.start_epochs, args.end_epochs + 1, args.step_epochs)),
        "pgstress_options": " ".join(options), "server": "embedded" if args.dsn is None else "--dsn",
    }  # fmt: skip
    reps: list[dict[str, Run]] = []
    checkpoints: set[bool] = set()
    with server(args.dsn) as (dsn, start_s), tempfile.TemporaryDirectory(prefix="pgstress-speed-") as tmp:
        meta["server_start"] = "" if start_s is None else f", started in {start_s:.1f} s (in no run's wall time)"
        with psycopg.connect(dsn) as conn:
            meta["server_version"] = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        for i in range(args.repetitions):
            order = ["pgstress", "floor"] if i % 2 == 0 else ["floor", "pgstress"]
            rep: dict[str, Any] = {"order": " then ".join(order)}
            for name in order:
                checkpoints.add(checkpoint(dsn))
                rep[name] = (run_pgstress(dsn, options, Path(tmp))
                             if name == "pgstress" else run_floor(dsn, ramp, args.payload_format, args.seed, Path(tmp)))
                print(f"rep {i + 1} {name}: wall {rep[name]['wall_s']:.2f} s, work {rep[name]['work_s']:.2f} s,"
                      f" load {rep[name]['load_before'][0]}→{rep[name]['load_after'][0]}", flush=True)  # fmt: skip
            reps.append(rep)
    meta["checkpoint"] = {frozenset({True}): "yes", frozenset({False}): "no (this role may not)"}.get(
        frozenset(checkpoints), "before some runs only")
    text = render(reps, meta)
    print("\n" + text)
    Path(args.out).write_text(text, encoding="utf-8")
    if args.json:
        summary = {"meta": meta, "repetitions": reps, "figures": [figures(rep) for rep in reps]}
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}" + (f" and {args.json}" if args.json else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
