"""Argument checks shared by the optimizer constructors: clear ValueErrors at build time."""

from __future__ import annotations

import math
import numbers

import jax


def is_traced(value: object) -> bool:
    """True for a scalar JAX array (e.g. a hyper-parameter vectorized over a sweep with vmap).

    Such values cannot be range-checked at build time; the engine checks the configs instead.
    """
    return isinstance(value, jax.Array) and value.ndim == 0


def check_int(name: str, value: object, *, minimum: int) -> int:
    """Return `value` as an int, or raise ValueError if it is not an integer >= `minimum`.

    A scalar JAX array is passed through unchecked (see `is_traced`).
    """
    if is_traced(value):
        return value  # type: ignore[return-value]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(
    name: str,
    value: object,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return `value` as a float, or raise ValueError if it is not finite in the given range.

    A scalar JAX array is passed through unchecked (see `is_traced`).
    """
    if is_traced(value):
        return value  # type: ignore[return-value]
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    allowed = f"a finite real number in {lo}{low}, {high}{hi}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    v = float(value)
    too_low = v <= low if low_open else v < low
    too_high = v >= high if high_open else v > high
    if not math.isfinite(v) or too_low or too_high:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return v


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return `value` if it is one of `choices`, else raise ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


def check_optional_callable(name: str, value: object) -> None:
    """Raise ValueError unless `value` is None or callable."""
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be a callable step -> multiplier or None, got {value!r}")
