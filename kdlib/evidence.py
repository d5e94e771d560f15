"""Noise-aware evidence: means over seeds, their standard errors, and the verdict scale.

A verdict reads means over seeds. A difference counts only when it exceeds :data:`K` standard
errors of the difference; otherwise the sub-check is "inconclusive". The standard error uses the
pooled seed spread of the replicated points of the point's own regime (its training-set size and
schedule length, else the nearest shorter length of its size with a pool of its own, else its
training-set size: :mod:`kdlib.seed_noise`), else of every
replicated point (:func:`pooled_noise`), else an assumed per-run spread (:data:`ASSUMED_SD`)
that the claim then names; a point with 2 or more seeds uses its own spread where that is
larger (each check names the spread each of its points read: :func:`spread_text`). Each
check also records its outcome under the coarser pool (training-set size only), at
:data:`K_STRICT` standard errors, from the held-out seeds only (the validation-selected run
left out: :meth:`Estimate.heldout`), and with the noise of which config the sweep selects added
(:func:`selection_sd`), and, for points a seed follow-up grew, from its new seeds only
(:meth:`Estimate.followup`), so a reader sees which outcomes rest on those choices.
Pure functions over numbers: no store, no JAX.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

from kdlib.seed_noise import (  # noqa: F401  (re-exported: evidence.Noise, ...)
    ACCURACIES,
    ASSUMED_SD,
    MIN_POOLED_DOF,
    REGIME_SEP,
    ZERO_SD,
    Noise,
    noise_pools,
    parent_regime,
    per_run,
    pooled_noise,
    pooled_noise_by_regime,
)

# A difference counts when it exceeds K standard errors (about a 95% two-sided interval).
K = 2.0
# Each check also records its outcome at this stricter multiple: with ~50 sub-checks at 2 SE
# a couple cross by chance, so a reader sees which decisions a 3 SE bar (99.7%) would undo.
K_STRICT = 3.0
# A point's own spread counts from this many seeds, and only where it exceeds the pooled one:
# 2 degrees of freedom cannot show a point quieter than the pooled spread (rule changed on
# 2026-12-04, after results existed: 3 seeds of one config read sd 0.04 pts, "±0.0 at 2 SE").
MIN_OWN_SEEDS = 3

OUTCOMES = ("holds", "fails", "inconclusive", "not testable")
VERDICTS = ("reproduced", "partly", "not reproduced", "inconclusive",
            "not testable at this scale")


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A quantity measured once per seed: its values, mean, spread and count."""

    values: tuple[float, ...]
    label: str = ""
    known: bool = False  # a number without sampling noise (see :func:`constant`)
    regime: str | None = None  # whose pooled seed noise applies (see :meth:`Noise.sd_for`)
    # The first value is the validation-selected run's: chosen as the best of its grid on
    # validation, it reads optimistic on test too (the winner's curse; see :meth:`heldout`).
    selected_first: bool = False
    # Its config was selected at an edge of its grid where the ladder goes further: the grid
    # does not bracket the optimum yet, so the point may still move when the grid grows.
    at_edge: bool = False
    # Its config was selected at the end of the ladder (lr 0.1): the rule grows the grid no
    # further, so the optimum may lie beyond it (reported; no queue resolves it).
    at_ladder_end: bool = False
    # How far its value would move if its grid were selected again under the validation's
    # seed noise (:func:`selection_sd`): the noise of *which* config the sweep picks, which
    # the seed replicates of the one it picked do not see. Read by the "selection" reading.
    select_sd: float = 0.0
    # The per-run spread a larger set of this point's seeds showed (its own sd at
    # MIN_OWN_SEEDS or more), kept by :meth:`heldout`: leaving the selected run out changes
    # which values are averaged, not how noisy the point is (since 2026-12-05; the held-out
    # reading had fallen back to the pooled spread, narrower than such a point's own).
    kept_sd: float = math.nan
    # Where the values a seed follow-up trained begin (values[followup_from:]: seeds trained
    # because a first reading of the point looked close; kdlib.experiments.queue_plan.ITEM_SEEDS),
    # or None when it has none. Read by the "follow-up" reading (:meth:`followup`).
    followup_from: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.values, str | bytes) or not hasattr(self.values, "__len__"):
            raise ValueError(f"Estimate {self.label!r} values={self.values!r}: give a sequence "
                             "of per-seed numbers, e.g. (0.81, 0.80, 0.82)")
        if len(self.values) == 0:
            raise ValueError(f"Estimate {self.label!r} has no values: a point with no "
                             "finished run cannot be compared")
        numbers = [isinstance(v, Real) and not isinstance(v, bool) for v in self.values]
        bad = [v for v, ok in zip(self.values, numbers, strict=True)
               if not (ok and math.isfinite(float(v)))]
        if bad:
            what = "values that are not numbers" if not all(numbers) else "non-finite values"
            raise ValueError(f"Estimate {self.label!r} has {what} {bad}")
        # numpy scalars and arrays in, plain floats out (tuples hash; sums are exact fsums)
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        if self.followup_from is not None and not 0 <= self.followup_from <= self.n:
            raise ValueError(f"Estimate {self.label!r} has followup_from={self.followup_from!r}"
                             f"; allowed: None or 0..{self.n} (its number of values)")
        if not (math.isfinite(self.select_sd) and self.select_sd >= 0):
            raise ValueError(f"Estimate {self.label!r} has select_sd={self.select_sd!r}; "
                             "allowed: a finite number >= 0")

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / self.n

    @property
    def sd(self) -> float:
        """Sample standard deviation (ddof 1); NaN below 2 values."""
        if self.n < 2:
            return math.nan
        m = self.mean
        return math.sqrt(math.fsum((v - m) ** 2 for v in self.values) / (self.n - 1))

    def se(self, noise_sd: float) -> float:
        """Standard error of the mean from ``noise_sd``, or from the own spread where the point
        has MIN_OWN_SEEDS seeds (or kept one from them: :attr:`kept_sd`) and that spread is
        larger (0 for a known number). Two seeds' spread widens it too where larger: too few
        to narrow the noise, enough to show a point noisier than the pool (since the session
        after 2026-12-05; until then 2 seeds read the pooled noise alone)."""
        if self.known:
            return 0.0
        own = self.own_sd
        sd = max(own, noise_sd) if math.isfinite(own) else noise_sd
        return sd / math.sqrt(self.n)

    @property
    def own_sd(self) -> float:
        """The point's own per-run spread that :meth:`se` weighs against the pooled one: its
        seeds' sd from MIN_OWN_SEEDS, or the one it kept from more where that is larger (a
        held-out point is as noisy as all its seeds showed; since 2026-12-06, a code review:
        before, only a point left with fewer than MIN_OWN_SEEDS read the kept spread, so one
        of 4 or more seeds could read a narrower one; no stored outcome moved), from
        2 seeds where it kept none; NaN where it has neither."""
        own = self.sd if self.n >= MIN_OWN_SEEDS else math.nan
        if math.isfinite(self.kept_sd):
            own = self.kept_sd if not math.isfinite(own) else max(own, self.kept_sd)
        if self.n == 2 and not math.isfinite(own):  # no spread kept from more seeds
            own = self.sd
        return own

    @property
    def can_hold_out(self) -> bool:
        """Whether :meth:`heldout` leaves the selected run out (at least 2 other seeds, so
        the point has MIN_OWN_SEEDS and its own spread to keep)."""
        return self.selected_first and self.n >= max(3, MIN_OWN_SEEDS)

    def heldout(self) -> Estimate:
        """The seeds that played no part in selecting the config: without the selected run's
        value where the point has at least 2 others (else the estimate itself), keeping the
        spread all its seeds showed (:attr:`kept_sd`)."""
        if not self.can_hold_out:
            return self
        first = self.followup_from  # the follow-up's values move one place forward
        return dataclasses.replace(self, values=self.values[1:], selected_first=False,
                                   kept_sd=self.sd, followup_from=None if first in (
                                       None, self.n) else max(0, first - 1))

    @property
    def can_follow_up(self) -> bool:
        """Whether :meth:`followup` has MIN_OWN_SEEDS follow-up values to read."""
        return self.followup_from is not None and self.n - self.followup_from >= MIN_OWN_SEEDS

    def followup(self) -> Estimate:
        """Only the seeds a follow-up trained (where it trained MIN_OWN_SEEDS; else the
        estimate itself): the choice to follow a point up looked at its first seeds, so they
        lean the way that prompted it; the new seeds did not, and read it afresh."""
        if not self.can_follow_up:
            return self
        return dataclasses.replace(self, values=self.values[self.followup_from:],
                                   selected_first=False, followup_from=None)

    def text(self, scale: float = 100.0, unit: str = "%") -> str:
        """``82.1±0.4% (n=3)``; ``86.5±0.04% (n=3)`` for a spread that rounds to 0.0;
        ``82.1% (n=1)`` for a single seed; ``69.4% (n=1, grid edge)`` for a point selected at
        a grid edge the ladder goes beyond (its grid may not hold its optimum); ``87.5%`` when
        known."""
        if self.known:
            return f"{scale * self.mean:.1f}{unit}"
        sd = scale * self.sd
        spread = (f"±{sd:.1f}" if round(sd, 1) > 0 else f"±{sd:.2f}") if self.n >= 2 else ""
        edge = ", grid edge" if self.at_edge else ""
        return f"{scale * self.mean:.1f}{spread}{unit} (n={self.n}{edge})"


