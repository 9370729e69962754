"""--resume: continue a ramp whose CSV already holds finished iterations.

`--resume` refuses unless the run record beside the CSV (output/run_record.py) matches the
current options and the CSV's rows are the ramp's first levels in order; it then runs the
remaining levels, appends them to the same CSV, and the report covers the whole ramp, reading
the earlier rows back from the CSV. A compared run (`all`, a sweep over C) ran its ramps one after
another into one CSV: its rows must be those ramps in order, each its ramp's first levels; a ramp
followed by another's rows had ended, the last one with rows goes on, the ones after it run in
full. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pgstress.columns import GROUPS, groups_in
from pgstress.config import ALL_LAYOUTS, RunConfig, is_compared, ramp_configs, ramp_label, zstd_level_of
from pgstress.output.csv import CsvDamaged, read_rows
from pgstress.output.paths import PlannedFile
from pgstress.output.run_record import ramp_identity, read_identity, run_record_path, server_identity
from pgstress.rows import Row
from pgstress.target import resolve_dsn


class ResumeRefused(Exception):
    """--resume cannot continue this CSV; the message is safe to print."""


@dataclass(frozen=True)
class ResumedRamp:
    """One ramp of the run: the rows it already has, and the configuration that runs the rest of it."""

    config: RunConfig  # its start moved past the rows already measured
    previous: list[Row] = field(default_factory=list)
    ended: bool = False  # a later ramp has rows, so this one had ended (finished, or stopped): it runs no more

    @property
    def levels(self) -> Sequence[int]:
        return () if self.ended else self.config.epoch_ramp()


@dataclass(frozen=True)
class Resumption:
    """The rows already measured, and per ramp the configuration that runs the rest."""

    csv_path: Path
    ramps: list[ResumedRamp]
    csv_bytes: int | None = None  # set when the CSV's cut last line is to be dropped: the length to keep
    columns: tuple[str, ...] = ()  # the CSV's header, which the rows appended to it follow
    notice: str | None = None  # what the user is told before the run (a dropped line)

    @classmethod
    def planned(cls, csv_path: Path) -> Resumption:
        """A resumption whose CSV is not read yet: what the outputs are made from to say which files they will
        write (they only ask whether the run resumes)."""
        return cls(csv_path, [])

    @property
    def truncate_first(self) -> bool:
        """The tables still hold the earlier run's last records; a ramp that truncates between iterations drops
        them."""
        return not self.ramps[0].config.keep_data_between_iterations


def resume_inputs(csv_flag: str, csv_path: str) -> list[PlannedFile]:
    """The files --resume reads: the CSV (which it then appends to) and the run record beside it."""
    return [PlannedFile(csv_flag, csv_path, "the CSV resumed"),
            PlannedFile(csv_flag, str(run_record_path(csv_path)), "the run record of the CSV resumed")]


def _option(name: str) -> str:
    if name == "epoch_template_sha256":
        return "--epoch-template (SHA-256 of its content)"
    return "server" if name == "server" else "--" + name.replace("_", "-")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _recorded_ramp(record: Path) -> dict[str, Any]:
    try:
        return read_identity(record)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with it (JSON, shape, nesting), it is no run record
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise ResumeRefused(f"--resume: {record} is not a pgstress run record ({detail})") from None


def load_resumption(config: RunConfig, csv_path: str | Path, row_type: type[Row]) -> Resumption:
    """Check that `csv_path` holds the start of this very run; raise ResumeRefused otherwise.

    A CSV whose last line was cut off (written in part when a run died) is continued without that
    line, which is said in `notice`; any other damage refuses.
    """
    path = Path(csv_path)
    record = run_record_path(path)
    if not path.exists():  # one that is no regular file is refused when read (output/reading.py)
        raise ResumeRefused(f"--resume: {path} does not exist, so there is nothing to resume")
    if not record.exists():
        raise ResumeRefused(
            f"--resume: {record} is missing, so {path} cannot be checked to hold this same ramp (run without --resume)"
        )
    recorded = _recorded_ramp(record)
    expected = ramp_identity(config, server_identity(resolve_dsn(config.dsn)[0]))
    differences = [
        f"{_option(name)} {_shown(recorded.get(name))} there, {_shown(value)} now"
        for name, value in expected.items() if recorded.get(name) != value
    ]
    if differences:
        raise ResumeRefused(f"--resume: {path} holds a different ramp: " + "; ".join(differences))

    try:
        contents = read_rows(path, row_type)
    except CsvDamaged as exc:
        raise ResumeRefused(f"--resume: {path} {exc}; refusing to continue it (run without --resume)") from None
    except OSError as exc:
        raise ResumeRefused(f"--resume: cannot read {path}: {exc.strerror or exc}") from None
    except MemoryError:
        raise ResumeRefused(f"--resume: not enough memory to read {path}") from None
    previous = contents.rows
    held = groups_in(row_type, contents.columns) or []
    lacking = [group.name for group in GROUPS if group.used(config) and group not in held]
    if lacking:
        raise ResumeRefused(f"--resume: {path} has no {' or '.join(lacking)} columns, which this run measures; refusing"
                            " to continue it (run without --resume)")
    configs = ramp_configs(config)
    groups = _ramp_groups(config, configs, previous, path) if is_compared(config) else [previous] if previous else []
    ramps = [_resumed(ramp, groups[index] if index < len(groups) else [], ended=index < len(groups) - 1,
                      path=path, name=ramp_label(config, ramp)) for index, ramp in enumerate(configs)]
    notice = None
    if contents.cut_tail:
        resumed = ramps[0].config
        after = (f"the run goes on after the {len(previous)} rows before it" if is_compared(config)
                 else f"the ramp goes on after iteration {resumed.start_iter - 1}"
                 + (f", repetition {resumed.start_rep - 1}" if resumed.start_rep > 1 else ""))
        notice = (f"--resume: the last line of {path} was cut off ({len(contents.cut_tail)} bytes without a line"
                  f" end); it is dropped, and {after}")
    return Resumption(path, ramps, csv_bytes=contents.whole_bytes if contents.cut_tail else None, notice=notice,
                      columns=contents.columns)


def _ramp_key(config: RunConfig, ramp: RunConfig) -> tuple[object, ...]:
    """What tells one ramp's rows from another's in a compared run's CSV."""
    return (ramp.payload_format, ramp.toast_compression, ramp.async_concurrency if config.mode == "async" else None,
            zstd_level_of(ramp) if config.zstd_sweep else None, ramp.layout if config.layout == ALL_LAYOUTS else None)


