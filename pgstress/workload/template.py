"""--epoch-template: the shape of a user's own epochs, inferred from a sample of them.

The sample is JSON lines (one flat object per line) or one JSON array of flat objects. Only its
shape is kept: each key's type (int, float, bool, or a string from a small vocabulary), the share
of nulls, the range of numbers, the decimals of floats, the share of true and the strings' own
frequencies. The run then draws fresh seeded values of that shape (workload/shape.py): the sample
itself is never sent, so compression sees no repeated epochs.

A sample that cannot give a shape every format can hold is refused with one line naming the line
(or array element) and the key.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from pgstress.workload.epochs import DEFAULT_SHAPE
from pgstress.workload.shape import BOOL, FLOAT, INT, MAX_DECIMALS, STRING, EpochShape, KeyShape

MAX_TEMPLATE_BYTES = 16 * 1024 * 1024
MAX_TEMPLATE_EPOCHS = 10_000  # the epochs read; later ones are ignored
MAX_VOCABULARY = 256  # distinct strings of one key
# orjson writes a float of 1e16 or more as 1e+16; jsonb's numeric reads it back as an integer.
MAX_FLOAT_MAGNITUDE = 1e15
INT64 = (-(2**63), 2**63 - 1)  # BSON's and orjson's largest integers


class TemplateRefused(Exception):
    """The template cannot give a shape: the message names the file, the line and the key."""


class _Refusal(Exception):
    """A sample epoch's key that cannot be used: where, which key, and why (TemplateRefused names the file)."""

    def __init__(self, place: str, key: str, why: str) -> None:
        super().__init__(place, key, why)
        self.place, self.key, self.why = place, key, why


@lru_cache(maxsize=16)
def run_shape(float_decimals: int | None, template: str | None) -> EpochShape:
    """The shape a run draws: the template's (or the default), floats rounded as --float-decimals says (one object
    per run, so its dtype and key getter are built once)."""
    shape = DEFAULT_SHAPE if template is None else _loaded(template)
    return shape.with_float_decimals(float_decimals)


@lru_cache(maxsize=8)
def _loaded(path: str) -> EpochShape:
    """The command line reads the template once to check it; the run, its reports and its run record use that
    same shape, even if the file changes meanwhile."""
    return load_template(path)


def load_template(path: str) -> EpochShape:
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise TemplateRefused(f"--epoch-template {path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise TemplateRefused(f"--epoch-template {path}: larger than {MAX_TEMPLATE_BYTES // 2**20} MiB; give a"
                              f" sample (up to {MAX_TEMPLATE_EPOCHS} epochs are read)")
    epochs = _parse(path, data)
    try:
        return infer_shape(epochs, source=Path(path).name, sha256=hashlib.sha256(data).hexdigest())
    except _Refusal as exc:
        raise TemplateRefused(f"--epoch-template {path} {exc.place}, key {exc.key!r}: {exc.why}") from None


def template_sha256(path: str | None) -> str | None:
    """The hash of the template's bytes a run used (its run record names it), None without a template."""
    return None if path is None else run_shape(None, path).template_sha256


def _parse(path: str, data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The sample epochs, each with where it is in the file ("line 3", "element 3")."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TemplateRefused(f"--epoch-template {path} line {line}: not UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except ValueError as exc:
            raise TemplateRefused(f"--epoch-template {path}: {_json_error(exc)}") from None
        places = [(f"element {index + 1}", item) for index, item in enumerate(items[:MAX_TEMPLATE_EPOCHS])]
    else:
        places = []
        for number, text_line in enumerate(text.split("\n"), start=1):
            if not text_line.strip():
                continue
            try:
                places.append((f"line {number}", json.loads(text_line, object_pairs_hook=_unique_keys,
                                                            parse_constant=_no_constant)))
            except ValueError as exc:
                raise TemplateRefused(f"--epoch-template {path} line {number}: {_json_error(exc)}") from None
            if len(places) == MAX_TEMPLATE_EPOCHS:
                break
    if not places:
        raise TemplateRefused(f"--epoch-template {path}: holds no epochs")
    for place, item in places:
        if not isinstance(item, dict):
            raise TemplateRefused(f"--epoch-template {path} {place}: not a JSON object (an epoch is a flat object)")
        if not item:
            raise TemplateRefused(f"--epoch-template {path} {place}: an empty object (an epoch needs at least one key)")
    return places


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"key {twice!r} is given twice in one object")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON (no format here can hold it)")


def _json_error(exc: ValueError) -> str:
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)


