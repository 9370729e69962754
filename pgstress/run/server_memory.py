"""This run's own server's memory while a level runs: how far its processes' private memory rose above the
ramp's start.

With the embedded server (or a local one) each of C concurrent INSERTs or SELECTs of a huge value holds
about two copies of it in its backend, which the client's own measures do not see; the memory guard
extrapolates from this growth too. Only the server's own processes are counted, never the machine's
available memory: on a shared machine other processes move that for reasons of their own, and a
guard reading it once stopped a ramp at an estimate of 2,443 MiB for a level that then used 137 MiB.

Which processes: the embedded server's postmaster (the pid in <pgdata>/postmaster.pid) and all its
children; for a server given by a DSN, this run's own backends (pg_backend_pid() of each of its
connections) when such a pid is a postgres process on this machine. Otherwise nothing of the server
is visible, and nothing is counted. A process's memory is its private resident memory (RssAnon):
what its backend allocated, not the shared buffers every process maps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from pgstress.run.measure import proc_kib

SAMPLE_EVERY_S = 0.1  # memory held by a batch of huge values lasts seconds; one process's status costs ~20 us
_PROC = Path("/proc")


def _is_postgres(pid: int) -> bool:
    try:
        return (_PROC / str(pid) / "comm").read_text().strip() in ("postgres", "postmaster")
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """The pids of a process's children (Linux: /proc/PID/task/TID/children of each of its threads)."""
    found: list[int] = []
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def private_mb(pids: Iterable[int]) -> float | None:
    """The summed private resident memory (RssAnon) of the processes still there, or None when none is."""
    found = [proc_kib(_PROC / str(pid) / "status", "RssAnon") for pid in pids]
    known = [kib for kib in found if kib is not None]
    return sum(known) / 1024 if known else None


class ServerProcesses:
    """The local processes of this run's server, found again at each sample (backends come and go)."""

    def pids(self) -> list[int]:
        raise NotImplementedError

    def described(self) -> str:
        """What the memory guard counted, for the report."""
        raise NotImplementedError


class EmbeddedServer(ServerProcesses):
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata

    def postmaster(self) -> int | None:
        try:
            first = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (OSError, ValueError):
            return None
        return pid if _is_postgres(pid) else None

    def pids(self) -> list[int]:
        postmaster = self.postmaster()
        return [] if postmaster is None else [postmaster, *_children(postmaster)]

    def described(self) -> str:
        return "the embedded server's processes (its postmaster and all its children)"


class OwnBackends(ServerProcesses):
    """This run's backends (pg_backend_pid() of its connections), told at each level, that run on this machine."""

    def __init__(self) -> None:
        self.backends: list[int] = []
        self.seen = False  # some backend of this run was a local postgres process

    def tell(self, backends: Iterable[int]) -> None:
        self.backends = [pid for pid in backends if _is_postgres(pid)]
        self.seen = self.seen or bool(self.backends)

    def pids(self) -> list[int]:
        return list(self.backends)

    def described(self) -> str:
        if self.seen:
            return "this run's own server backends, found on this machine by their pg_backend_pid()"
        return ("nothing of the server: its processes were not visible on this machine (a remote server, or"
                " another pid namespace), so only the client's own figures")


class ServerMemoryWatch:
    """Samples the server's processes' private memory in a thread while the `with` block runs.

    `growth_mb` is how far it rose above `baseline_mb` (taken when the ramp began) at its highest, or None
    when it cannot be read, or when no thread could be started (e.g. under a tight `ulimit -v`).
    """

    def __init__(self, processes: ServerProcesses | None, baseline_mb: float | None) -> None:
        self.processes = processes
        self.baseline_mb = baseline_mb
        self.highest_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def growth_mb(self) -> float | None:
        if self.baseline_mb is None or self.highest_mb is None:
            return None
        return max(0.0, self.highest_mb - self.baseline_mb)

    def _sample(self) -> None:
        assert self.processes is not None
        found = private_mb(self.processes.pids())
        if found is not None and (self.highest_mb is None or found > self.highest_mb):
            self.highest_mb = found

    def _run(self) -> None:
        try:
            while not self._stop.wait(SAMPLE_EVERY_S):
                self._sample()
        except Exception:  # noqa: BLE001 - a failed sample (even a MemoryError) costs the measure, not the level
            return

    def __enter__(self) -> ServerMemoryWatch:
        if self.processes is None or self.baseline_mb is None:
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
