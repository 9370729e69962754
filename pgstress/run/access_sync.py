"""Sync mode's access phases over its psycopg connection: each record's window, metric and append, in turn.

What each access must give, and its checks, are in run/access.py; the SQL in db/access_sql.py. The
time of an access runs from its first statement to the last decoded object; the checks against the
generator come after, untimed (as verify_s is kept out of read_s).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import orjson
import psycopg

from pgstress.config import RunConfig
from pgstress.db.access_sql import (
    FRAME_APPEND,
    JSONB_APPEND,
    AccessSql,
    append_kind,
    metric_path,
    reads_part_on_server,
    window_path,
)
from pgstress.db.control import ControlSession
from pgstress.db.copy_binary import jsonb_text
from pgstress.db.psycopg_adapter import SyncDatabase
from pgstress.db.schema import TableNotOurs
from pgstress.rows import CONNECTION_LOST
from pgstress.run.access import (
    APPEND,
    METRIC,
    RANGE,
    AccessMeasure,
    AccessPlan,
    AccessResult,
    RecordTruth,
    access_plan,
    check_metric,
    check_window,
    record_truth,
)
from pgstress.run.faults import classify
from pgstress.run.iteration import Driver, LevelResult
from pgstress.run.measure import StageClock
from pgstress.run.record import Expected, RecordWork, check_stored_columns, decode_and_verify
from pgstress.run.sync import SyncDriver
from pgstress.workload.epochs import Epoch
from pgstress.workload.payloads import Codec, VerifyError

WAL_POSITION = "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')"


def how_done(payload_format: str) -> dict[str, str]:
    """How each access is done for a format, in words (the report says it beside the numbers)."""
    if reads_part_on_server(payload_format):
        part = {RANGE: "jsonpath slice on the server", METRIC: "jsonpath of the metric on the server"}
    else:
        part = {RANGE: "whole value fetched and decoded", METRIC: "whole value fetched and decoded"}
    kind = append_kind(payload_format)
    append = {JSONB_APPEND: "jsonb_set on the server", FRAME_APPEND: "new zstd frame concatenated on the server"}
    return {**part, APPEND: append.get(kind, "whole value fetched, decoded, extended, re-encoded and rewritten")}


def wal_position(control: ControlSession) -> int | None:
    """The server's WAL insert position in bytes, on the control session; None where it cannot say (a standby)."""
    try:
        found = control.conn.execute(WAL_POSITION).fetchone()
    except psycopg.Error:
        return None
    return None if found is None or found[0] is None else int(found[0])


def decoded_epochs(codec: Codec, view: memoryview) -> Iterator[list[Epoch]]:
    """The codec's decoded chunks; a value that does not decode is not what was written."""
    chunks = codec.decode_stream(view)
    while True:
        try:
            chunk = next(chunks, None)
        except MemoryError:
            raise
        except Exception as exc:  # each codec raises its own kind
            raise VerifyError(f"what was read back cannot be decoded: {type(exc).__name__}: {exc}") from exc
        if chunk is None:
            return
        yield chunk


def sync_access(config: RunConfig, driver: Driver, control: ControlSession,
                secrets: tuple[str, ...]) -> SyncAccess | None:
    """Sync mode's access phases for one ramp; None when the run asks only for the full read."""
    plan = access_plan(config)
    if not plan:
        return None
    assert isinstance(driver, SyncDriver)
    return SyncAccess(plan, driver.db, driver.codec, control, config.seed, secrets)


