"""The command line: options and their validation into a RunConfig, then one session, and the exit status."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import psycopg

from pgstress import interrupts
from pgstress.compare.command import main as compare_main
from pgstress.config import (
    ALL_COMPRESSIONS,
    ALL_FORMATS,
    AUTO_TRACE_ALL_UP_TO,
    AUTO_TRACE_SAMPLES,
    IDENTIFIER_MAX,
    MEMORY_TRACE_MODES,
    STORAGES,
    TOAST_COMPRESSIONS,
    WRITE_METHODS,
    RunConfig,
    data_connections,
    is_compared,
    longest_table_suffix,
)
from pgstress.db.schema import TableRefused
from pgstress.db.server import ServerUnavailable, open_server
from pgstress.db.storage import StorageUnsupported
from pgstress.modes import MODES
from pgstress.output.analysis import find_points
from pgstress.output.base import RunResult
from pgstress.output.files import OutputFailed
from pgstress.output.paths import output_problem, planned_files
from pgstress.redaction import parse_dsn, scrub, secrets_in_use
from pgstress.resume import ResumeRefused, load_resumption
from pgstress.run.access import RANGE, parse_accesses
from pgstress.session import run_session
from pgstress.workload.epochs import EPOCH_KEYS
from pgstress.workload.payloads import format_names

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
PG_INTEGER_MAX = 2_147_483_647
# Descriptors a run needs besides its async connections (stdio, the control session, logs, charts' fonts).
_OTHER_FILES = 64
EXIT_BAD_INPUT = 2
EXIT_SERVER = 1
EXIT_BROKE = 3  # --fail-on-break: a breaking point was reached
EXIT_WRITE = 4  # a result file could not be written (a full disk): the rows already written are intact
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One clear line and exit status 2 (argparse's usage block is noise here)."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


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


def _access_list(text: str) -> str:
    """`full`, `all`, or several accesses (`range,metric`), normalised to their fixed order."""
    try:
        return ",".join(parse_accesses(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _metric(text: str) -> str:
    if text not in EPOCH_KEYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a metric of the epoch ({', '.join(EPOCH_KEYS)})")
    return text


def _identifier(text: str) -> str:
    if not _IDENTIFIER.fullmatch(text):
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
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--mode", choices=tuple(MODES), default=defaults.mode,
                   help="sync: one record per iteration over psycopg; async: C records at once over asyncpg")
    p.add_argument("--dsn", default=None,
                   help="libpq string or URL (else PG_DSN; else libpq's PG* variables; else an embedded server)")
    p.add_argument("--table", type=_identifier, default=defaults.table, help="benchmark table name")
    p.add_argument("--payload-format", choices=(*format_names(), ALL_FORMATS), default=defaults.payload_format,
                   help="the payload encoding; all: one ramp per format, each on <table>_<format>, compared")
    p.add_argument("--start-epochs", type=_epochs, default=defaults.start_epochs, help="first record size")
    p.add_argument("--end-epochs", type=_epochs, default=defaults.end_epochs,
                   help="last record size (>= start)")
    p.add_argument("--step-epochs", type=_epochs, default=defaults.step_epochs, help="ramp increment")
    p.add_argument("--drop-table", action="store_true", help="drop and recreate the table before the run")
    p.add_argument("--truncate-before-start", action="store_true", help="empty the table before the first iteration")
    p.add_argument("--keep-data-between-iterations", action="store_true", help="do not truncate between iterations")
    p.add_argument("--statement-timeout-ms", type=_statement_timeout, default=defaults.statement_timeout_ms,
                   help="statement_timeout of every session (0 = none)")
    p.add_argument("--results-csv", type=_path, default=defaults.results_csv,
                   help="sync mode's CSV, one row per iteration")
    p.add_argument("--async-concurrency", type=_concurrency_list, default=str(defaults.async_concurrency),
                   metavar="C[,C...]",
                   help="async mode: records written (then read) at once per level, each over its own connection;"
                        " several (1,4,16,64): one ramp per C, each on <table>_c<C>, compared to find the C that"
                        " stores the most epochs per second")
    p.add_argument("--async-results-csv", type=_path, default=defaults.async_results_csv,
                   help="async mode's CSV, one row per level")
    p.add_argument("--report-md", type=_path, default=defaults.report_md,
                   help="the markdown report (charts are written beside it)")
    p.add_argument("--seed", type=_int_at_least(0), default=defaults.seed, help="payload generator seed")
    p.add_argument("--zstd-level", type=_zstd_level, default=defaults.zstd_level, help="ndjson_zstd level (1-22)")
    p.add_argument("--max-consecutive-failures", type=_int_at_least(1), default=defaults.max_consecutive_failures,
                   help="stop the ramp after this many failed iterations in a row")
    p.add_argument("--memory-trace", choices=MEMORY_TRACE_MODES, default=defaults.memory_trace,
                   help="tracemalloc peaks from a separate untimed pass: on (every iteration), off, or auto (every"
                        f" iteration of a ramp up to {AUTO_TRACE_ALL_UP_TO}, else ~{AUTO_TRACE_SAMPLES} of them)")
    p.add_argument("--write-method", choices=WRITE_METHODS, default=argparse.SUPPRESS,
                   help="insert_blocking (sync mode): one parameterised INSERT sent with libpq's blocking send;"
                        " insert: the same INSERT as psycopg sends it by default (non-blocking: far slower for huge"
                        " values); copy: binary COPY (default: insert_blocking in sync mode, insert in async mode)")
    p.add_argument("--toast-compression", choices=(*TOAST_COMPRESSIONS, ALL_COMPRESSIONS),
                   default=defaults.toast_compression,
                   help="the payload column's COMPRESSION (PostgreSQL 14+; default: the server's"
                        " default_toast_compression); all: one ramp per method (pglz, lz4), each on <table>_<method>,"
                        " compared")
    p.add_argument("--storage", choices=STORAGES, default=defaults.storage,
                   help="the payload column's STORAGE: extended (compressed, out of line when large), external (out"
                        " of line, never compressed), main (compressed, kept in line as long as possible)")
    p.add_argument("--resume", action="store_true",
                   help="continue the ramp whose first iterations its CSV (--results-csv, async: --async-results-csv)"
                        " already holds (same options, checked)")
    p.add_argument("--max-client-memory-mb", type=_int_at_least(1), default=defaults.max_client_memory_mb,
                   help="async: do not start a level whose estimated client memory passes this"
                        " (None: 80%% of the RAM available at start)")
    p.add_argument("--repeat", type=_int_at_least(1), default=defaults.repeat,
                   help="measure each size this many times in a row, each a fresh record (a rep column); the report"
                        " and charts show the median and the min-max of the repetitions")
    p.add_argument("--export-json", type=_path, default=defaults.export_json,
                   help="also write the whole run as one self-describing JSON record (the input of `pgstress"
                        " compare`)")
    p.add_argument("--access", type=_access_list, default=defaults.access, metavar="{full,range,metric,append,all}",
                   help="after each full read, also time each access asked, each verified: range (a window of"
                        " --range-epochs from the middle of the record), metric (one --metric over every epoch),"
                        " append (the record grown in place by --append-epochs, with its WAL); several as"
                        " range,metric; all: every one; full: the full read only")
    p.add_argument("--range-epochs", type=_epochs, default=defaults.range_epochs,
                   help="--access range: the window's epochs (at most the smallest record of the ramp)")
    p.add_argument("--metric", type=_metric, default=defaults.metric, help="--access metric: the metric read")
    p.add_argument("--append-epochs", type=_epochs, default=defaults.append_epochs,
                   help="--access append: epochs appended to each record (default: 1%% of it, at least 1)")
    p.add_argument("--no-charts", action="store_true", help="do not draw the PNG charts beside the report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and the final summary")
    p.add_argument("--fail-on-break", action="store_true",
                   help=f"exit {EXIT_BROKE} when a breaking point was reached (for CI; otherwise a finished run"
                        " exits 0)")
    return p


def parse_config(argv: Sequence[str] | None = None) -> RunConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.end_epochs < args.start_epochs:
        parser.error(f"argument --end-epochs: {args.end_epochs} is below --start-epochs {args.start_epochs}")
    concurrency = args.async_concurrency
    if len(concurrency) > 1 and args.mode != "async":
        parser.error(f"argument --async-concurrency: a list ({','.join(map(str, concurrency))}) sweeps async mode's"
                     " concurrency; sync mode writes one record at a time (add --mode async)")
    args.async_concurrency, args.concurrency_sweep = concurrency[0], concurrency if len(concurrency) > 1 else ()
    if getattr(args, "write_method", None) == "insert_blocking" and args.mode == "async":
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
    config = RunConfig(**vars(args))
    if is_compared(config):
        suffix = longest_table_suffix(config)
        if len(config.table) + suffix > IDENTIFIER_MAX:
            parser.error(f"argument --table: {config.table!r} is too long for one table per compared ramp (at most"
                         f" {IDENTIFIER_MAX - suffix} characters, to leave room for the {suffix}-character suffix)")
    mode = MODES[config.mode]
    files = planned_files(_option_name(mode.csv_option), mode.csv_path(config), config.report_md,
                          [] if config.no_charts else [chart.name for chart in mode.charts_for(config)],
                          config.export_json)
    path_problem = output_problem(files)
    if path_problem is not None:
        parser.error(path_problem)
    return config


def _option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _open_files_limit() -> int:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return 1 << 30
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


def _dsn_problem(cli_dsn: str | None) -> str | None:
    """A connection string libpq cannot parse is bad input; its text is not quoted (it may hold a password)."""
    for source, dsn in (("argument --dsn", cli_dsn), ("PG_DSN", None if cli_dsn else os.environ.get("PG_DSN"))):
        if dsn and parse_dsn(dsn) is None:
            return f"{source}: libpq cannot parse this connection string (not shown: it may hold a password)"
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


def _interrupted_line(finished: int) -> str:
    cause = interrupts.signal_name() or "Ctrl-C"
    if not finished:
        return f"interrupted ({cause}) before any iteration finished"
    return f"interrupted ({cause}); the report covers the {finished} iteration{'s' * (finished != 1)} that finished"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, and say how it ended: one line on stderr for anything but a run that ended as planned."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["compare"]:  # the subcommand; every other invocation is a run, as it always was
        return compare_main(arguments[1:])
    restore_signals = interrupts.install()
    finished: list[RunResult] = []  # the run's result, once there is one
    try:
        return _main(arguments, finished)
    except KeyboardInterrupt:  # a stop signal outside the run's own handling (parsing, connecting, after the end)
        if finished and finished[0].reported_interrupted is False:
            return exit_status(finished[0])  # it came after the report was written: the run had finished
        _say(_interrupted_line(len(finished[0].rows) if finished else 0))
        return EXIT_INTERRUPTED
    finally:
        restore_signals()


def _main(argv: Sequence[str], finished: list[RunResult]) -> int:
    config = parse_config(argv)
    secrets = secrets_in_use(config.dsn)  # --dsn, PG_DSN and PGPASSWORD
    mode = MODES[config.mode]
    try:
        resumption = load_resumption(config, mode.csv_path(config), mode.row_type) if config.resume else None
    except ResumeRefused as exc:
        _say(f"error: {exc}")
        return EXIT_BAD_INPUT
    if resumption is not None and resumption.notice:
        _say(resumption.notice)
    try:
        with open_server(config.dsn, connections=data_connections(config)) as server:
            result = run_session(config, server, resumption)
            finished.append(result)
    except ServerUnavailable as exc:
        _say(scrub(str(exc), *secrets))
        return EXIT_SERVER
    except (TableRefused, StorageUnsupported) as exc:
        _say(f"error: {exc}")
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
