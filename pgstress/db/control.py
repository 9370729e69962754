"""The control connection's work for one table: what happens between the timed phases (the truncate between
iterations, the stored sizes), in both modes alike, over the run's claim connection (db/ownership.py), which holds
the table."""

from __future__ import annotations

import psycopg

from pgstress.db.ownership import TableClaim, truncate_own
from pgstress.db.schema import TableSql


class TableControl:
    """One ramp's view of the run's control connection: its table's truncate and sizes."""

    def __init__(self, claim: TableClaim, table: TableSql) -> None:
        self.claim = claim
        self.table = table

    @property
    def conn(self) -> psycopg.Connection:
        return self.claim.conn

    def revive(self) -> None:
        """Replace a connection the server closed (taking the table's lock again) before the timed phases."""
        self.claim.revive()

    def recover(self, lost: bool) -> None:
        self.claim.recover(lost)

    def truncate(self) -> None:
        truncate_own(self.conn, self.table)

    def stored_sizes(self, record_ids: list[int]) -> dict[int, tuple[int, int]]:
        """record id -> (pg_column_size(payload), pg_column_size(row)), after TOAST compression."""
        found = self.conn.execute(self.table.sizes(), [record_ids]).fetchall()
        return {int(record_id): (int(payload), int(row)) for record_id, payload, row in found}

    def backend_pid(self) -> int:
        return self.conn.info.backend_pid

    def total_size(self) -> int:
        value = self.conn.execute(self.table.total_size()).fetchone()
        return int(value[0]) if value else 0
