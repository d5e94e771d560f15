"""Chapter 02 (paper section 3.1.2): patience, function matching over long schedules.

Function matching (``mix``) on three data regimes of different size, each over schedules
spanning two orders of magnitude of epochs, against two baselines tuned the same way: the
student trained from scratch on labels, and a transfer baseline (the student pretrained on
labels on other data, scikit-learn digits, then fine-tuned on labels).

The function-matching runs of the regimes chapter 01 also trains are the very same runs
(same configs, stored under chapter 01's section), so they train once for both chapters.
"""

from __future__ import annotations

from kdlib import presets
from kdlib.experiments import common
from kdlib.experiments import regimes as regimes_
from kdlib.experiments import teachers as teacher_chapter

SECTION = regimes_.PATIENCE_SECTION

# Regime -> (training images, schedule lengths in epochs), per preset; the paper's Figure 4
# datasets; the longer schedules the background queue trains (kdlib.experiments.regimes).
REGIMES = regimes_.PATIENCE_REGIMES
PAPER_REGIMES = regimes_.PATIENCE_PAPER_REGIMES
PLANNED = regimes_.PATIENCE_PLANNED
regimes = regimes_.patience_regimes
# Table 4's baselines report their best with and without mixup ("Mixup=0.0" / "1.0"): at the
# paper preset they sweep it, as the policy (same/ic: no mixup; mix: mixup).
PAPER_BASELINE_POLICIES = ["same/ic", "mix"]
ARMS = ("function matching", "from scratch", "transfer")
# The label-trained baselines go up to BASELINE_MAX_EPOCHS at cpu (issue 14: "both baselines
# to 1,000"); longer lengths train function matching only (C5 reads each baseline at its best
# length, so a student length past the cap still has its comparison). Other presets train
# them at every length they show.
BASELINE_MAX_EPOCHS = {"cpu": 1000.0}


def arms(preset: str, regime: str, planned: bool = False) -> common.Arms:
    """``{arm: {epochs: (base config, sweep axes)}}`` for one regime (see :data:`ARMS`); with
    ``planned``, the :data:`PLANNED` lengths too; the baselines at every length up to the
    preset's :data:`BASELINE_MAX_EPOCHS`, or where it has none at every shown length."""
    preset = presets.check(preset)
    if regime not in regimes(preset):
        raise ValueError(f"regime={regime!r}; {preset} has {sorted(regimes(preset))}")
    size, epochs = regimes(preset, planned)[regime]
    shown = set(regimes(preset)[regime][1])
    out: common.Arms = {arm: {} for arm in ARMS}
    init = teacher_chapter.pretrained_student_name(preset)
    cap = BASELINE_MAX_EPOCHS.get(preset)
    for ep in epochs:
        if preset == "paper":
            ds = PAPER_REGIMES[regime][0]
            fm = common.paper_config(SECTION, ds, epochs=ep)
            scratch = fm.replace(loss="labels", teachers=(), policy="same/ic")
            transfer = scratch.replace(init="bit_m_r50x1_imagenet21k")
        else:
            data = common.fmnist(preset, size)
            fm = common.reference_fm(preset, SECTION, size, ep)  # chapter 01's when shared
            scratch = common.base_config(preset, SECTION, data, epochs=ep, loss="labels",
                                         teachers=(), policy="same/ic")
            transfer = scratch.replace(init=init)
        baseline_axes = common.sweep_axes(preset, "labels")
        if preset == "paper":
            baseline_axes = {**baseline_axes, "policy": list(PAPER_BASELINE_POLICIES)}
        baseline_axes = common.start_axes(preset, SECTION, size, ep, baseline_axes)
        out["function matching"][ep] = (
            fm, common.start_axes(preset, SECTION, size, ep, common.sweep_axes(preset)))
        if (ep <= cap) if cap is not None else (ep in shown):
            out["from scratch"][ep] = (scratch, baseline_axes)
            out["transfer"][ep] = (transfer, baseline_axes)
    return out


def experiments(preset: str, planned: bool = False) -> list[common.Arms]:
    """The chapter's experiments, one per data regime (:mod:`kdlib.experiments.chapters`)."""
    return [arms(preset, r, planned=planned) for r in regimes(preset)]
