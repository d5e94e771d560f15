"""Seed noise: how far a config's metric spreads over seeds, pooled over the store's
replicated configs per regime (training-set size, then schedule length within it), or an
assumed spread where no pool measured it. :mod:`kdlib.evidence` reads it to decide whether a
difference counts. Pure functions over numbers: no store, no JAX.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kdlib import wording

# The per-run standard deviation of test accuracy assumed when no replicated point measured
# it: two runs of one config and seed at two commits differed by 0.6 points (DESIGN.md), and
# seeds add initialization and data-order noise on top.
ASSUMED_SD = {"test_acc": 0.01, "val_acc": 0.01, "train_loss": 0.02}
# Accuracies print in points; other metrics (a loss) in their own units.
ACCURACIES = ("test_acc", "val_acc")


# A regime names its levels from coarse to fine, joined by this: "1000 images, 300 epochs".
REGIME_SEP = ", "


def parent_regime(regime: str | None) -> str | None:
    """The next coarser regime ("1000 images, 300 epochs" -> "1000 images"); None at the top."""
    if not regime or REGIME_SEP not in regime:
        return None
    return regime.rsplit(REGIME_SEP, 1)[0]


@dataclasses.dataclass(frozen=True)
class Noise:
    """The per-run seed spread used where a point has too few seeds, and where it came from:
    ``sd`` overall, ``by_regime`` for the regimes (any level) that measured their own."""

    sd: float
    source: str
    by_regime: Mapping[str, float] = dataclasses.field(default_factory=dict)
    # ``sd`` is the assumed spread (:data:`ASSUMED_SD`), not one measured over the store's
    # replicates (none stored, all equal, or too few degrees of freedom to narrow it).
    assumed: bool = False

    def __post_init__(self) -> None:
        # a NaN would leave every check inconclusive, a negative sd is no spread (0: numbers
        # read exactly, such as the paper's own)
        for where, sd in (("sd", self.sd), *((f"by_regime[{r!r}]", v)
                                             for r, v in self.by_regime.items())):
            if not (isinstance(sd, int | float) and math.isfinite(sd) and sd >= 0):
                raise ValueError(f"Noise {where}={sd!r}; allowed: a finite number >= 0 (the "
                                 "per-run seed spread; 0 for numbers without noise)")

    def sd_for(self, regime: str | None, *, coarse: bool = False) -> float:
        """The spread of ``regime``'s points: the finest level of it that measured its own
        pooled spread, else ``sd``; ``coarse`` skips the finest level (the rule before schedule
        lengths were pooled apart, late on 2026-12-04)."""
        level = self.level_for(regime, coarse=coarse)
        return self.sd if level is None else self.by_regime[level]

    def level_for(self, regime: str | None, *, coarse: bool = False) -> str | None:
        """The regime level whose pooled spread :meth:`sd_for` reads (None: the overall one):
        its own, else (a schedule length) the nearest shorter length of its size with a pool
        of its own (:func:`shorter_sibling`), else the next coarser level, and so on."""
        if coarse:
            regime = parent_regime(regime)
        while regime is not None:
            if regime in self.by_regime:
                return regime
            sibling = shorter_sibling(regime, self.by_regime)
            if sibling is not None:
                return sibling
            regime = parent_regime(regime)
        return None


# A schedule-length level as noise_regime writes it (``f"{epochs:g} epochs"``: 0.3, 300, 1e+06).
_LENGTH = re.compile(r"^(\d+(?:\.\d+)?(?:e[+-]?\d+)?) epochs?$")


def shorter_sibling(regime: str, pooled: Iterable[str]) -> str | None:
    """The nearest shorter schedule length of ``regime``'s training-set size among ``pooled``
    ("1000 images, 300 epochs" for "1000 images, 3000 epochs" when 1000 epochs is not
    pooled), or None (``regime`` is no length, or no shorter one is pooled).

    Seed noise falls with schedule length in every size that pooled two or more lengths
    (1000 images: 4.45, 1.34, 0.68, 0.40 pts per run at 30, 100, 300 and 1000 epochs; 250
    images: 3.31, 1.84 at 40 and 400; 2026-12-05), so the nearest shorter length's pool is
    an upper bound on a longer length's that is tighter than its size's, which the short
    lengths dominate (250 images at 4000 epochs read 1.96 pts per run there against its own 3
    seeds' 0.20). Added in the session after 2026-12-05's, after that point's results
    existed, before those of the next long point (1000 images at 3000 epochs)."""
    parent, length = parent_regime(regime), length_of(regime)
    if parent is None or length is None:
        return None
    shorter = [(n, other) for other in pooled if parent_regime(other) == parent
               and (n := length_of(other)) is not None and n < length]
    return max(shorter)[1] if shorter else None


def length_of(regime: str) -> float | None:
    """The schedule length of a regime whose finest level is one ("..., 300 epochs"), else
    None."""
    if parent_regime(regime) is None:
        return None
    match = _LENGTH.match(regime.rsplit(REGIME_SEP, 1)[-1])
    return float(match.group(1)) if match else None


# Degrees of freedom a pooled seed-noise estimate needs before it may narrow the assumed noise
# (added 2026-12-03, after results existed: two replicated points, 4 degrees of freedom, moved
# C1 and C10 between builds as each new replicate landed). A larger pooled sd is always used.
MIN_POOLED_DOF = 10


# A pooled spread below this (float rounding of equal values) measured no noise at all.
ZERO_SD = 1e-9


def _pooled(groups: Iterable[Sequence[float]]) -> tuple[float, int, int]:
    """(pooled sample sd, degrees of freedom, groups used) over groups of 2 or more values; the
    pooled variance weights each group's variance by its degrees of freedom."""
    num, dof, points = 0.0, 0, 0
    for values in groups:
        values = [float(v) for v in values]
        if len(values) < 2:
            continue
        m = math.fsum(values) / len(values)
        num += math.fsum((v - m) ** 2 for v in values)
        dof += len(values) - 1
        points += 1
    return (math.sqrt(num / dof) if dof else math.nan), dof, points


def per_run(sd: float, metric: str) -> str:
    """A per-run spread as the claims print it (points of accuracy, else the metric's units)."""
    return f"{100 * sd:.2f} pts" if metric in ACCURACIES else f"{sd:.4f}"


def pooled_noise(groups: Iterable[Sequence[float]], metric: str = "test_acc") -> Noise:
    """Pooled sample sd over groups of seed values (each group one config); assumed if none.

    Groups with fewer than 2 values are skipped. The pooled variance weights each group's
    variance by its degrees of freedom.
    """
    if metric not in ASSUMED_SD:
        raise ValueError(f"metric={metric!r}; allowed: {sorted(ASSUMED_SD)}")
    sd, dof, points = _pooled(groups)
    if dof == 0:
        sd = ASSUMED_SD[metric]
        return Noise(sd, f"assumed {100 * sd:.1f} pts per run: no replicated point stored yet"
                     if metric in ACCURACIES else f"assumed {sd:g} per run: no replicates",
                     assumed=True)
    if sd < ZERO_SD:  # every seed of every config equal: the seeds changed nothing
        sd = ASSUMED_SD[metric]
        return Noise(sd, f"assumed {per_run(sd, metric)} per run: the {points} replicated "
                     "points read equal values on every seed (a spread of 0 would make any "
                     "difference count)", assumed=True)
    what = per_run(sd, metric)
    if dof < MIN_POOLED_DOF and sd < ASSUMED_SD[metric]:
        assumed = ASSUMED_SD[metric]
        kept = f"{100 * assumed:.1f} pts" if metric in ACCURACIES else f"{assumed:g}"
        return Noise(assumed, f"assumed {kept} per run: the {what} pooled over {points} "
                     f"replicated points has {dof} degrees of freedom (< {MIN_POOLED_DOF})",
                     assumed=True)
    return Noise(sd, f"{what} per run, pooled over {points} replicated points")


def _points(n: int) -> str:
    """'1 point', '3 points': how many replicated points a pool holds."""
    return wording.count(n, "point")


def pooled_noise_by_regime(groups: Mapping[str, Iterable[Sequence[float]]],
                           metric: str = "test_acc") -> Noise:
    """Seed noise per regime, level by level: seed spread differs between training-set sizes
    (250 images: 1.9 pts per run; 1000 images: 0.4, 2026-12-04) and between schedule lengths
    of one size (1000 images: 1.6 pts at 100 epochs, 0.4 at 300 and 1000, late on 2026-12-04),
    so one pool is too wide for some points and too narrow for others.

    ``groups`` maps a regime (levels joined by :data:`REGIME_SEP`, coarse first) to its seed
    groups; each coarser level pools the groups of every regime under it. A regime uses its
    own pooled sd where it has :data:`MIN_POOLED_DOF` degrees of freedom, or where that sd
    exceeds the sd it would read otherwise (a larger pooled sd is always used); else a length
    falls back to the nearest shorter pooled length of its size, else to its parent, and the
    top level to the overall :func:`pooled_noise`.
    Rules: per training-set size added on 2026-12-04, per schedule length within a size added
    late that day, both after results existed; a length without a pool of its own reads the
    nearest shorter length's of its size (:func:`shorter_sibling`) since the session after
    2026-12-05's, also after results.
    """
    lists = {regime: [list(g) for g in gs] for regime, gs in groups.items()}
    overall = pooled_noise([g for gs in lists.values() for g in gs], metric)
    levels = _levels(lists)
    own: dict[str, float] = {}
    pools: dict[str, tuple[float, int]] = {}  # regime -> (sd, points) where used
    so_far = Noise(overall.sd, overall.source, own)  # reads ``own`` as it fills, coarse first

    # coarse first; a size's lengths shortest first (each compares with the shorter ones)
    for regime in sorted(levels, key=lambda r: (r.count(REGIME_SEP),
                                                 _natural(parent_regime(r) or r),
                                                 length_of(r) or 0.0, _natural(r))):
        sd, dof, points = _pooled(levels[regime])
        # the spread it would read without a pool of its own (the walk of Noise.sd_for: a
        # shorter length's of its size, else its parent's); lengths shortest first
        if dof and sd >= ZERO_SD and (dof >= MIN_POOLED_DOF or sd > so_far.sd_for(regime)):
            own[regime] = sd
            pools[regime] = (sd, points)
    if not own:
        return overall
    parts = []
    for regime in sorted(r for r in own if parent_regime(r) is None):
        sd, points = pools[regime]
        finer = [f"{r.rsplit(REGIME_SEP, 1)[1]} {per_run(pools[r][0], metric)} "
                 f"({_points(pools[r][1])})" for r in sorted(own, key=_natural)
                 if parent_regime(r) == regime]
        parts.append(f"{regime} {per_run(sd, metric)} ({_points(points)}"
                     + (f"; {', '.join(finer)})" if finer else ")"))
    for regime in sorted(r for r in own if parent_regime(r) not in own and
                         parent_regime(r) is not None):
        sd, points = pools[regime]
        parts.append(f"{regime} {per_run(sd, metric)} ({_points(points)})")
    return Noise(overall.sd, f"per regime: {'; '.join(parts)}; elsewhere {overall.source} (a "
                 "length without a pool of its own reads the nearest shorter length's of its "
                 "training-set size, else its size's; a size without one reads this)", own,
                 overall.assumed)


def _levels(groups: Mapping[str, list[list[float]]]) -> dict[str, list[list[float]]]:
    """Every level of every regime (:func:`parent_regime` up to the top) -> the seed groups
    of every regime under it."""
    levels: dict[str, list[list[float]]] = {}
    for regime, gs in groups.items():
        level: str | None = regime
        while level is not None:
            levels.setdefault(level, []).extend(gs)
            level = parent_regime(level)
    return levels


def noise_pools(groups: Mapping[str, Iterable[Sequence[float]]], metric: str = "test_acc"
                ) -> list[dict[str, Any]]:
    """One row per level of every regime (sizes first, each followed by its lengths): its
    pooled per-run spread, degrees of freedom and replicated points, and the spread its points
    read under :func:`pooled_noise_by_regime` (its own pool's, or the level it falls back to,
    named in ``reads``): the pools behind every claim's noise line as one table."""
    lists = {regime: [list(g) for g in gs] for regime, gs in groups.items()}
    noise = pooled_noise_by_regime(lists, metric)
    rows = []
    for regime, gs in _levels(lists).items():
        sd, dof, points = _pooled(gs)
        level = noise.level_for(regime)
        rows.append({"regime": regime, "sd": sd, "dof": dof, "points": points,
                     "read_sd": noise.sd_for(regime),
                     "reads": "its own pool" if level == regime else level or (
                         "the assumed spread" if noise.assumed else "the overall pool")})
    return sorted(rows, key=lambda r: (_natural(r["regime"].split(REGIME_SEP)[0]),
                                       r["regime"].count(REGIME_SEP), _natural(r["regime"])))


def _natural(regime: str) -> tuple[Any, ...]:
    """Sort key that orders "100 epochs" before "1000 epochs" and "300 epochs"."""
    return tuple((0, float(t), "") if t.replace(".", "", 1).isdigit() else (1, 0.0, t)
                 for t in re.split(r"(\d+(?:\.\d+)?)", regime) if t)