def constant(value: float, label: str = "") -> Estimate:
    """A number known without noise (chance level, a teacher's accuracy) as an Estimate."""
    return Estimate((float(value),), label, known=True)


# Re-selections drawn by :func:`selection_sd` (fixed seed: the same table gives the same sd).
SELECTION_DRAWS = 4000


def selection_sd(val: Sequence[float], test: Sequence[float], selected: int, val_sd: float,
                 *, draws: int = SELECTION_DRAWS, seed: int = 0) -> float:
    """How far a swept point's test accuracy moves when its grid is selected again.

    Each draw adds independent seed noise (``val_sd`` per run, measured from replicates) to
    every grid run's validation accuracy, takes the best, and records its test accuracy
    minus the selected run's (``test[j] - test[selected]``; 0 when the same run wins). The
    result is the spread (sd) of that shift: 0 for a clear winner, large where configs tie on
    validation but differ on test. ``test`` holds each grid run's test accuracy, or its
    config's mean over more seeds where known; a single run's carries its seed's noise too,
    which makes the measure conservative. Deterministic (``seed``).
    """
    import numpy as np

    va, te = np.asarray(val, float), np.asarray(test, float)
    if va.ndim != 1 or va.shape != te.shape or not va.size:
        raise ValueError(f"val and test need one value per grid run each (got {va.shape} "
                         f"and {te.shape})")
    if not 0 <= selected < va.size:
        raise ValueError(f"selected={selected} is not a run of the {va.size}-run grid")
    if not (np.isfinite(va).all() and np.isfinite(te).all()):
        raise ValueError(f"non-finite accuracies: val {va.tolist()}, test {te.tolist()}")
    if not (math.isfinite(val_sd) and val_sd >= 0):
        raise ValueError(f"val_sd={val_sd!r}; allowed: a finite number >= 0")
    if va.size == 1 or val_sd == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    picked = np.argmax(va + rng.normal(0.0, val_sd, (draws, va.size)), axis=1)
    return float(np.std(te[picked] - te[selected]))


