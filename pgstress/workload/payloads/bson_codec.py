"""bson: one BSON document {"epochs": [...]} in a BYTEA column (pymongo's bson).

Encoded chunk by chunk, byte-identical to `bson.encode({"epochs": epochs})`: a BSON array is a
document whose keys are "0", "1", ..., so each chunk is encoded as such a document and its
elements are spliced into the array. Only one encoded copy plus one chunk of dicts is alive.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import bson
from bson.errors import InvalidBSON

from pgstress.workload.epochs import Epoch
from pgstress.workload.payloads import Codec, register

_INT32 = struct.Struct("<i")
_ARRAY_ELEMENT_HEAD = b"\x04epochs\x00"


@register
class BsonCodec(Codec):
    name = "bson"
    column_type = "BYTEA"

    def encode_stream(self, chunks: Iterable[list[Epoch]]) -> bytearray:
        out = bytearray(_INT32.size)  # document length, patched at the end
        out += _ARRAY_ELEMENT_HEAD
        array_at = len(out)
        out += bytes(_INT32.size)  # array length, patched at the end
        index = 0
        for epochs in chunks:
            as_document = bson.encode({str(index + i): epoch for i, epoch in enumerate(epochs)})
            out += memoryview(as_document)[_INT32.size : -1]
            index += len(epochs)
        out += b"\x00"  # end of array
        _INT32.pack_into(out, array_at, len(out) - array_at)
        out += b"\x00"  # end of document
        _INT32.pack_into(out, 0, len(out))
        return out

    def decode_stream(self, data: bytes | bytearray | memoryview) -> Iterator[list[Epoch]]:
        try:
            document = bson.decode(data)
        except InvalidBSON as exc:
            if not str(exc):
                # pymongo's C decoder re-raises any error as InvalidBSON(str(error)); a failed allocation
                # (MemoryError, whose text is empty) is the one that leaves it empty (measured under ulimit -v)
                raise MemoryError("bson could not allocate the decoded document") from exc
            raise
        yield document["epochs"]
