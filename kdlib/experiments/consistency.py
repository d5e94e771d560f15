"""Chapter 01 (paper section 3.1.1): the eight teacher/student view policies.

All eight policies of ``kdlib.views.POLICIES`` on a small-data regime (1,000 Fashion-MNIST
images, like Flowers102's 1,020) at three schedule lengths, and a smaller one (250 images)
at its longest length (the cpu preset's budget: about 50 min for its 8 sweeps), with the same
lr sweep per policy.
"""

from __future__ import annotations

from kdlib import presets, views
from kdlib.experiments import common
from kdlib.experiments import regimes as regimes_

SECTION = regimes_.CONSISTENCY_SECTION

# Regime -> (training images, schedule lengths in epochs), per preset; the paper's datasets;
# the longer schedules the background queue trains (kdlib.experiments.regimes holds them).
REGIMES = regimes_.CONSISTENCY_REGIMES
PAPER_REGIMES = regimes_.CONSISTENCY_PAPER_REGIMES
PLANNED = regimes_.CONSISTENCY_PLANNED
# The policies the queue trains at the PLANNED lengths: function matching, the best consistent
# policy, and the best fixed and independent ones (at 300 epochs on 1k images).
PLANNED_POLICIES = ("fix/cc", "ind/rc", "same/ic", "mix")
regimes = regimes_.consistency_regimes


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
            out[policy][ep] = (cfg, common.start_axes(preset, SECTION, size, ep, axes))
    return out


def experiments(preset: str, planned: bool = False) -> list[common.Arms]:
    """The chapter's experiments, one per data regime (:mod:`kdlib.experiments.chapters`)."""
    return [arms(preset, r, planned=planned) for r in regimes(preset)]
