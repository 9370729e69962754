"""The chunked layout's client side (--layout chunked): a record split into chunks of K epochs, each encoded in the
run's format as a value of its own, and the chunks read back joined into the whole record and verified.

Every chunk but the last holds exactly K epochs, so epoch i of the record is in chunk i // K: a window's chunks are
known without reading any other (an append keeps it so: it fills the last chunk first). The record is verified
as the value layout verifies it: every chunk decoded and counted, then, where the format returns the bytes it was
sent, the hash of all the chunks' bytes in chunk order against what was written (the encoder is deterministic, so
the same bytes are the same epochs), else (jsonb) the hash of every decoded epoch's values in order. A chunk
missing, repeated, out of order or changed is VERIFY_FAILED.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from pgstress.config import CHUNKED_LAYOUT, RunConfig
from pgstress.run.measure import StageClock
from pgstress.run.record import Expected, _next_decoded
from pgstress.workload.epochs import DEFAULT_SHAPE, ContentHash, Epoch, EpochChunk, generate
from pgstress.workload.payloads import Codec, VerifyError, get_codec, stores_one_value
from pgstress.workload.shape import EpochShape


def layout_problem(config: RunConfig) -> str | None:
    """Why one ramp's layout cannot work with its format (one line), or None."""
    if config.layout != CHUNKED_LAYOUT:
        return None
    if not stores_one_value(config.payload_format):
        column_type = get_codec(config.payload_format).column_type
        return (f"the chunked layout stores each chunk as one value, and --payload-format {config.payload_format}"
                f" is not one value ({column_type}); use --layout value")
    return None


@dataclass
class ChunkedPayload:
    """A record's chunks exactly as sent, in chunk order, and what the whole record must read back as."""

    chunks: list[bytes | bytearray]
    chunk_epochs: list[int]  # epochs in each chunk
    epochs: int
    content_hash: str
    value_hash: str | None = None  # of every chunk's bytes in order, where the format returns the bytes sent

    @property
    def size(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def expected(self) -> Expected:
        return Expected(self.epochs, self.content_hash, self.value_hash)


def chunk_count(epochs: int, chunk_epochs: int) -> int:
    return -(-epochs // chunk_epochs)


def chunks_of(epochs: int, chunk_epochs: int, first: int, count: int) -> tuple[int, int]:
    """(first chunk, last chunk) holding epochs first .. first + count - 1 of a record."""
    last_epoch = min(first + count, epochs) - 1
    return first // chunk_epochs, max(first, last_epoch) // chunk_epochs


def regroup(pieces: Iterable[EpochChunk], chunk_epochs: int) -> Iterator[list[EpochChunk]]:
    """The generator's chunks cut into groups of `chunk_epochs` epochs (the last may hold fewer)."""
    group: list[EpochChunk] = []
    held = 0
    for piece in pieces:
        start = 0
        while start < len(piece.table):
            take = min(chunk_epochs - held, len(piece.table) - start)
            group.append(EpochChunk(piece.table[start:start + take], piece.shape))
            held += take
            start += take
            if held == chunk_epochs:
                yield group
                group, held = [], 0
    if group:
        yield group


def encode_chunked(codec: Codec, epochs: int, seed: int, stream: tuple[int, ...], chunk_epochs: int,
                   clock: StageClock, shape: EpochShape = DEFAULT_SHAPE) -> ChunkedPayload:
    """The record (seed, stream) fixes, as chunks of `chunk_epochs` epochs each encoded on its own; timed as
    record.encode_epochs times one value (gen, encode, and the hashing kept for verification as verify)."""
    content = ContentHash(shape)
    sent = hashlib.sha256() if codec.returns_bytes_sent else None
    chunks: list[bytes | bytearray] = []
    counts: list[int] = []
    groups = regroup(generate(epochs, seed, stream, shape), chunk_epochs)
    while True:
        with clock.stage("gen"):
            group = next(groups, None)
        if group is None:
            break
        with clock.stage("gen"):
            dicts = [epoch for piece in group for epoch in piece.as_dicts()]
        with clock.stage("verify"):
            for piece in group:
                content.update_table(piece.table)
        with clock.stage("encode"):
            data = codec.encode_stream([dicts])
        del dicts
        if sent is not None:
            with clock.stage("verify"):
                sent.update(data)
        chunks.append(data)
        counts.append(sum(len(piece.table) for piece in group))
    return ChunkedPayload(chunks, counts, content.count, content.hexdigest(),
                          sent.hexdigest() if sent is not None else None)


StoredChunk = tuple[int, "bytes | bytearray | memoryview", int]  # (chunk number, its value, its epochs column)


def check_chunk_numbers(numbers: Sequence[int], first: int, last: int) -> None:
    """The chunks read must be exactly first .. last, in order: one missing, repeated or moved is not the record."""
    if list(numbers) != list(range(first, last + 1)):
        shown = ", ".join(map(str, numbers[:8])) + (" ..." if len(numbers) > 8 else "")
        raise VerifyError(f"the record's chunks read back are [{shown}], expected {first} .. {last} in order")


def decoded_chunk(codec: Codec, data: bytes | bytearray | memoryview, chunk: int, stored_epochs: int,
                  clock: StageClock) -> list[Epoch]:
    """One chunk decoded whole; its row's epochs column must count what it holds."""
    decoded = codec.decode_stream(data)
    epochs: list[Epoch] = []
    while True:
        with clock.stage("decode"):
            part = _next_decoded(decoded)
        if part is None:
            break
        epochs.extend(part)
    if len(epochs) != stored_epochs:
        raise VerifyError(f"chunk {chunk} holds {len(epochs)} epochs, its row says {stored_epochs}")
    return epochs


def verify_chunks(codec: Codec, chunks: Sequence[StoredChunk], expected: Expected, clock: StageClock,
                  chunk_epochs: int, shape: EpochShape = DEFAULT_SHAPE) -> int:
    """Decode every chunk of a record in order and prove the whole record what was written; its epoch count."""
    check_chunk_numbers([number for number, _data, _epochs in chunks], 0, max(0, len(chunks) - 1))
    content = ContentHash(shape) if expected.value_hash is None else None
    sent = hashlib.sha256() if expected.value_hash is not None else None
    count = 0
    for index, (number, data, stored_epochs) in enumerate(chunks):
        if index < len(chunks) - 1 and stored_epochs != chunk_epochs:
            raise VerifyError(f"chunk {number} holds {stored_epochs} epochs; every chunk but the last holds"
                              f" {chunk_epochs}")
        epochs = decoded_chunk(codec, data, number, stored_epochs, clock)
        count += len(epochs)
        with clock.stage("verify"):
            if content is not None:
                try:
                    content.update_dicts(epochs)
                except (KeyError, TypeError, ValueError) as exc:
                    raise VerifyError(f"decoded epoch is malformed: {exc}") from exc
            if sent is not None:
                sent.update(data)
    if count != expected.epochs:
        raise VerifyError(f"read back {count} epochs in {len(chunks)} chunks, wrote {expected.epochs}")
    if content is not None and content.hexdigest() != expected.content_hash:
        raise VerifyError(f"content hash differs: read {content.hexdigest()}, wrote {expected.content_hash}")
    if sent is not None and sent.hexdigest() != expected.value_hash:
        raise VerifyError("the chunks read back are not the bytes written (SHA-256 of every chunk in order differs)")
    return count
