"""The command line: options and their validation into a RunConfig, then one session, and the exit status."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Sequence

import psycopg

from pgstress import __version__, interrupts, plan
from pgstress.arguments import OneLineParser as _Parser
from pgstress.arguments import nonempty_path as _path
from pgstress.compare.command import interrupted as compare_interrupted
from pgstress.compare.command import main as compare_main
from pgstress.config import (
    ALL_COMPRESSIONS,
    ALL_FORMATS,
    ALL_LAYOUTS,
    AUTO_TRACE_ALL_UP_TO,
    AUTO_TRACE_SAMPLES,
    DEFAULT_WRITE_METHODS,
    IDENTIFIER_MAX,
    LAYOUTS,
    MEMORY_TRACE_MODES,
    STANDBY_REPLAY_TIMEOUT_S,
    STORAGES,
    TOAST_COMPRESSIONS,
    WRITE_METHODS,
    ZSTD_FORMAT,
    RunConfig,
    data_connections,
    is_compared,
    longest_table_suffix,
    ramp_configs,
)
from pgstress.db.schema import TableRefused
from pgstress.db.server import ServerUnavailable, open_server
from pgstress.db.standby import EMBEDDED, StandbyRefused, open_standbys, standby_dsns
from pgstress.db.storage import StorageUnsupported
from pgstress.help_format import DefaultsAsTyped
from pgstress.ignored_options import ignored_warnings, typed_options
from pgstress.modes import MODES
from pgstress.output.analysis import find_points
from pgstress.output.base import RunResult
from pgstress.output.files import OutputFailed
from pgstress.output.paths import output_problem
from pgstress.output.shape_table import shape_text
from pgstress.redaction import parse_dsn, scrub, secrets_in_use
from pgstress.resume import ResumeRefused, load_resumption, resume_inputs
from pgstress.run.access import METRIC, RANGE, parse_accesses
from pgstress.run.layout import layout_problem
from pgstress.session import run_session
from pgstress.target import resolve_dsn
from pgstress.workload.payloads import format_names
from pgstress.workload.shape import MAX_DECIMALS
from pgstress.workload.template import MAX_TEMPLATE_BYTES, MAX_TEMPLATE_EPOCHS, TemplateRefused, run_shape

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
PG_INTEGER_MAX = 2_147_483_647
# Descriptors a run needs besides its async connections (stdio, the control connection, logs, charts' fonts).
_OTHER_FILES = 64
EXIT_BAD_INPUT = 2
EXIT_SERVER = 1
EXIT_BROKE = 3  # --fail-on-break: a breaking point was reached
EXIT_WRITE = 4  # a result file could not be written (a full disk): the rows already written are intact
EXIT_INTERRUPTED = 130


def _int_at_least(minimum: int, maximum: int | None = None, why_maximum: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value} must be at most {maximum}{why_maximum}")
        return value

    return parse


_epochs = _int_at_least(1, PG_INTEGER_MAX, " (a record's epoch count is stored in a PostgreSQL integer column)")
_zstd_level = _int_at_least(1, 22, " (zstd's highest level)")
_statement_timeout = _int_at_least(0, PG_INTEGER_MAX, " (PostgreSQL's largest statement_timeout, in ms)")


def _concurrency_list(text: str) -> tuple[int, ...]:
    """One C ("10"), or a sweep of several ("1,4,16,64"): each a whole number >= 1, none twice."""
    values: list[int] = []
    for part in text.split(","):
        if not part.strip():
            raise argparse.ArgumentTypeError(f"{text!r} has an empty value; give C, or several as 1,4,16")
        value = _int_at_least(1)(part.strip())
        if value in values:
            raise argparse.ArgumentTypeError(f"{value} is given twice in {text!r}")
        values.append(value)
    return tuple(values)


def _zstd_levels(text: str) -> tuple[int, ...]:
    """One level ("3"), or several compared in one run ("1,3,9,19"): each 1-22, none twice."""
    values: list[int] = []
    for part in text.split(","):
        if not part.strip():
            raise argparse.ArgumentTypeError(f"{text!r} has an empty value; give a level, or several as 1,3,19")
        value = _zstd_level(part.strip())
        if value in values:
            raise argparse.ArgumentTypeError(f"{value} is given twice in {text!r}")
        values.append(value)
    return tuple(values)


def _access_list(text: str) -> str:
    """`full`, `all`, or several accesses (`range,metric`), normalised to their fixed order."""
    try:
        return ",".join(parse_accesses(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _metric(text: str) -> str:
    """A key name; whether the run's epoch shape has it as a metric is checked once the shape is known."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty key")
    return text


