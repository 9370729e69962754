"""`--export-json PATH`: the whole run as one self-describing JSON record, what machines read and what
`pgstress compare` takes.

It holds what a reader needs to know what was measured, on what, and how it ended: the schema's
name and version, the tool's version, every option (the DSN's password removed), the machine,
Python and the drivers, the server's version and settings, every row of every ramp (one per
repetition, every CSV column), each ramp's three points and conclusion, and the run's status. Its
shape is `run.schema.json` beside this file; a change to it that a reader would notice raises
SCHEMA_VERSION.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pgstress import __version__
from pgstress.columns import csv_columns
from pgstress.config import RunConfig, zstd_level_of
from pgstress.host import utc_now_text
from pgstress.output.analysis import Points, find_points
from pgstress.output.base import Output, RampResult, RunResult
from pgstress.output.files import write_atomic
from pgstress.output.markdown import ReportParts, ramp_conclusion
from pgstress.output.paths import PlannedFile
from pgstress.output.run_record import EMBEDDED_SERVER
from pgstress.output.shape_table import run_epoch_shape
from pgstress.rows import Row

SCHEMA_NAME = "pgstress-run"
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("run.schema.json")
# How a ramp (and the run, from its ramps) ended.
FINISHED, INTERRUPTED, STOPPED = "finished", "interrupted", "stopped by the rule"


def ramp_status(ramp: RampResult) -> str:
    if ramp.outcome.interrupted:
        return INTERRUPTED
    return STOPPED if ramp.outcome.stop_reason else FINISHED


def run_status(result: RunResult) -> str:
    """Interrupted when any ramp was; else stopped when any ramp was stopped (the failure rule, the memory
    guard); else finished."""
    statuses = {ramp_status(ramp) for ramp in result.ramps}
    return next((status for status in (INTERRUPTED, STOPPED) if status in statuses), FINISHED)


def _plain(value: Any) -> Any:
    """JSON has no NaN or infinity: an unmeasured figure is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def row_record(row: Row, config: RunConfig) -> dict[str, Any]:
    """Every CSV column of the row, in the CSV's order (an optional group's when the run used it); an empty cell is
    null."""
    return {name: _plain(getattr(row, name)) for name in csv_columns(type(row), config)}


def _point(row: Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"iter": row.iter, "epochs": row.epochs, "status": row.status, "efficiency": _plain(row.efficiency)}


def points_record(points: Points, efficiency: str) -> dict[str, Any]:
    breaking = _point(points.breaking)
    if breaking is not None and points.breaking is not None:
        breaking |= {"error": points.breaking.error, "failed_repetitions": points.breaking_failed,
                     "repetitions": points.breaking_repetitions}
    return {"efficiency_column": efficiency, "median_of_repetitions": points.repetitions > 1,
            "breaking": breaking, "stability": _point(points.stability), "optimal": _point(points.optimal)}


def ramp_record(ramp: RampResult, parts: ReportParts, run_config: RunConfig) -> dict[str, Any]:
    """One ramp's record; its rows carry the columns of the whole run's CSV (with --layout all, the value layout's
    ramp has the layout columns too)."""
    config = ramp.config
    details = ramp.details
    return {
        "label": ramp.plan.label,
        "table": config.table,
        "payload_format": config.payload_format,
        "toast_compression": config.toast_compression,
        "storage": config.storage,
        "zstd_level": zstd_level_of(config),
        "payload_column": None if details is None else {
            "compression": details.payload_column_compression, "storage": details.payload_column_storage},
        "status": ramp_status(ramp),
        "stop_reason": ramp.outcome.stop_reason,
        "planned_sizes": ramp.outcome.planned_levels,
        "repetitions": config.repeat,
        "table_mb": None if ramp.table_bytes is None else ramp.table_bytes / 1048576,
        "points": points_record(find_points(ramp.rows), parts.throughput.column),
        "conclusion": ramp_conclusion(ramp, parts),
        "rows": [row_record(row, run_config) for row in ramp.rows],
    }


def run_record(result: RunResult, parts: ReportParts) -> dict[str, Any]:
    context = result.context
    server, details = context.server, context.server_details
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "pgstress", "version": __version__},
        "status": run_status(result),
        "started_at": context.host.started_at,
        "finished_at": result.finished_at,
        "mode": result.config.mode,
        "config": result.config.as_public_dict(),
        "epoch_shape": run_epoch_shape(result.config).as_json(),
        "host": asdict(context.host),
        "server": {
            "source": server.source,
            "embedded": server.embedded,
            "connection": EMBEDDED_SERVER if server.embedded else server.public_dsn,
            "libpq_environment": dict(server.libpq_env),
            "version": details.version,
            "settings": details.settings,
        },
        "ramps": [ramp_record(ramp, parts, result.config) for ramp in result.ramps],
    }


class JsonExportOutput(Output):
    """Writes the record when the run ends, however it ends; nothing when --export-json is not given."""

    def __init__(self, path: str | None, parts: ReportParts) -> None:
        self.path = Path(path) if path else None
        self.given = path  # as typed: Path() drops a trailing slash, which says the name is a directory
        self.parts = parts

    def planned_files(self) -> list[PlannedFile]:
        return [] if self.given is None else [PlannedFile("--export-json", self.given, "the JSON record")]

    def finish(self, result: RunResult) -> None:
        if self.path is None:
            return
        result.finished_at = result.finished_at or utc_now_text()
        text = json.dumps(run_record(result, self.parts), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
        result.files.append(write_atomic(self.path, text))