@dataclasses.dataclass(frozen=True)
class Check:
    """One sub-check of a claim: what it tests, its outcome and the numbers behind it."""

    name: str
    outcome: str
    detail: str
    margin: float | None = None  # the measured difference the outcome rests on
    se: float | None = None  # its standard error
    seeds: int | None = None  # the fewest seeds of a measured point it compares
    # The outcome with seed noise pooled per training-set size only (Noise.sd_for(coarse=True)):
    # where it differs from ``outcome``, the outcome depends on how the noise is pooled.
    coarse_outcome: str | None = None
    # The outcome at K_STRICT standard errors: where it differs, the decision is a close one.
    strict_outcome: str | None = None
    # The outcome from the held-out seeds only (Estimate.heldout: the selected run left out).
    heldout_outcome: str | None = None
    # The outcome with each point's selection noise (Estimate.select_sd) added to the SE.
    selection_outcome: str | None = None
    # A point it compares was selected at a grid edge the ladder goes beyond (Estimate.at_edge):
    # the outcome is provisional until that grid is grown.
    at_edge: bool | None = None
    # A point it compares was selected at the ladder's end (Estimate.at_ladder_end).
    at_ladder_end: bool | None = None
    # The value of ``margin`` the decision is taken against (0 for "a > b", -tol for "a at
    # least b - tol"): the check holds or fails once |margin - bound| exceeds K SE.
    bound: float | None = None
    # The outcome from the follow-up seeds only (Estimate.followup), where every measured
    # point it compares has them; None elsewhere.
    followup_outcome: str | None = None
    # The per-run spread each compared point's standard error read, and where it came from
    # (:func:`spreads_text`): the pool of its regime or its own seeds' (since the session
    # after 2026-12-05; the claim's noise line lists every pool, not which one a point read).
    noise: str | None = None

    def __post_init__(self) -> None:
        for outcome in (self.outcome, self.coarse_outcome, self.strict_outcome,
                        self.heldout_outcome, self.selection_outcome, self.followup_outcome):
            if outcome is not None and outcome not in OUTCOMES:
                raise ValueError(f"Check {self.name!r} outcome={outcome!r}; "
                                 f"allowed: {OUTCOMES}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _se(a: Estimate, b: Estimate, noise: Noise, coarse: bool = False,
        selection: bool = False) -> float:
    """SE of a - b from the seed noise; ``selection`` adds each point's selection noise."""
    extra = a.select_sd ** 2 + b.select_sd ** 2 if selection else 0.0
    return math.sqrt(a.se(noise.sd_for(a.regime, coarse=coarse)) ** 2
                     + b.se(noise.sd_for(b.regime, coarse=coarse)) ** 2 + extra)


