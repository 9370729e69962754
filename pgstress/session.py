"""One run: the tables claimed and made ready, then a ramp for the mode (or one per payload format and/or
TOAST compression method with `all`), every finished row and the final record handed to the outputs.

The order makes the run safe to point at someone's server: the tables are claimed first (a table
another run uses is refused), then checked, created, dropped or emptied in one transaction that
commits only once the first ramp's connections are open (in a sweep over C, once the server has
answered the first C, which may refuse it: that C's result), so a run that cannot start leaves
nothing behind. Whatever ends the run (its end, a stop signal, an output that cannot be written)
every output still finishes with what was measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import psycopg

from pgstress import interrupts
from pgstress.columns import csv_columns
from pgstress.config import (
    CHUNKED_LAYOUT,
    RunConfig,
    compared_noun,
    ramp_configs,
    ramp_label,
    replay_timeout,
    zstd_level_of,
)
from pgstress.db.chunked import layout_table
from pgstress.db.control import TableControl
from pgstress.db.environment import collect_server
from pgstress.db.ownership import TableClaim
from pgstress.db.schema import TableRefused, TableSql, prepare_table
from pgstress.db.server import ServerUnavailable
from pgstress.db.server_measures import ServerMeasures
from pgstress.db.storage import StorageChoice, apply_storage, check_storage
from pgstress.host import collect_host
from pgstress.modes import MODES, Mode
from pgstress.output.base import Output, RampPlan, RampResult, RunContext, RunResult
from pgstress.output.charts import ChartsOutput
from pgstress.output.csv import CsvOutput
from pgstress.output.files import OutputFailed
from pgstress.output.json_export import JsonExportOutput
from pgstress.output.paths import PlannedFile
from pgstress.output.report import MarkdownOutput
from pgstress.output.run_record import RunRecordOutput
from pgstress.output.sweep_chart import SweepChartsOutput
from pgstress.output.terminal import make_progress
from pgstress.redaction import secrets_in_use
from pgstress.resume import Resumption
from pgstress.rows import Row
from pgstress.run.faults import Fault, classify
from pgstress.run.iteration import Driver, Iteration, LevelResult, layout_columns
from pgstress.run.level_events import LevelEvents
from pgstress.run.measure import release_freed_memory
from pgstress.run.ramp import EndRamp, RampOutcome, run_ramp
from pgstress.run.server_memory import EmbeddedServer, OwnBackends, ServerProcesses
from pgstress.run.standby_measure import StandbyLink, StandbyProbe
from pgstress.run.trace_budget import TraceLog
from pgstress.target import ServerDetails, ServerInfo, StandbyInfo
from pgstress.workload.payloads import Codec, CodecOptions, get_codec
from pgstress.workload.template import run_shape

OutputFactory = Callable[[RunConfig, Mode, "Resumption | None"], Output]  # (config, mode, resumption) -> the output

# Every output of a run, registered here and nowhere else. They finish in this order: the charts before
# the report that links them, the terminal last, naming every file written.
OUTPUTS: tuple[OutputFactory, ...] = (
    lambda config, mode, resumption: RunRecordOutput(config, mode.csv_path(config), resuming=resumption is not None,
                                                     option=mode.csv_flag),
    lambda config, mode, resumption: CsvOutput(mode.csv_path(config), (resumption and resumption.columns)
                                               or csv_columns(mode.run.row_type, config),
                                               append=resumption is not None,
                                               keep_bytes=resumption.csv_bytes if resumption else None,
                                               option=mode.csv_flag),
    lambda config, mode, resumption: ChartsOutput(mode.shown.charts_for(config), config.report_md,
                                                  enabled=not config.no_charts),
    lambda config, mode, resumption: SweepChartsOutput(config),
    lambda config, mode, resumption: MarkdownOutput(config.report_md, mode.shown.report, mode.csv_path(config)),
    lambda config, mode, resumption: JsonExportOutput(config.export_json, mode.shown.report),
    lambda config, mode, resumption: make_progress(quiet=config.quiet, line=mode.shown.progress_line),
)


def make_outputs(config: RunConfig, resumption: Resumption | None = None) -> list[Output]:
    """The run's outputs, in their order. Making them reads and writes nothing: the pre-flight check makes them
    to ask their `planned_files` before the run."""
    mode = MODES[config.mode]
    return [make(config, mode, resumption) for make in OUTPUTS]


def planned_files(config: RunConfig) -> list[PlannedFile]:
    """Every file the run may write, from its outputs (a resumed run's as they resume: its CSV appended to)."""
    mode = MODES[config.mode]
    resuming = Resumption.planned(Path(mode.csv_path(config))) if config.resume else None
    files = [planned for output in make_outputs(config, resuming) for planned in output.planned_files()]
    # Said (--dry-run) and checked in the order of the options that name them, each option's own file before
    # those beside it: the CSV, its run record, the report, its charts, the JSON record; any other after them.
    named = {mode.csv_flag: mode.csv_path(config), "--report-md": config.report_md, "--export-json": config.export_json}
    order = list(named)
    return sorted(files, key=lambda planned: (order.index(planned.option) if planned.option in order else len(order),
                                              planned.text != named.get(planned.option)))


def _codec(config: RunConfig) -> Codec:
    return get_codec(config.payload_format, CodecOptions(zstd_level=config.zstd_level,
                                                         shape=run_shape(config.float_decimals, config.epoch_template)))


def run_session(config: RunConfig, server: ServerInfo, resumption: Resumption | None = None,
                outputs: Sequence[Output] | None = None, standbys: Sequence[StandbyInfo] = ()) -> RunResult:
    """Run the whole run; the outputs get every row at once and the result at the end, also when interrupted.

    Raises TableRefused (TableInUse) or StorageUnsupported before anything is touched, ServerUnavailable
    when the first ramp's connections cannot be opened (nothing created then either), and OutputFailed
    when an output cannot even begin (the run record); failures of outputs later on are in
    `RunResult.failed_outputs`.
    """
    mode = MODES[config.mode]
    configs = [ramp.config for ramp in resumption.ramps] if resumption else ramp_configs(config)
    codecs = [_codec(c) for c in configs]
    truncate = config.truncate_before_start or (resumption is not None and resumption.truncate_first)
    secrets = secrets_in_use(config.dsn, server.dsn, *(standby.dsn for standby in standbys))
    claim = TableClaim(server.dsn, [c.table for c in configs], config.statement_timeout_ms)
    if outputs is None:
        outputs = make_outputs(config, resumption)
    events = LevelEvents()  # handed to every iteration and driver; the terminal listens to it
    held = ExitStack()  # the claim and the first driver, released whatever signals arrive (interrupts.run_to_end)
    try:
        held.callback(claim.close)
        claim.revive()  # connects, and takes every table's lock: TableInUse when another run holds one
        # nothing is created, dropped or emptied unless the run can start (its first driver opens)
        with preparing_tables(claim.conn, configs, drop=config.drop_table, truncate=truncate) as tables:
            first_driver = _open_first(held, mode.run.open_driver(configs[0], server.dsn, tables[0], codecs[0], secrets,
                                                              events), sweep=bool(config.concurrency_sweep))
        details = server_details(server.dsn, tables)
        result = RunResult(RunContext(config, collect_host(), server, details[0], tuple(standbys)))
        for output in outputs:
            output.begin(result.context)  # the run record (OutputFailed: nothing ran)
        try:
            for index, (ramp_config, table) in enumerate(zip(configs, tables)):
                if index:
                    release_freed_memory()  # each format's resident peaks start from a trimmed heap, not the last one's
                driver = (_already_open(first_driver) if index == 0
                          else mode.run.open_driver(ramp_config, server.dsn, table, codecs[index], secrets, events))
                plan = _plan(mode, config, ramp_config, server, index, len(configs), resumption, events)
                support = details[index].measures
                measures = ServerMeasures(claim, table, support) if support is not None else None
                # A sweep's later C learns the client's memory per record-epoch from the earlier ones of its format.
                earlier = [row for done in result.ramps if done.config.payload_format == ramp_config.payload_format
                           for row in done.rows]
                chunk_epochs = ramp_config.chunk_epochs if ramp_config.layout == CHUNKED_LAYOUT else None
                probe = StandbyProbe([StandbyLink(standby, table, codecs[index], config.statement_timeout_ms,
                                                  chunk_epochs) for standby in standbys],
                                     server.dsn, secrets, replay_timeout(config)) if standbys else None
                try:
                    ramp = run_one_ramp(plan, mode, outputs, TableControl(claim, table), driver, secrets, result,
                                        measures, earlier, sweep=bool(config.concurrency_sweep), standbys=probe)
                finally:
                    if probe is not None:
                        probe.close()
                ramp.details = details[index]
                result.ramps.append(ramp)
                if ramp.outcome.interrupted or result.failed_outputs:
                    break
        except KeyboardInterrupt:
            result.stopped = True  # between ramps or before the first: the report still covers what finished
        finally:
            _finish(outputs, result)
        return result
    finally:
        interrupts.run_to_end(held.close)


@contextmanager
def preparing_tables(conn: psycopg.Connection, configs: Sequence[RunConfig], *, drop: bool,
                     truncate: bool) -> Iterator[list[TableSql]]:
    """The storage asked checked (reads only: StorageUnsupported), then, in one transaction on `conn` (the
    run's claim connection) that commits when the block ends and rolls back if it raises: every table
    approved, created, dropped or emptied, its OID pinned, its payload column set to the storage asked."""
    choices = [StorageChoice(c.toast_compression, c.storage) for c in configs]
    support = check_storage(conn, choices)
    with conn.transaction():
        tables = [prepare_table(conn, layout_table(c.table, _codec(c).columns(), c.layout), drop=drop,
                                truncate=truncate) for c in configs]
        for table, choice in zip(tables, choices):
            apply_storage(conn, table, choice, support)
        yield tables


def server_details(dsn: str, tables: Sequence[TableSql]) -> list[ServerDetails]:
    """The server's settings as any session gets them (the control connection sets its own statement_timeout)."""
    with psycopg.connect(dsn) as conn:
        return [collect_server(conn, table.table, table.columns[0][0]) for table in tables]


def _plan(mode: Mode, whole: RunConfig, config: RunConfig, server: ServerInfo, index: int, count: int,
          resumption: Resumption | None, events: LevelEvents) -> RampPlan:
    title = mode.title(config, server)
    if count > 1:
        title = f"{compared_noun(whole)} {index + 1} of {count}: {title}"
    previous = resumption.ramps[index].previous if resumption else []
    levels = resumption.ramps[index].levels if resumption else config.epoch_ramp()
    return RampPlan(config, title, ramp_label(whole, config), levels, config.start_iter - 1, previous, events)


def _open_first(held: ExitStack, opening: AbstractContextManager[Driver], *, sweep: bool) -> Driver | ServerUnavailable:
    """The first ramp's driver, open; in a sweep over C, a C the server refuses is that C's result (the others still
    run, so the tables are made ready), anywhere else the run cannot start."""
    try:
        return held.enter_context(opening)
    except ServerUnavailable as refused:
        if not sweep:
            raise
        return refused


@contextmanager
def _already_open(driver: Driver | ServerUnavailable) -> Iterator[Driver]:
    if isinstance(driver, ServerUnavailable):
        raise driver  # the first C's refusal, met again where its ramp runs
    yield driver  # closed by the scope that opened it


def _finish(outputs: Sequence[Output], result: RunResult) -> None:
    """Every output finishes and closes, whatever signals arrive now; one that cannot write is recorded."""
    with interrupts.deferred():
        for output in outputs:
            try:
                output.finish(result)
            except OutputFailed as failed:
                result.failed_outputs.append(str(failed))
        for output in outputs:
            output.close()


def run_one_ramp(plan: RampPlan, mode: Mode, outputs: Sequence[Output], control: TableControl,
                 open_driver: AbstractContextManager[Driver], secrets: tuple[str, ...],
                 result: RunResult, measures: ServerMeasures | None = None, earlier: Sequence[Row] = (), *,
                 sweep: bool = False, standbys: StandbyProbe | None = None) -> RampResult:
    """One ramp. `earlier`: rows the memory guard learns from besides the ramp's own. `sweep`: a later C of a
    sweep over C, whose connections the server may refuse: that is this C's result (its first level fails, its
    ramp ends), not the run's end."""
    config = plan.config
    guard = mode.run.memory_guard(config, [*earlier, *plan.previous]) if mode.run.memory_guard else None
    processes = server_processes(result.context.server) if guard else None

    def hand_out(row: Row) -> None:
        """Every output gets the row; one that cannot write it ends the ramp once all have it."""
        failed = []
        for output in outputs:
            try:
                output.row(plan, row)
            except OutputFailed as exc:
                failed.append(str(exc))
        if failed:
            result.failed_outputs.extend(failed)
            raise EndRamp(f"was stopped because a result could not be saved ({failed[0]})")

    for output in outputs:
        output.ramp_started(plan)
    outcome = RampOutcome(planned_levels=len(plan.levels))
    table_bytes: int | None = None
    memory_passes: TraceLog | None = None
    try:
        try:
            with open_driver as driver:
                access = mode.run.open_access(config, driver, control, secrets) if mode.run.open_access else None
                iteration = Iteration(config, driver, control, lambda level: mode.run.to_row(level, config), secrets,
                                      guard, measures, plan.events, access=access, standbys=standbys,
                                      server=processes)
                outcome = run_ramp(plan.levels, iteration, hand_out,
                                   max_consecutive_failures=config.max_consecutive_failures,
                                   first_iter=config.start_iter, repeat=config.repeat,
                                   first_rep=config.start_rep)
                memory_passes = iteration.budget.finish()
        except ServerUnavailable as exc:
            if not sweep or not plan.levels:
                raise
            outcome = unopened_ramp(plan, mode, classify(exc, *secrets), hand_out)
        try:
            table_bytes = control.total_size()
        except (psycopg.Error, TableRefused):  # the final size is a nicety; a server gone leaves it unknown
            table_bytes = None
    except KeyboardInterrupt:  # outside the levels (the driver opening or closing, the size): what ran is kept
        outcome.interrupted = True
    stop_reason = outcome.stop_reason
    if not plan.levels and plan.done_before < config.ramp_length:  # --resume of a compared run, an earlier ramp
        stop_reason = f"had ended in the run this one resumes, after iteration {plan.done_before}"
    whole = RampOutcome([*plan.previous, *outcome.rows], outcome.interrupted, stop_reason, config.ramp_length)
    ramp = RampResult(plan, whole, table_bytes, memory_limit_mb=guard.limit_mb if guard else None,
                      server_memory=processes.described() if processes else None, memory_passes=memory_passes)
    for output in outputs:
        output.ramp_ended(ramp)
    return ramp


def server_processes(server: ServerInfo) -> ServerProcesses:
    """The local processes of the run's server whose memory the guard counts: the embedded server's own, else
    this run's backends where they are on this machine."""
    if server.embedded and server.pgdata is not None:
        return EmbeddedServer(server.pgdata)
    return OwnBackends()


def unopened_ramp(plan: RampPlan, mode: Mode, fault: Fault, hand_out: Callable[[Row], None]) -> RampOutcome:
    """A ramp whose connections could not be opened (a C above what the server admits): its first level is
    recorded as failed as a whole, with the reason, and the ramp ends."""
    config = plan.config
    level = LevelResult(config.start_iter, plan.levels[0], [], fault=fault)
    row = mode.run.to_row(level, config)
    row.toast_compression, row.storage = config.toast_compression, config.storage
    row.zstd_level = zstd_level_of(config)
    row.layout, row.chunk_epochs = layout_columns(config)
    hand_out(row)
    return RampOutcome([row], stop_reason=f"could not open its {config.async_concurrency} connections, so it ran"
                                          " no level", planned_levels=len(plan.levels))