def _identifier(text: str) -> str:
    if not _IDENTIFIER.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a plain identifier (letters, digits, underscore; not starting with a digit; at most 63)"
        )
    return text


USAGE = """%(prog)s [--mode {sync,async}] [options]        one ramp of record sizes (--dry-run: its plan)
       %(prog)s compare RUN RUN [...] [--report-md PATH]  runs compared with the first (compare --help)"""
EPILOG = """examples:
  pgstress --start-epochs 10000 --end-epochs 100000 --step-epochs 10000 --drop-table --truncate-before-start
  pgstress --dsn 'postgresql://user@host/db' --payload-format all --dry-run
  pgstress compare a.json b.json --report-md comparison.md

The reference of every option: docs/options.md."""
# Options that shape how pgstress runs but not what a run measures: never part of the RunConfig (so never in the
# run record --resume checks).
CLI_ONLY = ("dry_run", "create_dirs")
RAMP_OPTIONS = {"start_epochs", "end_epochs", "step_epochs", "resume"}  # none typed: the default ramp, said first


def build_parser() -> argparse.ArgumentParser:
    defaults = RunConfig()
    p = _Parser(
        prog="pgstress",
        usage=USAGE,
        description="Stress PostgreSQL with one huge payload per row, over a linear ramp of record sizes.",
        epilog=EPILOG,
        formatter_class=DefaultsAsTyped,
        allow_abbrev=False,
    )
    p.add_argument("--version", action="version", version=f"pgstress {__version__}",
                   help="print pgstress's version and exit")
    p.add_argument("--mode", choices=tuple(MODES), default=defaults.mode,
                   help="sync: one record per iteration over psycopg; async: C records at once over asyncpg")

    ramp = p.add_argument_group("ramp", "the record sizes, in epochs: start, start+step, ... up to end")
    ramp.add_argument("--start-epochs", type=_epochs, metavar="N", default=defaults.start_epochs,
                      help="first record size")
    ramp.add_argument("--end-epochs", type=_epochs, metavar="N", default=defaults.end_epochs,
                      help="last record size (>= start)")
    ramp.add_argument("--step-epochs", type=_epochs, metavar="N", default=defaults.step_epochs, help="ramp increment")
    ramp.add_argument("--repeat", type=_int_at_least(1), metavar="N", default=defaults.repeat,
                      help="measure each size this many times in a row, each a fresh record (a rep column); the"
                           " report and charts show the median and the min-max of the repetitions")

    payload = p.add_argument_group("payload", "what one record is and how it is encoded")
    payload.add_argument("--payload-format", choices=(*format_names(), ALL_FORMATS),
                         default=defaults.payload_format,
                         help="the payload encoding; all: one ramp per format, each on <table>_<format>, compared")
    payload.add_argument("--seed", type=_int_at_least(0), metavar="N", default=defaults.seed,
                         help="payload generator seed")
    payload.add_argument("--zstd-level", type=_zstd_levels, default=str(defaults.zstd_level),
                         metavar="LEVEL[,LEVEL...]",
                         help="ndjson_zstd level (1-22); several (1,3,9,19): one ndjson_zstd ramp per level, each on"
                              " <table>_z<level>, compared by size and time")
    payload.add_argument("--float-decimals", type=_int_at_least(0, MAX_DECIMALS), default=defaults.float_decimals,
                         metavar="N", help="round every float metric to N decimals before encoding, in every format"
                                           " (default: full precision)")
    payload.add_argument("--epoch-template", type=_path, default=defaults.epoch_template, metavar="FILE",
                         help="draw fresh epochs shaped like a sample of yours (JSON lines or one JSON array of flat"
                              f" objects; the first {MAX_TEMPLATE_EPOCHS} epochs are read, at most"
                              f" {MAX_TEMPLATE_BYTES // 2**20} MiB): each key's type, range, decimals, null share")
    payload.add_argument("--show-template", action="store_true",
                         help="print the epoch shape the run would draw (the template's, or the default) and exit")

    access = p.add_argument_group("access", "how the record is used after it is written and read whole")
    access.add_argument("--access", type=_access_list, default=defaults.access,
                        metavar="{full,range,metric,append,all}",
                        help="after each full read, also time each access asked, each verified: range (a window of"
                             " --range-epochs from the middle of the record), metric (one --metric over every"
                             " epoch), append (the record grown in place by --append-epochs, with its WAL); several"
                             " as range,metric; all: every one; full: the full read only")
    access.add_argument("--range-epochs", type=_epochs, metavar="N", default=defaults.range_epochs,
                        help="--access range: the window's epochs (at most the smallest record of the ramp)")
    access.add_argument("--metric", type=_metric, metavar="KEY", default=defaults.metric,
                        help="--access metric: the metric read")
    access.add_argument("--append-epochs", type=_epochs, metavar="N", default=defaults.append_epochs,
                        help="--access append: epochs appended to each record (default: 1%% of it, at least 1)")

    layout = p.add_argument_group("layout", "how one record is laid out in the table")
    layout.add_argument("--layout", choices=(*LAYOUTS, ALL_LAYOUTS), default=defaults.layout,
                        help="value: the record as one value in one row; chunked: rows of --chunk-epochs epochs each,"
                             " keyed by (record, chunk), written in one transaction; all: one ramp per layout, each"
                             " on <table>_<layout>, compared (a layout column tells the rows apart)")
    layout.add_argument("--chunk-epochs", type=_int_at_least(1, PG_INTEGER_MAX), metavar="K",
                        default=defaults.chunk_epochs, help="--layout chunked: epochs per chunk row")

    server = p.add_argument_group("server and table", "where the records go")
    server.add_argument("--dsn", default=None,
                        help="libpq string or URL (default: PG_DSN; else libpq's PG* variables; else an embedded"
                             " server started for the run)")
    server.add_argument("--table", type=_identifier, metavar="NAME", default=defaults.table,
                        help="benchmark table name")
    server.add_argument("--drop-table", action="store_true", help="drop and recreate the table before the run")
    server.add_argument("--truncate-before-start", action="store_true",
                        help="empty the table before the first iteration")
    server.add_argument("--keep-data-between-iterations", action="store_true",
                        help="do not truncate between iterations")
    server.add_argument("--statement-timeout-ms", type=_statement_timeout, metavar="MS",
                        default=defaults.statement_timeout_ms,
                        help="statement_timeout of every session (0 = none)")
    server.add_argument("--toast-compression", choices=(*TOAST_COMPRESSIONS, ALL_COMPRESSIONS),
                        default=defaults.toast_compression,
                        help="the payload column's COMPRESSION (PostgreSQL 14+); all: one ramp per method (pglz,"
                             " lz4), each on <table>_<method>, compared (default: default, which follows the"
                             " server's default_toast_compression)")
    server.add_argument("--storage", choices=STORAGES, default=defaults.storage,
                        help="the payload column's STORAGE: extended (compressed, out of line when large), external"
                             " (out of line, never compressed), main (compressed, kept in line as long as possible)")

    outputs = p.add_argument_group("outputs", "the files a run writes (charts are written beside the report)")
    outputs.add_argument("--results-csv", type=_path, metavar="PATH", default=defaults.results_csv,
                         help="sync mode's CSV, one row per iteration")
    outputs.add_argument("--async-results-csv", type=_path, metavar="PATH", default=defaults.async_results_csv,
                         help="async mode's CSV, one row per level")
    outputs.add_argument("--report-md", type=_path, metavar="PATH", default=defaults.report_md,
                         help="the markdown report (charts are written beside it)")
    outputs.add_argument("--export-json", type=_path, metavar="PATH", default=defaults.export_json,
                         help="also write the whole run as one self-describing JSON record (the input of"
                              " `pgstress compare`)")
    outputs.add_argument("--no-charts", action="store_true", help="do not draw the PNG charts beside the report")
    outputs.add_argument("--create-dirs", action="store_true",
                         help="create an output's folder when it does not exist (otherwise that is refused)")

    fanout = p.add_argument_group("async mode", "the fan-out of --mode async (sync mode ignores these)")
    fanout.add_argument("--async-concurrency", type=_concurrency_list, default=str(defaults.async_concurrency),
                        metavar="C[,C...]",
                        help="records written (then read) at once per level, each over its own connection; several"
                             " (1,4,16,64): one ramp per C, each on <table>_c<C>, compared to find the C that"
                             " stores the most epochs per second")
    fanout.add_argument("--max-client-memory-mb", type=_int_at_least(1), metavar="MB",
                        default=defaults.max_client_memory_mb,
                        help="do not start a level whose estimated memory passes this (default: 80%% of the RAM"
                             " available at start, or of the address space ulimit -v leaves if less)")

    measure = p.add_argument_group("measurement", "how the write is sent and what else is measured")
    measure.add_argument("--write-method", choices=WRITE_METHODS, default=argparse.SUPPRESS,
                         help="insert_blocking (sync mode): one parameterised INSERT sent with libpq's blocking send;"
                              " insert: the same INSERT as psycopg sends it by default (non-blocking: far slower"
                              " for huge values); copy: binary COPY (default: insert_blocking in sync mode, insert"
                              " in async mode)")
    measure.add_argument("--memory-trace", choices=MEMORY_TRACE_MODES, default=defaults.memory_trace,
                         help="tracemalloc peaks from a separate untimed pass: on (every iteration), off, or auto"
                              f" (every iteration of a ramp up to {AUTO_TRACE_ALL_UP_TO}, else"
                              f" ~{AUTO_TRACE_SAMPLES} of them)")

    control = p.add_argument_group("run control")
    control.add_argument("--dry-run", action="store_true",
                         help="print the plan (sizes, iterations, tables, files, server, memory passes, an"
                              " estimate of the time) and exit; nothing is started, written or touched")
    control.add_argument("--max-consecutive-failures", type=_int_at_least(1), metavar="N",
                         default=defaults.max_consecutive_failures,
                         help="stop the ramp after this many failed iterations in a row")
    control.add_argument("--resume", action="store_true",
                         help="continue the ramp whose first iterations its CSV (--results-csv, async:"
                              " --async-results-csv) already holds (same options, checked)")
    control.add_argument("--quiet", action="store_true", help="print nothing but errors and the final summary")
    control.add_argument("--fail-on-break", action="store_true",
                         help=f"exit {EXIT_BROKE} when a breaking point was reached (for CI; otherwise a finished"
                              " run exits 0)")

    standbys = p.add_argument_group("standbys", "streaming standbys of the server, measured at every level")
    standbys.add_argument("--standby-dsn", action="append", default=[], metavar="DSN",
                          help="a streaming standby of the server under test (standby_* columns); repeat the option,"
                               " or give a comma list; refused unless it is a standby of this server")
    standbys.add_argument("--standby", choices=(EMBEDDED,), default=None,
                          help="embedded: with the embedded server, a streaming standby cloned from it"
                               " (pg_basebackup), measured like a --standby-dsn and removed with it")
    standbys.add_argument("--synchronous-standby", action="store_true",
                          help="with --standby embedded: the standby is synchronous (remote_apply), so write_s"
                               " includes its replay")
    standbys.add_argument("--standby-replay-timeout", type=_int_at_least(1), default=None, metavar="SECONDS",
                          help="how long each level waits for a standby to show its write before that standby's"
                               f" status is TIMEOUT for the level (default: {STANDBY_REPLAY_TIMEOUT_S})")
    return p


