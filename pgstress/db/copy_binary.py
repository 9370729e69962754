"""PostgreSQL's binary wire forms the drivers share: one record as a binary COPY stream, binary jsonb, and the
payload columns of a record read back as fields.

A binary COPY stream is the file header, one tuple, the trailer, with the payload in chunks: both
drivers' `--write-method copy` send exactly this, and the payload itself is never copied whole.
Binary jsonb is a format version byte followed by the JSON text, in both directions.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

from pgstress.db.array_binary import ArrayMismatch, framed
from pgstress.workload.payloads import EncodedPayload, VerifyError

COPY_CHUNK_BYTES = 1024 * 1024
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)  # signature, flags, no header extension
COPY_TRAILER = struct.pack("!h", -1)
JSONB_VERSION = b"\x01"


def binary_copy_frame(payload: EncodedPayload, jsonb: bool) -> tuple[bytes, bytes]:
    """What goes before and after the payload bytes in a one-tuple binary COPY stream.

    Before: the file header, the tuple's field count and the payload's length (jsonb's binary
    input is a version byte followed by the JSON text); a payload of several columns' fields carries
    their lengths itself. After: the epochs and content_hash fields and the end-of-data trailer.
    """
    content_hash = payload.content_hash.encode()
    if payload.fields:  # the payload is already its columns' fields, each its length and bytes (pgarrays)
        head = COPY_SIGNATURE + struct.pack("!h", payload.fields + 2)
    else:
        prefix = JSONB_VERSION if jsonb else b""
        head = COPY_SIGNATURE + struct.pack("!hi", 3, len(prefix) + payload.size) + prefix
    tail = struct.pack("!iii", 4, payload.epochs, len(content_hash)) + content_hash + COPY_TRAILER
    return head, tail


def binary_copy_chunks(payload: EncodedPayload, jsonb: bool) -> Iterator[bytes | memoryview]:
    """The whole COPY stream for one record: header, payload slices of COPY_CHUNK_BYTES, the rest."""
    head, tail = binary_copy_frame(payload, jsonb)
    yield head
    view = memoryview(payload.data)
    try:
        for start in range(0, len(view), COPY_CHUNK_BYTES):
            yield view[start : start + COPY_CHUNK_BYTES]
    finally:
        view.release()
    yield tail


def jsonb_text(binary: memoryview) -> memoryview:
    """The JSON text of a binary jsonb value; a version this code does not know is not what was written."""
    if binary[:1] != JSONB_VERSION:
        raise VerifyError(f"unknown binary jsonb version {bytes(binary[:1])!r}")
    return binary[1:]


def framed_as_read(values: Sequence[object]) -> bytearray:
    """The payload columns' values a driver read, as the fields they were sent as (array_binary.framed); a value
    that is no binary array (a column of another type, which the driver decoded) is not what was written."""
    try:
        return framed(values)  # type: ignore[arg-type]  # checked inside: anything else raises ArrayMismatch
    except ArrayMismatch as exc:
        raise VerifyError(str(exc)) from exc
