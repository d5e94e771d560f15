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
LONGER = regimes_.CONSISTENCY_LONGER
# The policies the queue trains at the PLANNED lengths (and the chapter shows at the LONGER
# ones): function matching, the best consistent policy, and the best fixed and independent ones
# on validation at the longest length all eight policies share (300 epochs on 1k images, 400
# on 250: same/ic, fix/cc, ind/rc in both).
PLANNED_POLICIES = ("fix/cc", "ind/rc", "same/ic", "mix")
regimes = regimes_.consistency_regimes


def lengths(preset: str, regime: str, policy: str, planned: bool = False
            ) -> tuple[float, ...]:
    """The schedule lengths ``policy`` trains in ``regime``: the regime's, then for
    :data:`PLANNED_POLICIES` the :data:`LONGER` lengths and, with ``planned``, the
    :data:`PLANNED` ones."""
    if policy not in views.POLICIES:
        raise ValueError(f"policy={policy!r}; chapter 01 has {list(views.POLICIES)}")
    shared = _regime(preset, regime)[1]
    if policy not in PLANNED_POLICIES:
        return shared
    extra = LONGER.get(preset, {}).get(regime, ()) + (
        PLANNED.get(preset, {}).get(regime, ()) if planned else ())
    return tuple(sorted(set(shared) | set(extra)))


def _regime(preset: str, regime: str) -> tuple[int | None, tuple[float, ...]]:
    """``regime``'s (training-set size, schedule lengths) at ``preset``; a clear error naming
    the preset's regimes for any other."""
    found = regimes(presets.check(preset))
    if regime not in found:
        raise ValueError(f"regime={regime!r}; {preset} has {sorted(found)}")
    return found[regime]


def shown_lengths(preset: str, regime: str) -> tuple[float, ...]:
    """Every length the chapter shows in ``regime`` (some only for :data:`PLANNED_POLICIES`)."""
    return tuple(sorted({ep for policy in views.POLICIES
                         for ep in lengths(preset, regime, policy)}))


def arms(preset: str, regime: str, planned: bool = False) -> common.Arms:
    """``{policy: {epochs: (base config, sweep axes)}}`` for one regime, each policy at its
    :func:`lengths`; with ``planned``, the :data:`PLANNED` ones too (:data:`PLANNED_POLICIES`
    only)."""
    size = _regime(preset, regime)[0]
    axes = common.sweep_axes(preset)
    out: common.Arms = {}
    for policy in views.POLICIES:
        out[policy] = {}
        for ep in lengths(preset, regime, policy, planned):
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
