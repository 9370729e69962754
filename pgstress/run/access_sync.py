"""Sync mode's access phases over its psycopg connection: the record's window, metric and append, in turn.

What each access must give, and its checks, are in run/access.py; the client's work per format in
run/access_work.py; the SQL in db/access_sql.py. An access's time runs from its first statement to
the last decoded object; the checks against the generator come after, untimed (as verify_s is kept
out of read_s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from pgstress.config import RunConfig
from pgstress.db.access_sql import (
    JSONB_APPEND,
    REWRITE_APPEND,
    AccessSql,
    append_kind,
    metric_path,
    reads_part_on_server,
    window_path,
)
from pgstress.db.array_binary import fields_of
from pgstress.db.control import TableControl
from pgstress.db.copy_binary import jsonb_text
from pgstress.db.psycopg_adapter import BinaryField, SyncDatabase
from pgstress.db.schema import TableNotOurs
from pgstress.db.server_measures import wal_position
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
from pgstress.run.access_work import appended_part, how_done, metric_of, rewritten, server_part, window_of
from pgstress.run.array_access import ArrayAccess, Values
from pgstress.run.faults import classify
from pgstress.run.iteration import Driver, LevelResult
from pgstress.run.measure import StageClock
from pgstress.run.record import Expected, RecordWork, check_stored_columns, decode_and_verify
from pgstress.run.sync import SyncDriver
from pgstress.workload.payloads import Codec, VerifyError
from pgstress.workload.payloads.pgarrays_codec import PgArraysCodec

T = TypeVar("T")


def sync_access(config: RunConfig, driver: Driver, control: TableControl,
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

    def __init__(self, plan: AccessPlan, db: SyncDatabase, codec: Codec, control: TableControl, seed: int,
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
        self.arrays = ArrayAccess(codec, db.table, asyncpg=False) if isinstance(codec, PgArraysCodec) else None

    def __call__(self, level: LevelResult) -> AccessResult:
        result = AccessResult(how=how_done(self.codec.name, self.plan.accesses))
        steps: dict[str, Callable[[RecordWork, RecordTruth], AccessMeasure]] = {
            RANGE: self._range, METRIC: self._metric, APPEND: self._append}
        for record in level.read.ok if level.read is not None else []:
            truth = record_truth(self.plan, level.epochs, self.seed, record.stream)
            for access in self.plan.accesses:
                try:
                    measure = steps[access](record, truth)
                except Exception as exc:  # noqa: BLE001 - the access's failure is the iteration's status
                    fault = classify(exc, *self.secrets)
                    result.faults.append(replace(fault, message=f"{access} access: {fault.message}"))
                    self.db.recover(lost=fault.status == CONNECTION_LOST)
                    return result
                result.done(access, measure.seconds, [measure])
        return result

    def _server_part(self, path: str, record_id: int) -> tuple[list[Any], int]:
        """The jsonb array a jsonpath selects, decoded; and its size on the wire."""
        with self.db.conn.cursor(binary=True) as cursor:
            cursor.execute(self.sql.path_query(), [path, record_id])
            found = cursor.fetchone()
            if found is None:
                raise VerifyError(f"record {record_id} is no longer in table {self.db.table.table!r}")
            view = found[0]
            return server_part(jsonb_text(view)), len(view)

    def _array_row(self, statement: Any, parameters: Any, record_id: int, work: Callable[[Values], T]
                   ) -> tuple[T, int]:
        """`work` on the arrays one statement selects (valid only while it runs), and their size on the wire."""
        with self.db.conn.cursor(binary=True) as cursor:
            cursor.execute(statement, parameters)
            found = cursor.fetchone()
            if found is None:
                raise VerifyError(f"record {record_id} is no longer in table {self.db.table.table!r}")
            values: Values = list(found)
            return work(values), sum(len(value) for value in values if value is not None)

    def _whole(self, record_id: int, work: Callable[[memoryview], T]) -> tuple[T, int]:
        """`work` on the whole fetched value (valid only while it runs), and the value's size on the wire."""
        cursor, view, _epochs, _hash = self.db.fetch(record_id)
        try:
            return work(view), len(view)
        finally:
            del view
            cursor.close()

    def _range(self, record: RecordWork, truth: RecordTruth) -> AccessMeasure:
        assert record.record_id is not None
        started = time.perf_counter()
        if self.arrays is not None:
            statement, parameters = self.arrays.window(truth, record.record_id)
            got, size = self._array_row(statement, parameters, record.record_id, self.arrays.window_of)
        elif self.on_server:
            got, size = self._server_part(window_path(truth.window_first, truth.window_count), record.record_id)
        else:
            got, size = self._whole(record.record_id, lambda view: window_of(self.codec, view, truth))
        seconds = time.perf_counter() - started
        check_window(got, truth)
        return AccessMeasure(seconds, received=size)

    def _metric(self, record: RecordWork, truth: RecordTruth) -> AccessMeasure:
        assert record.record_id is not None
        key = self.plan.metric
        started = time.perf_counter()
        if self.arrays is not None:
            arrays = self.arrays
            statement, parameters = arrays.metric(key, record.record_id)
            values, size = self._array_row(statement, parameters, record.record_id,
                                           lambda found: arrays.metric_of(key, found[0]))
        elif self.on_server:
            values, size = self._server_part(metric_path(key), record.record_id)
        else:
            values, size = self._whole(record.record_id, lambda view: metric_of(self.codec, view, key))
        seconds = time.perf_counter() - started
        check_metric(values, key, truth)
        return AccessMeasure(seconds, received=size)

    def _append(self, record: RecordWork, truth: RecordTruth) -> AccessMeasure:
        assert record.record_id is not None
        if self.arrays is not None:
            return self._append_arrays(self.arrays, record.record_id, truth)
        before = wal_position(self.control.conn)
        started = time.perf_counter()
        received = 0
        if self.kind == REWRITE_APPEND:
            value, received = self._whole(record.record_id, lambda view: rewritten(self.codec, view, truth))
            statement = self.sql.replace_payload()
        else:
            value = appended_part(self.codec, truth)
            statement = self.sql.append_jsonb() if self.kind == JSONB_APPEND else self.sql.append_bytes()
        sent = len(value)
        # jsonb goes as text (the server parses it); bytes go as binary bytea (psycopg_adapter's dumper)
        parameter = value.decode() if self.kind == JSONB_APPEND else value
        updated = self.db.conn.execute(statement, [parameter, truth.grown_epochs, truth.grown_hash,
                                                   record.record_id]).fetchone()
        seconds = time.perf_counter() - started
        del value, parameter
        after = wal_position(self.control.conn)
        if updated is None:
            raise TableNotOurs(self.db.table.table)
        self._read_back(record.record_id, truth)
        wal = None if before is None or after is None else after - before
        return AccessMeasure(seconds, received=received, sent=sent, wal_bytes=wal)

    def _append_arrays(self, arrays: ArrayAccess, record_id: int, truth: RecordTruth) -> AccessMeasure:
        """Each column grown on the server by the new epochs' array (sent in binary), as one UPDATE."""
        before = wal_position(self.control.conn)
        started = time.perf_counter()
        data = arrays.appended(truth)
        fields = [BinaryField(field) for field in fields_of(data, arrays.codec.fields) if field is not None]
        statement, parameters = arrays.append(truth, record_id, fields)
        updated = self.db.conn.execute(statement, parameters).fetchone()
        seconds = time.perf_counter() - started
        sent = sum(len(field.data) for field in fields)
        del data, fields, parameters
        after = wal_position(self.control.conn)
        if updated is None:
            raise TableNotOurs(self.db.table.table)
        self._read_back(record_id, truth)
        wal = None if before is None or after is None else after - before
        return AccessMeasure(seconds, received=0, sent=sent, wal_bytes=wal)

    def _read_back(self, record_id: int, truth: RecordTruth) -> None:
        """The grown record, read whole and verified by its content (untimed)."""
        grown = Expected(truth.grown_epochs, truth.grown_hash)
        cursor, view, stored_epochs, stored_hash = self.db.fetch(record_id)
        try:
            decode_and_verify(self.codec, view, grown, StageClock(), self.plan.shape)
        finally:
            del view
            cursor.close()
        check_stored_columns((stored_epochs, stored_hash), grown)
