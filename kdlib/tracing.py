"""Eager-only input checks: an array's values when it has them, None under a tracer."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def concrete_values(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array when it holds values (eager use), else None.

    Value checks (class ids in range, boxes in [0, 1]) run on eager calls and are skipped on a
    tracer inside a jitted step, where reading values would fail or force a host sync per step.
    """
    try:
        return np.asarray(x)
    except (TypeError, jax.errors.TracerArrayConversionError):
        return None