def _diff(a: Estimate, b: Estimate, noise: Noise) -> tuple[float, float]:
    return a.mean - b.mean, _se(a, b, noise)


def spread_text(point: Estimate, noise: Noise, metric: str = "test_acc") -> str:
    """The per-run spread ``point``'s standard error reads (:meth:`Estimate.se`) and where it
    comes from: ``"0.69 pts pooled (1000 images, 300 epochs)"``, ``"1.32 pts, its own 3
    seeds"`` where those spread more than its pool (``"its own over all its seeds"`` for the
    held-out reading's, :attr:`Estimate.kept_sd`), ``"none (a known number)"``."""
    if point.known:
        return "none (a known number)"
    pooled, own = noise.sd_for(point.regime), point.own_sd
    if math.isfinite(own) and own > pooled:
        if point.n < MIN_OWN_SEEDS and math.isfinite(point.kept_sd):
            return f"{per_run(own, metric)}, its own over all its seeds"
        return f"{per_run(own, metric)}, its own {point.n} seeds"
    level = noise.level_for(point.regime)
    if level is None and noise.assumed:
        return f"{per_run(pooled, metric)} assumed (no pool of replicates measured it)"
    return f"{per_run(pooled, metric)} pooled ({level or 'over every replicated point'})"


def spreads_text(points: Sequence[Estimate], noise: Noise, metric: str = "test_acc") -> str:
    """:func:`spread_text` of each measured point, ``label: spread`` joined by "; " (one
    entry where every point reads the same spread)."""
    texts = {p.label: spread_text(p, noise, metric) for p in points if not p.known}
    if len(set(texts.values())) == 1 and len(texts) > 1:
        return f"each {next(iter(texts.values()))}"
    return "; ".join(f"{label}: {text}" for label, text in texts.items())


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def _fewest_seeds(*points: Estimate) -> int | None:
    """The fewest seeds among the measured (not known) points."""
    return min((p.n for p in points if not p.known), default=None)


def _edge(*points: Estimate) -> bool:
    """Whether a compared point was selected at a grid edge the ladder goes beyond."""
    return any(p.at_edge for p in points)


def _ladder_end(*points: Estimate) -> bool:
    """Whether a compared point was selected at the ladder's end."""
    return any(p.at_ladder_end for p in points)


def _heldout(*points: Estimate) -> tuple[Estimate, ...] | None:
    """The points' held-out seeds (:meth:`Estimate.heldout`), or None unless every measured
    point can leave its selected run out: a point that cannot keeps its winner's curse, and
    the reading would then favour it (since 2026-12-05; 1-seed points had been compared
    as they are)."""
    measured = [p for p in points if not p.known]
    if not measured or not all(p.can_hold_out for p in measured):
        return None
    return tuple(p if p.known else p.heldout() for p in points)


