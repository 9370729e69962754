"""The final words on the terminal: the three points of each ramp and every file written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pgstress.output.analysis import Points
from pgstress.rows import Row


def _breaking_text(row: Row | None, failed: str = "") -> str:
    if row is None:
        return "none reached"
    error = f" - {row.error}" if row.error else ""
    return f"iteration {row.iter} ({row.epochs:,} epochs, {row.status}{failed}){error}"


def _ok_point_text(row: Row | None, unit: str, median: bool = False) -> str:
    if row is None:
        return "none"
    rate = f", {row.efficiency:,.0f} {unit}{' median' if median else ''}" if row.efficiency is not None else ""
    return f"{row.epochs:,} epochs (iteration {row.iter}{rate})"


_FILE_ORDER = {".csv": 0, ".md": 1, ".png": 2}  # what a reader opens first, first


def summary_lines(ramps: Sequence[tuple[str, Points]], files: Sequence[object], *, interrupted: bool,
                  unit: str = "epochs/s") -> list[str]:
    """The final words on the terminal: the three points of each ramp (label, points) and every file written."""
    lines: list[str] = []
    for label, points in ramps:
        indent = ""
        if label:
            lines.append(f"{label}:")
            indent = "  "
        failed = (f" in {points.breaking_failed} of {points.breaking_repetitions} repetitions"
                  if points.breaking is not None and points.breaking_repetitions > 1 else "")
        median = points.repetitions > 1
        lines.append(f"{indent}breaking point: {_breaking_text(points.breaking, failed)}")
        lines.append(f"{indent}stability point: {_ok_point_text(points.stability, unit, median)}")
        lines.append(f"{indent}optimal efficiency: {_ok_point_text(points.optimal, unit, median)}")
    ordered = sorted(files, key=lambda path: _FILE_ORDER.get(Path(str(path)).suffix, len(_FILE_ORDER)))
    lines.append("wrote " + ", ".join(map(str, ordered)) if files else "wrote no file")
    if interrupted:
        lines.append("interrupted: the report covers the iterations that finished")
    return lines
