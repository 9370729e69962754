"""Every epoch shape (rounded floats, a template's keys, nulls, strings) is encoded byte for byte as the libraries
encode it, is the same for the same seed, and verifies back; a corrupted value does not."""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal

import bson
import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from pgstress.run.measure import StageClock
from pgstress.run.record import decode_and_verify, encode_record
from pgstress.workload.epochs import DEFAULT_SHAPE, FLOAT_KEYS, generate
from pgstress.workload.payloads import VerifyError, get_codec
from pgstress.workload.shape import BOOL, FLOAT, INT, STRING, EpochShape, KeyShape

FORMATS = ("bson", "jsonb", "ndjson_zstd")
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6)


@st.composite
def _key(draw: st.DrawFn, name: str) -> KeyShape:
    kind = draw(st.sampled_from((INT, FLOAT, BOOL, STRING)))
    null_share = draw(st.sampled_from((0.0, 0.1, 0.5, 0.95)))
    if kind == INT:
        low, high = sorted(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=2, max_size=2)))
        return KeyShape(name, INT, low, high, null_share=null_share)
    if kind == FLOAT:
        low, high = sorted(draw(st.lists(st.floats(-1e9, 1e9), min_size=2, max_size=2)))
        decimals = draw(st.one_of(st.none(), st.integers(0, 10)))
        return KeyShape(name, FLOAT, low, high, decimals=decimals, null_share=null_share)
    if kind == BOOL:
        return KeyShape(name, BOOL, true_share=draw(st.one_of(st.none(), st.floats(0, 1))), null_share=null_share)
    vocabulary = tuple(draw(st.lists(st.one_of(_text, st.just("},{")), min_size=1, max_size=5, unique=True)))
    raw = [draw(st.integers(1, 9)) for _ in vocabulary]
    weights = tuple(count / sum(raw) for count in raw)
    return KeyShape(name, STRING, vocabulary=vocabulary, weights=weights, null_share=null_share)


@st.composite
def _shapes(draw: st.DrawFn) -> EpochShape:
    names = draw(st.lists(st.one_of(_text, st.just("a},{b"), st.just("$x.y")), min_size=1, max_size=6, unique=True))
    shape = EpochShape(tuple(draw(_key(name)) for name in names), source="drawn.jsonl", template_epochs=1)
    return shape.with_float_decimals(draw(st.one_of(st.none(), st.integers(0, 6))))


def _epochs(shape: EpochShape, epochs: int, seed: int) -> list[dict]:
    return [epoch for chunk in generate(epochs, seed, (1,), shape) for epoch in chunk.as_dicts()]


def _assert_library_bytes(shape: EpochShape, epochs: int, seed: int) -> None:
    expected = _epochs(shape, epochs, seed)
    for name in FORMATS:
        payload = encode_record(get_codec(name), epochs, seed, (1,), StageClock(), shape)
        if name == "bson":
            assert bytes(payload.data) == bson.encode({"epochs": expected})
        elif name == "jsonb":
            assert bytes(payload.data) == orjson.dumps({"epochs": expected})
        else:
            text = zstandard.ZstdDecompressor().decompressobj().decompress(bytes(payload.data))
            assert text == b"".join(orjson.dumps(epoch) + b"\n" for epoch in expected)
        assert decode_and_verify(get_codec(name), memoryview(payload.data), payload, StageClock(), shape) == epochs


@settings(max_examples=40, deadline=None)
@given(_shapes(), st.integers(0, 60), st.integers(0, 2**32))
def test_any_shape_is_encoded_as_the_libraries_encode_it_and_verifies(shape: EpochShape, epochs: int,
                                                                      seed: int) -> None:
    _assert_library_bytes(shape, epochs, seed)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 15), st.integers(0, 2**32))
def test_rounded_default_floats_are_the_libraries_bytes_with_at_most_n_decimals(decimals: int, seed: int) -> None:
    shape = DEFAULT_SHAPE.with_float_decimals(decimals)
    _assert_library_bytes(shape, 300, seed)
    full = _epochs(DEFAULT_SHAPE, 300, seed)
    for rounded, exact in zip(_epochs(shape, 300, seed), full, strict=True):
        assert list(rounded) == list(exact)  # the same keys in the same order, the same non-float values
        for key in rounded:
            if key not in FLOAT_KEYS:
                assert rounded[key] == exact[key]
                continue
            value = rounded[key]
            assert type(value) is float and math.copysign(1, value) == 1  # never -0.0
            assert abs(value - exact[key]) <= 0.5 * 10**-decimals + 1e-15
            assert -Decimal(repr(value)).normalize().as_tuple().exponent <= max(decimals, 0) or value == 0


def test_the_default_shape_draws_todays_values() -> None:
    """The default run keeps its bytes: the sha-256 of each format's value, recorded before shapes existed."""
    digests = {name: hashlib.sha256(encode_record(get_codec(name), 25_000, 42, (3,), StageClock()).data).hexdigest()
               for name in FORMATS}
    assert {name: digest[:16] for name, digest in digests.items()} == {
        "bson": "b9ea1a106f9faa09", "jsonb": "66873dbb4b8b5895", "ndjson_zstd": "4c3d02d3606b346a"}
    assert encode_record(get_codec("bson"), 25_000, 42, (3,), StageClock()).content_hash == \
        "048920792a0557b9481e30e41cd12b47"


def _template_shape() -> EpochShape:
    return EpochShape((
        KeyShape("run", INT, -5, 5), KeyShape("ratio", FLOAT, -1.0, 1.0, decimals=3, null_share=0.3),
        KeyShape("flag", BOOL, true_share=0.9, null_share=0.2),
        KeyShape("side", STRING, vocabulary=("long", "short", "flat"), weights=(0.5, 0.3, 0.2), null_share=0.25),
    ), source="sample.jsonl", template_epochs=10)  # fmt: skip