def _followup(*points: Estimate) -> tuple[Estimate, ...] | None:
    """The points' follow-up seeds (:meth:`Estimate.followup`), or None unless every measured
    point has them (a comparison of new seeds with old ones would mix the two readings)."""
    measured = [p for p in points if not p.known]
    if not measured or not all(p.can_follow_up for p in measured):
        return None
    return tuple(p if p.known else p.followup() for p in points)


def _check_k(k: float) -> None:
    if not (isinstance(k, int | float) and math.isfinite(k) and k > 0):
        raise ValueError(f"k={k!r}; allowed: a finite number > 0 of standard errors (the "
                         f"rule's is {K:g})")


def _beyond(d: float, se: float, k: float) -> str:
    return "holds" if d > k * se else "fails" if d < -k * se else "inconclusive"


def greater(name: str, a: Estimate, b: Estimate, noise: Noise, *, k: float = K) -> Check:
    """Check that ``a`` > ``b``: holds beyond +k SE, fails beyond -k SE, else inconclusive."""
    _check_k(k)
    d, se = _diff(a, b, noise)
    detail = (f"{a.label} {a.text()} vs {b.label} {b.text()}: {_pts(d)} "
              f"(±{100 * k * se:.1f} at {k:g} SE)")
    held, new = _heldout(a, b), _followup(a, b)
    return Check(name, _beyond(d, se, k), detail, d, se, _fewest_seeds(a, b),
                 _beyond(d, _se(a, b, noise, coarse=True), k), _beyond(d, se, K_STRICT),
                 _beyond(*_diff(held[0], held[1], noise), k) if held else None,
                 _beyond(d, _se(a, b, noise, selection=True), k), _edge(a, b),
                 _ladder_end(a, b), 0.0, _beyond(*_diff(new[0], new[1], noise), k) if new else None,
                 spreads_text((a, b), noise))


def at_least(name: str, a: Estimate, b: Estimate, tol: float, noise: Noise, *,
             k: float = K) -> Check:
    """Check that ``a`` >= ``b`` - ``tol``: holds when the difference's lower bound (−k SE)
    clears −tol, fails when its upper bound falls below −tol, else inconclusive."""
    _check_k(k)
    d, se = _diff(a, b, noise)

    def outcome(d: float, se: float, k: float = k) -> str:
        return ("holds" if d - k * se >= -tol else "fails" if d + k * se < -tol
                else "inconclusive")

    detail = (f"{a.label} {a.text()} vs {b.label} {b.text()}: {_pts(d)} "
              f"(±{100 * k * se:.1f} at {k:g} SE; allowed −{100 * tol:.1f} pts)")
    held, new = _heldout(a, b), _followup(a, b)
    return Check(name, outcome(d, se), detail, d, se, _fewest_seeds(a, b),
                 outcome(d, _se(a, b, noise, coarse=True)), outcome(d, se, K_STRICT),
                 outcome(*_diff(held[0], held[1], noise)) if held else None,
                 outcome(d, _se(a, b, noise, selection=True)), _edge(a, b),
                 _ladder_end(a, b), -tol, outcome(*_diff(new[0], new[1], noise)) if new else None,
                 spreads_text((a, b), noise))


def difference_greater(name: str, a: tuple[Estimate, Estimate], b: tuple[Estimate, Estimate],
                       noise: Noise, *, k: float = K) -> Check:
    """Check that (a0 - a1) > (b0 - b1): a gain larger than another, with both gains' noise."""
    _check_k(k)
    da, sea = _diff(*a, noise)
    db, seb = _diff(*b, noise)
    d, se = da - db, math.sqrt(sea ** 2 + seb ** 2)
    coarse_se = math.sqrt(_se(*a, noise, coarse=True) ** 2 + _se(*b, noise, coarse=True) ** 2)
    select_se = math.sqrt(_se(*a, noise, selection=True) ** 2
                          + _se(*b, noise, selection=True) ** 2)
    def gain_outcome(points: tuple[Estimate, ...] | None) -> str | None:
        if not points:
            return None
        (ga, sa), (gb, sb) = _diff(points[0], points[1], noise), _diff(points[2], points[3], noise)
        return _beyond(ga - gb, math.sqrt(sa ** 2 + sb ** 2), k)

    detail = (f"{a[0].label} − {a[1].label} {_pts(da)} vs {b[0].label} − {b[1].label} "
              f"{_pts(db)}: {_pts(d)} (±{100 * k * se:.1f} at {k:g} SE)")
    return Check(name, _beyond(d, se, k), detail, d, se, _fewest_seeds(*a, *b),
                 _beyond(d, coarse_se, k), _beyond(d, se, K_STRICT),
                 gain_outcome(_heldout(*a, *b)), _beyond(d, select_se, k), _edge(*a, *b),
                 _ladder_end(*a, *b), 0.0, gain_outcome(_followup(*a, *b)),
                 spreads_text((*a, *b), noise))


