"""The machine's memory while a level runs: how far its available memory fell below where the ramp began.

The client's own measures (resident growth, tracemalloc peaks) do not see a PostgreSQL on the same
machine, and with the embedded server (or a local one) each of C concurrent INSERTs or SELECTs of a
huge value holds about two copies of it in its backend. The memory guard extrapolates from this drop
too, so it stops a ramp before client and server together exhaust the machine. It also counts other
processes' growth during the level, which only makes the guard more cautious.
"""

from __future__ import annotations

import threading
from types import TracebackType

from pgstress.run.memory_guard import available_ram_mb

SAMPLE_EVERY_S = 0.1  # memory held by a batch of huge values lasts seconds; reading /proc/meminfo costs ~50 us


class MachineMemoryWatch:
    """Samples the machine's available memory in a thread while the `with` block runs.

    `drop_mb` is how far it fell below `baseline_mb` (taken when the ramp began) at its lowest, or None
    when it cannot be read, or when no thread could be started (e.g. under a tight `ulimit -v`).
    """

    def __init__(self, baseline_mb: float | None) -> None:
        self.baseline_mb = baseline_mb
        self.lowest_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def drop_mb(self) -> float | None:
        if self.baseline_mb is None or self.lowest_mb is None:
            return None
        return max(0.0, self.baseline_mb - self.lowest_mb)

    def _sample(self) -> None:
        found = available_ram_mb()
        if found is not None and (self.lowest_mb is None or found < self.lowest_mb):
            self.lowest_mb = found

    def _run(self) -> None:
        try:
            while not self._stop.wait(SAMPLE_EVERY_S):
                self._sample()
        except Exception:  # noqa: BLE001 - a failed sample (even a MemoryError) costs the measure, not the level
            return

    def __enter__(self) -> MachineMemoryWatch:
        if self.baseline_mb is None:
            return self
        self._sample()
        thread = threading.Thread(target=self._run, name="pgstress-memwatch", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had (address space, thread limit): the level runs unwatched
            return self
        self._thread = thread
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._sample()
