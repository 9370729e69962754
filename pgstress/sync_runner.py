"""The linear ramp over psycopg 3: each iteration writes one record, reads it back, verifies."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import postgres, pq
from psycopg.adapt import Dumper, Loader
from psycopg.types.json import Jsonb

from pgstress.charts import SYNC_CHARTS, PlottedChart, chart_links, charts_for_report
from pgstress.config import RunConfig
from pgstress.copy_stream import binary_copy_chunks
from pgstress.environment import HostInfo, ServerDetails, utc_now_text
from pgstress.epochs import generate
from pgstress.faults import CONNECTION_LOST, OK, classify, secrets_in_use
from pgstress.measure import PhaseMeter, StageClock, mib, traced_peak_mb
from pgstress.payloads import (
    Codec,
    CodecOptions,
    EncodedPayload,
    check_stored_columns,
    decode_and_verify,
    encode_epochs,
    get_codec,
)
from pgstress.progress import Progress
from pgstress.ramp import RampOutcome, RowSink, run_ramp
from pgstress.report import RunRecord, render, write_report
from pgstress.results import SyncRow
from pgstress.resume import Resumption, results_sink
from pgstress.schema import TableSql
from pgstress.server import ServerInfo


class _RawBinaryLoader(Loader):
    """Hands over the result's bytes without copying them (valid while the cursor lives)."""

    format = pq.Format.BINARY

    def load(self, data: memoryview) -> memoryview:  # type: ignore[override]
        return data


class _BufferBinaryDumper(Dumper):
    """Hands the encoded bytes to libpq as they are (psycopg's own bytea dumper copies them first).

    The value sent is unchanged; an INSERT of a huge bytea then holds the value once in Python
    and once in libpq's outgoing message instead of three times.
    """

    format = pq.Format.BINARY
    oid = postgres.types["bytea"].oid

    def dump(self, obj: bytes | bytearray) -> bytes | bytearray:  # type: ignore[override]
        return obj


def _identity(value: bytes | bytearray) -> bytes | bytearray:
    return value


def connect(dsn: str, statement_timeout_ms: int) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=False)
    conn.execute("SELECT set_config('statement_timeout', %s, false)", [str(statement_timeout_ms)])
    conn.commit()
    for type_name in ("bytea", "jsonb"):
        conn.adapters.register_loader(type_name, _RawBinaryLoader)
    for python_type in (bytes, bytearray):
        conn.adapters.register_dumper(python_type, _BufferBinaryDumper)
    return conn


