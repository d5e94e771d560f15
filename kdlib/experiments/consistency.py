"""Chapter 01 (paper section 3.1.1): the eight teacher/student view policies.

All eight policies of ``kdlib.views.POLICIES`` on a small-data regime (1,000 Fashion-MNIST
images, like Flowers102's 1,020) at three schedule lengths, and a smaller one (250 images)
at its longest length (the cpu preset's budget: about 50 min for its 8 sweeps), with the same
lr sweep per policy.
"""

from __future__ import annotations

from kdlib import presets, views
from kdlib.experiments import common, paper_recipes

SECTION = "01_consistency"

# Regime -> (training images, schedule lengths in epochs), per preset.
REGIMES = {
    "smoke": {"1k": (128, (1.0, 2.0)), "250": (64, (2.0,))},
    "cpu": {"1k": (1000, (30.0, 100.0, 300.0)), "250": (250, (400.0,))},
    "gpu": {"1k": (1000, (30.0, 100.0, 300.0, 1000.0)), "250": (250, (100.0, 300.0, 1000.0))},
}
# The paper: the four small datasets at the lengths of Figures 9-12 (Figure 3 is flowers at
# 10 000 epochs): paper_recipes.FIGURES_9_12.
PAPER_REGIMES = {name: (ds, paper_recipes.FIGURES_9_12[ds]) for name, ds in (
    ("flowers102", "oxford_flowers102"), ("pets", "oxford_iiit_pet"), ("food101", "food101"),
    ("sun397", "sun397"))}


# Longer schedules the background queue trains (issue 14) before the chapter shows them:
# function matching, the best consistent policy, and the best fixed and independent ones
# (at 300 epochs on 1k images: same/ic, fix/cc, ind/rc).
PLANNED = {"cpu": {"1k": (1000.0,), "250": (1000.0,)}}
PLANNED_POLICIES = ("fix/cc", "ind/rc", "same/ic", "mix")


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


def arms(preset: str, regime: str, planned: bool = False) -> common.Arms:
    """``{policy: {epochs: (base config, sweep axes)}}`` for one regime; with ``planned``, the
    :data:`PLANNED` lengths too, for :data:`PLANNED_POLICIES` only."""
    presets.check(preset)
    if regime not in regimes(preset):
        raise ValueError(f"regime={regime!r}; {preset} has {sorted(regimes(preset))}")
    size, epochs = regimes(preset, planned)[regime]
    shown = set(regimes(preset)[regime][1])
    axes = common.sweep_axes(preset)
    out: common.Arms = {}
    for policy in views.POLICIES:
        if planned and policy not in PLANNED_POLICIES:
            eps_of_policy = tuple(e for e in epochs if e in shown)
        else:
            eps_of_policy = epochs
        out[policy] = {}
        for ep in eps_of_policy:
            if preset == "paper":
                cfg = common.paper_config(SECTION, PAPER_REGIMES[regime][0], policy=policy,
                                          epochs=ep)
            else:
                cfg = common.base_config(preset, SECTION, common.fmnist(preset, size),
                                         policy=policy, epochs=ep)
            out[policy][ep] = (cfg, axes)
    return out
