"""The CSV of a mode's rows: the header once, then each row appended as one whole line as soon as it exists."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgstress.columns import groups_in
from pgstress.output.base import Output, RampPlan, RunResult
from pgstress.output.files import AppendOnlyFile, OutputFailed
from pgstress.output.paths import PlannedFile
from pgstress.output.reading import InputRefused, read_input, row_problem
from pgstress.rows import FieldKind, Row, Status, field_kinds


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

    def __init__(self, path: str | Path, columns: Sequence[str], *, append: bool = False,
                 keep_bytes: int | None = None, option: str = "--results-csv") -> None:
        self.path = Path(path)
        self.given = str(path)  # as typed: Path() drops a trailing slash, which says the name is a directory
        self.option = option
        self._columns = tuple(columns)  # the run's (columns.csv_columns), or those of the CSV it resumes
        self._append = append
        self._keep_bytes = keep_bytes  # --resume: the length of the CSV's whole lines (a cut last line dropped)
        self._file: AppendOnlyFile | None = None
        self._failed = False

    def planned_files(self) -> list[PlannedFile]:
        return [PlannedFile(self.option, self.given, "the CSV", appends=self._append)]

    def row(self, plan: RampPlan, row: Row) -> None:
        if self._failed:
            return
        try:
            if self._file is None:
                self._file = AppendOnlyFile(self.path, append=self._append, keep_bytes=self._keep_bytes)
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


class CsvDamaged(ValueError):
    """A CSV pgstress cannot read back as rows; the message says where (it completes "<path> ...")."""


@dataclass(frozen=True)
class CsvContents:
    """What a CSV holds: its rows, and whether its last line was cut off (written only in part)."""

    rows: list[Row]
    columns: tuple[str, ...]  # its header: the row type's columns and the optional groups it holds
    whole_bytes: int  # the length of its whole lines: where a cut last line starts
    cut_tail: bytes  # a last line without its line end (b"" when there is none): never read as a row


def read_rows(path: Path, row_type: type[Row]) -> CsvContents:
    """The CSV's rows as `row_type` objects (empty cells are None; the CSV writes floats exactly).

    Strict, since the rows become part of a new run's results: the header must be `row_type`'s (with any of the
    optional column groups, columns.py), and
    every whole line a row of exactly its columns with values of the types and ranges pgstress writes (finite,
    not negative, a known status: output/reading.py), in a regular file no larger than pgstress writes.
    A last line without a line end was cut off while being written; it is returned apart, unread.
    Raises CsvDamaged (OSError when the file cannot be read).
    """
    try:
        data = read_input(path)
    except InputRefused as exc:
        raise CsvDamaged(str(exc)) from None
    whole = data.rfind(b"\n") + 1
    try:
        text = data[:whole].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CsvDamaged(f"is not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    kinds = field_kinds(row_type)
    rows: list[Row] = []
    try:
        header = next(reader, None)
        if header is None:
            raise CsvDamaged("has no whole header line")
        if groups_in(row_type, header) is None:
            missing = row_type.COLUMNS[len(header):]
            if missing and tuple(header) == row_type.COLUMNS[:len(header)]:
                raise CsvDamaged(f"was written by an earlier pgstress, without the column(s) {', '.join(missing)}"
                                 " that this one appends")
            raise CsvDamaged(f"does not start with the header of this mode's CSV ({len(header)} columns)")
        for cells in reader:
            line = reader.line_num
            if len(cells) != len(header):
                raise CsvDamaged(f"line {line} has {len(cells)} fields, the header {len(header)}")
            values = {name: _checked_value(kinds[name], cell, line, name) for name, cell in zip(header, cells)}
            why = row_problem(row_type, values)
            if why is not None:
                raise CsvDamaged(f"line {line}: {why}")
            rows.append(row_type(**values))
    except csv.Error as exc:
        raise CsvDamaged(f"line {reader.line_num} is not CSV ({exc})") from None
    return CsvContents(rows, tuple(header), whole, data[whole:])


def _checked_value(kind: FieldKind, cell: str, line: int, name: str) -> Any:
    try:
        return kind.from_text(cell)
    except ValueError:
        if kind.base is Status:
            raise CsvDamaged(f"line {line}: {cell[:40]!r} is not a pgstress status") from None
        what = "whole number" if kind.base is int else "number"
        raise CsvDamaged(f"line {line}, column {name}: {cell[:40]!r} is not a {what}") from None
