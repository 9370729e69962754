"""Async mode's access phases over its asyncpg pool: each access of all C records at once, as the writes and reads.

Per access, the C records' statements run concurrently and their decoding in the codec threads; the access's
time is the whole batch's wall time (as write_s and read_s are). The checks against the generator come after
the batch, untimed. The append's WAL is the whole batch's, read on the control session before and after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from functools import partial
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
from pgstress.db.schema import TableNotOurs
from pgstress.db.server_measures import wal_position
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
from pgstress.run.async_mode import AsyncDriver
from pgstress.run.faults import Fault, classify
from pgstress.run.iteration import Driver, LevelResult
from pgstress.run.measure import StageClock
from pgstress.run.record import Expected, RecordWork, check_stored_columns, decode_and_verify
from pgstress.workload.payloads import VerifyError
from pgstress.workload.payloads.pgarrays_codec import PgArraysCodec

T = TypeVar("T")


def async_access(config: RunConfig, driver: Driver, control: TableControl,
                  secrets: tuple[str, ...]) -> AsyncAccess | None:
    """Async mode's access phases for one ramp; None when the run asks only for the full read."""
    plan = access_plan(config)
    if not plan:
        return None
    assert isinstance(driver, AsyncDriver)
    return AsyncAccess(plan, driver, control, secrets)


