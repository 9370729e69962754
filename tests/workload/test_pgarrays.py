"""pgarrays: every shape's values come back exactly as the generator made them, the binary arrays are the bytes
PostgreSQL itself sends for the same values, and a record that differs in any way (an extra element, a changed
value, a NULL where there was none, another element type) does not verify."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import numpy as np
import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from pgstress.db.array_binary import (
    FLOAT8,
    INT4,
    INT8,
    TEXT,
    ArrayMismatch,
    decode_array,
    encode_array,
    fields_of,
    framed,
)
from pgstress.run.measure import StageClock
from pgstress.run.record import decode_and_verify, encode_record
from pgstress.workload.epochs import DEFAULT_SHAPE, generate
from pgstress.workload.payloads import CodecOptions, EncodedPayload, VerifyError, get_codec
from pgstress.workload.payloads.pgarrays_codec import PgArraysCodec, column_names, element_of
from pgstress.workload.shape import BOOL, FLOAT, INT, STRING, EpochShape, KeyShape
from tests.workload.test_shape import _shapes, _template_shape


def _codec(shape: EpochShape) -> PgArraysCodec:
    codec = get_codec("pgarrays", CodecOptions(shape=shape))
    assert isinstance(codec, PgArraysCodec)
    return codec


def _epochs(shape: EpochShape, epochs: int, seed: int) -> list[dict]:
    return [epoch for chunk in generate(epochs, seed, (1,), shape) for epoch in chunk.as_dicts()]


def _round_trip(shape: EpochShape, epochs: int, seed: int) -> EncodedPayload:
    """Encode the generator's record, decode it back: the very epochs, keys, types and nulls (orjson tells 1 from
    1.0 and true, and -0.0 from 0.0), and the record verifies."""
    codec = _codec(shape)
    payload = encode_record(codec, epochs, seed, (1,), StageClock(), shape)
    decoded = [epoch for chunk in codec.decode_stream(payload.data) for epoch in chunk]
    assert orjson.dumps(decoded) == orjson.dumps(_epochs(shape, epochs, seed))
    assert decode_and_verify(codec, memoryview(payload.data), payload, StageClock(), shape) == epochs
    assert payload.fields == len(shape.keys)
    assert payload.size == sum(len(field) for field in fields_of(payload.data, payload.fields) if field is not None)
    return payload


@settings(max_examples=40, deadline=None)
@given(_shapes(), st.integers(0, 60), st.integers(0, 2**32))
def test_any_templated_shape_round_trips_exactly(shape: EpochShape, epochs: int, seed: int) -> None:
    _round_trip(shape, epochs, seed)


@settings(max_examples=10, deadline=None)
@given(st.one_of(st.none(), st.integers(0, 15)), st.integers(0, 2**32))
def test_the_default_shape_and_its_rounded_floats_round_trip_exactly(decimals: int | None, seed: int) -> None:
    _round_trip(DEFAULT_SHAPE.with_float_decimals(decimals), 25_000, seed)


def test_a_template_of_ints_bools_strings_and_nulls_round_trips_over_several_chunks() -> None:
    payload = _round_trip(_template_shape(), 23_456, 5)
    assert [column.sql_type for column in _codec(_template_shape()).columns()] == [
        "INTEGER[]", "DOUBLE PRECISION[]", "BOOLEAN[]", "TEXT[]"]
    assert payload.size == len(payload.data) - 4 * 4


def test_columns_are_named_by_their_keys_unless_one_cannot_be() -> None:
    assert column_names(DEFAULT_SHAPE) == DEFAULT_SHAPE.names
    clash = EpochShape((KeyShape("id", INT, 0, 1), KeyShape("x", FLOAT, 0, 1)))
    long = EpochShape((KeyShape("é" * 32, INT, 0, 1), KeyShape("x", FLOAT, 0, 1)))
    alone = EpochShape((KeyShape("payload", FLOAT, 0, 1),))  # a one-value format's column: never pgarrays'
    assert column_names(clash) == column_names(long) == ("key_1", "key_2")
    assert column_names(alone) == ("key_1",) and _codec(alone).fields == 1
    assert element_of(KeyShape("big", INT, 0, 2**31)) is INT8 and element_of(KeyShape("i", INT, -(2**31), 5)) is INT4


# --- what PostgreSQL itself sends --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(embedded_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(embedded_dsn, autocommit=True) as conn:
        yield conn


def _assert_server_bytes(conn: psycopg.Connection, shape: EpochShape, epochs: int, seed: int) -> None:
    """Each column's binary array is what array_send gives for the same Python values, cast to the column's type."""
    codec = _codec(shape)
    payload = encode_record(codec, epochs, seed, (1,), StageClock(), shape)
    values = _epochs(shape, epochs, seed)
    fields = fields_of(payload.data, payload.fields)
    for field, key, column in zip(fields, shape.keys, codec.columns(), strict=True):
        assert field is not None
        python = [epoch[key.name] for epoch in values]
        (sent,) = conn.execute(sql.SQL("SELECT array_send(%s::{})").format(sql.SQL(column.sql_type)),
                               [python]).fetchone()  # type: ignore[misc]
        assert bytes(sent) == bytes(field), key


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_shapes(), st.integers(0, 40), st.integers(0, 2**32))
def test_the_arrays_are_the_bytes_postgresql_sends_for_the_same_values(server: psycopg.Connection,
                                                                        shape: EpochShape, epochs: int,
                                                                        seed: int) -> None:
    _assert_server_bytes(server, shape, epochs, seed)


def test_the_default_rounded_and_template_arrays_are_postgresqls_own(server: psycopg.Connection) -> None:
    for shape in (DEFAULT_SHAPE, DEFAULT_SHAPE.with_float_decimals(3), _template_shape()):
        _assert_server_bytes(server, shape, 5_000, 11)


# --- a record that differs does not verify -------------------------------------------------------------------------

def _verify(shape: EpochShape, data: bytes | bytearray, payload: EncodedPayload, by_bytes: bool = True) -> None:
    expected = payload if by_bytes else (payload.epochs, payload.content_hash)
    decode_and_verify(_codec(shape), memoryview(data), expected, StageClock(), shape)


def _replaced(payload: EncodedPayload, index: int, change: Callable[[bytes], bytes]) -> bytearray:
    fields = [bytes(field) if field is not None else None for field in fields_of(payload.data, payload.fields)]
    field = fields[index]
    assert field is not None
    fields[index] = change(field)
    return framed(fields)


SHAPE = _template_shape()  # run INTEGER[], ratio DOUBLE PRECISION[] (nulls), flag BOOLEAN[] (nulls), side TEXT[]


def _payload() -> EncodedPayload:
    return encode_record(_codec(SHAPE), 3_000, 9, (1,), StageClock(), SHAPE)


def _extra_element(field: bytes) -> bytes:
    count = struct.unpack_from("!i", field, 12)[0]
    return field[:12] + struct.pack("!i", count + 1) + field[16:] + struct.pack("!ii", 4, 3)


def _changed_value(field: bytes) -> bytes:
    return field[:-1] + bytes([field[-1] ^ 1])


def _null_first(field: bytes) -> bytes:  # the first element (4 bytes of int4) made NULL
    return field[:4] + struct.pack("!i", 1) + field[8:20] + struct.pack("!i", -1) + field[28:]


def _as_int8(field: bytes) -> bytes:  # the same ints as bigint[]
    values, _nulls = decode_array(INT4, field)
    return encode_array(INT8, values.astype(np.int64))


@pytest.mark.parametrize(("change", "message"), [
    (_extra_element, "arrays have different lengths"),
    (_changed_value, "content hash differs"),
    (_null_first, "holds a NULL"),
    (_as_int8, "element type OID 20"),
], ids=["extra element", "changed value", "null where none", "wrong type"])
@pytest.mark.parametrize("by_bytes", [True, False], ids=["by bytes", "by content"])
def test_a_record_that_differs_does_not_verify(change: Callable[[bytes], bytes], message: str,
                                               by_bytes: bool) -> None:
    """Read back whole (by its bytes' hash), and also by its decoded values alone (as after an append)."""
    payload = _payload()
    _verify(SHAPE, payload.data, payload, by_bytes)
    changed = _replaced(payload, 0, change)  # the `run` column, INTEGER[] without nulls
    with pytest.raises(VerifyError) as caught:
        _verify(SHAPE, changed, payload, by_bytes)
    if not by_bytes or change is not _changed_value:
        assert message in str(caught.value), caught.value


def test_a_missing_array_or_one_too_many_does_not_verify() -> None:
    payload = _payload()
    fields = fields_of(payload.data, payload.fields)
    for wrong in (framed(fields[:-1]), framed([*fields, fields[0]]), framed([None, *fields[1:]])):
        with pytest.raises(VerifyError, match=r"cannot be decoded|fields|NULL"):
            _verify(SHAPE, wrong, payload, by_bytes=False)


def test_arrays_that_are_not_the_expected_form_are_refused() -> None:
    floats = encode_array(FLOAT8, np.array([0.5, 1.5]))
    with pytest.raises(ArrayMismatch, match="first index is 0"):
        decode_array(FLOAT8, floats[:16] + struct.pack("!i", 0) + floats[20:])
    with pytest.raises(ArrayMismatch, match="bytes"):
        decode_array(FLOAT8, floats + b"\x00")
    text = encode_array(TEXT, np.array([0, 1]), vocabulary=("long", "short"))
    assert decode_array(TEXT, text, ("long", "short"))[0].tolist() == [0, 1]
    with pytest.raises(ArrayMismatch, match="outside the vocabulary"):
        decode_array(TEXT, text, ("long", "flat"))
    booleans = encode_array(element_of(KeyShape("b", BOOL)), np.array([True, False]))
    with pytest.raises(ArrayMismatch, match="neither 0 nor 1"):
        decode_array(element_of(KeyShape("b", BOOL)), booleans[:-1] + b"\x02")
    assert element_of(KeyShape("s", STRING, vocabulary=("a",), weights=(1.0,))) is TEXT
