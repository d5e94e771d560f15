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
from kdlib.experiments import common, consistency, paper_recipes
from kdlib.experiments import teachers as teacher_chapter

SECTION = "02_patience"

# Regime -> (training images, schedule lengths in epochs), per preset.
REGIMES = {
    "smoke": {"250": (64, (2.0,)), "1k": (128, (1.0, 2.0))},
    "cpu": {"250": (250, (4.0, 40.0, 400.0)), "1k": (1000, (3.0, 30.0, 100.0, 300.0)),
            "4k": (4000, (0.3, 3.0, 30.0))},
    "gpu": {"250": (250, (30.0, 300.0, 3000.0)), "1k": (1000, (10.0, 100.0, 1000.0)),
            "4k": (4000, (3.0, 30.0, 300.0))},
}
# The paper's Figure 4 datasets and lengths (Table 4: paper_recipes.TABLE_4).
PAPER_REGIMES = {name: (ds, paper_recipes.TABLE_4[ds]) for name, ds in (
    ("flowers102", "oxford_flowers102"), ("pets", "oxford_iiit_pet"), ("food101", "food101"),
    ("sun397", "sun397"))}
# Table 4's baselines report their best with and without mixup ("Mixup=0.0" / "1.0"): at the
# paper preset they sweep it, as the policy (same/ic: no mixup; mix: mixup).
PAPER_BASELINE_POLICIES = ["same/ic", "mix"]
ARMS = ("function matching", "from scratch", "transfer")


# Longer schedules the background queue trains (issue 14) before the chapter shows them;
# the label-trained baselines go up to BASELINE_MAX_EPOCHS of them.
PLANNED = {"cpu": {"250": (1000.0, 4000.0), "1k": (1000.0, 3000.0)}}
BASELINE_MAX_EPOCHS = 1000.0


def regimes(preset: str, planned: bool = False) -> dict[str, tuple[int | None, tuple[float, ...]]]:
    """Data regimes of ``preset``: name -> (training images, schedule lengths); with
    ``planned``, the lengths of :data:`PLANNED` too."""
    preset = presets.check(preset)
    if preset == "paper":
        return {name: (None, eps) for name, (_, eps) in PAPER_REGIMES.items()}
    if not planned:
        return REGIMES[preset]
    extra = PLANNED.get(preset, {})
    return {name: (size, tuple(sorted(set(eps) | set(extra.get(name, ())))))
            for name, (size, eps) in REGIMES[preset].items()}


def _section(preset: str, regime: str, epochs: float) -> str:
    """Chapter 01's section where it trains (or plans) the same function-matching run."""
    shared = (consistency.regimes(preset, planned=True).get(regime) if preset != "paper"
              else None)
    size = regimes(preset)[regime][0]
    if shared and shared[0] == size and epochs in shared[1]:
        return consistency.SECTION
    return SECTION


def arms(preset: str, regime: str, planned: bool = False) -> common.Arms:
    """``{arm: {epochs: (base config, sweep axes)}}`` for one regime (see :data:`ARMS`); with
    ``planned``, the :data:`PLANNED` lengths too (baselines up to BASELINE_MAX_EPOCHS)."""
    preset = presets.check(preset)
    if regime not in regimes(preset):
        raise ValueError(f"regime={regime!r}; {preset} has {sorted(regimes(preset))}")
    size, epochs = regimes(preset, planned)[regime]
    shown = set(regimes(preset)[regime][1])
    out: common.Arms = {arm: {} for arm in ARMS}
    init = teacher_chapter.pretrained_student_name(preset)
    for ep in epochs:
        if preset == "paper":
            ds = PAPER_REGIMES[regime][0]
            fm = common.paper_config(SECTION, ds, epochs=ep)
            scratch = fm.replace(loss="labels", teachers=(), policy="same/ic")
            transfer = scratch.replace(init="bit_m_r50x1_imagenet21k")
        else:
            data = common.fmnist(preset, size)
            fm = common.base_config(preset, _section(preset, regime, ep), data, epochs=ep)
            scratch = common.base_config(preset, SECTION, data, epochs=ep, loss="labels",
                                         teachers=(), policy="same/ic")
            transfer = scratch.replace(init=init)
        baseline_axes = common.sweep_axes(preset, "labels")
        if preset == "paper":
            baseline_axes = {**baseline_axes, "policy": list(PAPER_BASELINE_POLICIES)}
        out["function matching"][ep] = (fm, common.sweep_axes(preset))
        if ep in shown or ep <= BASELINE_MAX_EPOCHS:
            out["from scratch"][ep] = (scratch, baseline_axes)
            out["transfer"][ep] = (transfer, baseline_axes)
    return out
