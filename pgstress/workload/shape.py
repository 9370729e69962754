"""The shape of an epoch: its keys in order, each key's type and the values it draws.

One `EpochShape` drives the generator (what to draw), the structured array the content hash is
taken over (its dtype), the dicts the codecs encode, and the verification of decoded epochs
(which keys, which types). The default shape is the spec's 15 metrics; a template
(workload/template.py) infers another; `--float-decimals` rounds the floats of either.

Every value is drawn fresh from numpy's seeded generator in key order, so the same seed and
shape give the same values on any machine (IEEE-754 arithmetic; rounding is numpy's round on
float64: multiply, round half to even, divide, each correctly rounded).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

Value = int | bool | float | str | None
Epoch = dict[str, Value]

INT, FLOAT, BOOL, STRING = "int", "float", "bool", "string"
_PY_TYPE: dict[str, type] = {INT: int, FLOAT: float, BOOL: bool, STRING: str}
_TYPE_CHECK_ROWS = 4096  # epochs whose values' types are compared at once
_NUMPY_TYPE = {INT: "<i8", FLOAT: "<f8", BOOL: "?", STRING: "<i4"}  # a string is stored as its vocabulary index
FULL_PRECISION = None  # KeyShape.decimals of floats drawn and sent unrounded
MAX_DECIMALS = 15  # beyond this a float64 has no exact decimal digits left to round to


@dataclass(frozen=True)
class KeyShape:
    """One key: its type, and the distribution its values are drawn from."""

    name: str
    kind: str  # INT, FLOAT, BOOL or STRING
    low: int | float = 0  # INT: inclusive bounds; FLOAT: low + (high - low) * uniform [0, 1)
    high: int | float = 0
    decimals: int | None = FULL_PRECISION  # FLOAT: rounded to this many decimals before encoding
    true_share: float | None = None  # BOOL: chance of true; None: a fair coin drawn as integers 0/1
    vocabulary: tuple[str, ...] = ()  # STRING: the values, drawn with `weights`
    weights: tuple[float, ...] = ()
    null_share: float = 0.0  # chance the value is null (JSON null, BSON null)

    @property
    def nullable(self) -> bool:
        return self.null_share > 0

    def describe_range(self) -> str:
        if self.kind in (INT, FLOAT):
            return f"{self.low} .. {self.high}"
        if self.kind == BOOL:
            return "50% true (a fair coin)" if self.true_share is None else f"{self.true_share:.0%} true"
        shown = ", ".join(repr(word) if len(word) <= 20 else repr(word[:20]) + "…" for word in self.vocabulary[:4])
        more = ", …" if len(self.vocabulary) > 4 else ""
        return f"{len(self.vocabulary)} distinct value{'s' * (len(self.vocabulary) != 1)}: {shown}{more}"

    def describe_decimals(self) -> str:
        if self.kind != FLOAT:
            return ""
        return "full precision" if self.decimals is None else str(self.decimals)


@dataclass(frozen=True)
class EpochShape:
    """The keys of every epoch, in order, and where the shape came from (for the reports)."""

    keys: tuple[KeyShape, ...]
    source: str = "default"  # "default", or the template file's name
    template_sha256: str | None = None  # of the template file's bytes
    template_epochs: int = 0  # how many sample epochs the shape was inferred from
    float_decimals: int | None = None  # --float-decimals, when given

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)

    @cached_property
    def dtype(self) -> np.dtype[np.void]:
        """The structured array one chunk is drawn into and hashed as: fields by position (a key's name may be
        anything JSON allows), then one null mask per nullable key."""
        fields = [(f"k{i}", _NUMPY_TYPE[key.kind]) for i, key in enumerate(self.keys)]
        fields += [(f"n{i}", "?") for i, key in enumerate(self.keys) if key.nullable]
        return np.dtype(fields)

    def field_of(self, name: str) -> str:
        """The structured array's field holding key `name`'s values (KeyError when the shape has no such key)."""
        if name not in self.names:
            raise KeyError(name)
        return f"k{self.names.index(name)}"

    def metric_keys(self) -> tuple[str, ...]:
        """The keys one metric can be read of: numbers and booleans that are never null."""
        return tuple(key.name for key in self.keys if key.kind != STRING and not key.nullable)

    @cached_property
    def plain(self) -> bool:
        """Numbers and booleans only, never null: decoded epochs convert to the array row by row."""
        return all(key.kind != STRING and not key.nullable for key in self.keys)

    @property
    def is_default(self) -> bool:
        return self.source == "default"

    def with_float_decimals(self, decimals: int | None) -> EpochShape:
        """Every float key rounded to `decimals` (None: as it was)."""
        if decimals is None:
            return self
        keys = tuple(replace(key, decimals=decimals) if key.kind == FLOAT else key for key in self.keys)
        return replace(self, keys=keys, float_decimals=decimals)

    def describe(self) -> str:
        """The data a measurement was taken on, in words (for every recommendation)."""
        if self.is_default:
            if self.float_decimals is None:
                return "full-precision uniform random floats (the default shape)"
            return f"the default shape's floats rounded to {self.float_decimals} decimals"
        rounded = "" if self.float_decimals is None else f", floats rounded to {self.float_decimals} decimals"
        return (f"the shape of template {self.source} ({len(self.keys)} keys, inferred from"
                f" {self.template_epochs} epochs{rounded})")

    def table_rows(self) -> list[tuple[str, str, str, str, str]]:
        """One row per key: key, type, range, decimals, null share."""
        return [(key.name, key.kind, key.describe_range(), key.describe_decimals(),
                 f"{key.null_share:.1%}" if key.nullable else "0") for key in self.keys]

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "description": self.describe(), "template_sha256": self.template_sha256,
            "template_epochs": self.template_epochs, "float_decimals": self.float_decimals,
            "keys": [{"name": key.name, "type": key.kind, "low": key.low if key.kind in (INT, FLOAT) else None,
                      "high": key.high if key.kind in (INT, FLOAT) else None,
                      "decimals": key.decimals if key.kind == FLOAT else None,
                      "true_share": key.true_share if key.kind == BOOL else None,
                      "vocabulary": list(key.vocabulary) if key.kind == STRING else None,
                      "null_share": key.null_share} for key in self.keys],
        }  # fmt: skip

    # -- drawing -------------------------------------------------------------------------------------------

    def draw(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.void]:
        """n fresh epochs as a structured array of `dtype`, every key drawn in order."""
        table = np.empty(n, dtype=self.dtype)
        for i, key in enumerate(self.keys):
            field = f"k{i}"
            if key.kind == INT:
                table[field] = rng.integers(int(key.low), int(key.high), n, endpoint=True)
            elif key.kind == BOOL:
                table[field] = rng.integers(0, 2, n).astype(bool) if key.true_share is None \
                    else rng.random(n) < key.true_share
            elif key.kind == FLOAT:
                table[field] = _floats(rng, n, key)
            else:
                table[field] = rng.choice(len(key.vocabulary), n, p=key.weights)
            if key.nullable:
                nulls = rng.random(n) < key.null_share
                table[f"n{i}"] = nulls
                table[field][nulls] = 0  # a null's value slot is zero, also when read back (hash below)
        return table

    def columns(self, table: npt.NDArray[np.void]) -> list[list[Value]]:
        """Each key's values as Python objects, in key order (None where null)."""
        columns: list[list[Value]] = []
        for i, key in enumerate(self.keys):
            field = table[f"k{i}"]
            if key.kind == STRING:
                values = np.array(key.vocabulary, dtype=object)[field]
            else:
                values = field.astype(object) if key.nullable else field
            if key.nullable:
                values[table[f"n{i}"]] = None
            columns.append(values.tolist())
        return columns

    # -- verification --------------------------------------------------------------------------------------

    def table_of(self, epochs: Iterable[Epoch]) -> npt.NDArray[np.void]:
        """Decoded epochs back as the structured array they were drawn as, so their hash can be compared.

        Raises KeyError for a missing key, ValueError for a key the shape does not have, TypeError for a value
        of another type than the shape's (in any epoch: numpy would turn 3.0 or True into 3), ValueError for a
        string outside the key's vocabulary.
        """
        epochs = list(epochs)
        if set(map(len, epochs)) - {len(self.keys)}:  # every key there (below), so more keys than the shape's
            extra = next(set(epoch) - set(self.names) for epoch in epochs if len(epoch) != len(self.keys))
            raise ValueError(f"an epoch has keys the generator does not make: {sorted(extra)}")
        if self.plain:
            rows = list(map(self._values_in_key_order, epochs))
            self._check_types(rows)
            return np.array(rows, dtype=self.dtype) if rows else np.empty(0, self.dtype)
        table = np.empty(len(epochs), dtype=self.dtype)
        for i, key in enumerate(self.keys):
            column = [epoch[key.name] for epoch in epochs]
            for value in {type(value): value for value in column}.values():
                _check_type(key, value)
            if key.nullable:
                table[f"n{i}"] = np.fromiter((value is None for value in column), dtype=bool, count=len(column))
            if key.kind == STRING:
                index = {word: code for code, word in enumerate(key.vocabulary)}
                try:
                    column = [0 if value is None else index[value] for value in column]  # type: ignore[index]
                except KeyError as exc:
                    raise ValueError(f"epoch field {key.name!r} holds {exc.args[0]!r}, not in its vocabulary") \
                        from None
            elif key.nullable:
                column = [0 if value is None else value for value in column]
            table[f"k{i}"] = column
        return table

    def _check_types(self, rows: list[tuple[Value, ...]]) -> None:
        """Every value of every row of its key's type: one pass over the values' types, about a quarter of the
        cost of hashing them (a list comparison, which stops at the first difference)."""
        types = [_PY_TYPE[key.kind] for key in self.keys]
        whole = types * _TYPE_CHECK_ROWS
        for start in range(0, len(rows), _TYPE_CHECK_ROWS):  # in slices: the lists of types stay in cache
            part = rows[start:start + _TYPE_CHECK_ROWS]
            found = list(map(type, chain.from_iterable(part)))
            if found != (whole if len(part) == _TYPE_CHECK_ROWS else types * len(part)):
                index = next(i for i, kind in enumerate(found) if kind is not types[i % len(types)])
                _check_type(self.keys[index % len(types)], part[index // len(types)][index % len(types)])

    @cached_property
    def _values_in_key_order(self) -> Callable[[Epoch], tuple[Value, ...]]:
        if len(self.names) == 1:
            (name,) = self.names
            return lambda epoch: (epoch[name],)
        return operator.itemgetter(*self.names)


def _floats(rng: np.random.Generator, n: int, key: KeyShape) -> npt.NDArray[np.float64]:
    values = rng.random(n)
    if (key.low, key.high) != (0, 1):
        values = key.low + (key.high - key.low) * values
    if key.decimals is not None:
        np.round(values, key.decimals, out=values)
        values += 0.0  # -0.0 becomes 0.0: jsonb's numeric has no negative zero and would read it back as 0.0
    return values


def _check_type(key: KeyShape, value: object) -> None:
    if value is None and key.nullable:
        return
    if type(value) is not _PY_TYPE[key.kind]:
        raise TypeError(f"epoch field {key.name!r} came back as {type(value).__name__}")
