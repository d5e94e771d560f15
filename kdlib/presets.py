"""Presets: one notebook, four scales (see the book's "Running it" chapter).

``smoke`` runs in seconds (tests, CI, nbval); ``cpu`` is the embedded default, a real
small-scale reproduction on 2 CPU cores; ``gpu`` fits one accelerator; ``paper`` holds the
paper's own configurations (tfds datasets, BiT teachers, TPU-scale batches and epochs).
"""

from __future__ import annotations

import os

PRESETS = ("smoke", "cpu", "gpu", "paper")
DEFAULT_PRESET = "cpu"


def check(preset: str) -> str:
    """Returns ``preset`` if known, else raises a ValueError listing the presets."""
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is not one of {PRESETS}")
    return preset


def current(default: str = DEFAULT_PRESET) -> str:
    """The preset a notebook runs at: ``$KDLIB_PRESET`` if set, else ``default``."""
    return check(os.environ.get("KDLIB_PRESET", default) or default)
