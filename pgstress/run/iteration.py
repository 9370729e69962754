"""The one iteration both modes follow.

In order: the memory guard's verdict, connections revived, the table truncated (unless
`--keep-data-between-iterations`), the server's counters read, the write phase timed, the
counters and the table's sizes read again, its client work traced again untimed (when the trace
budget allows: run/trace_budget.py), the read phase timed (of the records written), the counters read
again, traced again, the stored sizes, then the access phases asked with --access (run/access.py: a
window, one metric, an append, each timed on its own). The server-side reads run between the timed phases, never
inside them; each phase is announced as it starts, for live progress. Any failure becomes the
level's status. A mode supplies only what differs: its driver's calls, and how many
records a level holds (one in sync mode, C in async mode). Its `to_row` turns the result into
the mode's row.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pgstress.config import CHUNKED_LAYOUT, RunConfig, zstd_level_of
from pgstress.db.server_measures import Counters, ServerCost, ServerMeasures, add_read_cost, write_cost
from pgstress.rows import CONNECTION_LOST, Row, Status
from pgstress.run.access import AccessResult
from pgstress.run.faults import ClientMemoryGuard, Fault, classify
from pgstress.run.level_events import ACCESS, READ, SILENT, WRITE, LevelEvents, PhaseStart
from pgstress.run.measure import PhaseMeasure, PhaseMeter, current_rss_mb, mib, traced_peak_mb
from pgstress.run.memory_guard import MemoryGuard
from pgstress.run.ramp import StopRamp
from pgstress.run.record import RecordWork, Stream
from pgstress.run.server_memory import OwnBackends, ServerMemoryWatch, ServerProcesses, private_mb
from pgstress.run.standby_measure import StandbyMeasure, StandbyProbe, fill_standbys
from pgstress.run.trace_budget import TraceBudget

T = TypeVar("T")


class Driver(Protocol):
    """A mode's driver calls. Each record's own failure is kept in its RecordWork; what they raise
    fails the whole level."""

    def streams(self, iteration: int) -> list[Stream]:
        """The generator stream of each record of this level."""
        ...

    def revive(self) -> None:
        """Replace connections the server closed since their last use, outside every timed phase."""
        ...

    def write(self, epochs: int, streams: list[Stream]) -> list[RecordWork]:
        """Generate, encode and store one record per stream; the timed write phase."""
        ...

    def encode_only(self, epochs: int, streams: list[Stream]) -> None:
        """The write phase's client work without the database, for the traced pass."""
        ...

    def read(self, written: list[RecordWork]) -> list[RecordWork]:
        """Select, decode and verify every record written; the timed read phase."""
        ...

    def recover(self, lost: bool) -> None:
        """After a failure of the whole level: drop what cannot be used again."""
        ...

    def server_pids(self) -> list[int]:
        """pg_backend_pid() of each of its connections: its own server processes, for the memory guard."""
        ...

    def flush_stats(self) -> None:
        """Have the server publish the data connections' pending statistics now (server_measures.FLUSH_STATS)."""
        ...


class Control(Protocol):
    """What the iteration does between the timed phases over the run's control connection (db/control.py)."""

    def revive(self) -> None:
        """Replace a connection the server closed, before the timed phases."""
        ...

    def recover(self, lost: bool) -> None:
        """After a failure of the whole level: drop the connection if it is gone."""
        ...

    def truncate(self) -> None:
        """Empty the ramp's table (its own rows only)."""
        ...

    def stored_sizes(self, record_ids: list[int]) -> dict[int, tuple[int, int]]:
        """record id -> (stored payload bytes, stored row bytes)."""
        ...

    def total_size(self) -> int:
        """The table's total size in bytes."""
        ...

    def backend_pid(self) -> int:
        """pg_backend_pid() of the control connection: one of the run's own server processes."""
        ...


@dataclass
class Phase:
    """The write or the read phase of one level: each record's work and the phase's measures."""

    records: list[RecordWork]
    measure: PhaseMeasure
    cpu_s: float  # this process's CPU seconds (all threads) during the phase
    traced_peak_mb: float | None = None  # tracemalloc peak of the untimed repeat of its client work

    @property
    def ok(self) -> list[RecordWork]:
        return [record for record in self.records if record.ok]

    def stage_s(self, name: str) -> float:
        return sum(record.clock.get(name) for record in self.records)


