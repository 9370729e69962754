"""Breaking, stability and optimal-efficiency points, and the conclusion written from the numbers."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pgstress.output.repetitions import SizeRepetitions, group_sizes, size_rows
from pgstress.output.words import count
from pgstress.rows import OK, AsyncRow, Row

NEAR_OPTIMAL = 0.10  # a single sample's optimal point names the sizes whose efficiency is within this of it


@dataclass(frozen=True)
class Points:
    """The three points, chosen on sizes: a size measured several times (--repeat) is the row of its medians
    (output/repetitions.py), and it is a breaking point when any of its repetitions failed."""

    breaking: Row | None  # first size whose status is not OK
    stability: Row | None  # largest OK size before the breaking point
    optimal: Row | None  # OK size with the highest efficiency (median over its repetitions)
    breaking_failed: int = 0  # how many repetitions failed at the breaking size ...
    breaking_repetitions: int = 1  # ... of how many ran there
    repetitions: int = 1  # the most repetitions any size had (1: every figure is a single sample)


def find_points(rows: Sequence[Row]) -> Points:
    sizes = group_sizes(rows)
    rows = [size.summary_row() for size in sizes]
    breaking = next((row for row in rows if row.status != OK), None)
    before = rows if breaking is None else rows[: rows.index(breaking)]
    stability = max((row for row in before if row.status == OK), key=lambda row: row.epochs, default=None)
    measured = [row for row in rows if row.status == OK and row.efficiency is not None]
    optimal = max(measured, key=lambda row: row.efficiency or 0.0, default=None)
    at_break = next((size for size in sizes if size.iter == breaking.iter), None) if breaking else None
    return Points(breaking, stability, optimal,
                  breaking_failed=len(at_break.failed) if at_break else 0,
                  breaking_repetitions=len(at_break.rows) if at_break else 1,
                  repetitions=max((len(size.rows) for size in sizes), default=1))


def indistinguishable_from_optimal(rows: Sequence[Row], points: Points) -> list[tuple[Row, str]]:
    """The other successful sizes the optimal point cannot be told apart from, each with why: with single
    samples, an efficiency within NEAR_OPTIMAL of the optimal's; with repetitions, a min–max range of the
    efficiency that overlaps the optimal's."""
    optimal = points.optimal
    if optimal is None or optimal.efficiency is None:
        return []
    sizes = {size.iter: size for size in group_sizes(rows)}
    best = sizes[optimal.iter]
    found = []
    for size in sizes.values():
        row = size.summary_row()
        if size is best or row.status != OK or row.efficiency is None:
            continue
        if points.repetitions > 1:
            if _overlap(size, best, optimal.EFFICIENCY):
                found.append((row, "ranges overlap"))
        elif row.efficiency >= optimal.efficiency * (1 - NEAR_OPTIMAL):
            found.append((row, f"{(1 - row.efficiency / optimal.efficiency) * 100:.0f} % lower"))
    return found


def _overlap(a: SizeRepetitions, b: SizeRepetitions, name: str) -> bool:
    band_a, band_b = a.band(name), b.band(name)
    return band_a is not None and band_b is not None and band_a[0] <= band_b[1] and band_b[0] <= band_a[1]


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
    """How the efficiency figure moves with record size, from a straight-line fit over every successful size
    (every successful repetition of it, with --repeat, so that their noise is in the scatter).

    A change across the ramp no larger than twice the scatter around the fit is not called a trend.
    """
    points = efficiency_points(rows)
    fit = fit_line(points)
    if fit is None:
        return None
    sizes = len({x for x, _ in points})
    over = f"all {sizes} successful sizes" + (f" ({len(points)} repetitions)" if len(points) > sizes else "")
    low, high = min(x for x, _ in points), max(x for x, _ in points)
    start, end = fit.at(low), fit.at(high)
    mean = sum(y for _, y in points) / len(points)
    scatter = f"the measured values scatter ±{fit.rms_residual / mean * 100:.0f} % (RMS) around the fit"
    span = f"from {low:,.0f} to {high:,.0f} epochs"
    if abs(end - start) <= 2 * fit.rms_residual or start <= 0:
        return (f"A straight-line fit over {over} shows no clear trend in it {span}:"
                f" the change along the fit ({end - start:+,.0f} {throughput.unit}) is within the scatter, {scatter}.")
    direction = "rises" if end > start else "falls"
    return (f"On a straight-line fit over {over} it {direction} by"
            f" {abs(end - start) / start * 100:.0f} % {span} ({start:,.0f} to {end:,.0f} {throughput.unit} on the"
            f" fit; {scatter}).")


