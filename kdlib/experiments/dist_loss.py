"""Chapter 09 (beyond the paper): DIST against KL under function matching.

Huang et al. (2022, "Knowledge Distillation from A Stronger Teacher"; shared/paper/
huang2022_dist_slides.md) report that with a much stronger teacher vanilla KL distillation
gets worse, and propose DIST: matching the Pearson correlation of teacher and student
probabilities across classes (inter) and across the batch (intra), which gains most with the
strongest teachers (ResNet-18: +0.86 pts over KD from ResNet-34, +1.12 from ResNet-152).
Their students train for 100-450 epochs; Beyer et al.'s point is that patience and
consistency fix a lot. So: does DIST still help under function matching and long schedules?

Here, on chapter 01's 1,000-image regime, function matching with ``loss="kl"`` and
``loss="dist"``, from a strong teacher (chapter 00's, ~6x the student's FLOPs) and a weaker
one (the student architecture trained on all the labels, ``weak_teacher_configs``), at two
schedule lengths. Both losses get the same sweep budget (:func:`loss_axes`): the lr grid
times two temperatures for KL, and for DIST the same grid over its tau (with beta = gamma = 1;
a common scale of beta and gamma is nearly a no-op under Adam and grad-clipping, so the
larger presets sweep gamma / beta at 1 and 2 instead, against as many KL temperatures).

The cpu lengths go to 300 epochs (trained by the background queue, ``make queue``, issue 14:
at 100 epochs the KL student is still under-trained); the gpu preset adds 1000 epochs.
Measured budgets: ``benchmarks/README.md``.
"""

from __future__ import annotations

from typing import Any

from kdlib import presets
from kdlib.experiments import common
from kdlib.experiments import teachers as teacher_chapter

SECTION = "09_dist"

LOSSES = {"KL": "kl", "DIST": "dist"}
TEACHERS = ("strong teacher", "weak teacher")
ARMS = tuple(f"{loss}, {t}" for t in TEACHERS for loss in LOSSES)
EPOCHS = {"smoke": (2.0,), "cpu": (30.0, 100.0, 300.0), "gpu": (30.0, 300.0, 1000.0),
          "paper": (300.0, 1200.0)}
PAPER_TEACHERS = {"strong teacher": "bit_m_r152x2_imagenet2012",
                  "weak teacher": "bit_m_r50x1_imagenet2012"}


def loss_axes(preset: str, loss: str) -> dict[str, list[Any]]:
    """The sweep of ``loss`` ("kl" or "dist"); both losses get the same number of runs."""
    preset = presets.check(preset)
    if loss not in LOSSES.values():
        raise ValueError(f"loss={loss!r} is not one of {tuple(LOSSES.values())}")
    axes = {k: v for k, v in common.sweep_axes(preset).items() if k != "temperature"}
    if preset in ("smoke", "cpu"):
        return {**axes, "temperature": [1.0, 4.0]}
    if loss == "kl":
        return {**axes, "temperature": [1.0, 2.0, 5.0, 10.0]}
    return {**axes, "temperature": [1.0, 4.0], "dist_gamma": [1.0, 2.0]}


def teacher_names(preset: str) -> dict[str, str]:
    """``{"strong teacher": name, "weak teacher": name}``."""
    if presets.check(preset) == "paper":
        return dict(PAPER_TEACHERS)
    return {"strong teacher": common.teacher_name(preset),
            "weak teacher": next(iter(teacher_chapter.weak_teacher_configs(preset)))}


def ensure_teachers(preset: str) -> dict[str, str]:
    """:func:`teacher_names`, training (seconds at smoke) whichever is not stored yet."""
    common.ensure_teacher(preset)
    common.ensure_stored(teacher_chapter.weak_teacher_configs(preset))
    return teacher_names(preset)


# Longer schedules the background queue trains (issue 14); 300 epochs is stored and shown now.
PLANNED = {"cpu": (300.0,)}


def arms(preset: str, planned: bool = False) -> common.Arms:
    """``{"<loss>, <teacher>": {epochs: (base config, sweep axes)}}`` (see :data:`ARMS`);
    with ``planned``, the :data:`PLANNED` lengths too."""
    preset = presets.check(preset)
    names = teacher_names(preset)
    out: common.Arms = {arm: {} for arm in ARMS}
    lengths = tuple(dict.fromkeys(EPOCHS[preset] + (PLANNED.get(preset, ()) if planned else ())))
    for ep in lengths:
        if preset == "paper":
            base = common.paper_imagenet_config(section=SECTION, epochs=ep)
        else:
            size = common.small_data_regime(preset)[0]
            base = common.base_config(preset, SECTION, common.fmnist(preset, size), epochs=ep)
        for t in TEACHERS:
            for label, loss in LOSSES.items():
                cfg = base.replace(loss=loss, teachers=(names[t],))
                out[f"{label}, {t}"][ep] = (cfg, loss_axes(preset, loss))
    return out


def experiments(preset: str, planned: bool = False) -> list[common.Arms]:
    """The chapter's one experiment (:mod:`kdlib.experiments.chapters`)."""
    return [arms(preset, planned=planned)]
