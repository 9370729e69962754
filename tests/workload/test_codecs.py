"""The codecs' bytes are exactly the format's, whatever the chunking, and decode back to the epochs."""

from __future__ import annotations

from itertools import pairwise

import bson
import orjson
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from pgstress.run.measure import StageClock
from pgstress.run.record import decode_and_verify, encode_epochs
from pgstress.workload.epochs import BOOL_KEYS, EPOCH_KEYS, FLOAT_KEYS, generate
from pgstress.workload.payloads import CodecOptions, get_codec
from pgstress.workload.payloads.ndjson_zstd_codec import compression_params

_INT_KEYS = [key for key in EPOCH_KEYS if key not in BOOL_KEYS and key not in FLOAT_KEYS]
_epoch = st.fixed_dictionaries(
    {
        key: st.booleans() if key in BOOL_KEYS
        else st.floats(allow_nan=False, allow_infinity=False) if key in FLOAT_KEYS
        else st.integers(0, 100)
        for key in EPOCH_KEYS
    }
)  # fmt: skip
_epochs = st.lists(_epoch, max_size=40)
_cuts = st.lists(st.integers(0, 40), max_size=6)


def _chunked(epochs: list[dict], cuts: list[int]) -> list[list[dict]]:
    """Split epochs at the given offsets (empty chunks included: codecs must not mind)."""
    bounds = sorted({0, len(epochs), *(min(cut, len(epochs)) for cut in cuts)})
    chunks = [epochs[a:b] for a, b in pairwise(bounds)]
    return [[], *chunks, []]


def _decoded(name: str, data: bytes | bytearray) -> list[dict]:
    return [epoch for chunk in get_codec(name).decode_stream(data) for epoch in chunk]


@settings(max_examples=60, deadline=None)
@given(_epochs, _cuts)
def test_bson_is_one_bson_encode_of_the_whole_document(epochs: list[dict], cuts: list[int]) -> None:
    data = get_codec("bson").encode_stream(_chunked(epochs, cuts))
    assert bytes(data) == bson.encode({"epochs": epochs})
    assert _decoded("bson", data) == epochs


@settings(max_examples=60, deadline=None)
@given(_epochs, _cuts)
def test_jsonb_text_is_one_orjson_dumps_of_the_whole_document(epochs: list[dict], cuts: list[int]) -> None:
    data = get_codec("jsonb").encode_stream(_chunked(epochs, cuts))
    assert bytes(data) == orjson.dumps({"epochs": epochs})
    assert _decoded("jsonb", data) == epochs


@settings(max_examples=60, deadline=None)
@given(_epochs, _cuts, st.integers(1, 5))
def test_ndjson_zstd_is_one_frame_of_one_orjson_line_per_epoch(epochs: list[dict], cuts: list[int], level: int) -> None:
    data = get_codec("ndjson_zstd", CodecOptions(zstd_level=level)).encode_stream(_chunked(epochs, cuts))
    text = zstandard.ZstdDecompressor().decompressobj().decompress(bytes(data))
    assert text == b"".join(orjson.dumps(epoch) + b"\n" for epoch in epochs)
    assert _decoded("ndjson_zstd", data) == epochs


def test_ndjson_zstd_bytes_do_not_depend_on_the_worker_count() -> None:
    lines = [b"".join(orjson.dumps(e) + b"\n" for e in chunk.as_dicts()) for chunk in generate(30_000, 3)]
    outputs = set()
    for threads in (1, 2, 3):
        compressor = zstandard.ZstdCompressor(compression_params=compression_params(3, threads)).compressobj()
        outputs.add(b"".join([*(compressor.compress(text) for text in lines), compressor.flush()]))
    assert len(outputs) == 1
    reference = get_codec("ndjson_zstd").encode_stream(chunk.as_dicts() for chunk in generate(30_000, 3))
    assert outputs == {bytes(reference)}


def test_same_seed_and_options_give_the_same_bytes_and_another_seed_does_not() -> None:
    for name in ("bson", "jsonb", "ndjson_zstd", "pgarrays"):
        codec = get_codec(name)
        first = encode_epochs(codec, generate(25_000, 7, (2,)), StageClock())
        again = encode_epochs(codec, generate(25_000, 7, (2,)), StageClock())
        other = encode_epochs(codec, generate(25_000, 8, (2,)), StageClock())
        assert first.data == again.data and first.content_hash == again.content_hash
        assert first.data != other.data and first.content_hash != other.content_hash
        assert first.epochs == 25_000
        clock = StageClock()
        assert decode_and_verify(codec, memoryview(first.data), first, clock) == 25_000
        assert clock.get("decode") > 0 and clock.get("verify") > 0


def test_generated_dicts_hold_the_table_values_in_key_order() -> None:
    for chunk in generate(12_345, 5):
        epochs = chunk.as_dicts()
        assert all(tuple(epoch) == EPOCH_KEYS for epoch in epochs)
        assert [tuple(epoch.values()) for epoch in epochs] == chunk.table.tolist()
        assert {type(epochs[0][key]) for key in BOOL_KEYS} == {bool}
        assert {type(epochs[0][key]) for key in _INT_KEYS} == {int}
        assert {type(epochs[0][key]) for key in FLOAT_KEYS} == {float}
