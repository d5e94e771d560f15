"""Presets: one notebook, four scales (see the book's "Running it" chapter).

``smoke`` runs in seconds (tests, CI, nbval); ``cpu`` is the embedded default, a real
small-scale reproduction on 2 CPU cores; ``gpu`` fits one accelerator; ``paper`` holds the
paper's own configurations (tfds datasets, BiT teachers, TPU-scale batches and epochs).
"""

from __future__ import annotations

import os

PRESETS = ("smoke", "cpu", "gpu", "paper")
DEFAULT_PRESET = "cpu"


def check(preset: str, where: str = "preset") -> str:
    """Returns ``preset`` if known, else raises a one-line ValueError listing the presets.

    Only these exact strings pass: ``0``, ``""`` or ``"CPU"`` are errors, not the default.
    """
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(
            f"{where}={preset!r} is not one of {PRESETS}: pass one of them "
            f"(e.g. papermill -p preset {DEFAULT_PRESET}, or KDLIB_PRESET={DEFAULT_PRESET})"
        )
    return preset


def current(default: str = DEFAULT_PRESET) -> str:
    """The preset a notebook runs at: ``$KDLIB_PRESET`` if set (and not empty), else
    ``default``."""
    from_env = os.environ.get("KDLIB_PRESET")
    if from_env:
        return check(from_env, "KDLIB_PRESET")
    return check(default)


def resolve(preset: str | None) -> str:
    """A notebook's ``preset`` parameter: None means :func:`current`; anything else must be
    a known preset (papermill's ``-p preset 0`` is an error, not the default)."""
    return current() if preset is None else check(preset)
