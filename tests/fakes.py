"""A driver and a control connection without a database, for testing our own logic in milliseconds: the iteration
template, the ramp's stop rules and how a level's faults become its row (as hyperfine tests its benchmark logic
with a mock executor). Each record's stage times are set, not measured, so a test can assert exact values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

from pgstress.run.faults import classify
from pgstress.run.record import Expected, RecordWork, Stream

SENT_BYTES_PER_EPOCH = 100
STORED_BYTES_PER_EPOCH = 40
ROW_OVERHEAD_BYTES = 60
# The stage times every fake record reports, seconds.
STAGES = {"gen": 0.25, "encode": 0.5, "insert": 1.0, "select": 0.125, "decode": 2.0, "verify": 0.0625}


class SqlStateError(Exception):
    """An error as a driver raises it: a message and PostgreSQL's SQLSTATE."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class FakeClock:
    """The phases' clock (pgstress.run.measure's time.perf_counter), moved only by the fake driver's work: a
    phase then lasts exactly its records' stages."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def as_time_module(self) -> SimpleNamespace:
        return SimpleNamespace(perf_counter=self)


# (iteration, record index) -> the exception that record's write or read meets
Faults = dict[tuple[int, int], BaseException]


@dataclass
class FakeDriver:
    """Writes and reads `records` records per level; `write_faults` / `read_faults` fail single records,
    `level_failure` makes a level's write phase raise (a failure of the whole level)."""

    records: int = 1
    write_faults: Faults = field(default_factory=dict)
    read_faults: Faults = field(default_factory=dict)
    level_failure: Callable[[int], BaseException | None] = lambda iteration: None
    clock: FakeClock = field(default_factory=FakeClock)  # advanced by each phase's stages (records run in turn)
    calls: list[str] = field(default_factory=list)
    epochs_of: dict[int, int] = field(default_factory=dict)  # record id -> epochs of every record stored
    _next_id: int = 1

    def streams(self, iteration: int) -> list[Stream]:
        return [(iteration, index) for index in range(self.records)]

    def revive(self) -> None:
        self.calls.append("revive")

    def recover(self, lost: bool) -> None:
        self.calls.append(f"recover lost={lost}")

    def flush_stats(self) -> None:
        self.calls.append("flush_stats")

    def server_pids(self) -> list[int]:
        return []  # no server processes: nothing for the memory guard to count

    def encode_only(self, epochs: int, streams: list[Stream]) -> None:
        self.calls.append("encode_only")

    def write(self, epochs: int, streams: list[Stream]) -> list[RecordWork]:
        self.calls.append("write")
        failure = self.level_failure(streams[0][0])
        if failure is not None:
            raise failure
        records = [self._written(epochs, stream) for stream in streams]
        self.clock.t += sum(record.latency_s for record in records)
        return records

    def _written(self, epochs: int, stream: Stream) -> RecordWork:
        record = RecordWork(stream, size=epochs * SENT_BYTES_PER_EPOCH)
        for name in ("gen", "encode", "insert", "verify"):
            record.clock.seconds[name] = STAGES[name]
        record.latency_s = sum(record.clock.seconds.values())
        record.cpu_span = (self.clock.t, self.clock.t + STAGES["gen"] + STAGES["encode"])
        record.db_span = (record.cpu_span[1], record.cpu_span[1] + STAGES["insert"])
        fault = self.write_faults.get((stream[0], stream[-1]))
        if fault is not None:
            record.fault = classify(fault)
            return record
        record.expected = Expected(epochs, f"hash-{stream}")
        record.record_id, self._next_id = self._next_id, self._next_id + 1
        self.epochs_of[record.record_id] = epochs
        return record

    def read(self, written: list[RecordWork]) -> list[RecordWork]:
        self.calls.append("read")
        out = []
        for done in written:
            assert done.expected is not None
            record = RecordWork(done.stream, record_id=done.record_id, expected=done.expected,
                                size=done.expected.epochs * STORED_BYTES_PER_EPOCH)
            for name in ("select", "decode", "verify"):
                record.clock.seconds[name] = STAGES[name]
            record.latency_s = sum(record.clock.seconds.values())
            fault = self.read_faults.get((done.stream[0], done.stream[-1]))
            if fault is not None:
                record.fault = classify(fault)
            out.append(record)
        self.clock.t += sum(record.latency_s for record in out)
        return out


@dataclass
class FakeControl:
    """The control connection's calls, counted; stored sizes follow the epochs the driver wrote."""

    epochs_of: dict[int, int] = field(default_factory=dict)  # record id -> epochs: the fake driver's
    calls: list[str] = field(default_factory=list)

    def revive(self) -> None:
        self.calls.append("revive")

    def recover(self, lost: bool) -> None:
        self.calls.append(f"recover lost={lost}")

    def truncate(self) -> None:
        self.calls.append("truncate")

    def stored_sizes(self, record_ids: list[int]) -> dict[int, tuple[int, int]]:
        self.calls.append("stored_sizes")
        return {record_id: (self.epochs_of.get(record_id, 0) * STORED_BYTES_PER_EPOCH,
                            self.epochs_of.get(record_id, 0) * STORED_BYTES_PER_EPOCH + ROW_OVERHEAD_BYTES)
                for record_id in record_ids}

    def total_size(self) -> int:
        self.calls.append("total_size")
        return 8192

    def backend_pid(self) -> int:
        return 0  # no process: the fake has no server to count
