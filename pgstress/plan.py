"""`--dry-run`: what a run would do, said before anything is started, written or touched; and how long it
would take, estimated from costs measured on a 2-core machine.

The estimate is the run's epochs (every record of every size, repetition, C and ramp) times a measured
wall cost per epoch of the format, plus the memory passes `--memory-trace` plans, plus a fixed start-up.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgstress.config import CHUNKED_LAYOUT, RunConfig, concurrencies, has_layouts, is_compared, ramp_configs
from pgstress.output.paths import PlannedFile
from pgstress.redaction import redact_dsn
from pgstress.run.trace_budget import FREE_S, max_share
from pgstress.session import planned_files
from pgstress.target import LIBPQ_SOURCE, libpq_environment, resolve_dsn

# Wall seconds per epoch of sync work with the default options, on the shared 2-core machine pgstress is
# developed on: one 1M-epoch iteration's total_s per epoch (bench/results-profile.md, 2026-11-27, median of 3:
# ndjson_zstd 13.95 s and bson 22.36 s for 1M epochs, jsonb 18.53 s for 500k), times 1.06 for what a ramp
# does around its timed phases besides the memory passes (the full default ramp, bench/results.md's issue 14
# addendum: 898 s of wall time, 780 s of measured work, 72 s of memory passes).
SECONDS_PER_EPOCH = {"ndjson_zstd": 14.8e-6, "bson": 23.7e-6, "jsonb": 39.3e-6}
FALLBACK_PER_EPOCH = max(SECONDS_PER_EPOCH.values())  # a format added later, until it is measured
PASS_EXTRA = 2.9  # a memory pass costs this many times the work it repeats (bench/results.md, section C: 3.9x)
START_S = 8.0  # imports, the embedded server's start and stop, the report and charts (make run: ~10 s of 44 s)
NOISE = 0.3  # this machine's runs of the same work differ by up to about this much (bench/results.md)
SOURCE = ("per-epoch costs measured on a shared 2-core machine at load 1-2 (bench/results-profile.md,"
          " bench/results.md); a busier or faster machine differs")


def run_files(config: RunConfig) -> list[PlannedFile]:
    """Every file the run writes, as its outputs name them (the same list cli.parse_config checks)."""
    return planned_files(config)


def ramp_epochs(ramp: RunConfig) -> int:
    """Epochs one ramp writes (and reads back): every size, each repetition, C records per level in async mode."""
    sizes = ramp.epoch_ramp()
    total = len(sizes) * (sizes[0] + sizes[-1]) // 2 if sizes else 0
    return total * ramp.repeat * (ramp.async_concurrency if ramp.mode == "async" else 1)


def _pass_seconds(ramp: RunConfig, work: float) -> float:
    """What the memory passes --memory-trace plans would add to a ramp of `work` seconds."""
    if ramp.trace_stride == 0:
        return 0.0
    every = PASS_EXTRA * work
    if ramp.memory_trace == "on":
        return every
    share = max_share(ramp)
    planned = every if ramp.trace_stride == 1 else every * len(ramp.sampled_iterations()) / ramp.ramp_length
    return min(planned, max(FREE_S, share / (1 - share) * work))


def estimate_seconds(config: RunConfig) -> float:
    seconds = START_S
    for ramp in ramp_configs(config):
        work = ramp_epochs(ramp) * SECONDS_PER_EPOCH.get(ramp.payload_format, FALLBACK_PER_EPOCH)
        seconds += work + _pass_seconds(ramp, work)
    return seconds


def _in_unit(seconds: float) -> tuple[float, str]:
    if seconds < 90:
        return seconds, "s"
    if seconds < 90 * 60:
        return seconds / 60, "min"
    return seconds / 3600, "h"


def duration(seconds: float) -> str:
    value, unit = _in_unit(seconds)
    return f"{value:.1f} {unit}" if unit == "h" else f"{value:.0f} {unit}"


def duration_range(seconds: float) -> str:
    """"about 14 min (10-18 min)": the estimate and this machine's noise around it."""
    low, high = seconds * (1 - NOISE), seconds * (1 + NOISE)
    low_unit, high_unit = _in_unit(low)[1], _in_unit(high)[1]
    spread = (f"{duration(low)[:-len(low_unit) - 1]}-{duration(high)}" if low_unit == high_unit
              else f"{duration(low)} to {duration(high)}")
    return f"about {duration(seconds)} ({spread})"


