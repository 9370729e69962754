"""PostgreSQL's binary form of a one-dimensional array (array_send / array_recv), built and read with numpy.

An array value is a header (ndim, has-null flag, element type OID, then per dimension its length and
lower bound) followed by each element as its int32 length and its bytes; a NULL element is the length
-1 and no bytes. The form written here is the one the server sends back for the same values (lower
bound 1, the flag set exactly when there is a NULL), so a value read back has the very bytes sent.

Fixed-width elements without NULLs are packed and read as one numpy structured array; an array with
NULLs is packed the same way with the NULLs' value bytes masked out. Text elements (and reading an array
that has NULLs) go element by element.

Several values travel as fields: each its int32 length (-1: NULL) and its bytes, as in a binary COPY tuple.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_HEAD = struct.Struct("!iii")  # ndim, has-null flag, element type OID
_DIMENSION = struct.Struct("!ii")  # length, lower bound
_LENGTH = struct.Struct("!i")
NULL_LENGTH = -1


class ArrayMismatch(ValueError):
    """A binary array that is not the one-dimensional array of the element type expected."""


@dataclass(frozen=True)
class ElementType:
    """An array's element type: its OID, its SQL array type, and its binary form (None: variable length text)."""

    oid: int
    sql_type: str  # of the array, as format_type() spells it, upper case
    wire: str | None  # numpy dtype of one element on the wire (big-endian)

    @property
    def width(self) -> int:
        assert self.wire is not None
        return np.dtype(self.wire).itemsize


FLOAT8 = ElementType(701, "DOUBLE PRECISION[]", ">f8")
INT4 = ElementType(23, "INTEGER[]", ">i4")
INT8 = ElementType(20, "BIGINT[]", ">i8")
BOOL = ElementType(16, "BOOLEAN[]", "u1")
TEXT = ElementType(25, "TEXT[]", None)
ELEMENT_TYPES = (FLOAT8, INT4, INT8, BOOL, TEXT)
ARRAY_OIDS = {FLOAT8: 1022, INT4: 1007, INT8: 1016, BOOL: 1000, TEXT: 1009}  # each element type's array type


def _header(element: ElementType, count: int, has_null: bool) -> bytes:
    if count == 0:  # the server sends an empty array as zero dimensions
        return _HEAD.pack(0, 0, element.oid)
    return _HEAD.pack(1, int(has_null), element.oid) + _DIMENSION.pack(count, 1)


def encode_array(element: ElementType, values: npt.NDArray[np.generic], nulls: npt.NDArray[np.bool_] | None = None,
                 vocabulary: Sequence[str] = ()) -> bytes:
    """The binary array of `values` (text: indices into `vocabulary`), NULL where `nulls` is true."""
    count = len(values)
    has_null = nulls is not None and bool(nulls.any())
    head = _header(element, count, has_null)
    if element.wire is None:
        pieces = np.array([_LENGTH.pack(len(word)) + word for word in (w.encode() for w in vocabulary)]
                          + [_LENGTH.pack(NULL_LENGTH)], dtype=object)
        index = np.asarray(values, dtype=np.intp)
        if has_null:
            assert nulls is not None
            index = np.where(nulls, len(vocabulary), index)
        return head + b"".join(pieces[index].tolist())
    width = element.width
    table = np.empty(count, dtype=[("length", ">i4"), ("value", element.wire)])
    table["length"] = width
    table["value"] = values
    if not has_null:
        return head + table.tobytes()
    assert nulls is not None
    table["length"][nulls] = NULL_LENGTH
    keep = np.ones((count, 4 + width), dtype=bool)
    keep[nulls, 4:] = False  # a NULL is its length word only
    kept: bytes = table.view(np.uint8).reshape(count, 4 + width)[keep].tobytes()  # numpy < 2's stubs: Any
    return head + kept


