"""The SQL of the access phases (run/access.py): a window, one metric, an append, for one table.

Composed with psycopg.sql like db/schema.py (identifiers quoted, values as parameters) and rendered
for either driver (`%s` placeholders for psycopg, `$n` for asyncpg). Every UPDATE carries the
table's ownership check (`owned_condition()`), as the writes do: an UPDATE of a table someone
dropped and recreated under the same name changes no row.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from pgstress.db.schema import TableSql

JSONB_APPEND = "jsonb_set"  # the array grown on the server: jsonb_set(payload, '{epochs}', epochs || new)
FRAME_APPEND = "concatenated frame"  # a new zstd frame concatenated on the server: payload || frame
REWRITE_APPEND = "rewrite"  # fetched, decoded, extended, re-encoded and stored again whole


def window_path(first: int, count: int) -> str:
    """The jsonpath of `count` consecutive epochs from index `first` (inclusive bounds, 0-based)."""
    return f"$.epochs[{first} to {first + count - 1}]"


def metric_path(key: str) -> str:
    """The jsonpath of one metric over every epoch; the key quoted as a jsonpath string (keys have spaces and
    parentheses). Keys come from the generator's own list (cli.py refuses any other), never from free text."""
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'$.epochs[*]."{escaped}"'


@dataclass(frozen=True)
class AccessSql:
    """The access statements of one table; `p(n)` renders the n-th placeholder for the driver (1-based)."""

    table: TableSql
    asyncpg: bool = False

    def p(self, n: int) -> sql.SQL:
        return sql.SQL(f"${n}" if self.asyncpg else "%s")

    def path_query(self) -> sql.Composed:
        """The jsonb values a jsonpath selects, as one jsonb array: (path, id)."""
        return sql.SQL("SELECT jsonb_path_query_array(payload, {}::jsonpath) FROM {} WHERE id = {}").format(
            self.p(1), self.table.ident, self.p(2))

    def select_payload(self) -> sql.Composed:
        """The whole stored value, for the formats whose epochs' positions inside it are unknown: (id)."""
        return sql.SQL("SELECT payload FROM {} WHERE id = {}").format(self.table.ident, self.p(1))

    def _update(self, new_payload: sql.Composable) -> sql.Composed:
        """Set the payload and the row's own epochs and content_hash columns: (new part, epochs, hash, id)."""
        return sql.SQL(
            "UPDATE {} SET payload = {}, epochs = {}::integer, content_hash = {}::text WHERE id = {} AND {}"
            " RETURNING id"
        ).format(self.table.ident, new_payload, self.p(2), self.p(3), self.p(4), self.table.owned_condition())

    def append_jsonb(self) -> sql.Composed:
        """Grow the jsonb array on the server by the epochs given as a JSON array text."""
        return self._update(sql.SQL("jsonb_set(payload, '{{epochs}}', (payload -> 'epochs') || {}::jsonb)").format(
            self.p(1)))

    def append_bytes(self) -> sql.Composed:
        """Concatenate bytes to the stored bytea on the server (a new zstd frame)."""
        return self._update(sql.SQL("payload || {}::bytea").format(self.p(1)))

    def replace_payload(self) -> sql.Composed:
        """Store a whole new value in place of the old one."""
        return self._update(sql.SQL("{}::bytea").format(self.p(1)))


def append_kind(payload_format: str) -> str:
    """How a format's record is grown: on the server where it can be, else rewritten whole."""
    return {"jsonb": JSONB_APPEND, "ndjson_zstd": FRAME_APPEND}.get(payload_format, REWRITE_APPEND)


def reads_part_on_server(payload_format: str) -> bool:
    """Whether the server can hand over only a window or a metric (jsonb's jsonpath); the bytea formats' epoch
    positions inside the value are unknown (a zstd frame, a BSON document), so they fetch it whole."""
    return payload_format == "jsonb"