def seeds_to_decide(check: Check, *, k: float = K) -> float | None:
    """About how many seeds per point an inconclusive check would need to be decided at
    ``k`` SE if its difference stayed as measured (its SE shrinking as one over the square
    root of the seeds): ``seeds * (k SE / |margin - bound|)^2``, rounded up; inf when the
    difference sits on the bound; None for a check that is decided or not measured."""
    margin, se, seeds, bound = check.margin, check.se, check.seeds, check.bound
    if (check.outcome != "inconclusive" or margin is None or se is None or seeds is None
            or bound is None):
        return None
    gap = abs(margin - bound)
    if gap == 0:
        return math.inf
    return float(math.ceil(seeds * (k * se / gap) ** 2))


def seeds_to_firm(check: Check, *, k: float = K_STRICT) -> float | None:
    """About how many seeds per point a decided check would need to stay decided at the
    stricter ``k`` SE if its difference stayed as measured (:func:`seeds_to_decide`'s
    formula); None for an undecided or unmeasured check, or one already decided at ``k``."""
    margin, se, seeds, bound = check.margin, check.se, check.seeds, check.bound
    if (check.outcome not in ("holds", "fails") or margin is None or se is None
            or seeds is None or bound is None):
        return None
    gap = abs(margin - bound)
    if gap > k * se:
        return None
    return float(math.ceil(seeds * (k * se / gap) ** 2))


def not_testable(name: str, why: str) -> Check:
    """A sub-check our scale cannot speak to (the paper's effect lives beyond it)."""
    return Check(name, "not testable", why)


def flag(name: str, ok: bool, detail: str) -> Check:
    """A sub-check without sampling noise (a measured ratio against a bound, a premise)."""
    return Check(name, "holds" if ok else "fails", detail)


def combine(checks: Sequence[Check], *, reading: str = "outcome") -> str:
    """The claim's verdict from its sub-checks' ``reading``: "outcome" (the rule),
    "coarse_outcome" (noise pooled per training-set size only), "strict_outcome" (at
    :data:`K_STRICT` SE), "heldout_outcome" (the selected runs left out),
    "selection_outcome" (each point's selection noise added) or "followup_outcome" (a seed
    follow-up's new seeds only); a check without that reading counts with its outcome.

    reproduced: every check holds. not reproduced: every check fails. partly: some hold and
    some fail. Otherwise (not all alike, not both): "not testable at this scale" when a check
    is not testable, else inconclusive. The two ends mirror each other (until the session
    after 2026-12-05 "not reproduced" needed only one fail and no hold, so one fail beside
    inconclusive checks read "not reproduced" where one hold read "inconclusive").
    """
    if not checks:
        raise ValueError("a claim needs at least one sub-check")
    if reading not in READINGS:
        raise ValueError(f"reading={reading!r}; allowed: {READINGS}")
    outcomes = [getattr(c, reading) or c.outcome for c in checks]
    holds, fails = outcomes.count("holds"), outcomes.count("fails")
    if holds == len(outcomes):
        return "reproduced"
    if fails == len(outcomes):
        return "not reproduced"
    if holds and fails:
        return "partly"
    if "not testable" in outcomes:
        return "not testable at this scale"
    return "inconclusive"


def verdicts_under(checks: Sequence[Check]) -> dict[str, str]:
    """The verdict under each alternative reading (:data:`READINGS` after "outcome") that
    some check records: where one differs from :func:`combine`'s, the verdict rests on a
    choice of the rules rather than on the runs alone."""
    return {r: combine(checks, reading=r) for r in READINGS[1:]
            if any(getattr(c, r) for c in checks)}


# A check's outcome under the rule, and under the alternative readings it records.
READINGS = ("outcome", "coarse_outcome", "strict_outcome", "heldout_outcome",
            "selection_outcome", "followup_outcome")