def parse_config(argv: Sequence[str] | None = None) -> RunConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    cli_only = {name: vars(args).pop(name) for name in CLI_ONLY}
    if args.end_epochs < args.start_epochs:
        parser.error(f"argument --end-epochs: {args.end_epochs} is below --start-epochs {args.start_epochs}")
    concurrency = args.async_concurrency
    if len(concurrency) > 1 and args.mode != "async":
        parser.error(f"argument --async-concurrency: a list ({','.join(map(str, concurrency))}) sweeps async mode's"
                     " concurrency; sync mode writes one record at a time (add --mode async)")
    args.async_concurrency, args.concurrency_sweep = concurrency[0], concurrency if len(concurrency) > 1 else ()
    levels = args.zstd_level
    if len(levels) > 1 and args.payload_format not in (ZSTD_FORMAT, ALL_FORMATS):
        parser.error(f"argument --zstd-level: a list ({','.join(map(str, levels))}) compares ndjson_zstd's levels;"
                     f" --payload-format {args.payload_format} uses no zstd (give ndjson_zstd or all)")
    args.zstd_level, args.zstd_sweep = levels[0], levels if len(levels) > 1 else ()
    if not hasattr(args, "write_method"):
        args.write_method = DEFAULT_WRITE_METHODS[args.mode]
    if args.write_method == "insert_blocking" and args.mode == "async":
        parser.error("argument --write-method: insert_blocking is libpq's send mode, used by sync mode (psycopg);"
                     " asyncpg does not use libpq: use insert or copy")
    open_files = _open_files_limit()
    if args.mode == "async" and max(concurrency) > open_files - _OTHER_FILES:
        parser.error(f"argument --async-concurrency: {max(concurrency)} connections need as many open files;"
                     f" this process may open {open_files} (ulimit -n), {_OTHER_FILES} of them kept for the"
                     " rest of the run")
    if RANGE in args.access.split(",") and args.range_epochs > args.start_epochs:
        parser.error(f"argument --range-epochs: a window of {args.range_epochs} epochs is larger than the ramp's"
                     f" smallest record ({args.start_epochs} epochs, --start-epochs)")
    dsn_problem = _dsn_problem(args.dsn)
    if dsn_problem is not None:
        parser.error(dsn_problem)
    args.standby_dsn = standby_dsns(args.standby_dsn)
    standby_problem = _standby_problem(args)
    if standby_problem is not None:
        parser.error(standby_problem)
    config = RunConfig(**vars(args))
    for ramp_config in ramp_configs(config):
        problem = layout_problem(ramp_config)
        if problem is not None:
            parser.error(f"argument --layout: {problem}")
    try:
        shape = run_shape(config.float_decimals, config.epoch_template)
    except TemplateRefused as exc:
        parser.error(str(exc))
    if METRIC in config.access.split(",") and config.metric not in shape.metric_keys():
        parser.error(f"argument --metric: {config.metric!r} is not a metric of the epoch (one of"
                     f" {', '.join(shape.metric_keys())})")
    if is_compared(config):
        suffix = longest_table_suffix(config)
        if len(config.table) + suffix > IDENTIFIER_MAX:
            parser.error(f"argument --table: {config.table!r} is too long for one table per compared ramp (at most"
                         f" {IDENTIFIER_MAX - suffix} characters, to leave room for the {suffix}-character suffix)")
    mode = MODES[config.mode]
    inputs = resume_inputs(mode.csv_flag, mode.csv_path(config)) if config.resume else []
    path_problem = output_problem(plan.run_files(config), inputs, create_dirs=cli_only["create_dirs"])
    if path_problem is not None:
        parser.error(path_problem)
    return config