def decode_array(element: ElementType, data: bytes | bytearray | memoryview, vocabulary: Sequence[str] = ()
                 ) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.bool_] | None]:
    """(values in native byte order (text: vocabulary indices), NULL mask or None) of a binary array.

    Raises ArrayMismatch for another element type, more than one dimension, a lower bound other than 1, an
    element of the wrong width, a boolean other than 0 or 1, a string outside the vocabulary, or bytes left over.
    """
    view = memoryview(_binary(data)).cast("B")
    if len(view) < _HEAD.size:
        raise ArrayMismatch(f"{len(view)} bytes are no binary array")
    ndim, flags, oid = _HEAD.unpack_from(view)
    if oid != element.oid:
        raise ArrayMismatch(f"an array of element type OID {oid}, expected {element.oid} ({element.sql_type})")
    if ndim == 0:
        if len(view) != _HEAD.size:
            raise ArrayMismatch("an empty array followed by bytes")
        return np.empty(0, dtype=_native(element)), None
    if ndim != 1 or flags not in (0, 1):
        raise ArrayMismatch(f"an array of {ndim} dimensions (flags {flags}), expected one")
    count, lower = _DIMENSION.unpack_from(view, _HEAD.size)
    if lower != 1:
        raise ArrayMismatch(f"an array whose first index is {lower}, expected 1")
    start = _HEAD.size + _DIMENSION.size
    if element.wire is not None and not flags:
        width = element.width
        if len(view) != start + count * (4 + width):
            raise ArrayMismatch(f"a {element.sql_type} of {count} elements in {len(view)} bytes")
        table = np.frombuffer(view, dtype=[("length", ">i4"), ("value", element.wire)], count=count, offset=start)
        if not (table["length"] == width).all():
            raise ArrayMismatch(f"a {element.sql_type} element is not {width} bytes long")
        return _checked(element, table["value"]), None
    return _decode_elements(element, view, start, count, vocabulary)


def _binary(value: object) -> bytes | bytearray | memoryview:
    """A value as the driver handed it over: the raw bytes of an array type pgstress registered, or (a column of
    another type) whatever the driver made of it, which is not what was written."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ArrayMismatch(f"a value came back as {type(value).__name__}, not a binary array of a type pgstress"
                            " writes (a column of another type?)")
    return value


def _native(element: ElementType) -> np.dtype[np.generic]:
    if element.wire is None:
        return np.dtype(np.int32)
    return np.dtype(bool) if element is BOOL else np.dtype(element.wire).newbyteorder("=")


def _checked(element: ElementType, values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    if element is BOOL:
        if (np.asarray(values, dtype=np.uint8) > 1).any():
            raise ArrayMismatch("a boolean element is neither 0 nor 1")
        return values.astype(bool)
    return values.astype(_native(element))


def _decode_elements(element: ElementType, view: memoryview, at: int, count: int, vocabulary: Sequence[str]
                     ) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.bool_] | None]:
    """Element by element: text, or fixed-width elements among NULLs (where each value starts depends on the
    NULLs before it)."""
    nulls = np.zeros(count, dtype=bool)
    starts = np.zeros(count, dtype=np.intp)
    words = {word.encode(): index for index, word in enumerate(vocabulary)}
    indices = np.zeros(count, dtype=np.int32)
    width = None if element.wire is None else element.width
    end = len(view)
    for i in range(count):
        if at + 4 > end:
            raise ArrayMismatch(f"the array ends inside element {i}")
        length = int.from_bytes(view[at:at + 4], "big", signed=True)
        at += 4
        if length == NULL_LENGTH:
            nulls[i] = True
            continue
        if length < 0 or at + length > end or (width is not None and length != width):
            raise ArrayMismatch(f"element {i} has length {length}")
        if width is None:
            found = words.get(bytes(view[at:at + length]))
            if found is None:
                raise ArrayMismatch(f"element {i} is a string outside the vocabulary")
            indices[i] = found
        starts[i] = at
        at += length
    if at != end:
        raise ArrayMismatch(f"{end - at} bytes after the array's last element")
    if width is None:
        return indices, nulls
    assert element.wire is not None
    values = np.zeros(count, dtype=element.wire)
    present = ~nulls
    raw = np.frombuffer(view, dtype=np.uint8)
    values[present] = raw[starts[present, None] + np.arange(width)].copy().view(element.wire).reshape(-1)
    return _checked(element, values), nulls


def framed(values: Sequence[bytes | bytearray | memoryview | None]) -> bytearray:
    """Several values as fields: each its int32 length (-1: NULL) and its bytes."""
    out = bytearray()
    for value in values:
        if value is None:
            out += _LENGTH.pack(NULL_LENGTH)
        else:
            out += _LENGTH.pack(len(_binary(value)))
            out += value
    return out


def fields_of(data: bytes | bytearray | memoryview, count: int) -> list[memoryview | None]:
    """The `count` fields of `framed` data, as views of it (None: NULL); raises ArrayMismatch when it does not
    hold exactly that many."""
    view = memoryview(data).cast("B")
    found: list[memoryview | None] = []
    at = 0
    for i in range(count):
        if at + 4 > len(view):
            raise ArrayMismatch(f"{i} fields where {count} were expected")
        (length,) = _LENGTH.unpack_from(view, at)
        at += 4
        if length == NULL_LENGTH:
            found.append(None)
            continue
        if length < 0 or at + length > len(view):
            raise ArrayMismatch(f"field {i} of length {length} does not fit")
        found.append(view[at:at + length])
        at += length
    if at != len(view):
        raise ArrayMismatch(f"{len(view) - at} bytes after the last of {count} fields")
    return found
