"""Breaking, stability and optimal-efficiency points, and the conclusion written from them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Points:
    breaking: Any | None  # first row whose status is not OK
    stability: Any | None  # largest OK row before the breaking point
    optimal: Any | None  # OK row with the highest efficiency


def efficiency(row: Any) -> float | None:
    return getattr(row, "efficiency", None)


def find_points(rows: Sequence[Any]) -> Points:
    breaking = next((row for row in rows if row.status != "OK"), None)
    before = rows if breaking is None else rows[: list(rows).index(breaking)]
    ok_before = [row for row in before if row.status == "OK"]
    stability = max(ok_before, key=lambda row: row.epochs, default=None)
    ok_rows = [row for row in rows if row.status == "OK" and efficiency(row) is not None]
    optimal = max(ok_rows, key=lambda row: efficiency(row) or 0.0, default=None)
    return Points(breaking, stability, optimal)


def _fmt_epochs(n: int) -> str:
    return f"{n:,}"


def conclusion(rows: Sequence[Any], points: Points, *, interrupted: bool, stop_reason: str | None,
               planned: int, unit: str = "epochs/s") -> list[str]:
    """A few sentences that say what the numbers say."""
    if not rows:
        return ["No iteration finished, so there is nothing to conclude."]
    sentences: list[str] = []
    ok = [row for row in rows if row.status == "OK"]
    sentences.append(
        f"{len(rows)} of {planned} planned iterations ran"
        f" ({_fmt_epochs(rows[0].epochs)} to {_fmt_epochs(rows[-1].epochs)} epochs per record);"
        f" {len(ok)} succeeded."
    )
    if points.breaking is None:
        top = max((row.epochs for row in ok), default=0)
        sentences.append(
            f"No breaking point was reached: every record up to {_fmt_epochs(top)} epochs was written,"
            " read back and verified."
        )
    else:
        b = points.breaking
        sentences.append(
            f"The first failure came at iteration {b.iter} ({_fmt_epochs(b.epochs)} epochs) with status"
            f" {b.status}: {b.error or 'no message'}."
        )
        if points.stability is not None:
            sentences.append(
                f"The largest record that worked before it held {_fmt_epochs(points.stability.epochs)} epochs."
            )
        statuses = Counter(row.status for row in rows if row.status != "OK")
        if len(statuses) > 1 or sum(statuses.values()) > 1:
            listed = ", ".join(f"{count}x {status}" for status, count in statuses.most_common())
            sentences.append(f"Failures overall: {listed}.")
    if points.optimal is not None:
        o = points.optimal
        sentences.append(
            f"Throughput peaked at {efficiency(o):,.0f} {unit} with {_fmt_epochs(o.epochs)} epochs per record."
        )
        if len(ok) >= 2:
            first, last = ok[0], ok[-1]
            e_first, e_last = efficiency(first), efficiency(last)
            if e_first and e_last:
                change = (e_last - e_first) / e_first * 100
                trend = "rose" if change > 0 else "fell"
                sentences.append(
                    f"From the smallest to the largest successful record it {trend} by {abs(change):.0f} %"
                    f" ({e_first:,.0f} to {e_last:,.0f} {unit})."
                )
    sizes = [(row.epochs, row.client_payload_mb, row.db_payload_mb) for row in ok
             if getattr(row, "db_payload_mb", None) and getattr(row, "client_payload_mb", None)]
    if sizes:
        epochs, client_mb, db_mb = sizes[-1]
        sentences.append(
            f"At {_fmt_epochs(epochs)} epochs one record was {client_mb:,.1f} MiB as sent and {db_mb:,.1f} MiB"
            f" stored ({db_mb / client_mb:.2f}x after TOAST), {db_mb * 1048576 / epochs:,.0f} bytes per epoch on disk."
        )
    sentences += concurrency_sentences(rows)
    if stop_reason:
        sentences.append(f"The ramp {stop_reason}.")
    if interrupted:
        sentences.append("The run was interrupted (Ctrl-C) before the ramp finished; later sizes were not measured.")
    return sentences


def concurrency_sentences(rows: Sequence[Any]) -> list[str]:
    """What the async fan-out adds: C records at once, partial failures, client work vs database wait."""
    fanout = [row for row in rows if getattr(row, "concurrency", None)]
    if not fanout:
        return []
    c = fanout[0].concurrency
    sentences = [f"Each level wrote {c} records of the same size at once over {c} connections, then read them all"
                 " back at once."]
    ok = [row for row in fanout if row.status == "OK" and row.write_s and row.read_s]
    if ok:
        top = max(ok, key=lambda row: row.epochs)
        latency = (f"; one record took {top.write_p50_ms:,.0f} ms to write at the median and {top.write_max_ms:,.0f} ms"
                   " at the slowest" if top.write_p50_ms is not None and top.write_max_ms is not None else "")
        sentences.append(
            f"At the largest successful level ({_fmt_epochs(top.epochs)} epochs) the batch of {c} was written in"
            f" {top.write_s:,.3f} s ({top.write_rps:,.1f} records/s) and read in {top.read_s:,.3f} s"
            f" ({top.read_rps:,.1f} records/s){latency}."
        )
        wall = sum(row.write_s for row in ok)
        busy = sum(row.write_encode_busy_s or 0.0 for row in ok)
        db_only = sum(row.write_db_only_s or 0.0 for row in ok)
        cpu = sum(row.write_cpu_s or 0.0 for row in ok)
        side = ("client-side generation and encoding" if busy >= db_only else "the database")
        sentences.append(
            f"Over the successful levels some record was being generated or encoded during {busy / wall * 100:.0f} %"
            f" of the write time and the client only waited for the database during {db_only / wall * 100:.0f} %,"
            f" with {cpu / wall:.2f} CPU cores of this process busy on average: the write batches were bound by"
            f" {side}."
        )
    partial = [row for row in fanout if row.status != "OK" and row.writes_ok + row.reads_ok > 0]
    if partial:
        listed = "; ".join(
            f"iteration {row.iter}: {row.writes_ok}/{row.writes_total} writes and {row.reads_ok}/{row.reads_total}"
            f" reads succeeded ({row.failures or row.status})" for row in partial
        )
        sentences.append(f"{len(partial)} level(s) failed only in part, the failed records not stopping their"
                         f" siblings: {listed}.")
    return sentences
