"""One run: the tables made ready, then a ramp for the mode (or one per payload format and/or TOAST
compression method with `all`), every finished row and the final record handed to the outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg

from pgstress.config import RunConfig, compared_noun, ramp_configs, ramp_label
from pgstress.db.control import ControlSession
from pgstress.db.environment import ServerDetails, collect_server
from pgstress.db.schema import TableSql, check_table, prepare_table
from pgstress.db.server import ServerInfo, ServerUnavailable
from pgstress.db.server_measures import ServerMeasures
from pgstress.db.storage import StorageChoice, apply_storage, check_storage
from pgstress.host import collect_host
from pgstress.modes import MODES, Mode
from pgstress.output.base import Output, RampPlan, RampResult, RunContext, RunResult
from pgstress.output.charts import ChartsOutput
from pgstress.output.csv import CsvOutput
from pgstress.output.report import MarkdownOutput
from pgstress.output.run_record import RunRecordOutput
from pgstress.output.sweep_chart import SweepChartsOutput
from pgstress.output.terminal import make_progress
from pgstress.redaction import secrets_in_use
from pgstress.resume import Resumption
from pgstress.rows import Row
from pgstress.run.faults import Fault, classify
from pgstress.run.iteration import Iteration, LevelResult
from pgstress.run.measure import release_freed_memory
from pgstress.run.ramp import RampOutcome, run_ramp
from pgstress.run.trace_budget import TraceLog
from pgstress.workload.payloads import CodecOptions, get_codec

OutputFactory = Callable[[RunConfig, Mode, bool], Output]  # (config, mode, resuming) -> the output

# Every output of a run, registered here and nowhere else. They finish in this order: the charts before
# the report that links them, the terminal last, naming every file written.
OUTPUTS: tuple[OutputFactory, ...] = (
    lambda config, mode, resuming: RunRecordOutput(config, mode.csv_path(config), resuming=resuming),
    lambda config, mode, resuming: CsvOutput(mode.csv_path(config), mode.row_type, append=resuming),
    lambda config, mode, resuming: ChartsOutput(mode.charts, config.report_md, enabled=not config.no_charts),
    lambda config, mode, resuming: SweepChartsOutput(config.report_md, enabled=not config.no_charts),
    lambda config, mode, resuming: MarkdownOutput(config.report_md, mode.report, mode.csv_path(config)),
    lambda config, mode, resuming: make_progress(quiet=config.quiet, line=mode.progress_line),
)


def prepare_tables(dsn: str, configs: Sequence[RunConfig], *, drop: bool, truncate: bool) -> list[ServerDetails]:
    """The server's support for the storage asked and every table approved before any is touched; then each
    created or emptied as asked, its payload column set to the storage asked."""
    specs = [TableSql(c.table, get_codec(c.payload_format).column_type) for c in configs]
    choices = [StorageChoice(c.toast_compression, c.storage) for c in configs]
    with psycopg.connect(dsn) as conn:
        support = check_storage(conn, choices)
        for spec in specs:
            check_table(conn, spec, drop=drop)
        for spec, choice in zip(specs, choices):
            prepare_table(conn, spec, drop=drop, truncate=truncate)
            apply_storage(conn, spec, choice, support)
        return [collect_server(conn, c.table) for c in configs]


def run_session(config: RunConfig, server: ServerInfo, resumption: Resumption | None = None,
                outputs: Sequence[Output] | None = None) -> RunResult:
    """Run the whole run; the outputs get every row at once and the result at the end, also when interrupted."""
    mode = MODES[config.mode]
    configs = [ramp.config for ramp in resumption.ramps] if resumption else ramp_configs(config)
    truncate = config.truncate_before_start or (resumption is not None and resumption.truncate_first)
    details = prepare_tables(server.dsn, configs, drop=config.drop_table, truncate=truncate)
    result = RunResult(RunContext(config, collect_host(), server, details[0]))
    if outputs is None:
        outputs = [make(config, mode, resumption is not None) for make in OUTPUTS]
    try:
        for output in outputs:
            output.begin(result.context)
        for index, (ramp_config, found) in enumerate(zip(configs, details)):
            if index:
                release_freed_memory()  # each format's resident peaks start from a trimmed heap, not the last one's
            label = ramp_label(config, ramp_config)
            title = mode.title(ramp_config, server)
            if len(configs) > 1:
                title = f"{compared_noun(config)} {index + 1} of {len(configs)}: {title}"
            previous = resumption.ramps[index].previous if resumption else []
            levels = resumption.ramps[index].levels if resumption else ramp_config.epoch_ramp()
            plan = RampPlan(ramp_config, title, label, levels, len(previous), previous)
            # A sweep's later C learns the client's memory per record-epoch from the earlier ones of its format.
            earlier = [row for done in result.ramps if done.config.payload_format == ramp_config.payload_format
                       for row in done.rows]
            ramp = run_one_ramp(plan, mode, server, outputs, found, earlier, sweep=bool(config.concurrency_sweep))
            ramp.details = found
            result.ramps.append(ramp)
            if ramp.outcome.interrupted:
                break
        for output in outputs:
            output.finish(result)
    finally:
        for output in outputs:
            output.close()
    return result


def run_one_ramp(plan: RampPlan, mode: Mode, server: ServerInfo, outputs: Sequence[Output],
                 details: ServerDetails | None = None, earlier: Sequence[Row] = (), *,
                 sweep: bool = False) -> RampResult:
    """One ramp. `earlier`: rows the memory guard learns from besides the ramp's own. In a sweep over C, a C whose
    connections the server will not open is that C's result (its first level fails, its ramp ends), not the run's
    end."""
    config = plan.config
    codec = get_codec(config.payload_format, CodecOptions(zstd_level=config.zstd_level))
    secrets = secrets_in_use(config.dsn, server.dsn)
    guard = mode.memory_guard(config, [*earlier, *plan.previous]) if mode.memory_guard else None
    table = TableSql(config.table, codec.column_type)
    control = ControlSession(server.dsn, table, config.statement_timeout_ms)
    support = details.measures if details is not None else None
    measures = ServerMeasures(control, table, support) if support is not None else None

    def hand_out(row: Row) -> None:
        for output in outputs:
            output.row(plan, row)

    for output in outputs:
        output.ramp_started(plan)
    memory_passes: TraceLog | None = None
    try:
        try:
            with mode.open_driver(config, server.dsn, codec, secrets) as driver:
                iteration = Iteration(config, driver, control, lambda level: mode.to_row(level, config), secrets,
                                      guard, measures)
                outcome = run_ramp(plan.levels, iteration, hand_out, first_iter=config.start_iter,
                                   max_consecutive_failures=config.max_consecutive_failures)
                memory_passes = iteration.budget.finish()
        except ServerUnavailable as exc:
            if not sweep or not plan.levels:
                raise
            outcome = unopened_ramp(plan, mode, classify(exc, *secrets), hand_out)
        try:
            table_bytes: int | None = control.total_size()
        except psycopg.Error:  # the final size is a nicety; a server gone leaves it unknown
            table_bytes = None
    finally:
        control.close()
    stop_reason = outcome.stop_reason
    if not plan.levels and plan.done_before < config.ramp_length:  # --resume of a compared run, an earlier ramp
        stop_reason = f"had ended in the run this one resumes, after iteration {plan.done_before}"
    whole = RampOutcome([*plan.previous, *outcome.rows], outcome.interrupted, stop_reason, config.ramp_length)
    ramp = RampResult(plan, whole, table_bytes, memory_limit_mb=guard.limit_mb if guard else None,
                      memory_passes=memory_passes)
    for output in outputs:
        output.ramp_ended(ramp)
    return ramp


def unopened_ramp(plan: RampPlan, mode: Mode, fault: Fault, hand_out: Callable[[Row], None]) -> RampOutcome:
    """A ramp whose connections could not be opened (a C above what the server admits): its first level is
    recorded as failed as a whole, with the reason, and the ramp ends."""
    config = plan.config
    level = LevelResult(config.start_iter, plan.levels[0], [], fault=fault)
    row = mode.to_row(level, config)
    row.toast_compression, row.storage = config.toast_compression, config.storage
    hand_out(row)
    return RampOutcome([row], stop_reason=f"could not open its {config.async_concurrency} connections, so it ran"
                                          " no level", planned_levels=len(plan.levels))
