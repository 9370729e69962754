"""What each level costs the standbys, measured between the timed phases like the server-side columns.

- `standby_lag_start_mb`: before the level (before its truncate), how far the standby's replay is behind the
  primary's WAL (`pg_current_wal_lsn()` on the primary, over a connection of the probe's own, against
  `pg_last_wal_replay_lsn()` on the standby): a standby still replaying an earlier level.
- `standby_replay_s`: from the end of the write phase (its last commit returned) until the standby has replayed
  the primary's WAL up to `pg_current_wal_lsn()` read just after it (the write's commit, and anything another
  session wrote meanwhile). The standbys are polled in turn every POLL_INTERVAL_S, so the figure is late by at
  most that and one round trip (about 1-2 ms here); a standby that has not got there after the replay timeout
  (--standby-replay-timeout, 60 s by default) is TIMEOUT for the level.
- `standby_read_s`: the level's records read from the standby (one after another over one connection), each
  decoded and verified like the primary's read (run/record.py), after the primary's read phase.

A standby's failure is its own status for the level (`standby_status`: OK, CONNECTION_LOST, TIMEOUT,
VERIFY_FAILED, ERROR); the primary's measurements and the ramp go on, and the next level reconnects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from pgstress.config import STANDBY_REPLAY_TIMEOUT_S
from pgstress.db.chunked_io import ChunkedSyncDatabase
from pgstress.db.psycopg_adapter import ReconnectingConnection, SyncDatabase
from pgstress.db.schema import TableSql
from pgstress.db.server_measures import WAL_WRITTEN_BYTES
from pgstress.db.standby import CONNECT_TIMEOUT_S
from pgstress.rows import CONNECTION_LOST, ERROR, OK, TIMEOUT, Row
from pgstress.run.faults import classify
from pgstress.run.layout import verify_chunks
from pgstress.run.measure import StageClock, mib
from pgstress.run.record import RecordWork, check_stored_columns, decode_and_verify
from pgstress.target import StandbyInfo
from pgstress.workload.payloads import Codec

POLL_INTERVAL_S = 0.001
_REPLAY_LSN = "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')"


class NotStandby(Exception):
    """The standby no longer replays (promoted): it has no replay position."""


@dataclass
class StandbyMeasure:
    """One standby's measures of one level; None: not measured (an earlier step failed)."""

    name: str
    status: str = OK
    error: str = ""
    lag_start_bytes: int | None = None
    replay_s: float | None = None
    read_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK


class StandbyLink:
    """One standby's connection for the ramp: replay positions and reads, reopened after a loss."""

    def __init__(self, info: StandbyInfo, table: TableSql, codec: Codec, statement_timeout_ms: int,
                 chunk_epochs: int | None = None) -> None:
        self.info = info
        self.codec = codec
        dsn = psycopg.conninfo.make_conninfo(info.dsn, connect_timeout=str(CONNECT_TIMEOUT_S))
        self.db = SyncDatabase(dsn, table, statement_timeout_ms)
        # The chunked layout (--layout chunked): its records are read as their chunk rows (run/layout.py)
        self.chunk_epochs = chunk_epochs
        self.chunked = ChunkedSyncDatabase(dsn, table, statement_timeout_ms) if chunk_epochs is not None else None

    def replay_bytes(self) -> int:
        row = self.db.conn.execute(_REPLAY_LSN).fetchone()
        if row is None or row[0] is None:
            raise NotStandby(f"{self.info.name} is no longer a standby (pg_last_wal_replay_lsn() is null)")
        return int(row[0])

    def shows(self, record_ids: Sequence[int]) -> bool:
        """Whether the standby has replayed the commits of all these records (they are visible there)."""
        try:
            row = self.db.conn.execute(self.db.table.visible_count(), [list(record_ids)]).fetchone()
        except psycopg.errors.UndefinedTable:  # the table's creation itself is not replayed yet
            return False
        if row is None or not row[0]:
            raise NotStandby(f"{self.info.name} is no longer a standby (pg_last_wal_replay_lsn() is null)")
        return int(row[1]) == len(record_ids)

    def read(self, record: RecordWork) -> None:
        """Read one record from the standby and prove it what was written."""
        assert record.record_id is not None and record.expected is not None
        if self.chunked is not None and self.chunk_epochs is not None:
            chunked_cursor, chunks = self.chunked.fetch_chunks(record.record_id)
            try:
                verify_chunks(self.codec, chunks, record.expected, StageClock(), self.chunk_epochs)
            finally:
                del chunks
                chunked_cursor.close()
            return
        cursor, view, stored_epochs, stored_hash = self.db.fetch(record.record_id)
        try:
            # the run's epoch shape, which the codec was made with (a template's keys, not the default's)
            decode_and_verify(self.codec, view, record.expected, StageClock(), self.codec.options.shape)
        finally:
            del view
            cursor.close()
        check_stored_columns((stored_epochs, stored_hash), record.expected)

    def close(self) -> None:
        self.db.close()
        if self.chunked is not None:
            self.chunked.close()


