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

from pgstress.workload.epochs import Epoch


class VerifyError(Exception):
    """What was read back is not what was written."""


@dataclass
class EncodedPayload:
    """The value exactly as sent to the server, and what it must decode back to."""

    data: bytes | bytearray
    epochs: int
    content_hash: str
    value_hash: str | None = None  # of `data`, for a format whose stored bytes come back unchanged

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
    # The server hands back the very bytes it was sent (bytea), so comparing their hash proves the
    # content unchanged; a type it rewrites (jsonb: parsed, keys reordered) is verified by content.
    returns_bytes_sent: ClassVar[bool] = True

    def __init__(self, options: CodecOptions) -> None:
        self.options = options

    def encode_stream(self, chunks: Iterable[list[Epoch]]) -> bytes | bytearray:
        """Encode epochs arriving chunk by chunk into the value exactly as it is sent."""
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


_load_all()
