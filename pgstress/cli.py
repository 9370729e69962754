"""Command line: options and their validation, then one run from server to report."""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NoReturn

import psycopg

from pgstress.config import MODES, WRITE_METHODS, RunConfig, scrub
from pgstress.environment import collect_host, collect_server
from pgstress.faults import secrets_in_use
from pgstress.payloads import format_names, get_codec
from pgstress.report import RunRecord, render, write_report
from pgstress.results import CsvSink, SyncRow
from pgstress.resume import ResumeRefused, Resumption, load_resumption, mode_results, write_sidecar
from pgstress.schema import TableRefused, TableSql, prepare_table
from pgstress.server import ServerInfo, ServerUnavailable, open_server
from pgstress.sync_runner import run_sync

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
EXIT_INTERRUPTED = 130


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


def _on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"{text!r}: choose on or off")
    return text == "on"


def build_parser() -> argparse.ArgumentParser:
    defaults = RunConfig()
    p = _Parser(
        prog="pgstress",
        description="Stress PostgreSQL with one huge payload per row, over a linear ramp of record sizes.",
        allow_abbrev=False,
    )
    p.add_argument("--mode", choices=MODES, default=defaults.mode, help="sync (psycopg) or async fan-out (asyncpg)")
    p.add_argument("--dsn", default=None, help="libpq connection string or URL (else PG_DSN; else an embedded server)")
    p.add_argument("--table", type=_identifier, default=defaults.table, help="benchmark table name")
    p.add_argument("--payload-format", choices=format_names(), default=defaults.payload_format)
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
    p.add_argument("--memory-trace", type=_on_off, default=True, metavar="{on,off}",
                   help="take tracemalloc peaks in a separate untimed pass (off: skip it)")
    p.add_argument("--write-method", choices=WRITE_METHODS, default=defaults.write_method,
                   help="insert: one parameterised INSERT (what applications do); copy: binary COPY")  # fmt: skip
    p.add_argument("--resume", action="store_true",
                   help="continue the ramp whose first iterations its CSV (--results-csv, async: --async-results-csv)"
                        " already holds (same options, checked)")
    p.add_argument("--max-client-memory-mb", type=_int_at_least(1), default=defaults.max_client_memory_mb,
                   help="async: do not start a level whose estimated client memory passes this"
                        " (default: 80%% of the RAM available at start)")
    return p


def parse_config(argv: Sequence[str] | None = None) -> RunConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.end_epochs < args.start_epochs:
        parser.error(f"argument --end-epochs: {args.end_epochs} is below --start-epochs {args.start_epochs}")
    values = vars(args)
    return RunConfig(**values)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _say(text: str) -> None:
    print(text, flush=True)


def _progress_line(row: SyncRow, total: int) -> str:
    timing = f" write {row.write_s:.3f}s read {row.read_s:.3f}s eps {row.eps:,.0f}" if row.eps else ""
    size = f" {row.client_payload_mb:.2f} MiB" if row.client_payload_mb is not None else ""
    error = f" - {row.error}" if row.error else ""
    return f"[{row.iter}/{total}] {row.epochs:,} epochs {row.status}{size}{timing}{error}"


def run(config: RunConfig, server: ServerInfo, resumption: Resumption | None = None) -> int:
    codec = get_codec(config.payload_format)
    host = collect_host()
    truncate = config.truncate_before_start or (resumption is not None and resumption.truncate_first)
    with psycopg.connect(server.dsn) as conn:
        prepare_table(conn, TableSql(config.table, codec.column_type), drop=config.drop_table, truncate=truncate)
        details = collect_server(conn, config.table)
    if config.mode == "async":
        from pgstress.fanout_runner import run_fanout_report

        return finish(run_fanout_report(config, server, host, details, resumption), [config.async_results_csv])
    total = len(config.epoch_ramp())
    source = "embedded PostgreSQL" if server.embedded else server.public_dsn
    _say(f"pgstress: sync ramp of {total} iterations, {config.payload_format}, against {source}")
    if resumption is None:
        write_sidecar(config, config.results_csv)
    runner_config = resumption.runner_config if resumption else config
    with CsvSink(config.results_csv, SyncRow, append=resumption is not None) as sink:
        outcome, table_bytes = run_sync(runner_config, server.dsn, [sink],
                                        on_row=lambda row: _say(_progress_line(row, total)))
    record = RunRecord(config=config, host=host, server=server, server_details=details, outcome=outcome,
                       table_bytes=table_bytes, finished_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    if resumption is not None:
        record.outcome = resumption.merge(outcome)
        record.extra_sections += resumption.report_section()
    write_report(config.report_md, render(record))
    return finish(record, [config.results_csv])


def finish(record: RunRecord, csv_paths: list[str]) -> int:
    from pgstress.analysis import find_points

    outcome = record.outcome
    points = find_points(outcome.rows)
    breaking = f"iteration {points.breaking.iter} ({points.breaking.epochs:,} epochs, {points.breaking.status})" \
        if points.breaking else "none reached"
    _say(f"breaking point: {breaking}")
    if points.stability:
        _say(f"stability point: {points.stability.epochs:,} epochs")
    if points.optimal:
        _say(f"optimal efficiency: {points.optimal.epochs:,} epochs")
    _say("wrote " + ", ".join([*csv_paths, record.config.report_md]))
    if outcome.interrupted:
        _say("interrupted: the report covers the iterations that finished")
        return EXIT_INTERRUPTED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
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