@dataclass
class _KeySample:
    """What the sample says about one key so far."""

    name: str
    kind: str | None = None
    first_at: str = ""  # where its type was first seen
    nulls: int = 0
    low: int | float = 0
    high: int | float = 0
    decimals: int = 0
    full_precision: bool = False
    trues: int = 0
    strings: Counter[str] = field(default_factory=Counter)

    def add(self, place: str, value: object) -> None:
        if value is None:
            self.nulls += 1
            return
        kind = _kind_of(place, self.name, value)
        if self.kind is None:
            self.kind, self.first_at = kind, place
            if kind in (INT, FLOAT):
                self.low = self.high = value  # type: ignore[assignment]
        elif kind != self.kind:
            raise _Refusal(place, self.name, f"{_article(kind)} where {self.first_at} has {_article(self.kind)}"
                                             " (one type per key; write floats with a decimal point, as 1.0)")
        if kind in (INT, FLOAT):
            number: int | float = value  # type: ignore[assignment]
            self.low, self.high = min(self.low, number), max(self.high, number)
            if kind == INT and not INT64[0] <= number <= INT64[1]:
                raise _Refusal(place, self.name, f"{number} is outside the 64-bit"
                                      " integers BSON and orjson hold")
            if kind == FLOAT:
                if abs(number) >= MAX_FLOAT_MAGNITUDE:
                    raise _Refusal(place, self.name, f"{number} is {MAX_FLOAT_MAGNITUDE:g}"
                                          " or more (jsonb would read such a float back as an integer)")
                places = _decimals(float(number))
                if places > MAX_DECIMALS:
                    self.full_precision = True
                self.decimals = max(self.decimals, places)
        elif kind == BOOL:
            self.trues += value is True
        else:
            self.strings[value] += 1  # type: ignore[index]
            if len(self.strings) > MAX_VOCABULARY:
                raise _Refusal(place, self.name, f"more than {MAX_VOCABULARY}"
                                      " distinct strings (a string key is drawn from a small vocabulary)")

    def shape(self, total: int, last_place: str) -> KeyShape:
        if self.kind is None:
            raise _Refusal(last_place, self.name, "null in every epoch, so its type"
                                  " cannot be inferred")
        null_share = self.nulls / total
        values = total - self.nulls
        if self.kind in (INT, FLOAT):
            decimals = None if self.full_precision or self.kind != FLOAT else self.decimals
            return KeyShape(self.name, self.kind, self.low, self.high, decimals=decimals, null_share=null_share)
        if self.kind == BOOL:
            return KeyShape(self.name, BOOL, true_share=self.trues / values, null_share=null_share)
        vocabulary = tuple(self.strings)
        weights = tuple(self.strings[word] / values for word in vocabulary)
        return KeyShape(self.name, STRING, vocabulary=vocabulary, weights=weights, null_share=null_share)


def _article(kind: str) -> str:
    return f"an {kind}" if kind == INT else f"a {kind}"


def _kind_of(place: str, key: str, value: object) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refusal(place, key, f"{value} is not a finite number")
        return FLOAT
    if isinstance(value, str):
        _check_text(place, key, value, "its value")
        return STRING
    what = "an object" if isinstance(value, dict) else "an array"
    raise _Refusal(place, key, f"{what}; an epoch is a flat object of numbers,"
                          " booleans, strings and nulls")


def _check_text(place: str, key: str, text: str, what: str) -> None:
    if "\x00" in text:
        raise _Refusal(place, key, f"{what} holds a NUL character, which"
                              " PostgreSQL's jsonb (and a BSON key) cannot hold")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refusal(place, key, f"{what} holds a lone surrogate escape, which"
                              " is not UTF-8") from None


def _decimals(value: float) -> int:
    """Digits after the decimal point of the float's shortest repr (1.0: 0, 0.125: 3, 1e-05: 5)."""
    exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def infer_shape(epochs: list[tuple[str, dict[str, Any]]], source: str, sha256: str | None = None) -> EpochShape:
    """The shape of sample epochs, each given with its place in the file; keys in the first epoch's order."""
    first_place, first = epochs[0]
    samples = {key: _KeySample(key) for key in first}
    for key in first:
        _check_text(first_place, key, key, "its name")
    for place, epoch in epochs:
        if epoch.keys() != samples.keys():
            extra = next((key for key in epoch if key not in samples), None)
            if extra is not None:
                raise _Refusal(place, extra, f"not in {first_place} (every epoch"
                                      " needs the same keys; give a missing value as null)")
            missing = next(key for key in samples if key not in epoch)
            raise _Refusal(place, missing, f"missing ({first_place} has it; give a"
                                  " missing value as null)")
        for key, value in epoch.items():
            samples[key].add(place, value)
    last_place = epochs[-1][0]
    keys = tuple(sample.shape(len(epochs), last_place) for sample in samples.values())
    return EpochShape(keys, source=source, template_sha256=sha256, template_epochs=len(epochs))