def _open_files_limit() -> int:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return 1 << 30
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


def _dsn_problem(cli_dsn: str | None) -> str | None:
    """A connection string libpq cannot parse is bad input; its text is not quoted (it may hold a password). An
    empty --dsn is refused: it is what an unset shell variable gives (`--dsn "$SERVER_B"`), and taking it for
    PG_DSN or the embedded server would measure another server than the one meant."""
    if cli_dsn is not None and not cli_dsn.strip():
        return ("argument --dsn: an empty connection string (leave --dsn out to use PG_DSN, libpq's PG* variables"
                " or the embedded server)")
    for source, dsn in (("argument --dsn", cli_dsn), ("PG_DSN", None if cli_dsn else os.environ.get("PG_DSN"))):
        if dsn and parse_dsn(dsn) is None:
            return f"{source}: libpq cannot parse this connection string (not shown: it may hold a password)"
    return None


def _standby_problem(args: argparse.Namespace) -> str | None:
    """--standby embedded needs the embedded server, --synchronous-standby the embedded standby, a --standby-dsn
    a string libpq parses (not quoted: it may hold a password)."""
    if any(parse_dsn(dsn) is None for dsn in args.standby_dsn):
        return "argument --standby-dsn: libpq cannot parse this connection string (not shown: it may hold a password)"
    if args.standby == EMBEDDED and resolve_dsn(args.dsn)[0] is not None:
        return ("argument --standby: embedded clones the embedded server, and this run goes to a server given by"
                " --dsn, PG_DSN or libpq's PG* variables (give its standbys with --standby-dsn)")
    if args.standby_replay_timeout is not None and not args.standby_dsn and args.standby != EMBEDDED:
        return ("argument --standby-replay-timeout: it limits the wait for a standby, and this run has none (add"
                " --standby-dsn or --standby embedded)")
    if args.synchronous_standby and args.standby != EMBEDDED:
        return "argument --synchronous-standby: it makes the embedded standby synchronous (add --standby embedded)"
    return None


