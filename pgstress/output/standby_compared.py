"""The standbys of compared ramps side by side: per format, per C or per run, what the standby paid at the largest
record size every one of them measured on its standby (replay after the commit, the read from the standby, the lag
at the level's start), in a table and in words. Used by the comparison report (`--payload-format all`, a sweep over
C) and by `pgstress compare`; empty when no compared ramp measured a standby."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pgstress.output.tables import Column, markdown_table
from pgstress.rows import OK, Row

HEADING = "What the standbys paid"
# Replay times closer than this are not told apart: the wait polls every 1 ms and adds a round trip (1-2 ms).
REPLAY_RESOLUTION_S = 0.005
NOISE_PERCENT = 10  # a difference smaller than this is within one run's noise (single runs vary 10-30 %)
BEHIND_MB = 16.0  # a lag at a level's start of one WAL segment or more is called behind


@dataclass(frozen=True)
class StandbyRamp:
    """One compared ramp: how the comparison names it, its rows, and whether its standby was synchronous."""

    name: str
    rows: Sequence[Row]
    synchronous: bool = False


def measured(rows: Sequence[Row]) -> list[Row]:
    """The rows whose record the primary wrote and read and the standby replayed and served."""
    return [row for row in rows if row.status == OK and row.standby_status == OK and row.standby_replay_s is not None]


def has_standby_measures(ramps: Sequence[StandbyRamp]) -> bool:
    return any(row.standby_status for ramp in ramps for row in ramp.rows)


def common_standby_size(ramps: Sequence[StandbyRamp]) -> int | None:
    """The largest record size every ramp measured on its standby."""
    sizes = [{row.epochs for row in measured(ramp.rows)} for ramp in ramps]
    shared = set.intersection(*sizes) if sizes else set()
    return max(shared) if shared else None


def _values(rows: Sequence[Row], name: str) -> list[float]:
    return [float(value) for row in rows if isinstance(value := getattr(row, name, None), int | float)]


def _shown(values: Sequence[float], digits: int) -> str:
    """The median, and the min-max of the repetitions when there are several that differ."""
    if not values:
        return "—"
    median = f"{statistics.median(values):,.{digits}f}"
    if len(values) > 1 and min(values) != max(values):
        return f"{median} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"
    return median


def _failures(rows: Sequence[Row]) -> str:
    failed = [row.standby_status for row in rows if row.standby_status not in ("", OK)]
    return "none" if not failed else f"{len(failed)} ({', '.join(sorted(set(failed)))})"


def _median(rows: Sequence[Row], name: str) -> float:
    found = _values(rows, name)
    return statistics.median(found) if found else 0.0


def _extremes(at_size: dict[str, list[Row]], name: str) -> tuple[tuple[float, str], tuple[float, str]]:
    """(median, ramp) of the lowest and of the highest median of `name`."""
    medians = sorted((_median(rows, name), ramp) for ramp, rows in at_size.items())
    return medians[0], medians[-1]


def _too_close(low: float, high: float) -> bool:
    return low > 0 and high / low - 1 < NOISE_PERCENT / 100


def reading(ramps: Sequence[StandbyRamp], at_size: dict[str, list[Row]], epochs: int, noun: str) -> str:
    """The section's reading in words: who was replayed soonest and latest, the reads, the lag, and what the
    numbers cannot say."""
    out = [f"At {epochs:,} epochs, the largest record every {noun}'s standby replayed and served, verified:"]
    if len(at_size) == 1:
        (name, rows), = at_size.items()
        out.append(f"{name}'s standby replayed it {_median(rows, 'standby_replay_s'):.4f} s after its commit and"
                   f" served it in {_median(rows, 'standby_read_s'):.3f} s.")
    else:
        (low, soonest), (high, latest) = _extremes(at_size, "standby_replay_s")
        if high - low < REPLAY_RESOLUTION_S or _too_close(low, high):
            out.append(f"the replay after the commit was {low:.4f} s to {high:.4f} s for every {noun}, too close to"
                       f" tell apart (the wait polls every 1 ms; runs vary by {NOISE_PERCENT} % and more).")
        else:
            out.append(f"the standby had replayed the record soonest after its commit with {soonest} ({low:.4f} s),"
                       f" latest with {latest} ({high:.4f} s).")
        (low, fastest), (high, slowest) = _extremes(at_size, "standby_read_s")
        close = f", within {NOISE_PERCENT} % of each other, which one run cannot tell apart" if _too_close(low, high) \
            else ""
        out.append(f"Reading it back from the standby took {low:.3f} s ({fastest}) to {high:.3f} s ({slowest}){close}.")
    lags = {ramp.name: max(_values(ramp.rows, "standby_lag_start_mb"), default=0.0) for ramp in ramps}
    behind = [f"{name} ({lag:,.1f} MiB)" for name, lag in lags.items() if lag >= BEHIND_MB]
    if behind:
        out.append(f"A standby was still {BEHIND_MB:.0f} MiB or more behind at the start of a level with"
                   f" {', '.join(behind)}: it had not caught up with the level before.")
    else:
        out.append(f"No standby was behind at any level's start by {BEHIND_MB:.0f} MiB or more (at most"
                   f" {max(lags.values(), default=0.0):,.2f} MiB).")
    synchronous = [ramp.name for ramp in ramps if ramp.synchronous]
    if synchronous and len(synchronous) < len(ramps):
        out.append(f"The standby of {', '.join(synchronous)} was synchronous (remote_apply): its commits waited for"
                   " the standby, so its replay after the commit is only what polling adds and the wait is in its"
                   " write_s; compare write_s for what waiting cost.")
    elif synchronous:
        out.append("Every standby was synchronous (remote_apply): the wait for it is inside write_s, and the replay"
                   " after the commit is only what polling adds.")
    repetitions = min(len(rows) for rows in at_size.values())
    if repetitions == 1:
        out.append("These are single measurements at that size: a difference between them can be noise.")
    elif repetitions < 3:
        out.append(f"These are medians of only {repetitions} repetitions at that size: a difference between them can"
                   " be noise.")
    return " ".join(out)


def standby_comparison(ramps: Sequence[StandbyRamp], noun: str, heading: str = f"## {HEADING}") -> list[str]:
    """The section: empty unless a compared ramp measured a standby."""
    if not ramps or not has_standby_measures(ramps):
        return []
    out = [heading, ""]
    epochs = common_standby_size(ramps)
    if epochs is None:
        failures = "; ".join(f"{ramp.name}: {len(measured(ramp.rows))} measured, failed {_failures(ramp.rows)}"
                             for ramp in ramps)
        return [*out, f"No record size was replayed and served by the standby of every {noun}, so their standbys"
                      f" cannot be compared at one size ({failures}).", ""]
    at_size = {ramp.name: [row for row in measured(ramp.rows) if row.epochs == epochs] for ramp in ramps}
    columns = [
        Column(noun, lambda ramp: ramp.name),
        Column("standby", lambda ramp: "synchronous" if ramp.synchronous else "asynchronous"),
        Column("WAL written, MiB", lambda ramp: _shown(_values(at_size[ramp.name], "wal_mb"), 2)),
        Column("write_s", lambda ramp: _shown(_values(at_size[ramp.name], "write_s"), 3)),
        Column("replay after commit, s", lambda ramp: _shown(_values(at_size[ramp.name], "standby_replay_s"), 4)),
        Column("read from standby, s", lambda ramp: _shown(_values(at_size[ramp.name], "standby_read_s"), 3)),
        Column("lag at start, MiB", lambda ramp: _shown(_values(at_size[ramp.name], "standby_lag_start_mb"), 2)),
        Column("standby failures (whole ramp)", lambda ramp: _failures(ramp.rows)),
    ]
    repeated = max(len(rows) for rows in at_size.values()) > 1
    spread = " (the median, and the min–max of the repetitions)" if repeated else ""
    out += [f"At {epochs:,} epochs{spread}; the replay is timed from the write's last commit until the records are"
            " visible on the standby, the read is the standby's own, verified.", "",
            markdown_table(ramps, columns), "", reading(ramps, at_size, epochs, noun), ""]
    return out
