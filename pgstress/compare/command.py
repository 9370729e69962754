"""`pgstress compare A B [...]`: its options, the runs read and paired, the outputs written, the exit status."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pgstress import interrupts
from pgstress.arguments import EXIT_BAD_INPUT, OneLineParser, nonempty_path
from pgstress.compare.loading import CompareRefused, LoadedRamp, LoadedRun, load_run
from pgstress.compare.render import Comparison, draw_ratios, render_markdown, run_names, terminal_lines
from pgstress.compare.verdicts import common_sizes, judge, measures_present, pairs_of
from pgstress.output.charts import chart_path
from pgstress.output.files import OutputFailed, write_atomic
from pgstress.output.paths import PlannedFile, output_problem
from pgstress.output.run_record import run_record_path

EXIT_FAILED = 1  # the machine, not the input: out of memory while comparing
EXIT_WRITE = 4  # the report or the chart could not be written (as a run's outputs)
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="pgstress compare", allow_abbrev=False,
                      description="Compare pgstress runs, each against the first: what differs between them, then"
                                  " every measure at the sizes they have in common, its ratio, and a verdict from"
                                  " the noise.")
    p.add_argument("runs", nargs="+", metavar="RUN", type=nonempty_path,
                   help="an --export-json record, or a results CSV with its <csv>.run.json beside it")
    p.add_argument("--report-md", default=None, type=nonempty_path,
                   help="also write the comparison as markdown, the ratio chart beside it")
    p.add_argument("--no-charts", action="store_true", help="do not draw the ratio chart beside --report-md")
    p.add_argument("--create-dirs", action="store_true",
                   help="create --report-md's folder when it does not exist (otherwise that is refused)")
    return p


def compared_inputs(runs: Sequence[str]) -> list[PlannedFile]:
    """Every file compare reads: each run, and the run record beside it (read when the run is a CSV)."""
    inputs = []
    for number, run in enumerate(runs, 1):
        inputs += [PlannedFile("RUN", run, f"run {number}"),
                   PlannedFile("RUN", str(run_record_path(run)), f"the run record beside run {number}")]
    return inputs


def _span(ramp: LoadedRamp) -> str:
    sizes = sorted({row.epochs for row in ramp.rows})
    return "no size" if not sizes else f"{sizes[0]:,}-{sizes[-1]:,} epochs"


def pair_ramps(runs: Sequence[LoadedRun]) -> list[tuple[str, list[LoadedRamp]]]:
    """The ramps compared with one another: each run's only ramp, or those of the same payload format and TOAST
    compression in every run."""
    if all(len(run.ramps) == 1 for run in runs):
        return [("", [run.ramps[0] for run in runs])]
    keys = [ramp.key for ramp in runs[0].ramps if all(any(r.key == ramp.key for r in run.ramps) for run in runs)]
    return [(key, [next(r for r in run.ramps if r.key == key) for run in runs]) for key in keys]


def compare(runs: Sequence[LoadedRun]) -> list[Comparison]:
    """Every paired group at its common sizes; raises CompareRefused when the runs cannot be compared."""
    modes = {run.mode for run in runs}
    if len(modes) > 1:
        which = ", ".join(f"{run.path} is {run.mode}" for run in runs)
        raise CompareRefused(f"sync and async runs measure different things (one record, or a batch of C): {which}")
    comparisons = []
    for key, ramps in pair_ramps(runs):
        sizes = common_sizes([ramp.rows for ramp in ramps])
        if not sizes:
            continue
        comparison = Comparison(key, sizes, rows=[ramp.rows for ramp in ramps])
        measures = measures_present(runs[0].mode, [ramp.rows for ramp in ramps])
        for other in ramps[1:]:
            comparison.verdicts.append([judge(m, pairs_of(m, ramps[0].rows, other.rows, sizes)) for m in measures])
        comparisons.append(comparison)
    if not comparisons:
        spans = "; ".join(f"{run.path}: " + ", ".join(_span(ramp) for ramp in run.ramps) for run in runs)
        raise CompareRefused(f"the runs have no record size in common ({spans})")
    return comparisons


def _say(line: str) -> None:
    with contextlib.suppress(OSError):  # a stderr that cannot be written has nothing left to tell
        print(f"pgstress compare: {line}", file=sys.stderr, flush=True)


def interrupted() -> int:
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP) while compare read, drew or wrote: one line, exit status 130. A file
    it wrote is whole (written aside, then renamed) or not there."""
    _say(f"interrupted ({interrupts.signal_name() or 'Ctrl-C'})")
    return EXIT_INTERRUPTED


def main(argv: Sequence[str]) -> int:
    """The subcommand and how it ended: every way but a finished comparison is one line on stderr."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return interrupted()
    except MemoryError:
        _say("error: not enough memory to compare these runs")
        return EXIT_FAILED
    except OutputFailed as exc:
        _say(str(exc))
        return EXIT_WRITE


def _main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.report_md is not None:  # checked before any run is read, as a run checks its outputs
        files = [PlannedFile("--report-md", args.report_md, "the report")]
        if not args.no_charts:
            files.append(PlannedFile("--report-md", str(chart_path(args.report_md, "ratios")), "the ratio chart"))
        problem = output_problem(files, compared_inputs(args.runs), create_dirs=args.create_dirs)
        if problem is not None:
            parser.error(problem)
    if len(args.runs) < 2:
        print("pgstress compare: error: give two runs or more (the first is what the others are compared with)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        runs = [load_run(Path(path)) for path in args.runs]
        comparisons = compare(runs)
    except CompareRefused as exc:
        print(f"pgstress compare: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        for line in terminal_lines(runs, comparisons):
            print(line, flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted; the report is still written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if args.report_md:
        report = Path(args.report_md)
        chart = None
        if not args.no_charts:
            interrupts.raise_if_requested()  # each step checks: a library may have swallowed the signal's interrupt
            chart = chart_path(report, "ratios")
            if draw_ratios(run_names(runs), comparisons, chart) is None:
                chart = None
        interrupts.raise_if_requested()
        write_atomic(report, render_markdown(runs, comparisons, chart, report))
        with contextlib.suppress(BrokenPipeError):
            print("wrote " + ", ".join(str(path) for path in (report, chart) if path is not None), flush=True)
    return 0
