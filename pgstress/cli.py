"""Command line: options and their validation, then one run from server to report."""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

import psycopg

from pgstress.analysis import find_points
from pgstress.charts import SYNC_CHARTS, PlottedChart, chart_links, charts_for_report
from pgstress.compare import (
    ComparisonRecord,
    FormatRun,
    format_configs,
    longest_table_suffix,
    render_comparison,
    run_each_format,
)
from pgstress.config import (
    ALL_FORMATS,
    AUTO_TRACE_ALL_UP_TO,
    AUTO_TRACE_SAMPLES,
    MEMORY_TRACE_MODES,
    MODES,
    WRITE_METHODS,
    RunConfig,
    scrub,
)
from pgstress.environment import collect_host, collect_server, utc_now_text
from pgstress.faults import secrets_in_use
from pgstress.payloads import format_names, get_codec
from pgstress.progress import Progress, RampSummary, make_progress, summary_lines
from pgstress.ramp import STOP_SIGNALS, RampOutcome
from pgstress.report import RunRecord, write_report
from pgstress.results import CsvSink, SyncRow
from pgstress.resume import ResumeRefused, Resumption, load_resumption, mode_results
from pgstress.schema import TableRefused, TableSql, check_table, prepare_table
from pgstress.server import ServerInfo, ServerUnavailable, open_server
from pgstress.sync_runner import run_sync_report, run_sync_tracked, sync_ramp_title

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
EXIT_INTERRUPTED = 130
EXIT_BROKE = 3  # --fail-on-break: a breaking point was reached


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One clear line and exit status 2 (argparse's usage block is noise here)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be >= {minimum}")
        return value

    return parse


def _zstd_level(text: str) -> int:
    value = _int_at_least(1)(text)
    if value > 22:
        raise argparse.ArgumentTypeError(f"{value} must be between 1 and 22")
    return value


def _identifier(text: str) -> str:
    if not _IDENTIFIER.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a plain identifier (letters, digits, underscore; not starting with a digit; at most 63)"
        )
    return text


def _path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return text



def build_parser() -> argparse.ArgumentParser:
    defaults = RunConfig()
    p = _Parser(
        prog="pgstress",
        description="Stress PostgreSQL with one huge payload per row, over a linear ramp of record sizes.",
        allow_abbrev=False,
    )
    p.add_argument("--mode", choices=MODES, default=defaults.mode, help="sync (psycopg) or async fan-out (asyncpg)")
    p.add_argument("--dsn", default=None,
                   help="libpq string or URL (else PG_DSN; else libpq's PG* variables; else an embedded server)")
    p.add_argument("--table", type=_identifier, default=defaults.table, help="benchmark table name")
    p.add_argument("--payload-format", choices=(*format_names(), ALL_FORMATS), default=defaults.payload_format,
                   help="the payload encoding; all: one ramp per format, each on <table>_<format>, compared")
    p.add_argument("--start-epochs", type=_int_at_least(1), default=defaults.start_epochs, help="first record size")
    p.add_argument("--end-epochs", type=_int_at_least(1), default=defaults.end_epochs,
                   help="last record size (>= start)")
    p.add_argument("--step-epochs", type=_int_at_least(1), default=defaults.step_epochs, help="ramp increment")
    p.add_argument("--drop-table", action="store_true", help="drop and recreate the table before the run")
    p.add_argument("--truncate-before-start", action="store_true", help="empty the table before the first iteration")
    p.add_argument("--keep-data-between-iterations", action="store_true", help="do not truncate between iterations")
    p.add_argument("--statement-timeout-ms", type=_int_at_least(0), default=defaults.statement_timeout_ms,
                   help="statement_timeout of every session (0 = none)")
    p.add_argument("--results-csv", type=_path, default=defaults.results_csv)
    p.add_argument("--async-concurrency", type=_int_at_least(1), default=defaults.async_concurrency)
    p.add_argument("--async-results-csv", type=_path, default=defaults.async_results_csv)
    p.add_argument("--report-md", type=_path, default=defaults.report_md)
    p.add_argument("--seed", type=_int_at_least(0), default=defaults.seed, help="payload generator seed")
    p.add_argument("--zstd-level", type=_zstd_level, default=defaults.zstd_level, help="ndjson_zstd level (1-22)")
    p.add_argument("--max-consecutive-failures", type=_int_at_least(1), default=defaults.max_consecutive_failures,
                   help="stop the ramp after this many failed iterations in a row")
    p.add_argument("--memory-trace", choices=MEMORY_TRACE_MODES, default=defaults.memory_trace,
                   help="tracemalloc peaks from a separate untimed pass: on (every iteration), off, or auto (every"
                        f" iteration of a ramp up to {AUTO_TRACE_ALL_UP_TO}, else ~{AUTO_TRACE_SAMPLES} of them)")
    p.add_argument("--write-method", choices=WRITE_METHODS, default=defaults.write_method,
                   help="insert: one parameterised INSERT (what applications do); copy: binary COPY")  # fmt: skip
    p.add_argument("--resume", action="store_true",
                   help="continue the ramp whose first iterations its CSV (--results-csv, async: --async-results-csv)"
                        " already holds (same options, checked)")
    p.add_argument("--max-client-memory-mb", type=_int_at_least(1), default=defaults.max_client_memory_mb,
                   help="async: do not start a level whose estimated client memory passes this"
                        " (default: 80%% of the RAM available at start)")
    p.add_argument("--no-charts", action="store_true", help="do not draw the PNG charts beside the report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and the final summary")
    p.add_argument("--fail-on-break", action="store_true",
                   help=f"exit {EXIT_BROKE} when a breaking point was reached (for CI; default: exit 0)")
    return p