def test_same_seed_and_shape_give_the_same_bytes_on_any_machine() -> None:
    """Fixed digests: numpy's seeded generator and IEEE-754 rounding give these bytes everywhere."""
    shapes = {"rounded": DEFAULT_SHAPE.with_float_decimals(4), "template": _template_shape()}
    digests = {}
    for label, shape in shapes.items():
        for name in FORMATS:
            first = encode_record(get_codec(name), 20_000, 42, (1,), StageClock(), shape)
            again = encode_record(get_codec(name), 20_000, 42, (1,), StageClock(), shape)
            other = encode_record(get_codec(name), 20_000, 43, (1,), StageClock(), shape)
            assert first.data == again.data and first.data != other.data
            digests[label, name] = hashlib.sha256(first.data).hexdigest()[:16]
    assert digests == GOLDEN


GOLDEN = {
    ("rounded", "bson"): "b997505e102f8df8", ("rounded", "jsonb"): "4eddd4cf7789bae4",
    ("rounded", "ndjson_zstd"): "d84d9da1eda103d4", ("template", "bson"): "9ccc13c664425e65",
    ("template", "jsonb"): "28b4bfe967838e57", ("template", "ndjson_zstd"): "cb7a8fa9e51280a0",
}  # fmt: skip


def test_template_values_are_fresh_nulls_and_strings_in_their_shares() -> None:
    epochs = _epochs(_template_shape(), 20_000, 7)
    assert all(list(epoch) == ["run", "ratio", "flag", "side"] for epoch in epochs)
    share = {key: sum(epoch[key] is None for epoch in epochs) / len(epochs) for key in ("ratio", "flag", "side")}
    assert share == pytest.approx({"ratio": 0.3, "flag": 0.2, "side": 0.25}, abs=0.02)
    assert {epoch["run"] for epoch in epochs} == set(range(-5, 6))
    sides = [epoch["side"] for epoch in epochs if epoch["side"] is not None]
    assert sides.count("long") / len(sides) == pytest.approx(0.5, abs=0.02)
    flags = [epoch["flag"] for epoch in epochs if epoch["flag"] is not None]
    assert sum(flags) / len(flags) == pytest.approx(0.9, abs=0.02)
    ratios = [epoch["ratio"] for epoch in epochs if epoch["ratio"] is not None]
    assert min(ratios) >= -1 and max(ratios) <= 1 and len(set(ratios)) > 1500  # 2001 values of 3 decimals


def _jsonb_with(shape: EpochShape, change: object) -> tuple[bytes, object]:
    payload = encode_record(get_codec("jsonb"), 500, 42, (1,), StageClock(), shape)
    document = orjson.loads(payload.data)
    change(document["epochs"])  # type: ignore[operator]
    return orjson.dumps(document), payload


def _set(index: int, key: str, value: object):  # type: ignore[no-untyped-def]
    def change(epochs: list[dict]) -> None:
        epochs[index][key] = value
    return change


@pytest.mark.parametrize(("change", "reason"), [
    (_set(3, "side", "corrupt"), "not in its vocabulary"),
    (_set(3, "run", None), "came back as NoneType"),
    (_set(3, "run", 1.0), "came back as float"),
    (_set(3, "ratio", 0.0001234), "content hash differs"),
    (_set(3, "ratio", "0.5"), "came back as str"),
], ids=["unknown-string", "null-where-never", "float-for-int", "changed-float", "string-for-float"])  # fmt: skip
def test_a_corrupted_jsonb_value_of_any_shape_fails_verification(change: object, reason: str) -> None:
    shape = _template_shape()
    data, payload = _jsonb_with(shape, lambda epochs: None)
    assert decode_and_verify(get_codec("jsonb"), data, payload, StageClock(), shape) == 500
    data, payload = _jsonb_with(shape, change)
    with pytest.raises(VerifyError, match=reason):
        decode_and_verify(get_codec("jsonb"), data, payload, StageClock(), shape)


def test_swapped_nulls_and_strings_in_jsonb_fail_verification() -> None:
    shape = _template_shape()
    payload = encode_record(get_codec("jsonb"), 500, 42, (1,), StageClock(), shape)
    epochs = orjson.loads(payload.data)["epochs"]
    at = next(i for i, epoch in enumerate(epochs) if epoch["side"] is not None)
    epochs[at]["side"] = None  # a null where a string was: still a value of the key's type, but not the one written
    with pytest.raises(VerifyError, match="content hash differs"):
        decode_and_verify(get_codec("jsonb"), orjson.dumps({"epochs": epochs}), payload, StageClock(), shape)
    other = next(word for word in ("long", "short") if word != epochs[at + 1]["side"])
    epochs[at]["side"], epochs[at + 1]["side"] = epochs[at + 1]["side"], other
    with pytest.raises(VerifyError):
        decode_and_verify(get_codec("jsonb"), orjson.dumps({"epochs": epochs}), payload, StageClock(), shape)


@pytest.mark.parametrize("name", ["bson", "ndjson_zstd"])
def test_a_corrupted_byte_of_a_templated_value_fails_verification(name: str) -> None:
    shape = _template_shape()
    payload = encode_record(get_codec(name), 500, 42, (1,), StageClock(), shape)
    data = bytearray(payload.data)
    data[len(data) // 2] ^= 0x01
    with pytest.raises(VerifyError):
        decode_and_verify(get_codec(name), data, payload, StageClock(), shape)
