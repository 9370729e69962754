"""The report's "What the standbys paid": each standby and its settings, replay time against record size and WAL,
whether the standby falls behind along the ramp (from a straight-line fit of its lag, never two end points), the
largest record it served within a threshold of its commit, and, with a synchronous standby, what that cost the
write. One function, `standby_section`, so the report can place it wherever its layout wants it."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from pgstress.output.analysis import fit_line
from pgstress.output.tables import Column, col, markdown_table
from pgstress.rows import OK, Row
from pgstress.target import StandbyInfo

HEADING = "### What the standbys paid"
# A record "served within the threshold": the standby had replayed it this soon after its commit, and read it back.
SERVED_WITHIN_S = 1.0
# Lag that grows by less than this over the whole ramp (by the fit) is not called falling behind: one WAL segment.
LAG_GROWTH_MIN_MB = 16.0

STANDBY_TABLE = (
    col("iter"), col("epochs"), col("wal_mb", digits=2), col("standby_lag_start_mb", "lag at start, MiB", digits=2),
    col("standby_replay_s", "replay after commit, s", digits=4),
    col("standby_read_s", "read from standby, s", digits=3),
    col("standby_status", "standby status"),
)  # fmt: skip


def _measured(rows: Sequence[Row]) -> list[Row]:
    return [row for row in rows if row.status == OK and row.standby_status == OK and row.standby_replay_s is not None]


def _standby_lines(standbys: Sequence[StandbyInfo]) -> list[str]:
    out = []
    for standby in standbys:
        kind = ("synchronous (synchronous_commit = remote_apply: each commit waited until the standby had applied"
                " it)" if standby.synchronous else "asynchronous")
        settings = ", ".join(f"{name} = {value}" for name, value in standby.settings) or "not read"
        out.append(f"- {standby.name}: {standby.public_dsn}, {kind}. Settings: {settings}.")
    return out


def replay_sentence(rows: Sequence[Row]) -> str:
    """Replay time against the WAL of the write (and so the record's size), from a fit over every measured level."""
    points = [(float(row.wal_mb), float(row.standby_replay_s)) for row in _measured(rows)
              if row.wal_mb is not None and row.standby_replay_s is not None]
    fit = fit_line(points)
    if fit is None:
        return "Too few levels were measured (3 needed) to fit replay time against WAL."
    largest = max(_measured(rows), key=lambda row: row.epochs)
    return (f"Replay after the commit against the write's WAL, fitted over {len(points)} levels:"
            f" {fit.slope * 1000:,.2f} ms per MiB of WAL (intercept {fit.intercept:.4f} s,"
            f" rms {fit.rms_residual:.4f} s);"
            f" the largest record ({largest.epochs:,} epochs, {largest.wal_mb or 0:,.1f} MiB of WAL) was replayed"
            f" {largest.standby_replay_s:.4f} s after its commit. The standby replays while the record is written,"
            " so what remains after the commit is the WAL the commit itself flushed, not the whole record.")


def lag_sentence(rows: Sequence[Row]) -> str:
    """Whether the standby falls behind along the ramp: the slope of its lag at each level's start."""
    points = [(float(row.iter), float(row.standby_lag_start_mb)) for row in rows
              if row.standby_status == OK and row.standby_lag_start_mb is not None]
    fit = fit_line(points)
    if fit is None:
        return "Too few levels were measured (3 needed) to tell whether the standby falls behind."
    span = max(x for x, _ in points) - min(x for x, _ in points)
    growth = fit.slope * span
    verdict = ("it falls behind: its lag grows along the ramp" if growth >= LAG_GROWTH_MIN_MB
               else "it keeps up: its lag does not grow along the ramp")
    return (f"The standby's lag at each level's start, fitted over {len(points)} levels, changes by"
            f" {fit.slope:,.3f} MiB per level ({growth:,.1f} MiB over the ramp, rms {fit.rms_residual:.3f} MiB):"
            f" {verdict}"
            f" (falling behind: {LAG_GROWTH_MIN_MB:.0f} MiB or more of growth over the ramp).")


def served_sentence(rows: Sequence[Row]) -> str:
    served = [row for row in _measured(rows) if row.standby_replay_s is not None
              and row.standby_replay_s <= SERVED_WITHIN_S and row.standby_read_s is not None]
    if not served:
        return f"No record was replayed within {SERVED_WITHIN_S:.0f} s of its commit and read back from the standby."
    largest = max(served, key=lambda row: row.epochs)
    return (f"The largest record the standby had replayed within {SERVED_WITHIN_S:.0f} s of its commit and served,"
            f" verified: {largest.epochs:,} epochs (iteration {largest.iter}, replayed after"
            f" {largest.standby_replay_s:.4f} s, read in {largest.standby_read_s:.3f} s).")


def write_cost_sentence(rows: Sequence[Row], synchronous: bool) -> str | None:
    """A synchronous standby's cost is inside write_s; an asynchronous one's replay says what it would add."""
    measured = _measured(rows)
    if not measured:
        return None
    replay = statistics.median(float(row.standby_replay_s or 0.0) for row in measured)
    write = statistics.median(float(row.write_s or 0.0) for row in measured)
    if synchronous:
        return (f"The standby was synchronous: every write_s (median {write:.3f} s) includes waiting until the"
                f" standby had applied the commit, and the replay measured after it (median {replay:.4f} s) is"
                " only what polling adds. Run the same ramp without --synchronous-standby and set the two runs"
                " side by side (`pgstress compare`, with --export-json) for the cost of waiting.")
    share = f" ({replay / write * 100:.1f} % of the median write_s, {write:.3f} s)" if write > 0 else ""
    return (f"The standby was asynchronous: the median replay after the commit was {replay:.4f} s{share}; a"
            " synchronous standby (remote_apply) would add about that to each write.")


def standby_section(rows: Sequence[Row], standbys: Sequence[StandbyInfo]) -> list[str]:
    """The whole section; empty for a run without standbys."""
    if not standbys:
        return []
    out = [HEADING, "", *_standby_lines(standbys), ""]
    if len(standbys) > 1:
        out += ["With several standbys, each level's figures are the worst standby's (the longest times, the"
                " largest lag, the first failure); the CSV's standby_each column has each one's own.", ""]
    failed = [row for row in rows if row.standby_status not in ("", OK)]
    out += [replay_sentence(rows), "", lag_sentence(rows), "", served_sentence(rows), ""]
    cost = write_cost_sentence(rows, any(standby.synchronous for standby in standbys))
    out += [cost, ""] if cost else []
    if failed:
        statuses = ", ".join(f"iteration {row.iter}: {row.standby_status}" for row in failed)
        out += [f"Levels whose standby measures failed (the primary's own measures are unaffected): {statuses}."
                f" First: {failed[0].standby_error}", ""]
    columns: Sequence[Column] = STANDBY_TABLE
    out += [markdown_table(rows, columns), ""] if rows else []
    return out
