"""One record's client-side work, timed by stage: generate + encode (+ the content hash kept to verify
it), and decode + verify what was read back; and what an iteration keeps of each record it handled."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from pgstress.run.faults import Fault, classify
from pgstress.run.latency import Span
from pgstress.run.level_events import LevelEvents
from pgstress.run.measure import StageClock
from pgstress.workload.epochs import DEFAULT_SHAPE, ContentHash, Epoch, EpochChunk, generate
from pgstress.workload.payloads import Codec, EncodedPayload, VerifyError
from pgstress.workload.shape import EpochShape

Stream = tuple[int, ...]  # the generator's stream of one record: (iteration,) in sync, (iteration, task) in async


class Expected(NamedTuple):
    """What a record must read back as."""

    epochs: int
    content_hash: str  # of the epochs' values in order (workload/epochs.py), also in the row's own column
    value_hash: str | None = None  # of the bytes sent, where the format gets them back unchanged

    @property
    def columns(self) -> tuple[int, str]:
        """What the row's epochs and content_hash columns must hold."""
        return self.epochs, self.content_hash


def value_hash(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 of a value's bytes: ~1.5 GB/s here (CPU instructions), against ~2 us per epoch to hash the
    decoded epochs' values, and it releases the GIL while it runs."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class RecordWork:
    """One record's write or read inside an iteration: what happened, how big, and when."""

    stream: Stream
    clock: StageClock = field(default_factory=StageClock)
    latency_s: float = 0.0
    fault: Fault | None = None
    record_id: int | None = None
    expected: Expected | None = None
    size: int = 0  # bytes sent (write) or received (read); 0 = not known
    cpu_span: Span | None = None  # generate + encode, or decode + verify
    db_span: Span | None = None  # insert, or select

    @property
    def ok(self) -> bool:
        return self.fault is None


def _nothing_to_release() -> None:
    return None


@dataclass
class Fetched:
    """A record as the server returned it, until it is verified: the bytes received, how they are decoded and
    checked against what was written (raising VerifyError), and what to free once they are (the sync cursor)."""

    size: int
    verify: Callable[[Expected, StageClock], object]
    release: Callable[[], None] = _nothing_to_release


def timed_verify(fetched: Fetched, expected: Expected, clock: StageClock) -> Span:
    """Verify a fetched record; the span of the client's decoding and checking."""
    started = time.perf_counter()
    fetched.verify(expected, clock)
    return started, time.perf_counter()


@contextmanager
def record_outcome(record: RecordWork, secrets: tuple[str, ...], events: LevelEvents, last_step: str,
                   after_failure: Callable[[Fault], None] = lambda fault: None) -> Iterator[RecordWork]:
    """One record's write or read, the same in both modes: its latency from here to the end of the block, a
    failure inside it classified as the record's own fault (its siblings go on) and handed to `after_failure`
    (sync mode drops a lost connection; asyncpg's pool replaces one itself), and the phase's last step announced
    with how it went."""
    started = time.perf_counter()
    try:
        yield record
    except Exception as exc:  # noqa: BLE001 - the record's failure is counted, never the phase's end
        record.fault = classify(exc, *secrets, value_size=record.size or None)
        after_failure(record.fault)
    record.latency_s = time.perf_counter() - started
    events.record_step(last_step, record.ok)


def encode_epochs(codec: Codec, chunks: Iterable[EpochChunk], clock: StageClock) -> EncodedPayload:
    """Generate and encode, timing `gen`, `encode` and the hashing kept for verification (`verify`)."""
    content = ContentHash()

    def dict_chunks() -> Iterator[list[Epoch]]:
        source = iter(chunks)
        while True:
            with clock.stage("gen"):
                chunk = next(source, None)
                if chunk is None:
                    return
                epochs = chunk.as_dicts()
            with clock.stage("verify"):
                content.update_table(chunk.table)
            yield epochs

    gen_and_verify_before = clock.get("gen") + clock.get("verify")
    with clock.stage("encode"):
        data = codec.encode_stream(dict_chunks())
    # The encode stage's wall time includes the generator work it pulled; take that back out.
    clock.seconds["encode"] -= clock.get("gen") + clock.get("verify") - gen_and_verify_before
    sent_hash = None
    if codec.returns_bytes_sent:
        with clock.stage("verify"):
            sent_hash = value_hash(data)
    return EncodedPayload(data=data, epochs=content.count, content_hash=content.hexdigest(), value_hash=sent_hash,
                          fields=codec.fields)


def expected_of(payload: EncodedPayload) -> Expected:
    return Expected(payload.epochs, payload.content_hash, payload.value_hash)


def encode_record(codec: Codec, epochs: int, seed: int, stream: Stream, clock: StageClock,
                  shape: EpochShape = DEFAULT_SHAPE) -> EncodedPayload:
    """The record of `epochs` epochs of `shape` that (seed, stream) fixes, encoded."""
    return encode_epochs(codec, generate(epochs, seed, stream, shape), clock)


def decode_and_verify(
    codec: Codec, data: bytes | bytearray | memoryview, expected: EncodedPayload | Expected | tuple[int, str],
    clock: StageClock, shape: EpochShape = DEFAULT_SHAPE,
) -> int:
    """Decode back to Python objects and prove them what was written; returns the epoch count.

    Every epoch is decoded (a value that does not decode fails) and counted. Where the format gets back
    the bytes it sent, their hash against the written value's proves the rest: the encoder is
    deterministic, so the same bytes are the same epochs. Otherwise (jsonb) the decoded epochs' values
    are hashed and compared, with the types and keys `shape` gives them.
    """
    want = expected_of(expected) if isinstance(expected, EncodedPayload) else Expected(*expected)
    content = ContentHash(shape) if want.value_hash is None else None
    count = 0
    decoded = codec.decode_stream(data)
    while True:
        with clock.stage("decode"):
            epochs = _next_decoded(decoded)
        if epochs is None:
            break
        count += len(epochs)
        if content is not None:
            with clock.stage("verify"):
                try:
                    content.update_dicts(epochs)
                except (KeyError, TypeError, ValueError) as exc:
                    raise VerifyError(f"decoded epoch is malformed: {exc}") from exc
    if count != want.epochs:
        raise VerifyError(f"read back {count} epochs, wrote {want.epochs}")
    if content is not None and content.hexdigest() != want.content_hash:
        raise VerifyError(f"content hash differs: read {content.hexdigest()}, wrote {want.content_hash}")
    if want.value_hash is not None:
        with clock.stage("verify"):
            read_hash = value_hash(data)
        if read_hash != want.value_hash:
            raise VerifyError(f"the value read back is not the bytes written: SHA-256 {read_hash[:16]}..., wrote"
                              f" {want.value_hash[:16]}...")
    return count


# Words a codec's own error uses when it could not allocate (zstd: "Allocation error : not enough memory").
_ALLOCATION_WORDS = ("not enough memory", "out of memory", "allocation error", "cannot allocate")


def _next_decoded(decoded: Iterator[list[Epoch]]) -> list[Epoch] | None:
    """The next decoded chunk. Whatever the codec cannot decode (cannot decompress, cannot parse) is a
    verification failure, in every format; a failed allocation is the client's memory, not the data."""
    try:
        return next(decoded, None)
    except (MemoryError, VerifyError):  # a codec's own check of the document's shape says what differs
        raise
    except Exception as exc:  # each codec raises its own kind (ZstdError, InvalidBSON, JSONDecodeError)
        text = " ".join(str(exc).split())
        if any(word in text.lower() for word in _ALLOCATION_WORDS):
            raise MemoryError(f"decoding could not allocate memory: {text}") from exc
        raise VerifyError(f"what was read back cannot be decoded: {type(exc).__name__}: {text}") from exc


def check_stored_columns(stored: tuple[int, str], expected: Expected) -> None:
    """The row's own epochs and content_hash columns must say what was written, too."""
    if stored != expected.columns:
        raise VerifyError("the row's epochs/content_hash columns differ from what was written")