class SyncAccess:
    """The access phases of sync mode's record, over the driver's own connection (and the control session for
    the WAL position)."""

    def __init__(self, plan: AccessPlan, db: SyncDatabase, codec: Codec, control: ControlSession, seed: int,
                 secrets: tuple[str, ...]) -> None:
        self.plan = plan
        self.db = db
        self.codec = codec
        self.control = control
        self.seed = seed
        self.secrets = secrets
        self.sql = AccessSql(db.table)
        self.on_server = reads_part_on_server(codec.name)
        self.kind = append_kind(codec.name)

    def __call__(self, level: LevelResult) -> AccessResult:
        result = AccessResult(how={name: text for name, text in how_done(self.codec.name).items()
                                   if name in self.plan.accesses})
        records = level.read.ok if level.read is not None else []
        for record in records:
            truth = record_truth(self.plan, level.epochs, self.seed, record.stream)
            steps: dict[str, Callable[[RecordWork, RecordTruth], AccessMeasure]] = {
                RANGE: self._range, METRIC: self._metric, APPEND: self._append}
            for access in self.plan.accesses:
                try:
                    measure = steps[access](record, truth)
                except Exception as exc:  # noqa: BLE001 - the access's failure is the iteration's status
                    fault = classify(exc, *self.secrets)
                    result.fault = replace(fault, message=f"{access} access: {fault.message}")
                    self.db.recover(lost=fault.status == CONNECTION_LOST)
                    return result
                result.add(access, measure)
                if access == APPEND:
                    result.append_wal_bytes = measure.wal_bytes
        return result

    # --- range and metric --------------------------------------------------------------------------------------

    def _server_part(self, path: str, record_id: int) -> tuple[object, int]:
        """The jsonb array a jsonpath selects, decoded; and its size on the wire."""
        with self.db.conn.cursor(binary=True) as cursor:
            cursor.execute(self.sql.path_query(), [path, record_id])
            found = cursor.fetchone()
            if found is None:
                raise VerifyError(f"record {record_id} is no longer in table {self.db.table.table!r}")
            view = found[0]
            return orjson.loads(jsonb_text(view)), len(view)

    def _whole(self, record_id: int, take: Callable[[int, list[Epoch]], None]) -> int:
        """Fetch the whole value and decode it chunk by chunk, handing each chunk (with its first epoch's index)
        to `take`; returns the value's size on the wire."""
        cursor, view, _epochs, _hash = self.db.fetch(record_id)
        try:
            size, start = len(view), 0
            for chunk in decoded_epochs(self.codec, view):
                take(start, chunk)
                start += len(chunk)
        finally:
            del view
            cursor.close()
        return size

    def _range(self, record: RecordWork, truth: RecordTruth) -> AccessMeasure:
        assert record.record_id is not None
        first, count = truth.window_first, truth.window_count
        started = time.perf_counter()
        if self.on_server:
            part, size = self._server_part(window_path(first, count), record.record_id)
            got = part if isinstance(part, list) else []
        else:
            got = []

            def take(start: int, chunk: list[Epoch]) -> None:
                got.extend(chunk[max(0, first - start):max(0, first + count - start)])

            size = self._whole(record.record_id, take)
        seconds = time.perf_counter() - started
        check_window(got, truth)
        return AccessMeasure(seconds, received=size)

    def _metric(self, record: RecordWork, truth: RecordTruth) -> AccessMeasure:
        assert record.record_id is not None
        key = self.plan.metric
        started = time.perf_counter()
        if self.on_server:
            part, size = self._server_part(metric_path(key), record.record_id)
            values = part if isinstance(part, list) else []
        else:
            values = []

            def take(_start: int, chunk: list[Epoch]) -> None:
                try:
                    values.extend([epoch[key] for epoch in chunk])
                except (KeyError, TypeError) as exc:
                    raise VerifyError(f"a decoded epoch has no metric {key!r}") from exc

            size = self._whole(record.record_id, take)
        seconds = time.perf_counter() - started
        check_metric(values, key, truth)
        return AccessMeasure(seconds, received=size)

    # --- append ------------------------------------------------------------------------------------------------

    def _append(self, record: RecordWork, truth: RecordTruth) -> AccessMeasure:
        assert record.record_id is not None
        added = truth.appended.as_dicts()
        before = wal_position(self.control)
        started = time.perf_counter()
        received = 0
        if self.kind == JSONB_APPEND:
            new_part: object = orjson.dumps(added).decode()
            statement = self.sql.append_jsonb()
            sent = len(str(new_part).encode())
        elif self.kind == FRAME_APPEND:
            new_part = self.codec.encode_stream([added])  # its own zstd frame; decoders read frames in a row
            statement = self.sql.append_bytes()
            sent = len(new_part)
        else:
            whole: list[Epoch] = []
            received = self._whole(record.record_id, lambda _start, chunk: whole.extend(chunk))
            whole.extend(added)
            new_part = self.codec.encode_stream([whole])
            del whole
            statement = self.sql.replace_payload()
            sent = len(new_part)
        updated = self.db.conn.execute(statement, [new_part, truth.grown_epochs, truth.grown_hash,
                                                   record.record_id]).fetchone()
        seconds = time.perf_counter() - started
        del new_part
        after = wal_position(self.control)
        if updated is None:
            raise TableNotOurs(self.db.table.table)
        self._read_back(record.record_id, truth)
        wal = None if before is None or after is None else after - before
        return AccessMeasure(seconds, received=received, sent=sent, wal_bytes=wal)

    def _read_back(self, record_id: int, truth: RecordTruth) -> None:
        """The grown record, read whole and verified by its content (untimed)."""
        grown = Expected(truth.grown_epochs, truth.grown_hash)
        cursor, view, stored_epochs, stored_hash = self.db.fetch(record_id)
        try:
            decode_and_verify(self.codec, view, grown, StageClock())
        finally:
            del view
            cursor.close()
        check_stored_columns((stored_epochs, stored_hash), grown)
