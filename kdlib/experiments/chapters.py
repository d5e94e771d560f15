"""Every chapter's experiments by its notebook name: the one list of what each chapter trains.

``experiments("02_patience", "cpu")`` is the list of ``{arm: {epochs: (config, axes)}}`` the
chapter runs (one per data regime or target); with ``planned``, the longer schedules the cpu
queue trains before the chapter shows them. The book's cost page and the stored-results tests
read chapters through it; the queue's plan (:data:`kdlib.experiments.queue_plan.PLAN`) names each
item's arms from the chapter modules itself. Adding a chapter: CONTRIBUTING.md.
"""

from __future__ import annotations

import importlib
from typing import Any

# The distillation chapters, in the book's order, and the module of each (00_teachers trains
# teachers, not sweeps). A chapter module exposes ``experiments(preset, planned=False)``.
MODULES = {"01_consistency": "consistency", "02_patience": "patience",
           "03_imagenet": "imagenet", "04_resolution": "resolution", "05_shampoo": "shampoo",
           "06_init": "init", "07_cross_family": "cross_family",
           "08_out_of_domain": "out_of_domain", "09_dist": "dist_loss"}
SECTIONS = tuple(MODULES)


def experiments(section: str, preset: str, *, planned: bool = False) -> list[Any]:
    """The experiments (``{arm: {epochs: (config, axes)}}``) of chapter ``section``."""
    from kdlib import presets

    presets.check(preset)
    if section == "00_teachers":
        return []
    if section not in MODULES:
        raise ValueError(f"section={section!r} is not one of {('00_teachers', *SECTIONS)}")
    module = importlib.import_module(f"kdlib.experiments.{MODULES[section]}")
    return module.experiments(preset, planned=planned)
