"""jsonb: one JSON document {"epochs": [...]} sent as UTF-8 text to a JSONB column (orjson).

Encoded chunk by chunk, byte-identical to `orjson.dumps({"epochs": epochs})`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from pgstress.workload.epochs import Epoch
from pgstress.workload.payloads import Codec, register


@register
class JsonbCodec(Codec):
    name = "jsonb"
    column_type = "JSONB"
    returns_bytes_sent = False

    def encode_stream(self, chunks: Iterable[list[Epoch]]) -> bytearray:
        out = bytearray(b'{"epochs":[')
        first = True
        for epochs in chunks:
            if not epochs:
                continue
            if not first:
                out += b","
            out += memoryview(orjson.dumps(epochs))[1:-1]
            first = False
        out += b"]}"
        return out

    def decode_stream(self, data: bytes | bytearray | memoryview) -> Iterator[list[Epoch]]:
        yield orjson.loads(data)["epochs"]
