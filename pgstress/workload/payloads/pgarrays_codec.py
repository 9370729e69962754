"""pgarrays: PostgreSQL's own types, one array column per key of the epoch shape, in binary.

A record is one row: `double precision[]` for a float key, `integer[]` (or `bigint[]` when its range
needs 64 bits) for an int key, `boolean[]`, `text[]` for a template's string key; a null value is an
array NULL. The value is the columns' binary arrays (db/array_binary.py) as fields, each its length and
its bytes, so a binary COPY sends it unchanged and an INSERT binds each field as one binary parameter.
The server sends the same bytes back, so the read is verified by their hash as well as decoded whole.

The epochs are encoded from the dicts an application holds (each chunk gathered back into numpy columns,
one pass per key) and decoded back to dicts, as the other formats are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from pgstress.db.array_binary import (
    BOOL,
    FLOAT8,
    INT4,
    INT8,
    TEXT,
    ElementType,
    decode_array,
    encode_array,
    fields_of,
    framed,
)
from pgstress.workload.epochs import CHUNK_EPOCHS, Epoch, EpochChunk
from pgstress.workload.payloads import Codec, PayloadColumn, register
from pgstress.workload.shape import BOOL as BOOL_KEY
from pgstress.workload.shape import FLOAT, INT, STRING, EpochShape, KeyShape

ARRAYS_FORMAT = "pgarrays"
_INT32 = (-(2**31), 2**31 - 1)
# every pgstress table's own columns, and the one-value formats' `payload` (a table of pgarrays never has one)
_FIXED_COLUMNS = {"id", "epochs", "content_hash", "created_at", "payload"}
_MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: a longer name would be cut by the server


def element_of(key: KeyShape) -> ElementType:
    """The array type a key's values are stored as."""
    if key.kind == FLOAT:
        return FLOAT8
    if key.kind == INT:
        return INT4 if _INT32[0] <= key.low and key.high <= _INT32[1] else INT8
    return BOOL if key.kind == BOOL_KEY else TEXT


def column_names(shape: EpochShape) -> tuple[str, ...]:
    """Each key's column: the key's own name, unless one cannot be (too long for an identifier, or the name of a
    column every pgstress table has, or `payload`), then `key_1`, `key_2`, ... for all."""
    names = shape.names
    usable = all(len(name.encode()) <= _MAX_IDENTIFIER_BYTES and name not in _FIXED_COLUMNS for name in names)
    if usable and len(set(names)) == len(names):
        return names
    return tuple(f"key_{i + 1}" for i in range(len(names)))


@register
class PgArraysCodec(Codec):
    name = ARRAYS_FORMAT
    column_type = "one array per key"  # the record has no single payload column (see columns())

    @property
    def shape(self) -> EpochShape:
        return self.options.shape

    def columns(self) -> tuple[PayloadColumn, ...]:
        return tuple(PayloadColumn(name, element_of(key).sql_type)
                     for name, key in zip(column_names(self.shape), self.shape.keys, strict=True))

    @property
    def fields(self) -> int:
        return len(self.shape.keys)

    def encode_stream(self, chunks: Iterable[list[Epoch]]) -> bytearray:
        tables = [self.columns_of(epochs) for epochs in chunks]
        return self.encode_table(np.concatenate(tables) if tables else np.empty(0, self.shape.dtype))

    def columns_of(self, epochs: list[Epoch]) -> npt.NDArray[np.void]:
        """Epochs gathered back into columns, a structured array of the shape's dtype, as a client holding dicts
        would: each key's values taken out in one pass (numpy converts them; the read is what is verified)."""
        table = np.empty(len(epochs), dtype=self.shape.dtype)
        for i, key in enumerate(self.shape.keys):
            field = f"k{i}"
            values = map(itemgetter(key.name), epochs)
            if key.kind != STRING and not key.nullable:
                table[field] = np.fromiter(values, dtype=table.dtype[field], count=len(epochs))
                continue
            column = list(values)
            if key.nullable:
                nulls = np.fromiter((value is None for value in column), dtype=bool, count=len(column))
                table[f"n{i}"] = nulls
            if key.kind == STRING:
                index = {word: code for code, word in enumerate(key.vocabulary)}
                table[field] = [0 if value is None else index[value] for value in column]
            else:
                table[field] = [0 if value is None else value for value in column]
        return table

    def encode_table(self, table: npt.NDArray[np.void]) -> bytearray:
        """The record's fields (one binary array per key) of epochs as a structured array of the shape's dtype."""
        arrays = []
        for i, key in enumerate(self.shape.keys):
            nulls = table[f"n{i}"] if key.nullable else None
            arrays.append(encode_array(element_of(key), table[f"k{i}"], nulls, key.vocabulary))
        return framed(arrays)

    def decode_table(self, data: bytes | bytearray | memoryview) -> npt.NDArray[np.void]:
        """The record's fields back as a structured array of the shape's dtype; raises ValueError (ArrayMismatch)
        for a missing or extra column or array, a NULL array, arrays of different lengths, or a NULL in a key that
        has none."""
        fields = fields_of(data, len(self.shape.keys))
        columns = [self.decode_column(i, field) for i, field in enumerate(fields)]
        counts = {len(values) for values, _nulls in columns}
        if len(counts) > 1:
            raise ValueError(f"the arrays have different lengths: {sorted(counts)}")
        table = np.zeros(counts.pop() if counts else 0, dtype=self.shape.dtype)
        for i, (values, nulls) in enumerate(columns):
            table[f"k{i}"] = values
            if self.shape.keys[i].nullable and nulls is not None:
                table[f"n{i}"] = nulls
                table[f"k{i}"][nulls] = 0  # as the generator leaves a null's slot
        return table

    def decode_column(self, index: int, value: bytes | bytearray | memoryview | None
                      ) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.bool_] | None]:
        """One key's array: (values, NULL mask or None); a NULL array, or a NULL element in a key the shape never
        leaves null, is refused (ValueError)."""
        key = self.shape.keys[index]
        if value is None:
            raise ValueError(f"the array of key {key.name!r} is NULL")
        values, nulls = decode_array(element_of(key), value, key.vocabulary)
        if nulls is not None and not key.nullable and nulls.any():
            raise ValueError(f"the array of key {key.name!r} holds a NULL")
        return values, nulls

    def decode_stream(self, data: bytes | bytearray | memoryview) -> Iterator[list[Epoch]]:
        table = self.decode_table(data)
        for start in range(0, len(table), CHUNK_EPOCHS):
            yield EpochChunk(table[start:start + CHUNK_EPOCHS], self.shape).as_dicts()
