"""--epoch-template: the shape inferred from a sample of epochs, and every sample that is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgstress.workload import template
from pgstress.workload.shape import BOOL, FLOAT, INT, STRING
from pgstress.workload.template import TemplateRefused, load_template


def _write(tmp_path: Path, text: str | bytes, name: str = "sample.jsonl") -> str:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return str(path)


SAMPLE = [
    {"zeta": 3, "ratio": 0.125, "ok": True, "side": "long", "maybe": None, "alpha": -1.5},
    {"zeta": -7, "ratio": 0.5, "ok": False, "side": "short", "maybe": 12, "alpha": 2.25},
    {"zeta": 40, "ratio": 1.0, "ok": True, "side": "long", "maybe": None, "alpha": 0.1},
    {"zeta": 0, "ratio": 0.0625, "ok": True, "side": None, "maybe": 5, "alpha": 0.333},
]


@pytest.mark.parametrize("layout", ["lines", "array"])
def test_each_type_its_range_decimals_and_null_share_in_the_sample_order(tmp_path: Path, layout: str) -> None:
    text = "\n".join(json.dumps(epoch) for epoch in SAMPLE) + "\n\n" if layout == "lines" else json.dumps(SAMPLE)
    shape = load_template(_write(tmp_path, text))
    assert shape.names == ("zeta", "ratio", "ok", "side", "maybe", "alpha")  # the sample's order, not sorted
    keys = {key.name: key for key in shape.keys}
    assert (keys["zeta"].kind, keys["zeta"].low, keys["zeta"].high, keys["zeta"].null_share) == (INT, -7, 40, 0)
    ratio = keys["ratio"]
    assert (ratio.kind, ratio.low, ratio.high, ratio.decimals) == (FLOAT, 0.0625, 1.0, 4)
    assert (keys["alpha"].kind, keys["alpha"].decimals) == (FLOAT, 3)
    assert (keys["ok"].kind, keys["ok"].true_share) == (BOOL, 0.75)
    assert (keys["side"].kind, keys["side"].vocabulary, keys["side"].weights) == (STRING, ("long", "short"),
                                                                                  (2 / 3, 1 / 3))
    assert keys["side"].null_share == 0.25
    assert (keys["maybe"].kind, keys["maybe"].null_share, keys["maybe"].low, keys["maybe"].high) == (INT, 0.5, 5, 12)
    assert shape.template_epochs == 4 and shape.source == "sample.jsonl" and len(shape.template_sha256 or "") == 64
    assert "sample.jsonl (6 keys" in shape.describe()


def test_full_precision_floats_stay_full_precision_and_float_decimals_overrides(tmp_path: Path) -> None:
    shape = load_template(_write(tmp_path, '{"x": 0.12345678901234566}\n{"x": 0.5}\n'))
    assert shape.keys[0].decimals is None
    assert shape.with_float_decimals(2).keys[0].decimals == 2
    assert "floats rounded to 2 decimals" in shape.with_float_decimals(2).describe()


def test_only_the_first_epochs_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template, "MAX_TEMPLATE_EPOCHS", 3)
    shape = load_template(_write(tmp_path, "".join(f'{{"n": {n}}}\n' for n in range(10)) + "not json\n"))
    assert (shape.template_epochs, shape.keys[0].high) == (3, 2)


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "holds no epochs"),
    ("\n  \n", "holds no epochs"),
    ("[]", "holds no epochs"),
    ('{"a": 1}\n{"a": {"b": 2}}\n', "line 2, key 'a': an object"),
    ('[{"a": 1}, {"a": [1, 2]}]', "element 2, key 'a': an array"),
    ('{"a": 1}\n{"a": 1.5}\n', "line 2, key 'a': a float where line 1 has an int"),
    ('{"a": true}\n{"a": 1}\n', "line 2, key 'a': an int where line 1 has a bool"),
    ('{"a": "x"}\n{"a": 2.0}\n', "line 2, key 'a': a float where line 1 has a string"),
    ('{"a\\u0000b": 1}\n', "line 1, key 'a\\x00b': its name holds a NUL character"),
    ('{"a": "x\\u0000"}\n', "line 1, key 'a': its value holds a NUL character"),
    ('{"a": "\\ud800"}\n', "line 1, key 'a': its value holds a lone surrogate"),
    ('{"\\udc00": 1}\n', "its name holds a lone surrogate"),
    ('{"a": null}\n{"a": null}\n', "line 2, key 'a': null in every epoch"),
    ('{"a": 1, "b": 2}\n{"a": 1}\n', "line 2, key 'b': missing (line 1 has it"),
    ('{"a": 1}\n{"a": 1, "c": 2}\n', "line 2, key 'c': not in line 1"),
    ('{"a": 1, "a": 2}\n', "line 1: key 'a' is given twice"),
    ('{"a": NaN}\n', "line 1: NaN is not JSON"),
    ('{"a": 1e999}\n', "line 1, key 'a': inf is not a finite number"),
    ('{"a": 1}\n[1]\n', "line 2: not a JSON object"),
    ('{"a": 1}\n{}\n', "line 2: an empty object"),
    ('{"a": 1}\n{"a": \n', "line 2: Expecting value"),
    ('{"a": 9223372036854775808}\n', "line 1, key 'a': 9223372036854775808 is outside the 64-bit"),
    ('{"a": 1e16}\n', "line 1, key 'a': 1e+16 is 1e+15 or more"),
    ("".join(f'{{"s": "w{n}"}}\n' for n in range(300)), "line 257, key 's': more than 256 distinct strings"),
], ids=lambda value: value if len(value) < 30 else value[:30])  # fmt: skip
def test_a_template_that_cannot_be_used_is_refused_naming_line_and_key(tmp_path: Path, text: str,
                                                                       fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TemplateRefused) as refused:
        load_template(path)
    message = str(refused.value)
    assert message.startswith(f"--epoch-template {path}")
    assert fragment in message and "\n" not in message


def test_non_utf8_and_too_large_and_unreadable_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TemplateRefused, match="line 2: not UTF-8"):
        load_template(_write(tmp_path, b'{"a": 1}\n{"a": "\xff"}\n'))
    monkeypatch.setattr(template, "MAX_TEMPLATE_BYTES", 20)
    with pytest.raises(TemplateRefused, match="larger than"):
        load_template(_write(tmp_path, '{"a": 1}\n' * 5))
    with pytest.raises(TemplateRefused, match="cannot be read"):
        load_template(str(tmp_path / "absent.jsonl"))