class AsyncAccess:
    """The access phases of an async level's C records, over the driver's pool and codec threads."""

    def __init__(self, plan: AccessPlan, driver: AsyncDriver, control: TableControl,
                 secrets: tuple[str, ...]) -> None:
        self.plan = plan
        self.driver = driver
        self.codec = driver.codec
        self.control = control
        self.secrets = secrets
        self.sql = AccessSql(driver.db.table, asyncpg=True)
        self.on_server = reads_part_on_server(self.codec.name)
        self.kind = append_kind(self.codec.name)
        self.arrays = ArrayAccess(self.codec, driver.db.table, asyncpg=True) \
            if isinstance(self.codec, PgArraysCodec) else None

    def __call__(self, level: LevelResult) -> AccessResult:
        result = AccessResult(how=how_done(self.codec.name, self.plan.accesses))
        records = level.read.ok if level.read is not None else []
        truths = [record_truth(self.plan, level.epochs, self.driver.config.seed, record.stream) for record in records]
        steps: dict[str, Callable[[RecordWork, RecordTruth], Coroutine[Any, Any, tuple[AccessMeasure, object]]]] = {
            RANGE: self._range, METRIC: self._metric, APPEND: self._append}
        for access in self.plan.accesses:
            before = wal_position(self.control.conn) if access == APPEND else None
            started = time.perf_counter()
            outcomes = self._all([steps[access](record, truth) for record, truth in zip(records, truths)])
            wall_s = time.perf_counter() - started
            after = wal_position(self.control.conn) if access == APPEND else None
            checks = {RANGE: self._check_range, METRIC: self._check_metric, APPEND: self._check_append}[access]
            faults = self._faults(access, [
                outcome if isinstance(outcome, BaseException) else self._verified(checks, record, truth, outcome[1])
                for record, truth, outcome in zip(records, truths, outcomes)])
            if faults:
                result.faults = faults
                return result
            measures = [outcome[0] for outcome in outcomes if not isinstance(outcome, BaseException)]
            if access == APPEND and measures:
                measures[0].wal_bytes = None if before is None or after is None else after - before
                for measure in measures[1:]:
                    measure.wal_bytes = 0  # the batch's WAL is counted once, on its first record
            result.done(access, wall_s, measures)
        return result

    def _all(self, work: list[Coroutine[Any, Any, T]]) -> list[T | BaseException]:
        async def gather() -> list[T | BaseException]:
            return list(await asyncio.gather(*work, return_exceptions=True))

        return self.driver._run(gather())  # the driver's own loop

    @staticmethod
    def _verified(check: Callable[[RecordWork, RecordTruth, object], None], record: RecordWork, truth: RecordTruth,
                  got: object) -> BaseException | None:
        try:
            check(record, truth, got)
        except Exception as exc:  # noqa: BLE001 - the record's failure is counted with its siblings'
            return exc
        return None

    def _faults(self, access: str, failures: list[BaseException | None]) -> list[Fault]:
        """Each failed record's fault, its message saying which access failed."""
        faults = []
        for failure in failures:
            if failure is None:
                continue
            if not isinstance(failure, Exception):
                raise failure  # an interrupt, not the record's failure
            fault = classify(failure, *self.secrets)
            faults.append(replace(fault, message=f"{access} access: {fault.message}"))
        return faults

    async def _decode(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.driver.executor, work)

    async def _server_part(self, path: str, record_id: int) -> tuple[list[Any], int]:
        async with self.driver.db.connection() as conn:
            found = await conn.fetchrow(self.sql.path_query().as_string(None), path, record_id)
        if found is None:
            raise VerifyError(f"record {record_id} is no longer in table {self.sql.table.table!r}")
        view = memoryview(found[0])
        return await self._decode(lambda: server_part(jsonb_text(view))), len(view)

    async def _array_row(self, statement: Any, parameters: Any, record_id: int, work: Callable[[Values], T]
                         ) -> tuple[T, int]:
        """`work` on the arrays one statement selects (in a codec thread), and their size on the wire."""
        async with self.driver.db.connection() as conn:
            found = await conn.fetchrow(statement.as_string(None), *parameters)
        if found is None:
            raise VerifyError(f"record {record_id} is no longer in table {self.sql.table.table!r}")
        values: Values = list(found)
        return await self._decode(partial(work, values)), sum(len(value) for value in values if value is not None)

    async def _whole(self, record_id: int, work: Callable[[memoryview], T]) -> tuple[T, int]:
        view, _epochs, _hash = await self.driver.db.fetch(record_id)
        size = len(view)
        return await self._decode(partial(work, view)), size

    async def _range(self, record: RecordWork, truth: RecordTruth) -> tuple[AccessMeasure, object]:
        assert record.record_id is not None
        started = time.perf_counter()
        if self.arrays is not None:
            statement, parameters = self.arrays.window(truth, record.record_id)
            got, size = await self._array_row(statement, parameters, record.record_id, self.arrays.window_of)
        elif self.on_server:
            got, size = await self._server_part(window_path(truth.window_first, truth.window_count),
                                                record.record_id)
        else:
            got, size = await self._whole(record.record_id, lambda view: window_of(self.codec, view, truth))
        return AccessMeasure(time.perf_counter() - started, received=size), got

    async def _metric(self, record: RecordWork, truth: RecordTruth) -> tuple[AccessMeasure, object]:
        assert record.record_id is not None
        key = self.plan.metric
        started = time.perf_counter()
        if self.arrays is not None:
            arrays = self.arrays
            statement, parameters = arrays.metric(key, record.record_id)
            values, size = await self._array_row(statement, parameters, record.record_id,
                                                 lambda found: arrays.metric_of(key, found[0]))
        elif self.on_server:
            values, size = await self._server_part(metric_path(key), record.record_id)
        else:
            values, size = await self._whole(record.record_id, lambda view: metric_of(self.codec, view, key))
        return AccessMeasure(time.perf_counter() - started, received=size), values

    async def _append(self, record: RecordWork, truth: RecordTruth) -> tuple[AccessMeasure, object]:
        assert record.record_id is not None
        started = time.perf_counter()
        received = 0
        if self.arrays is not None:
            return await self._append_arrays(self.arrays, record.record_id, truth, started)
        if self.kind == REWRITE_APPEND:
            value, received = await self._whole(record.record_id, lambda view: rewritten(self.codec, view, truth))
            statement = self.sql.replace_payload()
        else:
            value = await self._decode(lambda: appended_part(self.codec, truth))
            statement = self.sql.append_jsonb() if self.kind == JSONB_APPEND else self.sql.append_bytes()
        async with self.driver.db.connection() as conn:
            # jsonb as its JSON text (asyncpg_adapter's jsonb codec), bytes as bytea
            updated = await conn.fetchval(statement.as_string(None), value, truth.grown_epochs,
                                          truth.grown_hash, record.record_id)
        measure = AccessMeasure(time.perf_counter() - started, received=received, sent=len(value))
        if updated is None:
            raise TableNotOurs(self.sql.table.table)
        return measure, None

    async def _append_arrays(self, arrays: ArrayAccess, record_id: int, truth: RecordTruth, started: float
                             ) -> tuple[AccessMeasure, object]:
        """Each column grown on the server by the new epochs' array (sent in binary), as one UPDATE."""
        data = await self._decode(lambda: arrays.appended(truth))
        fields = [field for field in fields_of(data, arrays.codec.fields) if field is not None]
        statement, parameters = arrays.append(truth, record_id, fields)
        async with self.driver.db.connection() as conn:
            updated = await conn.fetchval(statement.as_string(None), *parameters)
        measure = AccessMeasure(time.perf_counter() - started, sent=sum(len(field) for field in fields))
        if updated is None:
            raise TableNotOurs(self.sql.table.table)
        return measure, None

    # --- the checks, after the batch ------------------------------------------------------------------------------

    @staticmethod
    def _check_range(record: RecordWork, truth: RecordTruth, got: object) -> None:
        check_window(got, truth)  # type: ignore[arg-type]  # what _range decoded: checked to be epochs here

    def _check_metric(self, record: RecordWork, truth: RecordTruth, got: object) -> None:
        check_metric(got, self.plan.metric, truth)  # type: ignore[arg-type]  # what _metric decoded

    def _check_append(self, record: RecordWork, truth: RecordTruth, got: object) -> None:
        """The grown record, read whole and verified by its content (untimed, one record at a time)."""
        assert record.record_id is not None
        grown = Expected(truth.grown_epochs, truth.grown_hash)
        view, stored_epochs, stored_hash = self.driver._run(self.driver.db.fetch(record.record_id))
        try:
            decode_and_verify(self.codec, view, grown, StageClock(), self.plan.shape)
        finally:
            del view
        check_stored_columns((stored_epochs, stored_hash), grown)
