"""Counts in words: "1 iteration", "3 iterations", as every output writes them."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, singular for exactly one: count(1, "level") -> "1 level"; count(2, "level") -> "2 levels"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
