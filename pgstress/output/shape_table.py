"""The epoch shape a run draws, as a table: in the report, in `--show-template`'s output."""

from __future__ import annotations

from pgstress.output.tables import Column, markdown_table
from pgstress.workload.shape import EpochShape

_COLUMNS = (
    Column("key", lambda row: row[0]), Column("type", lambda row: row[1]), Column("range", lambda row: row[2]),
    Column("decimals", lambda row: row[3]), Column("null share", lambda row: row[4]),
)


def shape_table(shape: EpochShape) -> str:
    return markdown_table(shape.table_rows(), _COLUMNS)


def shape_text(shape: EpochShape) -> str:
    """What `--show-template` prints: the shape in words, then its table."""
    head = f"Epoch shape: {shape.describe()}."
    if shape.template_sha256:
        head += f"\nTemplate SHA-256: {shape.template_sha256}."
    return f"{head}\n\n{shape_table(shape)}\n"
