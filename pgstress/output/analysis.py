"""Breaking, stability and optimal-efficiency points, and the conclusion written from the numbers."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pgstress.rows import OK, AsyncRow, Row


@dataclass(frozen=True)
class Points:
    breaking: Row | None  # first row whose status is not OK
    stability: Row | None  # largest OK row before the breaking point
    optimal: Row | None  # OK row with the highest efficiency


def find_points(rows: Sequence[Row]) -> Points:
    breaking = next((row for row in rows if row.status != OK), None)
    before = rows if breaking is None else rows[: list(rows).index(breaking)]
    stability = max((row for row in before if row.status == OK), key=lambda row: row.epochs, default=None)
    measured = [row for row in rows if row.status == OK and row.efficiency is not None]
    optimal = max(measured, key=lambda row: row.efficiency or 0.0, default=None)
    return Points(breaking, stability, optimal)


@dataclass(frozen=True)
class Throughput:
    """What the efficiency figure is, in words: the conclusion names it for what it measures."""

    name: str  # e.g. "write + read throughput of one record"
    column: str  # the row column holding it
    unit: str = "epochs/s"


def _epochs(n: int) -> str:
    return f"{n:,}"


def size_range(rows: Sequence[Row]) -> str:
    first, last = rows[0].epochs, rows[-1].epochs
    return f"{_epochs(first)} epochs per record" if first == last else f"{_epochs(first)} to {_epochs(last)} epochs"


@dataclass(frozen=True)
class LineFit:
    """Least squares y = intercept + slope * x, and the scatter of the points around it."""

    intercept: float
    slope: float
    rms_residual: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def fit_line(points: Sequence[tuple[float, float]], min_points: int = 3) -> LineFit | None:
    """None with fewer than `min_points` points or a single x: no line worth drawing conclusions from."""
    if len(points) < min_points or len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    intercept = mean_y - slope * mean_x
    rms = math.sqrt(sum((y - intercept - slope * x) ** 2 for x, y in points) / len(points))
    return LineFit(intercept, slope, rms)


def efficiency_points(rows: Sequence[Row]) -> list[tuple[float, float]]:
    """(epochs, efficiency) of every successful row that has one."""
    points = []
    for row in rows:
        value = row.efficiency
        if row.status == OK and value:
            points.append((float(row.epochs), value))
    return points


def trend_sentence(rows: Sequence[Row], throughput: Throughput) -> str | None:
    """How the efficiency figure moves with record size, from a straight-line fit over every successful size.

    A change across the ramp no larger than twice the scatter around the fit is not called a trend.
    """
    points = efficiency_points(rows)
    fit = fit_line(points)
    if fit is None:
        return None
    low, high = min(x for x, _ in points), max(x for x, _ in points)
    start, end = fit.at(low), fit.at(high)
    mean = sum(y for _, y in points) / len(points)
    scatter = f"the measured values scatter ±{fit.rms_residual / mean * 100:.0f} % (RMS) around the fit"
    span = f"from {low:,.0f} to {high:,.0f} epochs"
    if abs(end - start) <= 2 * fit.rms_residual or start <= 0:
        return (f"A straight-line fit over all {len(points)} successful sizes shows no clear trend in it {span}:"
                f" the change along the fit ({end - start:+,.0f} {throughput.unit}) is within the scatter, {scatter}.")
    direction = "rises" if end > start else "falls"
    return (f"On a straight-line fit over all {len(points)} successful sizes it {direction} by"
            f" {abs(end - start) / start * 100:.0f} % {span} ({start:,.0f} to {end:,.0f} {throughput.unit} on the"
            f" fit; {scatter}).")


def conclusion(rows: Sequence[Row], points: Points, *, interrupted: bool, stop_reason: str | None,
               planned: int, throughput: Throughput) -> list[str]:
    """A few sentences that say what the numbers say."""
    if not rows:
        return ["No iteration finished, so there is nothing to conclude."]
    sentences: list[str] = []
    ok = [row for row in rows if row.status == OK]
    sentences.append(f"{len(rows)} of {planned} planned iterations ran ({size_range(rows)}); {len(ok)} succeeded.")
    if points.breaking is None:
        top = max((row.epochs for row in ok), default=0)
        sentences.append(
            f"No breaking point was reached: every record up to {_epochs(top)} epochs was written,"
            " read back and verified."
        )
    else:
        b = points.breaking
        sentences.append(
            f"The first failure came at iteration {b.iter} ({_epochs(b.epochs)} epochs) with status"
            f" {b.status}: {b.error or 'no message'}."
        )
        if points.stability is not None:
            sentences.append(
                f"The largest record that worked before it held {_epochs(points.stability.epochs)} epochs."
            )
        statuses = Counter(row.status for row in rows if row.status != OK)
        if len(statuses) > 1 or sum(statuses.values()) > 1:
            listed = ", ".join(f"{count}x {status}" for status, count in statuses.most_common())
            sentences.append(f"Failures overall: {listed}.")
    if points.optimal is not None and points.optimal.efficiency is not None:
        o = points.optimal
        sentences.append(
            f"The {throughput.name} ({throughput.column}) was highest, {o.efficiency:,.0f} {throughput.unit}, with"
            f" {_epochs(o.epochs)} epochs per record."
        )
        trend = trend_sentence(rows, throughput)
        if trend:
            sentences.append(trend)
    sizes = [(row.epochs, client, stored) for row in ok
             if (client := getattr(row, "client_payload_mb", None)) and (stored := getattr(row, "db_payload_mb", None))]
    if sizes:
        epochs, client_mb, db_mb = sizes[-1]
        sentences.append(
            f"At {_epochs(epochs)} epochs one record was {client_mb:,.1f} MiB as sent and {db_mb:,.1f} MiB"
            f" stored ({db_mb / client_mb:.2f}x after TOAST), {db_mb * 1048576 / epochs:,.0f} bytes per epoch on disk."
        )
    sentences += concurrency_sentences(rows)
    if stop_reason:
        sentences.append(f"The ramp {stop_reason}.")
    if interrupted:
        sentences.append("The run was interrupted (Ctrl-C) before the ramp finished; later sizes were not measured.")
    return sentences


def concurrency_sentences(rows: Sequence[Row]) -> list[str]:
    """What the async fan-out adds: C records at once, partial failures, client work vs database wait."""
    fanout = [row for row in rows if isinstance(row, AsyncRow)]
    if not fanout:
        return []
    c = fanout[0].concurrency
    sentences = [f"Each level wrote {c} records of the same size at once over {c} connections, then read them all"
                 " back at once."]
    ok = [row for row in fanout if row.status == OK and row.write_s and row.read_s]
    if ok:
        top = max(ok, key=lambda row: row.epochs)
        latency = (f"; one record took {top.write_p50_ms:,.0f} ms to write at the median and {top.write_max_ms:,.0f} ms"
                   " at the slowest" if top.write_p50_ms is not None and top.write_max_ms is not None else "")
        sentences.append(
            f"At the largest successful level ({_epochs(top.epochs)} epochs) the batch of {c} was written in"
            f" {top.write_s:,.3f} s ({top.write_rps or 0:,.1f} records/s) and read in {top.read_s:,.3f} s"
            f" ({top.read_rps or 0:,.1f} records/s){latency}."
        )
        wall = sum(row.write_s or 0.0 for row in ok)
        busy = sum(row.write_encode_busy_s or 0.0 for row in ok)
        db_only = sum(row.write_db_only_s or 0.0 for row in ok)
        cpu = sum(row.write_cpu_s or 0.0 for row in ok)
        side = "client-side generation and encoding" if busy >= db_only else "the database"
        sentences.append(
            f"Over the successful levels some record was being generated or encoded during {busy / wall * 100:.0f} %"
            f" of the write time and the client only waited for the database during {db_only / wall * 100:.0f} %,"
            f" with {cpu / wall:.2f} CPU cores of this process busy on average: the write batches were bound by"
            f" {side}."
        )
    partial = [row for row in fanout if row.status != OK and row.writes_ok + row.reads_ok > 0]
    if partial:
        listed = "; ".join(
            f"iteration {row.iter}: {row.writes_ok}/{row.writes_total} writes and {row.reads_ok}/{row.reads_total}"
            f" reads succeeded ({row.failures or row.status})" for row in partial
        )
        sentences.append(f"{len(partial)} level(s) failed only in part, the failed records not stopping their"
                         f" siblings: {listed}.")
    return sentences