@dataclass(frozen=True)
class LevelFailure:
    fault: Fault  # the first fault of the most frequent class (or the level's own)
    counts: Counter[Status]  # records failed per class; empty when the level failed as a whole


@dataclass
class LevelResult:
    """Everything one iteration measured, for the mode's `to_row`."""

    iteration: int
    epochs: int
    streams: list[Stream]
    rep: int = 1
    write: Phase | None = None
    read: Phase | None = None
    stored: dict[int, tuple[int, int]] = field(default_factory=dict)  # record id -> (payload, row) bytes stored
    table_bytes: int | None = None
    fault: Fault | None = None  # a failure of the level as a whole (the truncate, a pool, the guard)
    estimated_client_mb: float | None = None
    client_mb: float | None = None  # resident growth above the ramp's start, every pass of the level included
    server_mb: float | None = None  # how far this run's server's processes grew above the ramp's start (guarded)
    server: ServerCost | None = None  # what the server paid (measured only with server measures)
    access: AccessResult | None = None  # the access phases after the read (--access); None: none asked
    standbys: list[StandbyMeasure] = field(default_factory=list)  # each standby's measures (with standbys only)

    @property
    def record_faults(self) -> list[Fault]:
        records = [*(self.write.records if self.write else []), *(self.read.records if self.read else [])]
        faults = [record.fault for record in records if record.fault is not None]
        return faults + (self.access.faults if self.access is not None else [])

    @property
    def verify_s(self) -> float:
        return sum(phase.stage_s("verify") for phase in (self.write, self.read) if phase is not None)

    def failure(self) -> LevelFailure | None:
        """How the level failed: as a whole (its own fault, no count), else by its records' most frequent fault
        with the count of every class; None when everything went well."""
        if self.fault is not None:
            return LevelFailure(self.fault, Counter())
        faults = self.record_faults
        return LevelFailure(*most_frequent_fault(faults)) if faults else None

    def stored_payload_bytes(self) -> list[int]:
        return [payload for payload, _row in self.stored.values()]


def repetition_streams(streams: list[Stream], rep: int) -> list[Stream]:
    """The generator streams of a level's repetition `rep`: the first keeps the level's own (the bytes a run
    without --repeat writes), each later one appends rep - 1, so every repetition writes a fresh record. Never
    a 0: numpy's SeedSequence ignores trailing zeros, so (i, 0) would give (i,)'s values again."""
    return streams if rep == 1 else [(*stream, rep - 1) for stream in streams]


def most_frequent_fault(faults: list[Fault]) -> tuple[Fault, Counter[Status]]:
    """The first fault of the most frequent class, and the count of every class."""
    counts = Counter(fault.status for fault in faults)
    status = counts.most_common(1)[0][0]
    return next(fault for fault in faults if fault.status == status), counts


def layout_columns(config: RunConfig) -> tuple[str, int | None]:
    """A row's layout and, for the chunked layout, its epochs per chunk."""
    return config.layout, config.chunk_epochs if config.layout == CHUNKED_LAYOUT else None


def fill_common(row: Row, level: LevelResult) -> None:
    """What every mode's row takes from a level the same way: tracemalloc peaks, verification time, what the
    server paid."""
    row.write_peak_mb = level.write.traced_peak_mb if level.write else None
    row.read_peak_mb = level.read.traced_peak_mb if level.read else None
    if level.write is not None:
        row.verify_s = level.verify_s
    if level.server is not None:
        fill_server(row, level.server)
    fill_standbys(row, level.standbys)


def _mib_or_none(n_bytes: int | None) -> float | None:
    return None if n_bytes is None else mib(n_bytes)


def fill_server(row: Row, cost: ServerCost) -> None:
    row.wal_mb = _mib_or_none(cost.wal_bytes)
    row.heap_mb = _mib_or_none(cost.heap_bytes)
    row.toast_mb = _mib_or_none(cost.toast_bytes)
    row.stored_compression = cost.stored_compression or ""
    row.server_write_ms = cost.write_ms
    row.server_read_ms = cost.read_ms
    row.io_written_mb = _mib_or_none(cost.io_written_bytes)
    row.io_extended_mb = _mib_or_none(cost.io_extended_bytes)
    row.io_fsyncs = cost.io_fsyncs
    row.checkpoints = cost.checkpoints
    row.other_sessions = cost.other_sessions