def conclusion(rows: Sequence[Row], points: Points, *, interrupted: bool, stop_reason: str | None,
               planned: int, throughput: Throughput) -> list[str]:
    """A few sentences that say what the numbers say."""
    if not rows:
        return ["No iteration finished, so there is nothing to conclude."]
    sentences: list[str] = []
    every_row, rows = rows, size_rows(rows)
    ok = [row for row in rows if row.status == OK]
    failed_sizes = {row.iter for row in rows if row.status != OK}
    sentences.append(f"{len(rows)} of {count(planned, 'planned iteration')} ran ({size_range(rows)});"
                     f" {len(ok)} succeeded.")
    if points.repetitions > 1:
        sentences.append(f"Each size was measured up to {points.repetitions} times ({len(every_row)} repetitions in"
                         " all); every figure below is the median of a size's successful repetitions, and a size"
                         " succeeded only when all of its repetitions did.")
    if points.breaking is None:
        top = max((row.epochs for row in ok), default=0)
        sentences.append(
            f"No breaking point was reached: every record up to {_epochs(top)} epochs was written,"
            " read back and verified."
        )
    else:
        b = points.breaking
        if points.breaking_repetitions > 1:
            sentences.append(
                f"The first failure came at iteration {b.iter} ({_epochs(b.epochs)} epochs), where"
                f" {points.breaking_failed} of its {points.breaking_repetitions} repetitions failed, status"
                f" {b.status}: {b.error or 'no message'}."
            )
        else:
            sentences.append(
                f"The first failure came at iteration {b.iter} ({_epochs(b.epochs)} epochs) with status"
                f" {b.status}: {b.error or 'no message'}."
            )
        if points.stability is not None:
            sentences.append(
                f"The largest record that worked before it held {_epochs(points.stability.epochs)} epochs."
            )
        statuses = Counter(row.status for row in every_row if row.status != OK)
        if len(statuses) > 1 or sum(statuses.values()) > 1:
            listed = ", ".join(f"{count}x {status}" for status, count in statuses.most_common())
            whole = f" (of {count(len(every_row), 'repetition')})" if points.repetitions > 1 else ""
            sentences.append(f"Failures overall: {listed}{whole}.")
    if points.optimal is not None and points.optimal.efficiency is not None:
        o = points.optimal
        median = " (median)" if points.repetitions > 1 else ""
        sentences.append(
            f"The {throughput.name} ({throughput.column}) was highest, {o.efficiency:,.0f} {throughput.unit}{median},"
            f" with {_epochs(o.epochs)} epochs per record."
        )
        sentences += optimal_caveat(every_row, points, throughput)
        trend = trend_sentence([row for row in every_row if row.iter not in failed_sizes], throughput)
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


def optimal_caveat(rows: Sequence[Row], points: Points, throughput: Throughput) -> list[str]:
    """How far the optimal point can be trusted: which other sizes it cannot be told apart from (sentences)."""
    near = indistinguishable_from_optimal(rows, points)
    listed = "; ".join(f"{_epochs(row.epochs)} epochs ({row.efficiency or 0:,.0f} {throughput.unit}, {why})"
                       for row, why in near)
    if points.repetitions > 1:
        if not near:
            return ["No other size's range of repetitions overlaps the optimal size's, so it stands out from the"
                    " noise."]
        return [f"The optimal point does not stand out from the noise: the repetitions' min–max range of"
                f" {count(len(near), 'other size')} overlaps its own: {listed}."]
    single = ("This is a single sample per size, and on a shared machine one sample can be 20-30 % off; run with"
              " --repeat 3 or more to choose on medians.")
    if not near:
        return [single, f"No other size came within {NEAR_OPTIMAL * 100:.0f} % of the optimal point."]
    return [single, f"Within {NEAR_OPTIMAL * 100:.0f} % of the optimal point, so not told apart from it: {listed}."]


def concurrency_sentences(rows: Sequence[Row]) -> list[str]:
    """What the async fan-out adds: C records at once, partial failures, client work vs database wait."""
    fanout = [row for row in rows if isinstance(row, AsyncRow)]
    if not fanout:
        return []
    c = fanout[0].concurrency
    sentences = [f"Each level wrote {count(c, 'record')} of the same size at once over {count(c, 'connection')}, then"
                 " read them all back at once."]
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
