"""The run record beside the CSV, `<csv>.run.json`: which ramp the CSV holds, so `--resume` can check it.

It names the options that shape the numbers and the server they were measured on (password
removed). Not in it: where outputs go, set-up actions (--drop-table, --truncate-before-start)
and the stop rule, which change no measured number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pgstress import __version__
from pgstress.config import DEFAULT_CHUNK_EPOCHS, LAYOUT_OPTIONS, STANDBY_OPTIONS, VALUE_LAYOUT, RunConfig, has_layouts
from pgstress.output.base import Output, RunContext, RunResult
from pgstress.output.files import write_atomic
from pgstress.output.paths import PlannedFile
from pgstress.output.reading import options_problem, read_input
from pgstress.redaction import redact_dsn
from pgstress.workload.template import template_sha256

RAMP_OPTIONS = (
    "mode", "table", "payload_format", "start_epochs", "end_epochs", "step_epochs", "keep_data_between_iterations",
    "statement_timeout_ms", "async_concurrency", "seed", "zstd_level", "memory_trace", "write_method",
    "toast_compression", "storage", "repeat", "float_decimals", "access", "range_epochs", "metric", "append_epochs",
)  # fmt: skip
# How a record names the embedded server: its socket path changes every run and means nothing after it.
EMBEDDED_SERVER = "embedded (a fresh throwaway server each run)"
# What a run record written before an option existed means by it: the default then in force.
RECORDED_BEFORE = {"repeat": 1, "float_decimals": None, "epoch_template_sha256": None, "access": "full",
                   "range_epochs": 1000, "metric": "HitRate", "append_epochs": None, "layout": VALUE_LAYOUT,
                   "chunk_epochs": DEFAULT_CHUNK_EPOCHS}
# The standbys a run measured, and what a record without them means: none. A record names them only when there are
# some, so a run without standbys writes the record it always wrote.
NO_STANDBYS: dict[str, Any] = {"standby_dsn": [], "standby": None, "synchronous_standby": False,
                               "standby_replay_timeout": None}
assert tuple(NO_STANDBYS) == STANDBY_OPTIONS


def run_record_path(csv_path: str | Path) -> Path:
    path = Path(csv_path)
    return path.with_name(path.name + ".run.json")


def server_identity(dsn: str | None) -> str:
    """How a record names the server of a DSN (None: the embedded server), its password removed."""
    return redact_dsn(dsn) if dsn else EMBEDDED_SERVER


def ramp_identity(config: RunConfig, server: str) -> dict[str, Any]:
    """The options that shape the numbers, and `server` (server_identity's name for it)."""
    identity: dict[str, Any] = {name: getattr(config, name) for name in (*RAMP_OPTIONS, *LAYOUT_OPTIONS)}
    if config.concurrency_sweep:  # a sweep is its list of C; one C stays the number it always was
        identity["async_concurrency"] = list(config.concurrency_sweep)
    if config.zstd_sweep:  # likewise a list of zstd levels
        identity["zstd_level"] = list(config.zstd_sweep)
    # The template by its content: the same sample under another path is the same shape, an edited one is not.
    identity["epoch_template_sha256"] = template_sha256(config.epoch_template)
    identity["server"] = server
    # The standbys by their DSNs as the record shows them (passwords removed); the embedded one by its name only.
    identity.update(standby=config.standby, standby_dsn=[redact_dsn(dsn) for dsn in config.standby_dsn],
                    synchronous_standby=config.synchronous_standby,
                    standby_replay_timeout=config.standby_replay_timeout)
    return identity


def recorded_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """What a run record holds of a ramp's identity: the standby options only when the run has standbys."""
    return {name: value for name, value in identity.items() if name not in NO_STANDBYS or value != NO_STANDBYS[name]}


def read_identity(path: Path) -> dict[str, Any]:
    """The ramp a run record names; raises (OSError, ValueError, ...) when the file is not a run record, or its
    options are not of the types pgstress records (`"repeat": true` is no repetition count)."""
    record = json.loads(read_input(path).decode("utf-8"))
    ramp = record.get("ramp") if isinstance(record, dict) else None
    if not isinstance(ramp, dict):
        raise ValueError("it holds no 'ramp' object")
    why = options_problem(ramp)
    if why is not None:
        raise ValueError(why)
    return {**RECORDED_BEFORE, **NO_STANDBYS, **ramp}


class RunRecordOutput(Output):
    """Written once the run can start, before its first row; a resumed run keeps the record it continues."""

    def __init__(self, config: RunConfig, csv_path: str | Path, *, resuming: bool,
                 option: str = "--results-csv") -> None:
        self.config = config
        self.path = run_record_path(csv_path)
        self.resuming = resuming
        self.option = option
        self.written = False

    def planned_files(self) -> list[PlannedFile]:
        return [] if self.resuming else [PlannedFile(self.option, str(self.path), "its run record")]

    def begin(self, context: RunContext) -> None:
        if not self.resuming:
            server = server_identity(None if context.server.embedded else context.server.dsn)
            identity = ramp_identity(self.config, server)
            if not has_layouts(self.config):  # a run of the value layout alone records what it always did
                for name in LAYOUT_OPTIONS:
                    del identity[name]
            text = json.dumps({"pgstress": __version__, "ramp": recorded_identity(identity)}, indent=2) + "\n"
            write_atomic(self.path, text)
            self.written = True

    def finish(self, result: RunResult) -> None:
        if self.written:
            result.files.append(self.path)
