"""`compare` on a difference known to be real: bson written with `--write-method insert` (psycopg's
non-blocking send, 1.6-2.8x COPY's insert phase at 500k epochs in section A) against `copy`.

Runs the real CLI twice on one throwaway embedded server (or --dsn), each ramp with --repeat and
--export-json, then `pgstress compare copy.json insert.json`, and checks that compare says
`insert` is slower on write_s (and does not call read_s, which both methods share, different).
Writes bench/results-compare.md; with --fixtures DIR also copies the two records there (the test
suite's tests/compare/data/ checks the verdicts on these real rows without paying for the runs).

Too heavy for the test suite: ~3 minutes on 2 cores at the default sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pgstress.db.server import embedded_server  # noqa: E402 - after the path is set


def run(argv: list[str]) -> str:
    done = subprocess.run([sys.executable, str(REPO / "main.py"), *argv], cwd=REPO, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])}... exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=None, help="a server of yours (default: a throwaway embedded one)")
    parser.add_argument("--start", type=int, default=250_000)
    parser.add_argument("--end", type=int, default=500_000)
    parser.add_argument("--step", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results-compare.md")
    parser.add_argument("--fixtures", type=Path, default=None, help="copy the two JSON records into this folder")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="compare the records an earlier run left in this folder (bson-copy.json,"
                             " bson-insert.json) instead of measuring again")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pgstress-compare-bench-"))
    load_before = os.getloadavg()
    try:
        records = {method: (args.reuse or work) / f"bson-{method}.json" for method in ("copy", "insert")}
        with embedded_server() if args.dsn is None and args.reuse is None else contextlib.nullcontext(None) as server:
            dsn = args.dsn or (server.dsn if server else "")
            for method in () if args.reuse else ("copy", "insert"):
                run(["--dsn", dsn, "--mode", "sync", "--payload-format", "bson", "--table", "compare_bench",
                     "--drop-table", "--start-epochs", str(args.start), "--end-epochs", str(args.end),
                     "--step-epochs", str(args.step), "--repeat", str(args.repeat), "--memory-trace", "off",
                     "--write-method", method, "--no-charts", "--quiet", "--results-csv", str(work / f"{method}.csv"),
                     "--report-md", str(work / f"{method}.md"), "--export-json", str(records[method])])
        report = work / "compare.md"
        terminal = run(["compare", str(records["copy"]), str(records["insert"]), "--report-md", str(report),
                        "--no-charts"])
        load_after = os.getloadavg()
        verdicts = {line.split()[0]: line for line in terminal.splitlines() if line.startswith("  ")}
        write_ok = "slower" in verdicts.get("write_s", "")
        read_ok = "slower" not in verdicts.get("read_s", "") and "faster" not in verdicts.get("read_s", "")
        header = [
            "# compare on a known difference: bson, --write-method copy (first) against insert", "",
            f"`python bench/compare_write_methods.py --start {args.start} --end {args.end} --step {args.step}"
            f" --repeat {args.repeat}`" + (f" (compared again from `{args.reuse}`)" if args.reuse else
            f"; load average {', '.join(f'{x:.2f}' for x in load_before)} at the start,"
            f" {', '.join(f'{x:.2f}' for x in load_after)} at the end (2 cores)") + ".", "",
            f"- write_s says insert is **slower**: {'yes' if write_ok else 'NO'}",
            f"- read_s (the same SELECT for both) is not called faster or slower: {'yes' if read_ok else 'NO'}", "",
            "## The terminal table", "", "```", terminal.rstrip(), "```", "", "## The comparison", "",
        ]
        body = report.read_text(encoding="utf-8").split("\n", 1)[1]
        args.output.write_text("\n".join(header) + body, encoding="utf-8")
        if args.fixtures is not None and args.fixtures != args.reuse:
            args.fixtures.mkdir(parents=True, exist_ok=True)
            for path in records.values():
                shutil.copyfile(path, args.fixtures / path.name)
        print(terminal)
        print(f"wrote {args.output}")
        return 0 if write_ok and read_ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
