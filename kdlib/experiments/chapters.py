"""Every chapter's experiments by its notebook name: the one list of what each chapter trains.

``experiments("02_patience", "cpu")`` is the list of ``{arm: {epochs: (config, axes)}}`` the
chapter runs (one per data regime or target); with ``planned``, the longer schedules the cpu
queue trains before the chapter shows them. The book's cost page and the stored-results tests
read chapters through it; the queue's plan (:data:`kdlib.experiments.queue_plan.PLAN`) names each
item's arms from the chapter modules itself. Adding a chapter: CONTRIBUTING.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
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


def lengths_by_size(experiments_: list[Any]) -> dict[int | None, set[float]]:
    """Training-set size -> the schedule lengths some arm trains at that size."""
    out: dict[int | None, set[float]] = {}
    for experiment in experiments_:
        for by_epochs in experiment.values():
            for epochs, (config, _) in by_epochs.items():
                out.setdefault(config.data.train_size, set()).add(float(epochs))
    return out


def queued_lengths(section: str, preset: str) -> dict[int | None, tuple[float, ...]]:
    """Training-set size -> the lengths the background queue trains for ``section`` that the
    chapter does not show yet (its planned lengths, less those shown and chapter 02's retired
    ones, which planned lengths also build); empty when nothing is queued."""
    from kdlib.experiments import regimes

    shown = lengths_by_size(experiments(section, preset))
    planned = lengths_by_size(experiments(section, preset, planned=True))
    retired: dict[int | None, set[float]] = {}
    for name, lengths in regimes.PATIENCE_RETIRED.get(preset, {}).items():
        size = regimes.PATIENCE_REGIMES[preset][name][0]
        retired.setdefault(size, set()).update(lengths)
    out = {size: tuple(sorted(lengths - shown.get(size, set()) - retired.get(size, set())))
           for size, lengths in planned.items()}
    return {size: lengths for size, lengths in out.items() if lengths}


def lengths_text(by_size: Mapping[int | None, Iterable[float]], joiner: str = " and ") -> str:
    """'1,000 epochs on 250 images and 1,000, 3,000 epochs on 1,000 images': schedule lengths
    per training-set size (None: the full training split), smallest size first."""
    return joiner.join(
        f"{', '.join(f'{e:,g}' for e in sorted(lengths))} epochs"
        + (f" on {size:,} images" if size is not None else " on the full training split")
        for size, lengths in sorted(by_size.items(), key=lambda kv: kv[0] or 0))


def queued_text(section: str, preset: str) -> str:
    """'1,000 epochs on 250 images and 1,000 epochs on 1,000 images': the lengths still
    queued for ``section`` (:func:`queued_lengths`); "" if none."""
    return lengths_text(queued_lengths(section, preset))


def still_training(claim: str, section: str, preset: str) -> str:
    """What the background queue still trains for ``claim`` of ``section``: the chapter's
    queued lengths (:func:`queued_text`; no verdict reads them until stored) and, at cpu, the
    claim's seed follow-ups with seeds still to train
    (:func:`kdlib.experiments.queue_plan.pending_followups`); "" if none."""
    parts = [queued_text(section, preset)]
    if preset == "cpu":
        from kdlib.experiments import queue_plan

        parts += [f"seed follow-up: {f}" for f in queue_plan.pending_followups(claim)]
    return "; ".join(p for p in parts if p)


def queued_note(section: str, preset: str) -> str:
    """One sentence naming the lengths still queued for ``section`` (markdown); "" if none."""
    from kdlib.experiments.arms import SEEDS

    what = queued_text(section, preset)
    if not what:
        return ""
    return (f"**Still training:** the background queue trains {what} for this chapter; it "
            "shows them, and its verdicts read them, once all their runs (grown grids, "
            f"{SEEDS[preset]} seeds) are stored. The provenance page gives the queue's order "
            "and hours.")
