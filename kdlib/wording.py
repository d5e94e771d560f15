"""Prose helpers shared by the generated text: a counted noun ("1 point", "3 points")."""

from __future__ import annotations


def count(n: float, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: "1 point", "3 points", "2.5 epochs"
    (``plural`` where adding "s" is wrong)."""
    number = f"{n:g}" if isinstance(n, float) else str(n)
    return f"{number} {noun if n == 1 else plural or noun + 's'}"


def is_are(n: float) -> str:
    """The verb that agrees with ``n`` things: "1 point is", "3 points are"."""
    return "is" if n == 1 else "are"
