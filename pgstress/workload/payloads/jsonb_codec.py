"""jsonb: one JSON document {"epochs": [...]} sent as UTF-8 text to a JSONB column (orjson).

Encoded chunk by chunk, byte-identical to `orjson.dumps({"epochs": epochs})`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from pgstress.workload.epochs import Epoch
from pgstress.workload.payloads import Codec, VerifyError, register


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
        document = orjson.loads(data)
        # the whole document is verified, not only what pgstress reads of it: a key the server added is a fault
        if type(document) is not dict or document.keys() != {"epochs"} or type(document["epochs"]) is not list:
            shape = sorted(document) if type(document) is dict else type(document).__name__
            raise VerifyError(f'the document read back is not {{"epochs": [...]}} (keys: {shape})')
        yield document["epochs"]