class SyncDatabase:
    """psycopg calls for one table; reconnects lazily after the connection was lost."""

    def __init__(self, dsn: str, table: TableSql, statement_timeout_ms: int, write_method: str = "insert") -> None:
        self._dsn = dsn
        self._write = self.copy if write_method == "copy" else self.insert
        self._timeout = statement_timeout_ms
        self.table = table
        self._conn: psycopg.Connection | None = None
        self._jsonb = table.column_type == "JSONB"
        # jsonb goes as a text parameter: psycopg's binary jsonb dumper prepends the version byte
        # by copying the whole value in Python; the server parses the same JSON text either way.
        self._insert_sql = table.insert(("%t" if self._jsonb else "%b", "%s", "%s"))

    @property
    def dsn(self) -> str:
        return self._dsn

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._dsn, self._timeout)
        return self._conn

    def insert(self, payload: EncodedPayload) -> int:
        value = Jsonb(payload.data, dumps=_identity) if self._jsonb else payload.data
        row = self.conn.execute(self._insert_sql, [value, payload.epochs, payload.content_hash]).fetchone()
        self.conn.commit()
        assert row is not None
        return int(row[0])

    def copy(self, payload: EncodedPayload) -> int:
        """Binary COPY of the record, the payload streamed in chunks without another whole copy."""
        with self.conn.cursor() as cursor:
            with cursor.copy(self.table.copy_in()) as copy:
                for chunk in binary_copy_chunks(payload, self._jsonb):
                    copy.write(chunk)
            row = cursor.execute("SELECT lastval()").fetchone()  # this session's nextval of the id
        self.conn.commit()
        assert row is not None
        return int(row[0])

    def write(self, payload: EncodedPayload) -> int:
        """Store the record with the configured write method; returns its id."""
        return self._write(payload)

    def fetch(self, record_id: int) -> tuple[psycopg.Cursor, memoryview, int, str]:
        """Run the select; the returned view lives as long as the returned cursor."""
        cursor = self.conn.cursor(binary=True)
        cursor.execute(self.table.select_payload(), [record_id])
        found = cursor.fetchone()
        if found is None:
            cursor.close()
            raise LookupError(f"record {record_id} is not in table {self.table.table!r}")
        view, epochs, content_hash = found
        if self._jsonb:
            view = view[1:]  # binary jsonb starts with its format version byte
        return cursor, view, epochs, content_hash

    def sizes(self, record_id: int) -> tuple[int, int]:
        payload_bytes, row_bytes = self.conn.execute(self.table.sizes(), [record_id]).fetchone() or (0, 0)
        self.conn.commit()
        return int(payload_bytes), int(row_bytes)

    def truncate(self) -> None:
        self.conn.execute(self.table.truncate())
        self.conn.commit()

    def total_size(self) -> int:
        value = self.conn.execute(self.table.total_size()).fetchone()
        self.conn.commit()
        return int(value[0]) if value else 0

    def drop_if_dead(self) -> None:
        """Forget a connection the server has closed since its last use (a restart, an admin's kill).

        psycopg only notices a dead connection when it next uses it; without this check the first
        statement after a server restart would fail and count as a lost iteration although the
        server is back. One round trip, outside every timed phase.
        """
        if self._conn is None or self._conn.closed:
            return
        try:
            self._conn.execute("SELECT 1")
            self._conn.commit()
        except psycopg.Error:
            self._conn.close()
            self._conn = None

    def recover(self, lost: bool) -> None:
        if self._conn is None:
            return
        if lost or self._conn.broken:
            self._conn.close()
            self._conn = None
        else:
            try:
                self._conn.rollback()
            except psycopg.Error:
                self._conn.close()
                self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SyncIteration:
    """Everything one iteration does, phase by phase."""

    def __init__(self, config: RunConfig, db: SyncDatabase, codec: Codec, meter: PhaseMeter) -> None:
        self.config = config
        self.db = db
        self.codec = codec
        self.meter = meter
        self._secrets = secrets_in_use(config.dsn, db.dsn)

    def __call__(self, iteration: int, epochs: int) -> SyncRow:
        row = SyncRow(iter=iteration, epochs=epochs, status=OK, format=self.codec.name)
        stream = (iteration,)
        value_size: int | None = None  # known once encoded: lets a failure be matched to a size limit
        try:
            self.db.drop_if_dead()
            if iteration > self.config.start_iter and not self.config.keep_data_between_iterations:
                self.db.truncate()
            with self.meter.phase() as write:
                payload = encode_epochs(self.codec, generate(epochs, self.config.seed, stream), write.clock)
                value_size = payload.size
                with write.clock.stage("insert"):
                    record_id = self.db.write(payload)
            self._record_write(row, write, payload)
            expected = (payload.epochs, payload.content_hash)
            del payload
            if self.config.traces_memory(iteration):
                row.write_peak_mb = traced_peak_mb(
                    lambda: encode_epochs(self.codec, generate(epochs, self.config.seed, stream), StageClock())
                )
            with self.meter.phase() as read:
                self._read_and_verify(record_id, expected, read.clock)
            self._record_read(row, read)
            if self.config.traces_memory(iteration):
                row.read_peak_mb = traced_peak_mb(lambda: self._read_and_decode(record_id))
            payload_bytes, row_bytes = self.db.sizes(record_id)
            row.db_payload_mb, row.db_row_mb = mib(payload_bytes), mib(row_bytes)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - every fault becomes this iteration's status
            fault = classify(exc, *self._secrets, value_size=value_size)
            row.status, row.error = fault.status, fault.message
            if row.client_payload_mb is None and value_size is not None:
                row.client_payload_mb = mib(value_size)  # the size that failed is the finding
            self.db.recover(lost=fault.status == CONNECTION_LOST)
        return row

    def _read_and_verify(self, record_id: int, expected: tuple[int, str], clock: StageClock) -> None:
        with clock.stage("select"):
            cursor, view, stored_epochs, stored_hash = self.db.fetch(record_id)
        try:
            decode_and_verify(self.codec, view, expected, clock)
        finally:
            del view
            cursor.close()
        check_stored_columns((stored_epochs, stored_hash), expected)

    def _read_and_decode(self, record_id: int) -> None:
        """The read phase's counted work alone (select + decode), for the traced pass."""
        cursor, view, _, _ = self.db.fetch(record_id)
        try:
            for _epochs in self.codec.decode_stream(view):
                pass
        finally:
            del view
            cursor.close()

    @staticmethod
    def _record_write(row: SyncRow, write, payload: EncodedPayload) -> None:
        clock = write.clock
        row.gen_s, row.encode_s, row.insert_s = clock.get("gen"), clock.get("encode"), clock.get("insert")
        row.write_s = write.wall_s - clock.get("verify")
        row.client_payload_mb = mib(payload.size)
        row.write_rss_delta_mb, row.write_rss_peak_mb = write.rss_delta_mb, write.rss_peak_mb
        row.verify_s = clock.get("verify")

    @staticmethod
    def _record_read(row: SyncRow, read) -> None:
        clock = read.clock
        row.select_s, row.decode_s = clock.get("select"), clock.get("decode")
        row.read_s = read.wall_s - clock.get("verify")
        row.verify_s = (row.verify_s or 0.0) + clock.get("verify")
        row.read_rss_delta_mb, row.read_rss_peak_mb = read.rss_delta_mb, read.rss_peak_mb
        row.total_s = (row.write_s or 0.0) + row.read_s
        row.eps = row.epochs / row.total_s if row.total_s > 0 else None


