"""Every chapter's experiments by its notebook name: the one list of what each chapter trains.

``experiments("02_patience", "cpu")`` is the list of ``{arm: {epochs: (config, axes)}}`` the
chapter runs (one per data regime or target); with ``planned``, the longer schedules the cpu
queue trains before the chapter shows them. The book's cost page and the stored-results tests
read chapters through it; the queue's plan (:data:`kdlib.experiments.queue.PLAN`) names each
item's arms from the chapter modules itself. Adding a chapter: CONTRIBUTING.md.
"""

from __future__ import annotations

from typing import Any

# The distillation chapters, in the book's order (00_teachers trains teachers, not sweeps).
SECTIONS = ("01_consistency", "02_patience", "03_imagenet", "04_resolution", "05_shampoo",
            "06_init", "07_cross_family", "08_out_of_domain", "09_dist")


def experiments(section: str, preset: str, *, planned: bool = False) -> list[Any]:
    """The experiments (``{arm: {epochs: (config, axes)}}``) of chapter ``section``."""
    from kdlib import presets
    from kdlib.experiments import (
        consistency,
        cross_family,
        dist_loss,
        imagenet,
        init,
        out_of_domain,
        patience,
        resolution,
        shampoo,
    )

    presets.check(preset)
    if section == "00_teachers":
        return []
    if section == "01_consistency":
        return [consistency.arms(preset, r, planned=planned)
                for r in consistency.regimes(preset)]
    if section == "02_patience":
        return [patience.arms(preset, r, planned=planned) for r in patience.regimes(preset)]
    if section == "08_out_of_domain":
        return [out_of_domain.arms(preset, t) for t in out_of_domain.targets(preset)]
    if section == "09_dist":
        return [dist_loss.arms(preset, planned=planned)]
    if section == "07_cross_family":  # C11's MobileNet from labels: a comparison of its own
        labels = cross_family.label_arms(preset, planned=planned)
        return [cross_family.arms(preset, planned=planned), *([labels] if labels else [])]
    with_planned = {"03_imagenet": imagenet, "05_shampoo": shampoo, "06_init": init}
    if section in with_planned:
        return [with_planned[section].arms(preset, planned=planned)]
    simple = {"04_resolution": resolution}
    if section not in simple:
        raise ValueError(f"section={section!r} is not one of {('00_teachers', *SECTIONS)}")
    return [simple[section].arms(preset)]