def exit_status(result: RunResult) -> int:
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.failed_outputs:
        return EXIT_WRITE
    if result.config.fail_on_break and any(find_points(ramp.rows).breaking is not None for ramp in result.ramps):
        return EXIT_BROKE
    return 0


def _say(line: str) -> None:
    with contextlib.suppress(OSError):  # a stderr that cannot be written (2>/dev/full) has nothing left to tell
        print(f"pgstress: {line}", file=sys.stderr, flush=True)


def _print_lines(lines: Sequence[str]) -> None:
    with contextlib.suppress(OSError):  # a stdout that cannot be written: the run itself says so when it prints
        print("\n".join(lines), flush=True)


def _interrupted_line(finished: int) -> str:
    cause = interrupts.signal_name() or "Ctrl-C"
    if not finished:
        return f"interrupted ({cause}) before any iteration finished"
    return f"interrupted ({cause}); the report covers the {finished} iteration{'s' * (finished != 1)} that finished"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, and say how it ended: one line on stderr for anything but a run that ended as planned."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    restore_signals = interrupts.install()
    finished: list[RunResult] = []  # the run's result, once there is one
    try:
        try:
            interrupts.raise_if_requested()  # one that came before, whose KeyboardInterrupt was swallowed
            if arguments[:1] == ["compare"]:  # the subcommand; every other invocation is a run, as it always was
                return compare_main(arguments[1:])
            return _main(arguments, finished)
        finally:
            interrupts.settle()  # the result stands: a signal from now on changes nothing
    except KeyboardInterrupt:  # a stop signal outside the run's own handling (parsing, connecting, after the end)
        if arguments[:1] == ["compare"]:
            return compare_interrupted()
        if finished and finished[0].reported_interrupted is False:
            return exit_status(finished[0])  # it came after the report was written: the run had finished
        _say(_interrupted_line(len(finished[0].rows) if finished else 0))
        return EXIT_INTERRUPTED
    finally:
        restore_signals()


