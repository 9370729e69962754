"""The CSV of a mode's rows: the header once, then each row appended as one whole line as soon as it exists."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from pgstress.output.base import Output, RampPlan, RunResult
from pgstress.output.files import AppendOnlyFile, OutputFailed
from pgstress.rows import Row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)  # repr: the exact float, read back unchanged
    return str(value)


class CsvOutput(Output):
    """Appends to an existing CSV when resuming (its header is already there), else starts a new one.

    Each row is one whole line written at once: a full disk leaves every earlier row intact and no
    half line (see AppendOnlyFile); the failure then ends the run (OutputFailed).
    """

    def __init__(self, path: str | Path, row_type: type[Row], *, append: bool = False) -> None:
        self.path = Path(path)
        self._columns = row_type.COLUMNS
        self._append = append
        self._file: AppendOnlyFile | None = None
        self._failed = False

    def row(self, plan: RampPlan, row: Row) -> None:
        if self._failed:
            return
        try:
            if self._file is None:
                self._file = AppendOnlyFile(self.path, append=self._append)
                if self._file.size == 0:
                    self._file.append(csv_line(self._columns))
            self._file.append(csv_line([_cell(getattr(row, name)) for name in self._columns]))
        except OutputFailed:
            self._failed = True
            raise

    def finish(self, result: RunResult) -> None:
        if self._file is not None or (self._append and self.path.exists()):
            result.files.append(self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def csv_line(cells: Sequence[str]) -> bytes:
    """One CSV line, as the csv module writes it (quoted where needed, CRLF), as bytes."""
    text = io.StringIO()
    csv.writer(text).writerow(cells)
    return text.getvalue().encode("utf-8")


def read_rows(path: Path, row_type: type[Row]) -> list[Row]:
    """The CSV's rows as `row_type` objects (empty cells are None; the CSV writes floats exactly).

    Raises ValueError or TypeError on a row that does not fit `row_type`.
    """
    kinds = {field.name: str(field.type) for field in fields(row_type)}
    with path.open(newline="", encoding="utf-8") as handle:
        return [row_type(**{name: _value(kinds[name], cell) for name, cell in raw.items() if name in kinds})
                for raw in csv.DictReader(handle)]


def _value(kind: str, cell: str) -> Any:
    if cell == "" and "None" in kind:
        return None
    if kind.startswith("int"):
        return int(cell)
    if kind.startswith("float"):
        return float(cell)
    return cell
