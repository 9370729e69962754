"""Payload formats behind one small interface, found by name.

Each module in this package defines one `Codec` subclass and registers it with `@register`;
adding a format means adding one module here and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from pgstress.epochs import ContentHash, Epoch, EpochChunk
from pgstress.measure import StageClock


class VerifyError(Exception):
    """What was read back is not what was written."""


@dataclass
class EncodedPayload:
    """The value exactly as sent to the server, and what it must decode back to."""

    data: bytes | bytearray
    epochs: int
    content_hash: str

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class CodecOptions:
    zstd_level: int = 3


class Codec:
    """Encodes a stream of epoch chunks into one value; decodes a value back to epoch dicts."""

    name: ClassVar[str]
    column_type: ClassVar[str]  # the SQL type of the payload column

    def __init__(self, options: CodecOptions) -> None:
        self.options = options

    def encode_stream(self, chunks: Iterable[list[Epoch]]) -> bytes | bytearray:
        """Encode epochs arriving chunk by chunk (the clock times the codec's own work)."""
        raise NotImplementedError

    def decode_stream(self, data: bytes | bytearray | memoryview) -> Iterator[list[Epoch]]:
        """Decode a stored value back to Python objects, chunk by chunk where the format allows."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Codec]] = {}


def register(cls: type[Codec]) -> type[Codec]:
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def format_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_codec(name: str, options: CodecOptions | None = None) -> Codec:
    return _REGISTRY[name](options or CodecOptions())


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
    return EncodedPayload(data=data, epochs=content.count, content_hash=content.hexdigest())


def decode_and_verify(
    codec: Codec, data: bytes | bytearray | memoryview, expected: EncodedPayload | tuple[int, str],
    clock: StageClock,
) -> int:
    """Decode back to Python objects and compare with what was written; returns the epoch count."""
    want_count, want_hash = (
        (expected.epochs, expected.content_hash) if isinstance(expected, EncodedPayload) else expected
    )
    content = ContentHash()
    decoded = codec.decode_stream(data)
    while True:
        with clock.stage("decode"):
            epochs = next(decoded, None)
        if epochs is None:
            break
        with clock.stage("verify"):
            try:
                content.update_dicts(epochs)
            except (KeyError, TypeError, ValueError) as exc:
                raise VerifyError(f"decoded epoch is malformed: {exc}") from exc
    if content.count != want_count:
        raise VerifyError(f"read back {content.count} epochs, wrote {want_count}")
    if content.hexdigest() != want_hash:
        raise VerifyError(f"content hash differs: read {content.hexdigest()}, wrote {want_hash}")
    return content.count


def check_stored_columns(stored: tuple[int, str], expected: tuple[int, str]) -> None:
    """The row's own epochs and content_hash columns must say what was written, too."""
    if stored != expected:
        raise VerifyError("the row's epochs/content_hash columns differ from what was written")


_load_all()
