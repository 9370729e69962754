"""Reading the runs to compare: an --export-json record, or a CSV with the run record beside it.

Anything that is not such a run is refused with one line naming the file (CompareRefused).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgstress.config import ALL_COMPRESSIONS, ALL_FORMATS, ALL_LAYOUTS
from pgstress.output.csv import CsvDamaged, read_rows
from pgstress.output.json_export import SCHEMA_NAME, SCHEMA_VERSION
from pgstress.output.reading import InputRefused, options_problem, read_input, required_columns, row_problem
from pgstress.output.run_record import read_identity, run_record_path
from pgstress.rows import AsyncRow, Row, Status, SyncRow, field_kinds

ROW_TYPES: dict[str, type[Row]] = {"sync": SyncRow, "async": AsyncRow}
FROM_CSV = "unknown (read from a CSV, which does not record how the run ended)"


class CompareRefused(Exception):
    """The runs cannot be compared; the message is one line naming the file or what is wrong."""


@dataclass(frozen=True)
class LoadedRamp:
    payload_format: str
    toast_compression: str
    rows: list[Row]
    zstd_level: int | None = None  # told only where a run compared levels (--zstd-level 1,3,19)
    layout: str | None = None  # told only where a run asked for --layout (its rows' layout column)

    @property
    def key(self) -> str:
        """What pairs a ramp with the other runs' ramps when a run holds several."""
        level = f" zstd {self.zstd_level}" if self.zstd_level is not None else ""
        layout = f" {self.layout}" if self.layout else ""
        return f"{self.payload_format} {self.toast_compression}{level}{layout}"


def _layout_of(rows: Sequence[Row]) -> str | None:
    """A ramp's layout as its rows say it (a run without --layout leaves the column out: None)."""
    return next((row.layout for row in rows if row.layout), None)


@dataclass(frozen=True)
class LoadedRun:
    path: Path
    mode: str
    status: str  # finished, interrupted, stopped by the rule; or FROM_CSV
    config: dict[str, Any]  # the options (from a CSV: those its run record names)
    host: dict[str, Any] | None  # None: not recorded (a CSV)
    server: dict[str, Any]
    ramps: list[LoadedRamp]

    @property
    def repetitions(self) -> int:
        return int(self.config.get("repeat", 1) or 1)


def load_run(path: Path) -> LoadedRun:
    try:
        text = read_input(path).decode("utf-8")
    except InputRefused as exc:
        raise CompareRefused(f"{path} {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CompareRefused(f"{path}: cannot be read ({exc})") from None
    except MemoryError:
        raise CompareRefused(f"{path}: not enough memory to read it") from None
    try:
        if text.lstrip().startswith("{"):
            return _from_json(path, text)
        return _from_csv(path)
    except MemoryError:  # the parsed rows take several times the file's size
        raise CompareRefused(f"{path}: not enough memory to read its rows") from None


def _rows(path: Path, mode: str, records: Any) -> list[Row]:
    row_type = ROW_TYPES[mode]
    kinds = field_kinds(row_type)
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise CompareRefused(f"{path}: its rows are not a list of objects")
    rows = []
    for number, record in enumerate(records, 1):
        missing = next((name for name in required_columns(row_type) if name not in record), None)
        if missing is not None:
            raise CompareRefused(f"{path}: row {number} (iter {_shown(record.get('iter'))}) is not a pgstress {mode}"
                                 f" row: has no {missing}")
        values = {}
        for name, value in record.items():
            if name not in kinds:
                continue
            try:
                values[name] = kinds[name].from_json(value)
            except ValueError as exc:  # a hand-edited value of the wrong type would fail far from here
                what = f"{value!r} is not a pgstress status" if kinds[name].base is Status else f"is {exc}"
                raise CompareRefused(f"{path}: row iter {record.get('iter')!r}: {name} {what}") from None
        why = row_problem(row_type, values)  # NaN, a negative time: a value pgstress never writes would mislead
        if why is not None:
            raise CompareRefused(f"{path}: row {number} (iter {_shown(record.get('iter'))}) is not a pgstress"
                                 f" {mode} row: {why}")
        try:
            rows.append(row_type(**values))
        except TypeError as exc:
            raise CompareRefused(f"{path}: a row is not a pgstress {mode} row ({exc})") from None
    return rows


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 20 else text[:17] + "..."


def _from_json(path: Path, text: str) -> LoadedRun:
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise CompareRefused(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA_NAME:
        raise CompareRefused(f"{path}: not a pgstress run record (no \"schema\": \"{SCHEMA_NAME}\"; write one with"
                             " --export-json)")
    if record.get("schema_version") != SCHEMA_VERSION:
        raise CompareRefused(f"{path}: schema version {record.get('schema_version')!r}; this pgstress reads version"
                             f" {SCHEMA_VERSION}")
    options = record.get("config")
    why = options_problem(options) if isinstance(options, dict) else None
    if why is not None:
        raise CompareRefused(f"{path}: its options are not those of a pgstress run ({why})")
    try:
        mode = record["mode"]
        if mode not in ROW_TYPES:
            raise CompareRefused(f"{path}: mode {mode!r} is neither sync nor async")
        levels = record["config"].get("zstd_level")
        compared_levels = isinstance(levels, str) and "," in levels  # a list of levels is shown as "1,3,19"
        ramps = [LoadedRamp(str(ramp["payload_format"]), str(ramp["toast_compression"]), rows,
                            ramp.get("zstd_level") if compared_levels else None, _layout_of(rows))
                 for ramp in record["ramps"] for rows in (_rows(path, mode, ramp["rows"]),)]
        return LoadedRun(path, mode, str(record["status"]), dict(record["config"]), dict(record["host"]),
                         dict(record["server"]), ramps)
    except (KeyError, TypeError, ValueError) as exc:
        raise CompareRefused(f"{path}: not a complete pgstress run record (missing or wrong {exc})") from None


def _from_csv(path: Path) -> LoadedRun:
    record = run_record_path(path)
    if not record.is_file():
        raise CompareRefused(f"{path}: neither a pgstress JSON record nor a CSV with its run record ({record.name}"
                             " is missing)")
    try:
        identity = read_identity(record)
        mode = identity["mode"]
        row_type = ROW_TYPES[mode]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CompareRefused(f"{record}: not a pgstress run record ({exc})") from None
    try:
        rows = read_rows(path, row_type).rows  # a cut last line is never read as a row
    except (OSError, CsvDamaged) as exc:
        raise CompareRefused(f"{path}: not a pgstress {mode} CSV ({exc})") from None
    groups: dict[tuple[str, str, int | None, str | None], list[Row]] = {}
    compared_levels = isinstance(identity.get("zstd_level"), list)  # the run record keeps a list of levels as one
    for row in rows:
        payload_format = row.format or str(identity.get("payload_format"))
        compression = row.toast_compression or str(identity.get("toast_compression"))
        level = row.zstd_level if compared_levels else None
        groups.setdefault((payload_format, compression, level, row.layout or None), []).append(row)
    if not groups and identity.get("payload_format") != ALL_FORMATS \
            and identity.get("toast_compression") != ALL_COMPRESSIONS and not compared_levels \
            and identity.get("layout") != ALL_LAYOUTS:
        groups[(str(identity.get("payload_format")), str(identity.get("toast_compression")), None, None)] = []
    server = {"connection": identity.get("server")}
    return LoadedRun(path, mode, FROM_CSV, identity, None, server,
                     [LoadedRamp(fmt, compression, group, level, layout)
                      for (fmt, compression, level, layout), group in groups.items()])
