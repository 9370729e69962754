"""The access phases (`--access range,metric,append`): how a stored record is used after it was written.

After the full read of an iteration, each access asked is timed on its own (outside write_s and
read_s) and verified against the generator like the full read:

- range: `--range-epochs N` consecutive epochs from the middle of the record, fetched and decoded
  to epoch objects (jsonb: a jsonpath slice on the server; the bytea formats: the whole value,
  since where an epoch lies inside a zstd frame or a BSON document is unknown);
- metric: one metric (`--metric KEY`) over every epoch, as a list of numbers (jsonb: a jsonpath on
  the server; the others: the whole value, decoded);
- append: the stored record grown in place by `--append-epochs N` epochs (jsonb: jsonb_set on the
  server; ndjson_zstd: a new zstd frame concatenated on the server; bson: rewritten whole), with
  the WAL it wrote; then read back whole and verified (that read is not timed as the append).

This module holds what both modes share: the plan, what the generator says each access must give,
the checks, and the row's columns. The client's work per format is in run/access_work.py, the drivers'
calls in run/access_sync.py and run/access_async.py, the SQL in db/access_sql.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pgstress.config import RunConfig
from pgstress.rows import Row
from pgstress.run.faults import Fault
from pgstress.run.measure import mib
from pgstress.workload.epochs import DEFAULT_SHAPE, ContentHash, Epoch, EpochChunk, generate
from pgstress.workload.payloads import VerifyError
from pgstress.workload.shape import EpochShape
from pgstress.workload.template import run_shape

FULL, RANGE, METRIC, APPEND = "full", "range", "metric", "append"
ACCESSES = (FULL, RANGE, METRIC, APPEND)
ALL_ACCESSES = "all"
DEFAULT_RANGE_EPOCHS = 1_000
DEFAULT_METRIC = "HitRate"
# The appended epochs are the next values of their own stream: the record's stream with this tag after it. Never a
# small number (a repetition's stream ends in rep - 1) and never 0 (numpy's SeedSequence ignores trailing zeros).
APPEND_STREAM_TAG = 1_000_003


def parse_accesses(text: str) -> tuple[str, ...]:
    """`full`, `range,metric`, `all`: the accesses in their fixed order; raises ValueError naming what is wrong."""
    names: list[str] = []
    for part in (piece.strip() for piece in text.split(",")):
        if part == ALL_ACCESSES:
            names.extend(ACCESSES)
        elif part in ACCESSES:
            names.append(part)
        else:
            raise ValueError(f"{part!r} is not an access (choose from {', '.join((*ACCESSES, ALL_ACCESSES))})")
    return tuple(name for name in ACCESSES if name in names)


def extra_accesses(text: str) -> tuple[str, ...]:
    """The accesses run after the full read (the full read is always run: it is the seed's iteration)."""
    return tuple(name for name in parse_accesses(text) if name != FULL)


def window(epochs: int, count: int) -> tuple[int, int]:
    """(first index, count) of the window taken from the middle of a record of `epochs` epochs."""
    count = min(count, epochs)
    return (epochs - count) // 2, count


def append_count(epochs: int, asked: int | None) -> int:
    """Epochs appended to a record of `epochs`: as asked, else 1 % of it, at least 1."""
    return asked if asked is not None else max(1, epochs // 100)


def appended_stream(stream: tuple[int, ...]) -> tuple[int, ...]:
    return (*stream, APPEND_STREAM_TAG)


@dataclass(frozen=True)
class AccessPlan:
    """What one run asks of the access phases."""

    accesses: tuple[str, ...]  # of RANGE, METRIC, APPEND, in that order
    range_epochs: int = DEFAULT_RANGE_EPOCHS
    metric: str = DEFAULT_METRIC
    append_epochs: int | None = None  # None: 1 % of the record
    shape: EpochShape = DEFAULT_SHAPE  # the run's epoch shape (--float-decimals, --epoch-template)

    def __bool__(self) -> bool:
        return bool(self.accesses)


def access_plan(config: RunConfig) -> AccessPlan:
    """What a run's options ask of the access phases (falsy: the full read only)."""
    return AccessPlan(extra_accesses(config.access), config.range_epochs, config.metric, config.append_epochs,
                      run_shape(config.float_decimals, config.epoch_template))


@dataclass(frozen=True)
class RecordTruth:
    """What the generator says one record's accesses must give (computed before, outside the timed accesses)."""

    window_first: int
    window_count: int
    window_hash: str  # ContentHash of the window's epochs
    metric: npt.NDArray[Any]  # the metric's values, every epoch in order
    appended: EpochChunk  # the epochs the append adds
    grown_hash: str  # ContentHash of the grown record
    grown_epochs: int


def record_truth(plan: AccessPlan, epochs: int, seed: int, stream: tuple[int, ...]) -> RecordTruth:
    """Regenerate the record once and take from it the window, the metric, and the grown record's hash."""
    first, count = window(epochs, plan.range_epochs)
    window_hash, whole = ContentHash(plan.shape), ContentHash(plan.shape)
    columns: list[npt.NDArray[Any]] = []
    start = 0  # the chunk's first epoch in the record
    for chunk in generate(epochs, seed, stream, plan.shape):
        whole.update_table(chunk.table)
        columns.append(chunk.table[plan.shape.field_of(plan.metric)])
        end = start + len(chunk.table)
        lo, hi = max(first, start), min(first + count, end)
        if lo < hi:
            window_hash.update_table(chunk.table[lo - start:hi - start])
        start = end
    added = append_count(epochs, plan.append_epochs)
    tables = [chunk.table for chunk in generate(added, seed, appended_stream(stream), plan.shape)]
    appended = EpochChunk(np.concatenate(tables), plan.shape)  # one chunk, however many generator chunks made it
    whole.update_table(appended.table)
    metric = np.concatenate(columns) if columns else np.empty(0)
    return RecordTruth(first, count, window_hash.hexdigest(), metric, appended, whole.hexdigest(), epochs + added)


def check_window(decoded: Sequence[Epoch], truth: RecordTruth) -> None:
    if len(decoded) != truth.window_count:
        raise VerifyError(f"the window read back has {len(decoded)} epochs, expected {truth.window_count}")
    content = ContentHash(truth.appended.shape)
    try:
        content.update_dicts(decoded)
    except (KeyError, TypeError, ValueError) as exc:
        raise VerifyError(f"an epoch of the window is malformed: {exc}") from exc
    if content.hexdigest() != truth.window_hash:
        raise VerifyError(f"the window of epochs {truth.window_first}..{truth.window_first + truth.window_count - 1}"
                          " read back differs from what was written")


def check_metric(values: Sequence[object], key: str, truth: RecordTruth) -> None:
    if len(values) != len(truth.metric):
        raise VerifyError(f"the metric {key!r} read back has {len(values)} values, expected {len(truth.metric)}")
    wanted = {"b": bool, "i": int, "f": float}[truth.metric.dtype.kind]
    kinds = set(map(type, values))
    if kinds - {wanted}:
        raise VerifyError(f"the metric {key!r} came back as {', '.join(sorted(k.__name__ for k in kinds))}")
    if not np.array_equal(np.array(values, dtype=truth.metric.dtype), truth.metric):
        raise VerifyError(f"the metric {key!r} read back differs from what was written")


@dataclass
class AccessMeasure:
    """One access of one record: its time, and the bytes it moved over the wire (the value's bytes)."""

    seconds: float
    received: int = 0
    sent: int = 0
    wal_bytes: int | None = None  # append: the WAL the server wrote meanwhile (the control session's view)


@dataclass
class AccessResult:
    """The accesses of one level: per access, each record's measure; the first failure, if any."""

    measures: dict[str, list[AccessMeasure]] = field(default_factory=dict)
    wall_s: dict[str, float] = field(default_factory=dict)  # access -> its time: one record's, or the C at once
    append_wal_bytes: int | None = None  # the WAL the server wrote during the append (all the level's records)
    faults: list[Fault] = field(default_factory=list)  # each failed record's, of the access that failed
    how: dict[str, str] = field(default_factory=dict)  # access -> how it was done for this format

    def done(self, access: str, wall_s: float, measures: list[AccessMeasure]) -> None:
        """Every record's access finished (and was verified): its time and its records' bytes."""
        self.wall_s[access] = wall_s
        self.measures[access] = measures
        if access == APPEND:
            wals = [measure.wal_bytes for measure in measures]
            self.append_wal_bytes = None if None in wals else sum(w for w in wals if w is not None)


def fill_access(row: Row, result: AccessResult | None) -> None:
    """The access columns of a row: its time (sync: the record's; async: the C records' at once, as write_s), and
    the bytes of every record of the level. An access that did not finish for every record leaves its columns
    empty."""
    if result is None:
        return
    ranges, metrics, appends = (result.measures.get(name, []) for name in (RANGE, METRIC, APPEND))
    if RANGE in result.wall_s:
        row.range_read_s, row.range_bytes = result.wall_s[RANGE], sum(m.received for m in ranges)
    if METRIC in result.wall_s:
        row.metric_read_s, row.metric_bytes = result.wall_s[METRIC], sum(m.received for m in metrics)
    if APPEND in result.wall_s:
        row.append_s = result.wall_s[APPEND]
        row.append_sent_bytes = sum(m.sent for m in appends)
        row.append_received_bytes = sum(m.received for m in appends)
        row.append_wal_mb = None if result.append_wal_bytes is None else mib(result.append_wal_bytes)