def estimate_text(config: RunConfig) -> str:
    return f"{duration_range(estimate_seconds(config))}, estimated from {SOURCE}"


def iterations(config: RunConfig) -> int:
    """Iterations of the whole run: every size and repetition of every ramp."""
    return sum(len(ramp.epoch_ramp()) * ramp.repeat for ramp in ramp_configs(config))


def start_line(config: RunConfig) -> str:
    """What a run of the default ramp says first: how long it will be, and where its plan is."""
    return (f"pgstress: {iterations(config):,} iterations, {duration_range(estimate_seconds(config))} by costs"
            " measured on a 2-core machine; --dry-run shows the plan, Ctrl-C stops with a report")


def server_source(cli_dsn: str | None) -> str:
    """Where the run's server comes from, without a password."""
    dsn, source = resolve_dsn(cli_dsn)
    if dsn is None:
        return "an embedded PostgreSQL started for the run in a temporary directory, removed at the end" \
               " (no --dsn, PG_DSN or libpq PG* variable is set)"
    if source == LIBPQ_SOURCE:
        return "libpq's variables: " + ", ".join(f"{name}={value}" for name, value in libpq_environment())
    return f"{source}: {redact_dsn(dsn)}"


def _memory_passes(ramp: RunConfig) -> str:
    if ramp.trace_stride == 0:
        return "none (--memory-trace off): the *_peak_mb columns stay empty"
    if ramp.memory_trace == "on":
        return "every iteration (--memory-trace on)"
    share = f"{max_share(ramp):.0%}"
    budget = (f"each taken only while the passes stay within {share} of the ramp's time (the first"
              f" {FREE_S:.0f} s of passes always)")
    if ramp.trace_stride == 1:
        return f"planned for every iteration (--memory-trace auto), {budget}"
    sampled = ", ".join(str(i) for i in ramp.sampled_iterations())
    return f"planned for iterations {sampled} (--memory-trace auto), {budget}"


def _table_action(config: RunConfig) -> str:
    if config.drop_table:
        return "dropped and recreated first (--drop-table)"
    action = "created if missing, emptied first (--truncate-before-start)" if config.truncate_before_start \
        else "created if missing"
    between = "kept between iterations" if config.keep_data_between_iterations else "emptied between iterations"
    return f"{action}, {between}"


def plan_lines(config: RunConfig, files: Sequence[PlannedFile]) -> list[str]:
    """The plan, one fact a line."""
    ramps = ramp_configs(config)
    sizes = config.epoch_ramp()
    per_ramp = len(sizes) * config.repeat
    lines = ["pgstress --dry-run: the plan (nothing was started, written or touched)",
             f"  mode: {config.mode}, write method {config.write_method}"]
    if config.mode == "async":
        lines.append(f"  concurrency: C = {', '.join(map(str, concurrencies(config)))} records per level")
    lines += [f"  sizes: {sizes[0]:,} to {sizes[-1]:,} epochs, step {config.step_epochs:,}: {len(sizes):,} sizes",
              f"  iterations: {per_ramp:,} per ramp ({len(sizes):,} sizes x {config.repeat}"
              f" repetition{'s' * (config.repeat != 1)}); {len(ramps)} ramp{'s' * (len(ramps) != 1)},"
              f" {per_ramp * len(ramps):,} in all"]
    for ramp in ramps:
        what = [ramp.payload_format, f"TOAST compression {ramp.toast_compression}", f"storage {ramp.storage}"]
        if ramp.mode == "async":
            what.append(f"C = {ramp.async_concurrency}")
        if has_layouts(config):
            what.append(f"layout {ramp.layout}" + (f" ({ramp.chunk_epochs:,} epochs per chunk)"
                                                   if ramp.layout == CHUNKED_LAYOUT else ""))
        lines.append(f"  ramp: {', '.join(what)}, table {ramp.table}" + (
            f", {ramp_epochs(ramp):,} epochs" if is_compared(config) else ""))
    lines.append(f"  tables: {_table_action(config)}; only a table pgstress created is ever written to")
    lines.append("  files:")
    lines += [f"    {planned.text} ({planned.what}, {planned.option})" for planned in files]
    lines.append(f"  server: {server_source(config.dsn)}")
    lines.append(f"  memory passes: {_memory_passes(ramps[0])}")
    if config.resume:
        lines.append("  --resume: the iterations the CSV already holds are not run again (the plan above is the"
                     " whole ramp)")
    lines.append(f"  time: {estimate_text(config)}")
    return lines