def run_sync(
    config: RunConfig, dsn: str, sinks: list[RowSink], on_row: Callable[[SyncRow], None] | None = None
) -> tuple[RampOutcome, int | None]:
    """Run the whole sync ramp; returns the outcome and the table's final total size in bytes."""
    codec = get_codec(config.payload_format, CodecOptions(zstd_level=config.zstd_level))
    db = SyncDatabase(dsn, TableSql(config.table, codec.column_type), config.statement_timeout_ms, config.write_method)
    try:
        iteration = SyncIteration(config, db, codec, PhaseMeter())
        outcome = run_ramp(
            config.epoch_ramp(),
            iteration,
            sinks,
            max_consecutive_failures=config.max_consecutive_failures,
            on_row=on_row,
            first_iter=config.start_iter,
        )
        try:
            table_bytes: int | None = db.total_size()
        except psycopg.Error:
            table_bytes = None
        return outcome, table_bytes
    finally:
        db.close()


def run_sync_tracked(config: RunConfig, dsn: str, progress: Progress, sinks: list[RowSink], title: str,
                     label: str = "", done_before: int = 0) -> tuple[RampOutcome, int | None]:
    """`run_sync` with its levels shown by `progress`."""
    with progress.ramp(title, config.epoch_ramp(), label, done_before) as tracker:
        return run_sync(config, dsn, sinks, on_row=lambda row: progress.row(tracker, row))


def sync_ramp_title(config: RunConfig, server: ServerInfo) -> str:
    return f"sync ramp, {config.payload_format} into {config.table}, against {server.describe()}"


def run_sync_report(config: RunConfig, server: ServerInfo, host: HostInfo, details: ServerDetails,
                    progress: Progress, resumption: Resumption | None = None) -> tuple[RunRecord, list[PlottedChart]]:
    """The sync mode end to end: the ramp, its CSV (appended to when resuming), the report over the whole ramp
    and its charts."""
    runner_config = resumption.runner_config if resumption else config
    done_before = len(config.epoch_ramp()) - len(runner_config.epoch_ramp())
    with results_sink(config, resumption) as sink:
        outcome, table_bytes = run_sync_tracked(runner_config, server.dsn, progress, [sink],
                                                sync_ramp_title(config, server), done_before=done_before)
    record = RunRecord(config=config, host=host, server=server, server_details=details, outcome=outcome,
                       table_bytes=table_bytes, finished_at=utc_now_text())
    if resumption is not None:
        record.outcome = resumption.merge(outcome)
        record.extra_sections += resumption.report_section()
    charts = charts_for_report(SYNC_CHARTS, {"": record.outcome.rows}, config.report_md,
                               enabled=not config.no_charts)
    record.chart_lines = chart_links(charts, config.report_md)
    write_report(config.report_md, render(record))
    return record, charts