@dataclass
class Iteration:
    """Runs one level of the ramp with a mode's driver; called by run_ramp with (iteration, epochs, rep)."""

    config: RunConfig
    driver: Driver
    control: Control
    to_row: Callable[[LevelResult], Row]
    secrets: tuple[str, ...]
    guard: MemoryGuard | None = None
    measures: ServerMeasures | None = None  # the server-side measures; None: not taken
    events: LevelEvents = SILENT  # told each phase as it starts, for live progress
    access: Callable[[LevelResult], AccessResult] | None = None  # the access phases (--access); None: none asked
    standbys: StandbyProbe | None = None  # the standbys' measures; None: the run has no standby
    server: ServerProcesses | None = None  # this run's server's local processes, whose growth the guard counts
    meter: PhaseMeter = field(default_factory=PhaseMeter, init=False)
    start_rss_mb: float = field(default_factory=current_rss_mb, init=False)  # what the levels' growth is above
    _ran_before: bool = field(default=False, init=False)  # the table holds an earlier level's records
    budget: TraceBudget = field(init=False)  # which levels get the memory pass (--memory-trace auto: a share)
    server_start_mb: float | None = field(init=False)  # the server's processes' memory when the ramp began

    def __post_init__(self) -> None:
        self.budget = TraceBudget(self.config)
        if self.guard is None:
            self.server = None
        self._find_backends()
        self.server_start_mb = private_mb(self.server.pids()) if self.server is not None else None

    def _find_backends(self) -> None:
        """This run's backends, asked again before each level (a connection replaced has a new one). A measure
        only: connections that cannot answer now leave the server uncounted for this level, they fail nothing."""
        if isinstance(self.server, OwnBackends):
            try:
                self.server.tell([*self.driver.server_pids(), self.control.backend_pid()])
            except Exception:  # noqa: BLE001 - the level's own work meets (and reports) a connection that is gone
                self.server.tell([])

    def __call__(self, iteration: int, epochs: int, rep: int = 1) -> Row:
        level = LevelResult(iteration, epochs, repetition_streams(self.driver.streams(iteration), rep), rep)
        units = len(level.streams) * epochs
        if self.guard is not None:
            level.estimated_client_mb = self.guard.estimate_mb(units)
            refusal = self.guard.refusal(units)
            if refusal is not None:
                level.fault = classify(ClientMemoryGuard(refusal))
                raise StopRamp(self._row(level), f"was stopped by the client memory guard ({refusal})")
        watch = ServerMemoryWatch(self.server, self.server_start_mb)  # samples only for the memory guard
        try:
            with watch:
                self._run(level)
        except Exception as exc:  # noqa: BLE001 - a failure outside any record's work fails the level
            level.fault = classify(exc, *self.secrets)
            lost = level.fault.status == CONNECTION_LOST
            self.driver.recover(lost)
            self.control.recover(lost)
        level.server_mb = watch.growth_mb
        if self.guard is not None:
            self.observe(level)
        return self._row(level)

    def _row(self, level: LevelResult) -> Row:
        row = self.to_row(level)
        row.rep = level.rep
        row.toast_compression, row.storage = self.config.toast_compression, self.config.storage
        row.zstd_level = zstd_level_of(self.config)
        row.layout, row.chunk_epochs = layout_columns(self.config)
        return row

    def observe(self, level: LevelResult) -> None:
        """Teach the memory guard what this level's records cost the client."""
        assert self.guard is not None
        sent = [record.size for record in level.write.records if record.size] if level.write else []
        self.guard.observe(len(level.streams) * level.epochs, level.client_mb,
                           level.write.traced_peak_mb if level.write else None,
                           level.read.traced_peak_mb if level.read else None,
                           mib(sum(sent)) if sent else None, server_mb=level.server_mb)

    def _run(self, level: LevelResult) -> None:
        self.driver.revive()
        self.control.revive()
        if self.standbys is not None:  # before the truncate: a standby still behind from the last level
            level.standbys = self.standbys.begin()
        self._find_backends()
        if self._ran_before and not self.config.keep_data_between_iterations:
            self.control.truncate()
        self._ran_before = True
        rss_peaks: list[float | None] = []

        start = self._counters()
        self.events.phase_started(PhaseStart(WRITE, len(level.streams)))
        level.write = self._phase(lambda: self.driver.write(level.epochs, level.streams), rss_peaks)
        written = level.write.ok
        ids = [record.record_id for record in written if record.record_id is not None]
        if self.standbys is not None and ids:
            self.standbys.wait_replay(level.standbys, written_at=time.perf_counter(), record_ids=ids)
        after_write = self._unless_records_failed(level, lambda: self._write_cost(level, start, ids))
        encoded = [record.stream for record in level.write.records if record.size]
        if encoded:
            level.write.traced_peak_mb = self._memory_pass(
                level.iteration, WRITE, level.write, lambda: self.driver.encode_only(level.epochs, encoded),
                len(encoded), rss_peaks)
        if written:
            self.events.phase_started(PhaseStart(READ, len(written)))
            level.read = self._phase(lambda: self.driver.read(written), rss_peaks)
            if start is not None and after_write is not None:
                self._unless_records_failed(level, lambda: self._read_cost(level, start, after_write))
            level.read.traced_peak_mb = self._memory_pass(
                level.iteration, READ, level.read, lambda: self.driver.read(written), len(written), rss_peaks)
            self._unless_records_failed(level, lambda: self._stored_sizes(level, ids))
            if self.standbys is not None:
                self.standbys.read(level.standbys, written)
            if self.access is not None and not level.record_faults:
                self.events.phase_started(PhaseStart(ACCESS, len(written)))
                with self.meter.phase() as measure:  # its resident peak counts in the level's client memory
                    level.access = self.access(level)  # after the sizes: they are of the record as written
                rss_peaks.append(measure.rss_peak_mb)
        known = [peak for peak in rss_peaks if peak is not None] or [current_rss_mb()]
        level.client_mb = max(0.0, max(known) - self.start_rss_mb)

    @staticmethod
    def _unless_records_failed(level: LevelResult, work: Callable[[], T]) -> T | None:
        """Run a measurement between the phases; when it fails after records failed, the records' own failures
        already say what went wrong (a server gone, say), so what it would have measured stays unknown."""
        try:
            return work()
        except Exception:
            if not level.record_faults:
                raise
            return None

    def _stored_sizes(self, level: LevelResult, ids: list[int]) -> None:
        level.stored = self.control.stored_sizes(ids)
        level.table_bytes = self.control.total_size()

    def _counters(self) -> Counters | None:
        """The server's counters now, with the data connections' pending I/O statistics published first."""
        if self.measures is None:
            return None
        if self.measures.support.io:
            self.driver.flush_stats()
        return self.measures.counters()

    def _write_cost(self, level: LevelResult, start: Counters | None, ids: list[int]) -> Counters | None:
        after = self._counters()
        if self.measures is None or start is None or after is None:
            return None
        level.server = write_cost(start, after)
        level.server.heap_bytes, level.server.toast_bytes = self.measures.relation_bytes()
        level.server.stored_compression = self.measures.stored_compression(ids)
        return after

    def _read_cost(self, level: LevelResult, start: Counters, after_write: Counters) -> None:
        after = self._counters()
        if level.server is not None and after is not None:
            add_read_cost(level.server, start, after_write, after)

    def _phase(self, work: Callable[[], list[RecordWork]], rss_peaks: list[float | None]) -> Phase:
        cpu_started = time.process_time()
        with self.meter.phase() as measure:
            records = work()
        rss_peaks.append(measure.rss_peak_mb)
        return Phase(records, measure, time.process_time() - cpu_started)

    def _memory_pass(self, iteration: int, phase: str, timed: Phase, work: Callable[[], object], records: int,
                     rss_peaks: list[float | None]) -> float | None:
        """The tracemalloc peak of `work` (the timed phase's client work again, untimed) when the budget lets it
        run; None when it does not."""
        runs, why = self.budget.decide(iteration, phase, timed.measure.wall_s)
        if not runs:
            if why:
                self.events.memory_pass_skipped(phase, why)
            return None
        self.events.phase_started(PhaseStart(phase, records, memory_pass=True, why=why))
        with self.meter.phase() as measure:
            peak = traced_peak_mb(work, self.events)
        rss_peaks.append(measure.rss_peak_mb)
        self.budget.spent(iteration, phase, timed.measure.wall_s, measure.wall_s)
        return peak
