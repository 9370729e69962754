"""Time accounting over a concurrent batch: overlapping spans merged, and latency percentiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Span = tuple[float, float]


def _merged(spans: Sequence[Span]) -> list[Span]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def busy_s(spans: Sequence[Span]) -> float:
    """Wall time during which at least one of the spans was running."""
    return sum(end - start for start, end in _merged(spans))


def only_s(spans: Sequence[Span], excluding: Sequence[Span]) -> float:
    """Wall time covered by `spans` while none of `excluding` was running."""
    inside, outside = _merged(spans), _merged(excluding)
    overlap, j = 0.0, 0
    for start, end in inside:
        while j < len(outside) and outside[j][1] <= start:
            j += 1
        k = j
        while k < len(outside) and outside[k][0] < end:
            overlap += min(end, outside[k][1]) - max(start, outside[k][0])
            k += 1
    return busy_s(inside) - overlap


def latency_percentiles_ms(latencies_s: Sequence[float]) -> tuple[float, float, float, float] | None:
    """p50, p95, p99 (linear interpolation) and max, in milliseconds."""
    if not latencies_s:
        return None
    values = np.asarray(latencies_s) * 1000.0
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return float(p50), float(p95), float(p99), float(values.max())