def _row_key(config: RunConfig, row: Row) -> tuple[object, ...]:
    return (row.format, row.toast_compression, getattr(row, "concurrency", None) if config.mode == "async" else None,
            row.zstd_level if config.zstd_sweep else None, row.layout if config.layout == ALL_LAYOUTS else None)


def _ramp_groups(config: RunConfig, configs: list[RunConfig], rows: list[Row], path: Path) -> list[list[Row]]:
    """The CSV's rows cut into the runs of each ramp, which must be the run's ramps in their order."""
    keys = [_ramp_key(config, ramp) for ramp in configs]
    groups: list[list[Row]] = []
    for number, row in enumerate(rows, 1):
        key = _row_key(config, row)
        if key not in keys:
            raise ResumeRefused(f"--resume: row {number} of {path} ({_shown_key(key)}) belongs to none of this run's"
                                " ramps")
        if not groups or _row_key(config, groups[-1][0]) != key:
            if keys.index(key) != len(groups):
                wanted = ramp_label(config, configs[len(groups)]) if len(groups) < len(configs) else "no more rows"
                raise ResumeRefused(f"--resume: the rows of {path} are not this run's ramps in their order (row"
                                    f" {number} is {ramp_label(config, configs[keys.index(key)])}, expected {wanted})")
            groups.append([])
        groups[-1].append(row)
    return groups


def _shown_key(key: tuple[object, ...]) -> str:
    payload_format, compression, concurrency, zstd_level, layout = key
    c = f", C={concurrency}" if concurrency is not None else ""
    z = f", zstd level {zstd_level}" if zstd_level is not None else ""
    laid = f", layout {layout!r}" if layout is not None else ""
    return f"format {payload_format!r}, compression {compression!r}{z}{c}{laid}"


def _resumed(config: RunConfig, previous: list[Row], *, ended: bool, path: Path, name: str) -> ResumedRamp:
    """`previous` must be this ramp's first levels in order; the rest of the ramp starts after them."""
    levels, repeat = config.epoch_ramp(), config.repeat
    done = [(row.iter, row.epochs, row.rep) for row in previous]
    sizes_begun = -(-len(done) // repeat)
    expected = [(i + 1, epochs, rep) for i, epochs in enumerate(levels[:sizes_begun]) for rep in range(1, repeat + 1)]
    if sizes_begun > len(levels) or done != expected[: len(done)]:
        shown = [step if repeat > 1 else step[:2] for step in done[:3]]
        wanted = [step if repeat > 1 else step[:2] for step in expected[:3]]
        which = f" {name}" if name else ""
        raise ResumeRefused(
            f"--resume: the{which} rows of {path} are not this ramp's first iterations in order"
            f" (found iter/epochs{'/rep' if repeat > 1 else ''} {shown}..., expected {wanted}...)"
        )
    next_size, reps_done = divmod(len(done), repeat)  # a size cut short is finished first, from its next rep
    next_epochs = levels[next_size] if next_size < len(levels) else config.end_epochs + config.step_epochs
    resumed = replace(config, start_epochs=next_epochs, start_iter=next_size + 1, start_rep=reps_done + 1)
    return ResumedRamp(resumed, previous, ended)
