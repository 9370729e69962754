"""The client's side of each access, per format, shared by both modes: what is sent, and how what comes back is
decoded into the window, the metric or the whole record. The drivers' calls are in run/access_sync.py and
run/access_async.py; the SQL in db/access_sql.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from pgstress.db.access_sql import FRAME_APPEND, JSONB_APPEND, append_kind, reads_part_on_server
from pgstress.run.access import APPEND, METRIC, RANGE, RecordTruth
from pgstress.workload.epochs import Epoch
from pgstress.workload.payloads import Codec, VerifyError
from pgstress.workload.payloads.pgarrays_codec import ARRAYS_FORMAT


def how_done(payload_format: str, accesses: tuple[str, ...]) -> dict[str, str]:
    """How each access asked is done for a format, in words (for the report, beside the numbers)."""
    if payload_format == ARRAYS_FORMAT:
        arrays = {RANGE: "array slices col[a:b] of every column on the server",
                  METRIC: "the metric's own array column alone",
                  APPEND: "col = col || new per column on the server (each whole array written again)"}
        return {name: text for name, text in arrays.items() if name in accesses}
    if reads_part_on_server(payload_format):
        part = {RANGE: "jsonpath slice on the server", METRIC: "jsonpath of the metric on the server"}
    else:
        part = {RANGE: "whole value fetched and decoded", METRIC: "whole value fetched and decoded"}
    appends = {JSONB_APPEND: "jsonb_set on the server", FRAME_APPEND: "new zstd frame concatenated on the server"}
    how = {**part, APPEND: appends.get(append_kind(payload_format),
                                       "whole value fetched, decoded, extended, re-encoded and rewritten")}
    return {name: text for name, text in how.items() if name in accesses}


def decoded_epochs(codec: Codec, value: bytes | bytearray | memoryview) -> Iterator[list[Epoch]]:
    """The codec's decoded chunks; a value that does not decode is not what was written."""
    chunks = codec.decode_stream(value)
    while True:
        try:
            chunk = next(chunks, None)
        except MemoryError:
            raise
        except Exception as exc:  # each codec raises its own kind
            raise VerifyError(f"what was read back cannot be decoded: {type(exc).__name__}: {exc}") from exc
        if chunk is None:
            return
        yield chunk


def window_of(codec: Codec, value: bytes | bytearray | memoryview, truth: RecordTruth) -> list[Epoch]:
    """The window out of a whole value, decoded chunk by chunk: only the window's epochs are kept."""
    first, count = truth.window_first, truth.window_count
    got: list[Epoch] = []
    start = 0
    for chunk in decoded_epochs(codec, value):
        got.extend(chunk[max(0, first - start):max(0, first + count - start)])
        start += len(chunk)
    return got


def metric_of(codec: Codec, value: bytes | bytearray | memoryview, key: str) -> list[object]:
    """One metric of every epoch out of a whole value, decoded chunk by chunk."""
    values: list[object] = []
    for chunk in decoded_epochs(codec, value):
        try:
            values.extend([epoch[key] for epoch in chunk])
        except (KeyError, TypeError) as exc:
            raise VerifyError(f"a decoded epoch has no metric {key!r}") from exc
    return values


def server_part(jsonb_text: bytes | bytearray | memoryview) -> list[Any]:
    """The jsonb array a jsonpath selected, as Python objects (a value that is no JSON array is not what was
    written)."""
    try:
        part = orjson.loads(jsonb_text)
    except orjson.JSONDecodeError as exc:
        raise VerifyError(f"what was read back cannot be decoded: {exc}") from exc
    if not isinstance(part, list):
        raise VerifyError("the jsonpath's result is not an array")
    return part


def appended_part(codec: Codec, truth: RecordTruth) -> bytes | bytearray:
    """What a server-side append sends: the JSON array of the new epochs (jsonb), or their own zstd frame."""
    added = truth.appended.as_dicts()
    if append_kind(codec.name) == JSONB_APPEND:
        return orjson.dumps(added)
    return codec.encode_stream([added])  # ndjson_zstd: a frame of its own; decoders read frames in a row


def rewritten(codec: Codec, value: bytes | bytearray | memoryview, truth: RecordTruth) -> bytes | bytearray:
    """The whole record decoded, extended by the new epochs and encoded again (a format the server cannot grow)."""
    whole = [epoch for chunk in decoded_epochs(codec, value) for epoch in chunk]
    whole.extend(truth.appended.as_dicts())
    return codec.encode_stream([whole])
