"""Counts and lists in words: "1 iteration", "3 iterations", "a, b and c", as every output writes them."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, singular for exactly one: count(1, "level") -> "1 level"; count(2, "level") -> "2 levels"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def listed(items: list[str] | tuple[str, ...]) -> str:
    """Names as a sentence lists them: "a", "a and b", "a, b and c"."""
    if len(items) <= 2:
        return " and ".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"