class StandbyProbe:
    """The standbys' measures of each level of one ramp, with a connection to the primary for its WAL position."""

    def __init__(self, links: Sequence[StandbyLink], primary_dsn: str, secrets: tuple[str, ...],
                 replay_timeout_s: float = STANDBY_REPLAY_TIMEOUT_S) -> None:
        self.links = list(links)
        self.replay_timeout_s = replay_timeout_s
        self.primary = ReconnectingConnection(primary_dsn, 0)
        self.secrets = secrets

    def _failed(self, link: StandbyLink, measure: StandbyMeasure, exc: Exception) -> None:
        fault = classify(exc, *self.secrets)
        status = fault.status
        if status == ERROR and isinstance(exc, psycopg.OperationalError):
            status = CONNECTION_LOST  # it cannot be reached (stopped, gone): a lost standby, not a bad statement
        measure.status, measure.error = status, f"{link.info.name}: {fault.message}"
        link.db.recover(lost=status == CONNECTION_LOST)

    def _primary_bytes(self) -> int:
        # the lag before a level: a size, not a wait; a primary that cannot answer fails the level's standby measure
        row = self.primary.conn.execute(f"SELECT {WAL_WRITTEN_BYTES}").fetchone()
        assert row is not None
        return int(row[0])

    def begin(self) -> list[StandbyMeasure]:
        """Each standby's lag now, before the level (the primary's connection revived first, like the control
        session's)."""
        measures = [StandbyMeasure(link.info.name) for link in self.links]
        self.primary.revive()
        primary_bytes = self._primary_bytes()
        for link, measure in zip(self.links, measures):
            try:
                measure.lag_start_bytes = max(0, primary_bytes - link.replay_bytes())
            except Exception as exc:  # noqa: BLE001 - the standby's failure is its own status
                self._failed(link, measure, exc)
        return measures

    def wait_replay(self, measures: list[StandbyMeasure], written_at: float, record_ids: Sequence[int]) -> None:
        """How long after `written_at` (perf_counter at the write phase's end) each standby shows the records just
        written: their commits replayed. Not an LSN compared with the primary's: a primary's write or flush position
        can stand inside a record whose rest an idle server never sends, and a standby never "reaches" it."""
        pending = [(link, measure) for link, measure in zip(self.links, measures) if measure.ok]
        while pending:
            for link, measure in list(pending):
                try:
                    replayed = link.shows(record_ids)
                except Exception as exc:  # noqa: BLE001 - the standby's failure is its own status
                    self._failed(link, measure, exc)
                    pending.remove((link, measure))
                    continue
                if replayed:
                    measure.replay_s = time.perf_counter() - written_at
                    pending.remove((link, measure))
            if pending and time.perf_counter() - written_at > self.replay_timeout_s:
                for link, measure in pending:
                    measure.status = TIMEOUT
                    measure.error = (f"{link.info.name}: had not replayed the write {self.replay_timeout_s:g} s"
                                     " after its commit (--standby-replay-timeout)")
                return
            if pending:
                time.sleep(POLL_INTERVAL_S)

    def read(self, measures: list[StandbyMeasure], written: Sequence[RecordWork]) -> None:
        """Each standby that replayed the write serves its records, verified."""
        for link, measure in zip(self.links, measures):
            if not measure.ok or measure.replay_s is None:
                continue
            started = time.perf_counter()
            try:
                for record in written:
                    link.read(record)
            except Exception as exc:  # noqa: BLE001 - the standby's failure is its own status
                self._failed(link, measure, exc)
                continue
            measure.read_s = time.perf_counter() - started

    def close(self) -> None:
        self.primary.close()
        for link in self.links:
            link.close()


def _worst(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def fill_standbys(row: Row, measures: Sequence[StandbyMeasure]) -> None:
    """The row's standby columns: the worst standby's measures, and each standby's own in `standby_each` when
    there are several."""
    if not measures:
        return
    failed = [measure for measure in measures if not measure.ok]
    row.standby_status = failed[0].status if failed else OK
    row.standby_replay_s = _worst([measure.replay_s for measure in measures])
    row.standby_read_s = _worst([measure.read_s for measure in measures])
    lags = [measure.lag_start_bytes for measure in measures if measure.lag_start_bytes is not None]
    row.standby_lag_start_mb = mib(max(lags)) if lags else None
    row.standby_error = failed[0].error if failed else ""
    if len(measures) > 1:
        row.standby_each = "; ".join(_each(measure) for measure in measures)


def _each(measure: StandbyMeasure) -> str:
    def shown(value: float | None, digits: int = 4) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    lag = shown(None if measure.lag_start_bytes is None else mib(measure.lag_start_bytes), 3)
    return (f"{measure.name}: {measure.status} replay_s={shown(measure.replay_s)} read_s={shown(measure.read_s)}"
            f" lag_start_mb={lag}")
