"""Reading back what pgstress wrote (a CSV, its run record, a JSON record), for `compare` and `--resume`:
only a regular file, only as large as pgstress writes them, and only values of the shape it writes.

The bound: a JSON record takes ~1.3 KiB a row and a CSV ~0.6 KiB, so MAX_INPUT_BYTES holds some 50,000
rows; each row is a record of thousands to millions of epochs written and read back (seconds each), so
that is days of runs, far beyond any ramp pgstress is used for (100 levels by default). A file is read
whole and a JSON record parsed in memory at ~10 times its size: the bound keeps that within a small
machine's memory, where /dev/zero or a stray multi-gigabyte file would have the process killed.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any, get_args

from pgstress.config import RunConfig
from pgstress.rows import FieldKind, Row, field_kinds

MAX_INPUT_BYTES = 64 * 1024 * 1024
# Differences of the server's cumulative counters: a statistics reset during a level makes them negative.
MAY_BE_NEGATIVE = frozenset({"io_written_mb", "io_extended_mb", "io_fsyncs", "checkpoints"})
AT_LEAST_ONE = frozenset({"iter", "epochs", "rep", "concurrency"})
OPTIONS_AT_LEAST_ONE = frozenset({"start_epochs", "end_epochs", "step_epochs", "repeat", "zstd_level",
                                  "max_consecutive_failures", "max_client_memory_mb"})


# Options a run may be given as a list (a sweep over C, zstd levels compared), and what one value of them is.
LISTED_OPTIONS = {"async_concurrency": "a concurrency", "zstd_level": "a zstd level"}


class InputRefused(ValueError):
    """A file pgstress will not read; the message completes "<path> ..."."""


def read_input(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The whole file, when it is a regular file of at most `limit` bytes. Raises InputRefused, or OSError
    when it cannot be opened or read. A pipe or device is opened without waiting for a writer, and never read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            kind = "a directory" if stat.S_ISDIR(found.st_mode) else "a device, pipe or socket"
            raise InputRefused(f"is not a regular file ({kind})")
        too_large = InputRefused(f"is larger than any file pgstress writes (more than {limit // (1024 * 1024)} MiB)")
        if found.st_size > limit:
            raise too_large
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise too_large
        return b"".join(chunks)
    finally:
        os.close(fd)


def required_columns(row_type: type[Row]) -> tuple[str, ...]:
    """The columns every record of a row type has: the spec's, COLUMNS up to `error`. The extras after them were
    added over time (a record written before one was added lacks it: not measured), so only these are required
    of a JSON record; a CSV's header must be the current one whole."""
    return row_type.COLUMNS[: row_type.COLUMNS.index("error") + 1]


def value_problem(name: str, kind: FieldKind, value: Any) -> str | None:
    """Why a row value already of its field's type (rows.FieldKind) is not one pgstress writes: not finite,
    negative, an iteration, size or repetition below 1; None when it is."""
    if value is None or kind.base not in (int, float):
        return None
    if not math.isfinite(value):
        return "not a finite number"
    if name in AT_LEAST_ONE and value < 1:
        return "below 1"
    if value < 0 and name not in MAY_BE_NEGATIVE:
        return "negative"
    return None


def row_problem(row_type: type[Row], values: dict[str, Any]) -> str | None:
    """Why a row's values, each of its field's type, are not what pgstress writes (see value_problem); None
    when they are. The message names the column."""
    kinds = field_kinds(row_type)
    for name, value in values.items():
        why = value_problem(name, kinds[name], value) if name in kinds else None
        if why is not None:
            return f"{name} is {_shown(value)} ({why})"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."




def options_problem(options: dict[str, Any]) -> str | None:
    """Why recorded options (a run record's ramp, a JSON record's config) are not of the types pgstress writes:
    `"repeat": true` is not a repetition count. Options it does not know are left alone."""
    kinds = field_kinds(RunConfig)
    for name, value in options.items():
        kind = kinds.get(name)
        if kind is None:
            continue
        if name in LISTED_OPTIONS:  # one value; a list's (run record) or its text "1,4,16" (JSON record)
            values = value if isinstance(value, list) else [] if isinstance(value, str) else [value]
            bad = next((c for c in values if isinstance(c, bool) or not isinstance(c, int) or c < 1), None)
            if bad is not None or not isinstance(value, list | str | int):
                return f"{name} is {_shown(value)}, not {LISTED_OPTIONS[name]}"
            continue
        if value is None and kind.optional:
            continue
        if kind.base is bool:
            ok = isinstance(value, bool)
        elif kind.base is int:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= (name in OPTIONS_AT_LEAST_ONE)
        elif kind.base is str:
            ok = isinstance(value, str)
        else:  # a tuple, recorded as a list: of strings (the standbys' DSNs) or of whole numbers
            strings = get_args(kind.base)[:1] == (str,)
            ok = isinstance(value, list) and all(isinstance(v, str) if strings else
                                                 isinstance(v, int) and not isinstance(v, bool) for v in value)
        if not ok:
            what = ("a whole number" if kind.base is int else "a list" if get_args(kind.base)
                    else f"a {getattr(kind.base, '__name__', 'list')}")
            return f"{name} is {_shown(value)}, not {what}"
    return None
