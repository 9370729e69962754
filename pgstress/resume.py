"""--resume: continue a ramp whose CSV already holds finished iterations.

Every run writes, beside its CSV, `<csv>.run.json`: the options that shape the numbers and the
server they were measured on (password removed). `--resume` refuses unless that record matches
the current options and the CSV's rows are the ramp's first levels in order; it then runs the
remaining levels, appends them to the same CSV, and the report covers the whole ramp, reading
the earlier rows back from the CSV.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from pgstress import __version__
from pgstress.config import RunConfig, redact_dsn
from pgstress.ramp import RampOutcome
from pgstress.report import write_report
from pgstress.results import AsyncRow, CsvSink, SyncRow
from pgstress.server import resolve_dsn

# What makes two runs the same ramp. Not: where outputs go, set-up actions (--drop-table,
# --truncate-before-start) and the stop rule, which change no measured number.
RAMP_OPTIONS = (
    "mode", "table", "payload_format", "start_epochs", "end_epochs", "step_epochs", "keep_data_between_iterations",
    "statement_timeout_ms", "async_concurrency", "seed", "zstd_level", "memory_trace", "write_method",
)  # fmt: skip


class ResumeRefused(Exception):
    """--resume cannot continue this CSV; the message is safe to print."""


def sidecar_path(csv_path: str | Path) -> Path:
    path = Path(csv_path)
    return path.with_name(path.name + ".run.json")


def ramp_identity(config: RunConfig) -> dict[str, Any]:
    dsn, _source = resolve_dsn(config.dsn)
    identity = {name: getattr(config, name) for name in RAMP_OPTIONS}
    identity["server"] = redact_dsn(dsn) if dsn else "embedded (a fresh throwaway server each run)"
    return identity


def write_sidecar(config: RunConfig, csv_path: str | Path) -> None:
    """Record which ramp this CSV holds (atomically, as the report is written: never half a record)."""
    text = json.dumps({"pgstress": __version__, "ramp": ramp_identity(config)}, indent=2) + "\n"
    write_report(sidecar_path(csv_path), text)


def mode_results(config: RunConfig) -> tuple[str, type]:
    """The CSV a run of this mode writes, and the type of its rows."""
    return (config.async_results_csv, AsyncRow) if config.mode == "async" else (config.results_csv, SyncRow)


def results_sink(config: RunConfig, resumption: Resumption | None) -> CsvSink:
    """The run's CSV sink: a new CSV beside a new run record, or the resumed CSV to append to."""
    csv_path, row_type = mode_results(config)
    if resumption is None:
        write_sidecar(config, csv_path)
    return CsvSink(csv_path, row_type, append=resumption is not None)


@dataclass
class Resumption:
    """The rows already measured, and the configuration that runs the rest of the ramp."""

    csv_path: Path
    previous: list[Any]
    runner_config: RunConfig
    planned_levels: int

    @property
    def truncate_first(self) -> bool:
        """The table still holds the earlier run's last record; a ramp that truncates between iterations drops it."""
        return not self.runner_config.keep_data_between_iterations

    def merge(self, outcome: RampOutcome) -> RampOutcome:
        return replace(outcome, rows=[*self.previous, *outcome.rows], planned_levels=self.planned_levels)

    def report_section(self) -> list[str]:
        done = len(self.previous)
        ran = "none: every level was already in the CSV" if done >= self.planned_levels else (
            f"{done + 1}-{self.planned_levels}"
        )
        return [
            "## Resumed run",
            "",
            f"Iterations 1-{done} were measured by an earlier run of this same ramp and read back from"
            f" `{self.csv_path}` (checked against `{sidecar_path(self.csv_path).name}`); iterations run now: {ran}.",
            "",
        ]


def load_resumption(config: RunConfig, csv_path: str | Path, row_type: type) -> Resumption:
    """Check that `csv_path` holds the start of this very ramp; raise ResumeRefused otherwise. Reads only."""
    path = Path(csv_path)
    record = sidecar_path(path)
    if not path.is_file():
        raise ResumeRefused(f"--resume: {path} does not exist, so there is nothing to resume")
    if not record.is_file():
        raise ResumeRefused(
            f"--resume: {record} is missing, so {path} cannot be checked to hold this same ramp (run without --resume)"
        )
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))["ramp"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResumeRefused(f"--resume: {record} is not a pgstress run record ({exc})") from None
    current = ramp_identity(config)
    differences = [
        f"{_option(name)} {recorded.get(name)!r} there, {value!r} now"
        for name, value in current.items() if recorded.get(name) != value
    ]
    if differences:
        raise ResumeRefused(f"--resume: {path} holds a different ramp: " + "; ".join(differences))

    previous = read_rows(path, row_type)
    levels = config.epoch_ramp()
    done = [(row.iter, row.epochs) for row in previous]
    expected = list(zip(range(1, len(levels) + 1), levels))[: len(done)]
    if len(done) > len(levels) or done != expected:
        raise ResumeRefused(
            f"--resume: the rows of {path} are not this ramp's first iterations in order"
            f" (found iter/epochs {done[:3]}..., expected {expected[:3]}...)"
        )
    next_epochs = levels[len(done)] if len(done) < len(levels) else config.end_epochs + config.step_epochs
    runner_config = replace(config, start_epochs=next_epochs, start_iter=len(done) + 1)
    return Resumption(path, previous, runner_config, len(levels))


def _option(name: str) -> str:
    return "server" if name == "server" else "--" + name.replace("_", "-")


def read_rows(path: Path, row_type: type) -> list[Any]:
    """The CSV's rows as `row_type` objects (empty cells are None; the CSV writes floats exactly)."""
    kinds = {field.name: str(field.type) for field in fields(row_type)}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [row_type(**{name: _value(kinds[name], cell) for name, cell in raw.items() if name in kinds})
                    for raw in csv.DictReader(handle)]
    except (ValueError, TypeError) as exc:
        raise ResumeRefused(f"--resume: {path} has a row pgstress cannot read back ({exc})") from None


def _value(kind: str, cell: str) -> Any:
    if cell == "" and "None" in kind:
        return None
    if kind.startswith("int"):
        return int(cell)
    if kind.startswith("float"):
        return float(cell)
    return cell
