"""Payload formats behind one small interface, found by name.

Each module in this package defines one `Codec` subclass and registers it with `@register`;
adding a format means adding one module here and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from pgstress.workload.epochs import DEFAULT_SHAPE, Epoch
from pgstress.workload.shape import EpochShape

PAYLOAD_COLUMN = "payload"
FIELD_HEAD_BYTES = 4  # a field's int32 length before its bytes (binary COPY's tuple layout)


class VerifyError(Exception):
    """What was read back is not what was written."""


@dataclass
class EncodedPayload:
    """The value exactly as sent to the server, and what it must decode back to."""

    data: bytes | bytearray
    epochs: int
    content_hash: str
    value_hash: str | None = None  # of `data`, for a format whose stored bytes come back unchanged
    # 0: `data` is the one payload column's value. n > 0: `data` is n fields, one per payload column, each its
    # int32 length and its bytes (as in a binary COPY tuple), so COPY sends it as it is (pgarrays)
    fields: int = 0

    @property
    def size(self) -> int:
        """The bytes of the payload columns' values as sent (the fields' length words are not counted)."""
        return len(self.data) - FIELD_HEAD_BYTES * self.fields


class PayloadColumn(NamedTuple):
    """One column a format stores its record in: its name and its SQL type."""

    name: str
    sql_type: str  # as format_type() spells it, upper case: BYTEA, JSONB, DOUBLE PRECISION[]


@dataclass(frozen=True)
class CodecOptions:
    zstd_level: int = 3
    shape: EpochShape = DEFAULT_SHAPE  # the run's epoch shape (a format of one column per key needs it)


class Codec:
    """Encodes a stream of epoch chunks into one value; decodes a value back to epoch dicts."""

    name: ClassVar[str]
    column_type: ClassVar[str]  # the SQL type of the payload column (one column formats)
    # The server hands back the very bytes it was sent (bytea), so comparing their hash proves the
    # content unchanged; a type it rewrites (jsonb: parsed, keys reordered) is verified by content.
    returns_bytes_sent: ClassVar[bool] = True

    def __init__(self, options: CodecOptions) -> None:
        self.options = options

    def columns(self) -> tuple[PayloadColumn, ...]:
        """The columns the record is stored in: one `payload` column of `column_type` unless the format says."""
        return (PayloadColumn(PAYLOAD_COLUMN, self.column_type),)

    @property
    def fields(self) -> int:
        """0: a value is the one payload column's bytes; n > 0: a value is n columns' fields (EncodedPayload)."""
        return 0

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


# The SQL types of a format that stores a record as one value, which a chunk row of --layout chunked holds.
ONE_VALUE_COLUMN_TYPES = ("BYTEA", "JSONB")


def stores_one_value(name: str) -> bool:
    """Whether the format stores a record as one value of one SQL type (pgarrays stores one column per key)."""
    return _REGISTRY[name].column_type in ONE_VALUE_COLUMN_TYPES


def format_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_codec(name: str, options: CodecOptions | None = None) -> Codec:
    return _REGISTRY[name](options or CodecOptions())


_load_all()