def parse_config(argv: Sequence[str] | None = None) -> RunConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.end_epochs < args.start_epochs:
        parser.error(f"argument --end-epochs: {args.end_epochs} is below --start-epochs {args.start_epochs}")
    if args.payload_format == ALL_FORMATS:
        if args.mode == "async":
            parser.error("argument --payload-format: all is not available with --mode async yet; run one format")
        if len(args.table) + longest_table_suffix() > 63:
            parser.error(f"argument --table: {args.table!r} is too long for --payload-format all"
                         f" (at most {63 - longest_table_suffix()} characters, to leave room for _<format>)")
        if args.resume:
            parser.error("argument --resume: not available with --payload-format all yet")
    values = vars(args)
    return RunConfig(**values)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _tables(config: RunConfig) -> list[RunConfig]:
    return format_configs(config) if config.payload_format == ALL_FORMATS else [config]


def run(config: RunConfig, server: ServerInfo, resumption: Resumption | None = None) -> int:
    host = collect_host()
    configs = _tables(config)
    specs = [TableSql(c.table, get_codec(c.payload_format).column_type) for c in configs]
    truncate = config.truncate_before_start or (resumption is not None and resumption.truncate_first)
    with psycopg.connect(server.dsn) as conn:
        for spec in specs:  # every table approved before any is touched
            check_table(conn, spec, drop=config.drop_table)
        for spec in specs:
            prepare_table(conn, spec, drop=config.drop_table, truncate=truncate)
        details = [collect_server(conn, c.table) for c in configs]
    if config.mode == "async":
        from pgstress.fanout_runner import fanout_progress_line, run_fanout_report

        progress = make_progress(quiet=config.quiet, line=fanout_progress_line)
        record, charts = run_fanout_report(config, server, host, details[0], progress, resumption)
        return finish(record, [config.async_results_csv], charts, progress)
    progress = make_progress(quiet=config.quiet)
    if config.payload_format == ALL_FORMATS:
        with CsvSink(config.results_csv, SyncRow) as sink:
            runs = run_each_format(configs, lambda c: run_sync_tracked(
                c, server.dsn, progress, [sink],
                f"format {configs.index(c) + 1} of {len(configs)}: {sync_ramp_title(c, server)}", c.payload_format))
        for run_, found in zip(runs, details):
            run_.details = found
        return _finish_all(config, host, server, details[0], runs, progress)
    record, charts = run_sync_report(config, server, host, details[0], progress, resumption)
    return finish(record, [config.results_csv], charts, progress)


def _finish_all(config: RunConfig, host, server: ServerInfo, details, runs: list[FormatRun],
                progress: Progress) -> int:
    charts = charts_for_report(SYNC_CHARTS, {run_.format: run_.outcome.rows for run_ in runs}, config.report_md,
                               enabled=not config.no_charts)
    context = RunRecord(config=config, host=host, server=server, server_details=details,
                        outcome=RampOutcome(), finished_at=utc_now_text())
    record = ComparisonRecord(context=context, runs=runs, chart_lines=chart_links(charts, config.report_md),
                              planned_formats=len(format_names()))
    write_report(config.report_md, render_comparison(record))
    summaries = [RampSummary(run_.format, run_.points) for run_ in runs]
    return _summarise(config, summaries, [config.results_csv], charts, progress, record.interrupted)


def finish(record: RunRecord, csv_paths: list[str], charts: list[PlottedChart] | None = None,
           progress: Progress | None = None) -> int:
    outcome = record.outcome
    summaries = [RampSummary("", find_points(outcome.rows), record.efficiency_unit)]
    return _summarise(record.config, summaries, csv_paths, charts or [], progress or make_progress(quiet=False),
                      outcome.interrupted)


def _summarise(config: RunConfig, summaries: list[RampSummary], csv_paths: list[str], charts: list[PlottedChart],
               progress: Progress, interrupted: bool) -> int:
    files = [*csv_paths, config.report_md, *(str(chart.path) for chart in charts)]
    progress.summary(summary_lines(summaries, files, interrupted=interrupted))
    if interrupted:
        return EXIT_INTERRUPTED
    if config.fail_on_break and any(summary.points.breaking is not None for summary in summaries):
        return EXIT_BROKE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_interrupt)
    secrets = secrets_in_use(config.dsn)  # --dsn, PG_DSN and PGPASSWORD
    try:
        resumption = load_resumption(config, *mode_results(config)) if config.resume else None
    except ResumeRefused as exc:
        print(f"pgstress: error: {exc}", file=sys.stderr)
        return 2
    try:
        with open_server(config.dsn) as server:
            return run(config, server, resumption)
    except ServerUnavailable as exc:
        print(f"pgstress: {scrub(str(exc), *secrets)}", file=sys.stderr)
        return 1
    except TableRefused as exc:
        print(f"pgstress: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pgstress: interrupted before any iteration finished", file=sys.stderr)
        return EXIT_INTERRUPTED
    except psycopg.Error as exc:
        print(f"pgstress: database error during set-up: {scrub(' '.join(str(exc).split()), *secrets)}", file=sys.stderr)
        return 1
