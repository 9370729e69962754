"""The control session: one psycopg connection beside the data connections, for what happens between
the timed phases (the truncate between iterations, the stored sizes), in both modes alike."""

from __future__ import annotations

from pgstress.db.psycopg_adapter import Session
from pgstress.db.schema import TableSql


class ControlSession(Session):
    def __init__(self, dsn: str, table: TableSql, statement_timeout_ms: int) -> None:
        super().__init__(dsn, statement_timeout_ms)
        self.table = table

    def truncate(self) -> None:
        self.conn.execute(self.table.truncate())

    def stored_sizes(self, record_ids: list[int]) -> dict[int, tuple[int, int]]:
        """record id -> (pg_column_size(payload), pg_column_size(row)), after TOAST compression."""
        found = self.conn.execute(self.table.sizes(), [record_ids]).fetchall()
        return {int(record_id): (int(payload), int(row)) for record_id, payload, row in found}

    def total_size(self) -> int:
        value = self.conn.execute(self.table.total_size()).fetchone()
        return int(value[0]) if value else 0