def _main(argv: Sequence[str], finished: list[RunResult]) -> int:
    config = parse_config(argv)
    if config.show_template:
        print(shape_text(run_shape(config.float_decimals, config.epoch_template)), end="")
        return 0
    typed = typed_options(build_parser(), argv)
    if typed.get("dry_run"):
        for line in ignored_warnings(config, typed):
            _say(line)
        _print_lines(plan.plan_lines(config, plan.run_files(config)))
        return 0
    secrets = secrets_in_use(config.dsn, *config.standby_dsn)  # --dsn, --standby-dsn, PG_DSN and PGPASSWORD
    mode = MODES[config.mode]
    try:
        resumption = load_resumption(config, mode.csv_path(config), mode.run.row_type) if config.resume else None
    except ResumeRefused as exc:  # bad input: its one line, no warning before it
        _say(f"error: {exc}")
        return EXIT_BAD_INPUT
    for line in ignored_warnings(config, typed):
        _say(line)
    if not config.quiet and not RAMP_OPTIONS.intersection(typed):  # the long default ramp: say how long first
        _print_lines([plan.start_line(config)])
    if resumption is not None and resumption.notice:
        _say(resumption.notice)
    try:
        with open_server(config.dsn, connections=data_connections(config)) as server, \
                open_standbys(server, config.standby_dsn, embedded=config.standby == EMBEDDED,
                              synchronous=config.synchronous_standby) as standbys:
            result = run_session(config, server, resumption, standbys=standbys)
            finished.append(result)
    except ServerUnavailable as exc:
        _say(scrub(str(exc), *secrets))
        return EXIT_SERVER
    except (TableRefused, StorageUnsupported) as exc:
        _say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except StandbyRefused as exc:
        _say(f"error: {scrub(str(exc), *secrets)}")
        return EXIT_BAD_INPUT
    except OutputFailed as exc:  # the run record, before the first iteration: nothing ran
        _say(f"{exc}; nothing was run")
        return EXIT_WRITE
    except psycopg.Error as exc:
        _say(f"database error during set-up: {scrub(' '.join(str(exc).split()), *secrets)}")
        return EXIT_SERVER
    for failure in result.failed_outputs:
        _say(failure)
    if result.interrupted:
        _say(_interrupted_line(len(result.rows)))
    return exit_status(result)
