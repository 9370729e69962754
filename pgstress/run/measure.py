"""Measuring one phase: wall time, per-stage time, resident-memory peak, tracemalloc peak.

Timed phases run with tracemalloc off (it slows allocation 2.5-6x); the tracemalloc peak of the
same client-side work is taken in a separate, untimed pass (`traced_peak_mb`).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import resource
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pgstress.run.level_events import SILENT, TRACE_END, TRACE_START, LevelEvents

MIB = 1024 * 1024
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def mib(n_bytes: float) -> float:
    return n_bytes / MIB


class StageClock:
    """Accumulates wall time per named stage (gen, encode, insert, select, decode, verify), announcing each
    stage as it begins."""

    def __init__(self, events: LevelEvents = SILENT) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.events = events

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.events.stage_entered(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def get(self, name: str) -> float:
        return self.seconds.get(name, 0.0)


def _ru_maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def proc_kib(path: Path, key: str) -> int | None:
    """The `key:  N kB` line of a /proc file, in KiB (None off Linux)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _vm_hwm_bytes() -> int | None:
    found = proc_kib(_STATUS, "VmHWM")
    return None if found is None else found * 1024


def current_rss_mb() -> float:
    """The resident set now (elsewhere than Linux: the process's peak, the nearest figure there is)."""
    found = proc_kib(_STATUS, "VmRSS")
    return found / 1024 if found is not None else mib(_ru_maxrss_bytes())


def _reset_vm_hwm() -> bool:
    """Reset the kernel's resident high-water mark to the current RSS (Linux only)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass
class PhaseMeasure:
    wall_s: float = 0.0
    rss_peak_mb: float | None = None
    rss_start_mb: float | None = None  # resident size when the phase began (with rss_peak_mb)
    rss_delta_mb: float = 0.0
    clock: StageClock = field(default_factory=StageClock)


class PhaseMeter:
    """Measures phases one after another in this process.

    `rss_delta_mb` keeps the seed's meaning: how far the phase raised the process's resident
    high-water mark (0 when it set no new high). Because resetting VmHWM for the true per-phase
    peak also lowers ru_maxrss, the process high is tracked here instead of read from the kernel.
    """

    def __init__(self) -> None:
        self._vm_hwm_works = _reset_vm_hwm() and _vm_hwm_bytes() is not None
        self._process_high = max(_ru_maxrss_bytes(), _vm_hwm_bytes() or 0)

    @contextmanager
    def phase(self) -> Iterator[PhaseMeasure]:
        measure = PhaseMeasure()
        if self._vm_hwm_works:
            _reset_vm_hwm()
            start = _vm_hwm_bytes()  # just reset: the current resident size
            measure.rss_start_mb = mib(start) if start is not None else None
        else:
            self._process_high = max(self._process_high, _ru_maxrss_bytes())
        started = time.perf_counter()
        try:
            yield measure
        finally:
            measure.wall_s = time.perf_counter() - started
            peak = _vm_hwm_bytes() if self._vm_hwm_works else _ru_maxrss_bytes()
            if peak is not None:
                if self._vm_hwm_works:
                    measure.rss_peak_mb = mib(peak)
                measure.rss_delta_mb = mib(max(0, peak - self._process_high))
                self._process_high = max(self._process_high, peak)


def traced_peak_mb(work: Callable[[], object], events: LevelEvents = SILENT) -> float:
    """tracemalloc's peak (MiB above the start) while `work` runs; nothing is timed here."""
    events.stage_entered(TRACE_START)
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        work()
        _, peak = tracemalloc.get_traced_memory()
        return mib(max(0, peak - baseline))
    finally:
        if not already:
            tracemalloc.stop()
        events.stage_entered(TRACE_END)


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc's malloc_trim), so a measurement
    that follows other work in this process does not start from what that work left mapped."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim this way
        ctypes.CDLL("libc.so.6").malloc_trim(0)
