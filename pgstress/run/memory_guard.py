"""Client memory: what the machine has, and what a level will need, extrapolated from the levels run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pgstress.run.measure import MIB, proc_kib

DEFAULT_MEMORY_SHARE = 0.8  # of the RAM available when the run starts


def available_ram_mb() -> float | None:
    found = proc_kib(Path("/proc/meminfo"), "MemAvailable")
    if found is not None:
        return found / 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / MIB
    except (ValueError, OSError, AttributeError):
        return None


def address_space_left_mb() -> float | None:
    """What `ulimit -v` (RLIMIT_AS) still lets this process map, or None when no such limit is set."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    mapped_kib = proc_kib(Path("/proc/self/status"), "VmSize")
    if soft == resource.RLIM_INFINITY or mapped_kib is None:
        return None
    return max(0.0, soft / MIB - mapped_kib / 1024)


def default_memory_limit_mb() -> float | None:
    """A share of the RAM available now, or of the address space `ulimit -v` leaves, whichever is less.

    Under `ulimit -v` a level that passes the limit does not only fail: asyncpg can lose a result it
    could not allocate and wait for it forever, so such a level must be refused before it runs.
    """
    room = [found for found in (available_ram_mb(), address_space_left_mb()) if found is not None]
    return min(room) * DEFAULT_MEMORY_SHARE if room else None


@dataclass
class MemoryGuard:
    """Refuses a level whose client memory, extrapolated from the levels already run, passes the limit.

    The unit is one record-epoch (C records x N epochs). The cost per unit is taken from the
    largest level measured so far (small levels are dominated by fixed costs and would
    over-estimate less reliably than they under-estimate): the highest of its resident growth
    above the ramp's start, its tracemalloc peaks, the encoded bytes it held, and how far this run's
    own server's processes grew above the ramp's start (`server_mb`: a PostgreSQL on the same machine
    holds copies of the values too; run/server_memory.py). Never the machine's available memory, which
    other processes on a shared machine move for reasons of their own.
    """

    limit_mb: float | None
    from_machine: bool = False  # the limit is default_memory_limit_mb(), not --max-client-memory-mb
    per_unit_mb: float | None = None
    server_led: bool = False  # the server's growth, not the client's own measures, set the cost per unit
    _largest_units: int = 0

    def observe(self, units: int, *measured_mb: float | None, server_mb: float | None = None) -> None:
        known = [value for value in (*measured_mb, server_mb) if value is not None and value > 0]
        if not known or units < self._largest_units:
            return
        self._largest_units = units
        self.per_unit_mb = max(known) / units
        self.server_led = server_mb is not None and server_mb >= max(known)

    def estimate_mb(self, units: int) -> float | None:
        return None if self.per_unit_mb is None else self.per_unit_mb * units

    def limit_text(self) -> str:
        if not self.from_machine:
            return f"--max-client-memory-mb {self.limit_mb:,.0f}"
        return (f"the client memory limit of {self.limit_mb:,.0f} MiB"
                f" ({DEFAULT_MEMORY_SHARE:.0%} of the RAM available, or of the address space ulimit -v leaves)")

    def refusal(self, units: int) -> str | None:
        """Why a level of `units` record-epochs must not run, or None."""
        estimate = self.estimate_mb(units)
        if self.limit_mb is None or estimate is None or estimate <= self.limit_mb:
            return None
        what = ("memory of this client and its server on this machine (from how far the server's own processes"
                " grew)" if self.server_led else "client memory")
        return (
            f"estimated {what} {estimate:,.1f} MiB for this level exceeds {self.limit_text()};"
            " level not run, ramp stopped"
        )
