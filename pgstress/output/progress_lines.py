"""One finished row in one line, each mode its own form: what CI logs and `| tee` get, and what scrolls above the
live panel."""

from __future__ import annotations

from collections.abc import Callable

from pgstress.output.ramp_tracker import RampTracker
from pgstress.rows import AsyncRow, Row, SyncRow


def sync_line(row: Row, total: int) -> str:
    """One finished sync iteration in one line: what CI logs and `| tee` get."""
    assert isinstance(row, SyncRow)
    timing = f" write {row.write_s:.3f}s read {row.read_s:.3f}s eps {row.eps:,.0f}" if row.eps else ""
    size = f" {row.client_payload_mb:.2f} MiB" if row.client_payload_mb is not None else ""
    error = f" - {row.error}" if row.error else ""
    return f"[{row.iter}/{total}] {row.epochs:,} epochs {row.status}{size}{timing}{error}"


def async_line(row: Row, total: int) -> str:
    """One finished async level in one line."""
    assert isinstance(row, AsyncRow)
    counts = f" writes {row.writes_ok}/{row.writes_total} reads {row.reads_ok}/{row.reads_total}"
    timing = f" write {row.write_s:.3f}s" if row.write_s is not None else ""
    timing += f" read {row.read_s:.3f}s" if row.read_s is not None else ""
    eps = f" write_eps {row.write_eps:,.0f}" if row.write_eps else ""
    error = f" - {row.error}" if row.error else ""
    return f"[{row.iter}/{total}] {row.concurrency} x {row.epochs:,} epochs {row.status}{counts}{timing}{eps}{error}"


LineFormat = Callable[[Row, int], str]  # (row, levels in the ramp) -> one line


def row_line(line: LineFormat, tracker: RampTracker, row: Row) -> str:
    """The mode's line of a row, its position naming the repetition when levels are repeated."""
    text = line(row, tracker.total)
    plain = f"[{row.iter}/{tracker.total}]"
    return tracker.position(row) + text[len(plain):] if text.startswith(plain) else text


def labelled(tracker: RampTracker, line: str) -> str:
    return f"{tracker.label} {line}" if tracker.label else line
