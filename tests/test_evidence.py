"""Noise-aware comparisons (kdlib.evidence): estimates, standard errors, the verdict scale."""

import math

import pytest

from kdlib import evidence as ev
from kdlib import seed_noise

NOISE = ev.Noise(0.01, "test")


def e(*values, label="x"):
    return ev.Estimate(tuple(values), label)


def test_estimate_mean_sd_and_text():
    x = e(0.80, 0.82, 0.84)
    assert x.n == 3 and x.mean == pytest.approx(0.82) and x.sd == pytest.approx(0.02)
    assert x.text() == "82.0±2.0% (n=3)"
    assert math.isnan(e(0.5).sd) and e(0.5).text() == "50.0% (n=1)"
    assert e(0.8653, 0.8657, 0.8650).text() == "86.5±0.04% (n=3)"  # not a spread of 0.0
    # a point selected at a grid edge says so wherever it is quoted (its grid may miss the
    # optimum: a reader must not read it beside a grown grid's point as an equal)
    assert ev.Estimate((0.6938,), "x", at_edge=True).text() == "69.4% (n=1, grid edge)"


def test_standard_error_uses_own_spread_from_three_seeds_where_larger_else_the_noise():
    assert e(0.80, 0.82, 0.84).se(0.005) == pytest.approx(0.02 / math.sqrt(3))
    # 3 seeds cannot show a point quieter than the pooled noise
    assert e(0.80, 0.82, 0.84).se(0.5) == pytest.approx(0.5 / math.sqrt(3))
    # 2 seeds cannot narrow the pooled noise, but show a point noisier than it
    assert e(0.80, 0.82).se(0.05) == pytest.approx(0.05 / math.sqrt(2))
    assert e(0.80, 0.82).se(0.01) == pytest.approx(e(0.80, 0.82).sd / math.sqrt(2))
    assert e(0.80, 0.82).sd == pytest.approx(0.02 / math.sqrt(2))
    assert e(0.8).se(0.01) == pytest.approx(0.01)


@pytest.mark.parametrize("values", [(), (float("nan"),), (0.5, float("inf"))])
def test_estimate_refuses_empty_or_non_finite(values):
    with pytest.raises(ValueError, match="Estimate 'x'"):
        e(*values)


def test_pooled_noise_weights_groups_by_degrees_of_freedom():
    groups = [[0.80, 0.82, 0.84], [0.5, 0.5]] + [[0.6, 0.6, 0.6]] * 4 + [[0.7]]
    n = ev.pooled_noise(groups)
    # (2 * 0.02**2 + 0) / 11 degrees of freedom
    assert n.sd == pytest.approx(math.sqrt(2 * 0.0004 / 11))
    assert "pooled over 6 replicated points" in n.source


def test_pooled_noise_below_min_dof_does_not_narrow_the_assumption():
    small = ev.pooled_noise([[0.800, 0.805, 0.810], [0.5, 0.5], [0.7]])  # 3 dof, sd 0.004
    assert small.sd == ev.ASSUMED_SD["test_acc"]
    assert "3 degrees of freedom (< 10)" in small.source
    wide = ev.pooled_noise([[0.70, 0.74, 0.78]])  # 2 dof, sd 0.04 > assumed: used
    assert wide.sd == pytest.approx(0.04) and "pooled over 1 replicated points" in wide.source


def test_pooled_noise_without_replicates_is_the_stated_assumption():
    n = ev.pooled_noise([[0.8], [0.7]])
    assert n.sd == ev.ASSUMED_SD["test_acc"] and n.source.startswith("assumed 1.0 pts")


def test_noise_by_regime_uses_a_regimes_own_pool_where_measured():
    quiet = [[0.80, 0.801, 0.802]] * 5  # 10 dof, sd 0.001
    loud = [[0.60, 0.64, 0.68]] * 5  # 10 dof, sd 0.04
    few = [[0.70, 0.71]]  # 1 dof, sd 0.007: too few to narrow the overall pool
    n = ev.pooled_noise_by_regime({"1000 images": quiet, "250 images": loud, "4000": few})
    overall = ev.pooled_noise(quiet + loud + few)
    assert n.sd == pytest.approx(overall.sd)
    assert n.sd_for("1000 images") == pytest.approx(0.001)
    assert n.sd_for("250 images") == pytest.approx(0.04)
    assert n.sd_for("4000") == n.sd_for("55k") == n.sd_for(None) == pytest.approx(overall.sd)
    assert n.source.startswith("per regime: 1000 images 0.10 pts (5 points); 250 images 4.00 "
                               "pts (5 points); elsewhere ")
    # a regime louder than the overall pool uses its own spread even with few dof
    louder = ev.pooled_noise_by_regime({"a": quiet, "b": [[0.5, 0.6]]})
    assert louder.sd_for("b") == pytest.approx(math.sqrt(0.005))
    assert "a" in louder.by_regime
    # without any replicated regime it is the plain pooled noise
    assert ev.pooled_noise_by_regime({"a": [[0.8]]}).source.startswith("assumed 1.0 pts")


def test_noise_by_regime_pools_schedule_lengths_within_a_size():
    """Levels: "1000 images, 300 epochs" uses its own pool where it has 10 dof or is louder
    than its size's pool, else its size's pool (if that qualified), else the overall one."""
    quiet = [[0.80, 0.801, 0.802]] * 5  # 10 dof, sd 0.001
    loud = [[0.60, 0.64, 0.68]] * 2  # 4 dof, sd 0.04: louder than its size's pool
    middling = [[0.80, 0.805]]  # 1 dof, sd 0.0035: quieter than its size's pool
    n = ev.pooled_noise_by_regime({"1k, 300 epochs": quiet, "1k, 100 epochs": loud,
                                   "1k, 30 epochs": middling, "250, 30 epochs": [[0.7, 0.71]]})
    size_sd, size_dof, _ = seed_noise._pooled(quiet + loud + middling)
    assert size_dof == 15
    assert n.by_regime["1k"] == pytest.approx(size_sd)
    assert n.sd_for("1k, 300 epochs") == pytest.approx(0.001)  # 10 dof of its own
    assert n.sd_for("1k, 100 epochs") == pytest.approx(0.04)  # louder than 1k's pool
    assert n.sd_for("1k, 30 epochs") == n.sd_for("1k, 3 epochs") == pytest.approx(size_sd)
    assert n.sd_for("250, 30 epochs") == n.sd_for("250") == pytest.approx(n.sd)  # overall
    # the coarse reading skips the length level: every length of a size reads its size's pool
    for regime in ("1k, 300 epochs", "1k, 100 epochs", "1k, 30 epochs"):
        assert n.sd_for(regime, coarse=True) == pytest.approx(size_sd)
    assert n.sd_for("1k", coarse=True) == n.sd_for(None, coarse=True) == pytest.approx(n.sd)
    assert n.source.startswith("per regime: 1k ")
    assert "100 epochs 4.00 pts (2 points), 300 epochs 0.10 pts (5 points)" in n.source
    assert ev.parent_regime("1k, 300 epochs") == "1k" and ev.parent_regime("1k") is None


def test_a_length_without_its_own_pool_reads_the_nearest_shorter_pooled_length():
    """Seed noise falls with schedule length, so a length too thinly replicated for a pool of
    its own reads the nearest shorter length of its size that has one (an upper bound tighter
    than its size's pool, which the short lengths dominate), else its size's; never a longer
    length's, and never another size's. The coarse reading still reads the size's pool."""
    quiet = [[0.80, 0.801, 0.802]] * 5  # 10 dof, sd 0.001
    loud = [[0.60, 0.64, 0.68]] * 5  # 10 dof, sd 0.04
    groups = {"1k, 100 epochs": loud, "1k, 300 epochs": quiet,
              "1k, 1000 epochs": [[0.85, 0.8501]],  # 1 dof, quieter than 300's: no own pool
              "1k, 3000 epochs": [[0.86, 0.90]],  # 1 dof, louder than 300's: its own
              "250, 40 epochs": [[0.3, 0.5]] * 10}
    n = ev.pooled_noise_by_regime(groups)
    size_sd = n.by_regime["1k"]
    assert n.level_for("1k, 1000 epochs") == "1k, 300 epochs"
    assert n.sd_for("1k, 1000 epochs") == pytest.approx(0.001)
    assert n.sd_for("1k, 3000 epochs") == pytest.approx(0.04 / 1.4142, rel=1e-3)  # its own
    assert n.level_for("1k, 10000 epochs") == "1k, 3000 epochs"  # the nearest shorter pooled
    assert n.level_for("1k, 200 epochs") == "1k, 100 epochs"  # not 300, though nearer
    assert n.level_for("1k, 30 epochs") == "1k"  # nothing shorter pooled: the size's
    assert n.sd_for("1k, 30 epochs") == pytest.approx(size_sd)
    assert n.level_for("250, 4000 epochs") == "250, 40 epochs"  # its own size only
    assert n.sd_for("1k, 1000 epochs", coarse=True) == pytest.approx(size_sd)
    assert "reads the nearest shorter length's" in n.source
    assert seed_noise.shorter_sibling("1k, 1e+06 epochs", n.by_regime) == "1k, 3000 epochs"
    assert seed_noise.shorter_sibling("1k, 0.3 epochs", n.by_regime) is None
    assert seed_noise.shorter_sibling("1k", n.by_regime) is None  # a size is no length
    assert seed_noise.shorter_sibling("1k, warm-up", n.by_regime) is None  # nor an unnamed level


def test_a_check_records_its_outcome_under_the_coarser_pool():
    noise = ev.Noise(0.01, "test", {"1k": 0.01, "1k, 300 epochs": 0.002})
    a = ev.Estimate((0.81,), "a", regime="1k, 300 epochs")
    b = ev.Estimate((0.80,), "b", regime="1k, 300 epochs")
    check = ev.greater("a>b", a, b, noise)  # 1 pt vs 2 SE: 0.57 pts (fine), 2.8 pts (coarse)
    assert (check.outcome, check.coarse_outcome) == ("holds", "inconclusive")
    assert ev.combine([check]) == "reproduced"
    assert ev.combine([check], reading="coarse_outcome") == "inconclusive"
    assert check.strict_outcome == "holds"  # 1 pt vs 3 SE: 0.85 pts
    with pytest.raises(ValueError, match="reading='sloppy'"):
        ev.combine([check], reading="sloppy")
    within = ev.at_least("a>=b-0.1", b, a, 0.001, noise)  # -1 pt, allowed -0.1
    assert (within.outcome, within.coarse_outcome) == ("fails", "inconclusive")
    gain = ev.difference_greater("gain", (a, b), (b, b), noise)
    assert (gain.outcome, gain.coarse_outcome) == ("holds", "inconclusive")
    # 3 SE: a 2.5 SE difference holds at the rule's 2 and is inconclusive at 3
    near = ev.greater("near", ev.Estimate((0.8 + 0.025,), "a"), ev.Estimate((0.8,), "b"),
                      ev.Noise(0.01 / math.sqrt(2), "t"))
    assert (near.outcome, near.strict_outcome) == ("holds", "inconclusive")
    far = ev.at_least("far", b, a, 0.001, ev.Noise(0.001, "t"))  # -1 pt at 0.14 pts SE
    assert (far.outcome, far.strict_outcome) == ("fails", "fails")
    with pytest.raises(ValueError, match="outcome='maybe'"):
        ev.Check("x", "holds", "", coarse_outcome="maybe")


def test_the_heldout_reading_leaves_the_selected_run_out():
    """The validation-selected run reads optimistic on test (chosen as its grid's best), so
    each check also records its outcome from the other seeds only, where a point has 2."""
    lucky = ev.Estimate((0.86, 0.85, 0.85), "a", selected_first=True)
    other = ev.Estimate((0.80, 0.81, 0.81), "b", selected_first=True)
    assert lucky.heldout().values == (0.85, 0.85) and not lucky.heldout().selected_first
    assert ev.Estimate((0.9, 0.8), "x", selected_first=True).heldout().n == 2  # too few: kept
    assert ev.Estimate((0.9, 0.8, 0.7), "x").heldout().n == 3  # not marked: kept
    noise = ev.Noise(0.025, "test")
    # both points beat the other by 4+ pts on every seed; the selected runs left out, the gap
    # shrinks (the lucky point's 86% goes) and the spread stays: inconclusive
    check = ev.greater("a>b", lucky, other, noise)
    assert (check.outcome, check.heldout_outcome) == ("holds", "inconclusive")
    assert check.heldout_outcome == ev.greater("x", lucky.heldout(), other.heldout(),
                                               noise).outcome
    tol = ev.at_least("b>=a-10", other, lucky, 0.10, noise)
    assert tol.heldout_outcome == ev.at_least("x", other.heldout(), lucky.heldout(), 0.10,
                                              noise).outcome == "holds"
    assert ev.combine([check], reading="heldout_outcome") == "inconclusive"


def test_the_heldout_reading_keeps_the_point_s_own_spread():
    """Leaving the selected run out changes which values are averaged, not how noisy the
    point is: a point whose 3 seeds spread more than the pool keeps that spread (C5's 1k
    scratch point at 100 epochs read 78.75/74.38/79.24%, sd 2.68 pts against a pool of 1.38:
    the held-out reading had called the check "holds" on the pool's narrower SE)."""
    scratch = ev.Estimate((0.7875, 0.7438, 0.7924), "scratch", selected_first=True)
    student = ev.Estimate((0.8025, 0.8035, 0.8050), "student", selected_first=True)
    noise = ev.Noise(0.0138, "pool")
    held = scratch.heldout()
    assert held.kept_sd == pytest.approx(scratch.sd)
    assert held.se(noise.sd) == pytest.approx(scratch.sd / math.sqrt(2))
    check = ev.greater("student > scratch", student, scratch, noise)
    assert (check.outcome, check.heldout_outcome) == ("inconclusive", "inconclusive")
    quiet = ev.Estimate((0.80, 0.80, 0.80), "q", selected_first=True).heldout()
    assert quiet.se(0.01) == pytest.approx(0.01 / math.sqrt(2))  # the pool where wider
    # 4 or more seeds too: the 3 left read the spread all 4 showed where it is wider (they
    # had read their own, 0, and a lucky selected run made the held-out reading lenient)
    four = ev.Estimate((0.90, 0.80, 0.80, 0.80), "four", selected_first=True)
    assert four.heldout().own_sd == pytest.approx(four.sd)
    assert four.heldout().se(0.005) == pytest.approx(four.sd / math.sqrt(3))
    level = ev.Estimate((0.78,) * 4, "level", selected_first=True)
    assert ev.greater("x", four, level, ev.Noise(0.005, "pool")).heldout_outcome == \
        "inconclusive"


def test_the_heldout_reading_needs_every_compared_point_to_hold_its_selected_run_out():
    """A 1-seed point keeps its winner's curse: against a 3-seed point left without its
    selected run the reading would favour it, so it records no held-out outcome (counted
    with the rule's in a verdict); a known number (a teacher's accuracy) needs none."""
    three = ev.Estimate((0.86, 0.85, 0.85), "a", selected_first=True)
    one = ev.Estimate((0.84,), "b", selected_first=True)
    noise = ev.Noise(0.001, "test")
    assert ev.greater("x", three, one, noise).heldout_outcome is None
    assert ev.at_least("x", one, three, 0.0, noise).heldout_outcome is None
    assert ev.difference_greater("x", (three, three), (three, one), noise).heldout_outcome \
        is None
    teacher = ev.constant(0.80, "teacher")
    assert ev.greater("x", three, teacher, noise).heldout_outcome == "holds"
    gain = ev.difference_greater("gain", (three, teacher), (teacher, teacher), noise)
    assert gain.heldout_outcome == "holds"
    assert ev.combine([ev.greater("x", three, one, noise)], reading="heldout_outcome") == \
        ev.combine([ev.greater("x", three, one, noise)])


def test_the_followup_reading_reads_the_new_seeds_only():
    """A seed follow-up was chosen because a point's first 3 seeds looked close and leaned one
    way; its new seeds did not prompt it, so each check also records its outcome from them
    alone. Here the first seeds hold the check and the 5 new ones do not."""
    a = ev.Estimate((0.86, 0.85, 0.86, 0.80, 0.81, 0.80, 0.82, 0.81), "a",
                    selected_first=True, followup_from=3)
    b = ev.Estimate((0.80, 0.81, 0.80, 0.81, 0.80, 0.81, 0.80, 0.81), "b",
                    selected_first=True, followup_from=3)
    assert a.can_follow_up and a.followup().values == (0.80, 0.81, 0.80, 0.82, 0.81)
    assert not a.followup().selected_first and a.followup().followup_from is None
    noise = ev.Noise(0.005, "test")
    check = ev.greater("a>b", a, b, noise)
    assert check.outcome == "holds"  # +2.0 pts over all 8 seeds
    assert check.followup_outcome == ev.greater("x", a.followup(), b.followup(),
                                                noise).outcome == "inconclusive"
    assert ev.combine([check], reading="followup_outcome") == "inconclusive"
    tol = ev.at_least("b>=a-1", b, a, 0.01, noise)
    assert tol.followup_outcome == ev.at_least("x", b.followup(), a.followup(), 0.01,
                                               noise).outcome
    gain = ev.difference_greater("gain", (a, b), (b, b), noise)
    assert (gain.outcome, gain.followup_outcome) == ("holds", "inconclusive")


def test_the_followup_reading_needs_every_compared_point_followed_up():
    """A point without follow-up seeds (or with fewer than 3) gives no follow-up outcome: new
    seeds against old ones would mix the two readings. A known number needs none."""
    grown = ev.Estimate((0.9, 0.9, 0.9, 0.9, 0.9, 0.9), "g", followup_from=3)
    short = ev.Estimate((0.9, 0.9, 0.9, 0.9), "s", followup_from=3)  # 1 new seed
    plain = ev.Estimate((0.8, 0.8, 0.8), "p")
    noise = ev.Noise(0.01, "test")
    assert not short.can_follow_up and short.followup() is short
    assert not plain.can_follow_up
    assert ev.greater("x", grown, plain, noise).followup_outcome is None
    assert ev.greater("x", grown, short, noise).followup_outcome is None
    assert ev.greater("x", grown, ev.constant(0.8), noise).followup_outcome == "holds"
    with pytest.raises(ValueError, match="followup_from=4; allowed: None or 0..3"):
        ev.Estimate((0.8, 0.8, 0.8), "p", followup_from=4)


def test_a_pool_of_identical_seeds_is_no_measurement():
    """Seeds that changed nothing (every replicate equal) would make the spread 0 and any
    difference count: the assumed spread is used instead, and said."""
    flat = [[0.8, 0.8, 0.8]] * 6  # 12 degrees of freedom, sd 0
    noise = ev.pooled_noise(flat)
    assert noise.sd == ev.ASSUMED_SD["test_acc"] and "equal values on every seed" in noise.source
    by_regime = ev.pooled_noise_by_regime({"1000 images": flat})
    assert by_regime.sd_for("1000 images") == ev.ASSUMED_SD["test_acc"]
    tiny = ev.greater("x", ev.Estimate((0.8001,)), ev.Estimate((0.8,)), noise)
    assert tiny.outcome == "inconclusive"


def test_selection_sd_is_zero_for_a_clear_winner_and_half_the_gap_for_a_tie():
    """Two configs tied on validation but 4 pts apart on test: re-selection picks each half
    the time, so the selected value moves by 0 or -4 pts: sd 2 pts. A winner 10 val-noise
    sds ahead never loses its place: sd 0."""
    tie = ev.selection_sd([0.80, 0.80], [0.84, 0.80], 0, val_sd=0.01, draws=20_000)
    assert tie == pytest.approx(0.02, abs=0.0005)
    assert ev.selection_sd([0.90, 0.80, 0.70], [0.84, 0.70, 0.60], 0, val_sd=0.01) == 0.0
    assert ev.selection_sd([0.80], [0.84], 0, val_sd=0.05) == 0.0  # one run: nothing to pick
    assert ev.selection_sd([0.8, 0.8], [0.84, 0.8], 0, val_sd=0.0) == 0.0  # no noise
    # equal test accuracies: another pick changes nothing
    assert ev.selection_sd([0.80, 0.80], [0.84, 0.84], 1, val_sd=0.01) == 0.0
    # deterministic: the same table gives the same number
    args = ([0.80, 0.79, 0.78], [0.84, 0.80, 0.83], 0)
    assert ev.selection_sd(*args, val_sd=0.01) == ev.selection_sd(*args, val_sd=0.01)


@pytest.mark.parametrize("val, test, selected, val_sd, match", [
    ([0.8, 0.7], [0.8], 0, 0.01, "one value per grid run"),
    ([], [], 0, 0.01, "one value per grid run"),
    ([0.8, 0.7], [0.8, 0.7], 2, 0.01, "selected=2 is not a run of the 2-run grid"),
    ([0.8, float("nan")], [0.8, 0.7], 0, 0.01, "non-finite"),
    ([0.8, 0.7], [0.8, 0.7], 0, -0.01, "val_sd=-0.01"),
])
def test_selection_sd_refuses_bad_input(val, test, selected, val_sd, match):
    with pytest.raises(ValueError, match=match):
        ev.selection_sd(val, test, selected, val_sd)


def test_the_selection_reading_adds_each_points_selection_noise():
    """A difference the seed noise calls (+3 pts, SE 0.6) is inconclusive once one point's
    selection could move it by 2 pts (sd): each check records that outcome too."""
    noise = ev.Noise(0.01, "test")
    a = ev.Estimate((0.85, 0.85, 0.85), "a", select_sd=0.02)
    b = ev.Estimate((0.82, 0.82, 0.82), "b")
    check = ev.greater("a>b", a, b, noise)
    assert (check.outcome, check.selection_outcome) == ("holds", "inconclusive")
    assert ev.greater("x", b, b, noise).selection_outcome == "inconclusive"
    tol = ev.at_least("b>=a-1", b, a, 0.01, noise)  # -3 pts vs 1 allowed
    assert (tol.outcome, tol.selection_outcome) == ("fails", "inconclusive")
    gain = ev.difference_greater("gain", (a, b), (b, b), noise)
    assert (gain.outcome, gain.selection_outcome) == ("holds", "inconclusive")
    assert ev.combine([check], reading="selection_outcome") == "inconclusive"
    assert a.heldout().select_sd == 0.02  # the held-out reading keeps it
    with pytest.raises(ValueError, match="select_sd=-1"):
        ev.Estimate((0.8,), "x", select_sd=-1)


def test_a_difference_reads_each_points_own_regime_noise():
    noise = ev.Noise(0.01, "test", {"250": 0.03, "1k": 0.002})
    a, b = ev.Estimate((0.81,), "a", regime="1k"), ev.Estimate((0.80,), "b", regime="1k")
    assert ev.greater("a>b", a, b, noise).outcome == "holds"  # 1 pt vs 2 SE 0.57 pts
    assert ev.greater("a>b", a, b, ev.Noise(0.01, "test")).outcome == "inconclusive"
    loud = ev.Estimate((0.85,), "c", regime="250")
    check = ev.greater("c>b", loud, b, noise)  # 5 pts vs 2 SE of sqrt(3^2 + 0.2^2) pts
    assert check.outcome == "inconclusive"
    assert check.se == pytest.approx(math.sqrt(0.03 ** 2 + 0.002 ** 2))


def test_each_check_names_the_spread_each_point_read_and_its_pool():
    noise = ev.Noise(0.01, "test", {"1k": 0.004, "1k, 300 epochs": 0.002})
    pooled = ev.Estimate((0.81, 0.811, 0.809), "a", regime="1k, 300 epochs")
    loud = ev.Estimate((0.80, 0.82, 0.84), "b", regime="1k, 100 epochs")
    assert ev.spread_text(pooled, noise) == "0.20 pts pooled (1k, 300 epochs)"
    assert ev.spread_text(loud, noise) == "2.00 pts, its own 3 seeds"  # above its 0.4 pool
    quiet_100 = ev.Estimate((0.80,), "c", regime="1k, 100 epochs")  # the size's pool
    assert ev.spread_text(quiet_100, noise) == "0.40 pts pooled (1k)"
    assert ev.spread_text(ev.Estimate((0.8,), "d", regime="4k"), noise) == (
        "1.00 pts pooled (over every replicated point)")
    assert ev.spread_text(ev.constant(0.1, "chance"), noise) == "none (a known number)"
    # a spread no pool measured is named as assumed, not as pooled
    assumed = ev.pooled_noise([[0.80, 0.81]])  # 1 degree of freedom: the assumed 1 pt
    assert assumed.assumed and not noise.assumed
    assert ev.spread_text(ev.Estimate((0.8,), "e"), assumed) == (
        "1.00 pts assumed (no pool of replicates measured it)")
    assert ev.pooled_noise_by_regime({"1k": [[0.80, 0.81]]}).assumed
    check = ev.greater("a>b", pooled, loud, noise)
    assert check.noise == ("a: 0.20 pts pooled (1k, 300 epochs); "
                           "b: 2.00 pts, its own 3 seeds")
    # the numbers the text names are those the standard error read
    assert check.se == pytest.approx(math.sqrt(0.002 ** 2 / 3 + 0.02 ** 2 / 3))
    same = ev.at_least("a>=c", pooled, ev.Estimate((0.8,), "c", regime="1k, 300 epochs"), 0.01,
                       noise)
    assert same.noise == "each 0.20 pts pooled (1k, 300 epochs)"
    held = ev.Estimate((0.80, 0.82, 0.84), "h", selected_first=True).heldout()
    assert held.n == 2  # the selected run left out, the spread of all 3 kept
    assert ev.spread_text(held, ev.Noise(0.001, "t")) == "2.00 pts, its own over all its seeds"
    loss = ev.Estimate((0.31, 0.33), "l", regime="1k")
    assert ev.spread_text(loss, noise, "train_loss") == "0.0141, its own 2 seeds"


def test_noise_pools_list_every_level_and_the_spread_its_points_read():
    groups = {"1k, 30 epochs": [[0.80, 0.82]] * 6 + [[0.5, 0.5]] * 5,
              "1k, 300 epochs": [[0.85, 0.851]], "250": [[0.7]]}
    rows = ev.noise_pools(groups)
    assert [r["regime"] for r in rows] == ["1k", "1k, 30 epochs", "1k, 300 epochs", "250"]
    by = {r["regime"]: r for r in rows}
    noise = ev.pooled_noise_by_regime(groups)
    assert by["1k, 30 epochs"]["dof"] == 11 and by["1k, 30 epochs"]["points"] == 11
    assert by["1k, 30 epochs"]["reads"] == "its own pool"  # 11 >= 10 degrees of freedom
    assert by["1k, 30 epochs"]["read_sd"] == pytest.approx(noise.sd_for("1k, 30 epochs"))
    # 1 degree of freedom, quieter than the nearest shorter length's pool: its points read
    # that (30 epochs'), not the size's
    assert by["1k, 300 epochs"]["reads"] == "1k, 30 epochs"
    assert by["1k, 300 epochs"]["read_sd"] == pytest.approx(by["1k, 30 epochs"]["sd"])
    assert math.isnan(by["250"]["sd"]) and by["250"]["reads"] == "the overall pool"
    assert by["250"]["read_sd"] == noise.sd and not noise.assumed
    quiet = ev.noise_pools({"1k": [[0.80, 0.801]], "250": [[0.7]]})  # 1 dof, below assumed
    assert {r["reads"] for r in quiet} == {"the assumed spread"}


def test_greater_holds_fails_or_is_inconclusive_at_two_standard_errors():
    # n=1 each, noise 1 pt: SE of the difference sqrt(2) pts; 2 SE = 2.83 pts.
    assert ev.greater("a>b", e(0.83), e(0.80), NOISE).outcome == "holds"
    assert ev.greater("a>b", e(0.82), e(0.80), NOISE).outcome == "inconclusive"
    assert ev.greater("a>b", e(0.77), e(0.80), NOISE).outcome == "fails"
    # Three tight seeds each: the pooled noise still bounds their spread from below, so a
    # 1-point difference counts against 0.2 pts of pooled noise but not against 1 pt.
    a, b = e(0.81, 0.811, 0.809), e(0.80, 0.801, 0.799)
    tight = ev.greater("a>b", a, b, ev.Noise(0.002, "test"))
    assert tight.outcome == "holds" and tight.margin == pytest.approx(0.01)
    assert ev.greater("a>b", a, b, NOISE).outcome == "inconclusive"
    # a spread larger than the pooled noise is the point's own
    loose = ev.greater("a>b", e(0.83, 0.85, 0.87), e(0.80, 0.80, 0.80), ev.Noise(0.002, "t"))
    assert loose.se == pytest.approx(0.02 / math.sqrt(3) * math.sqrt(1 + 0.01))


def test_at_least_is_an_equivalence_check_with_a_tolerance():
    assert ev.at_least("a>=b-3", e(0.80), e(0.81), 0.03, NOISE).outcome == "inconclusive"
    assert ev.at_least("a>=b-5", e(0.80), e(0.81), 0.05, NOISE).outcome == "holds"
    assert ev.at_least("a>=b-1", e(0.70), e(0.81), 0.01, NOISE).outcome == "fails"


def test_difference_greater_compares_two_gains():
    big = (e(0.90, label="a"), e(0.80, label="b"))
    small = (e(0.81, label="c"), e(0.80, label="d"))
    assert ev.difference_greater("gain", big, small, NOISE).outcome == "holds"
    assert ev.difference_greater("gain", small, big, NOISE).outcome == "fails"
    assert ev.difference_greater("gain", small, small, NOISE).outcome == "inconclusive"


@pytest.mark.parametrize("outcomes, verdict", [
    (["holds", "holds"], "reproduced"),
    (["holds", "fails"], "partly"),
    (["holds", "fails", "inconclusive"], "partly"),
    (["fails", "fails"], "not reproduced"),
    (["fails", "inconclusive"], "inconclusive"),  # mirrors holds + inconclusive
    (["fails", "not testable"], "not testable at this scale"),  # mirrors holds + not testable
    (["fails", "fails", "inconclusive"], "inconclusive"),
    (["holds", "inconclusive"], "inconclusive"),
    (["inconclusive"], "inconclusive"),
    (["holds", "not testable"], "not testable at this scale"),
    (["inconclusive", "not testable"], "not testable at this scale"),
    (["not testable"], "not testable at this scale"),
])
def test_combine_is_symmetric_between_reproduced_and_not(outcomes, verdict):
    checks = [ev.Check(f"c{i}", o, "") for i, o in enumerate(outcomes)]
    assert ev.combine(checks) == verdict
    # swapping every holds for fails (and back) swaps the two ends and nothing else
    swap = {"holds": "fails", "fails": "holds"}
    mirrored = [ev.Check(f"c{i}", swap.get(o, o), "") for i, o in enumerate(outcomes)]
    ends = {"reproduced": "not reproduced", "not reproduced": "reproduced"}
    assert ev.combine(mirrored) == ends.get(verdict, verdict)


def test_bad_outcome_and_empty_checks_are_clear_errors():
    with pytest.raises(ValueError, match="outcome='maybe'"):
        ev.Check("c", "maybe", "")
    with pytest.raises(ValueError, match="at least one sub-check"):
        ev.combine([])


def test_a_known_number_has_no_noise_and_no_seed_count():
    teacher = ev.constant(0.875, "teacher")
    assert teacher.se(0.5) == 0.0 and teacher.text() == "87.5%"
    # Only the student's noise counts: 1 pt at n=1, so 2 SE = 2 pts.
    assert ev.greater("s>t", e(0.90), teacher, NOISE).outcome == "holds"
    assert ev.greater("s>t", e(0.89), teacher, NOISE).outcome == "inconclusive"


def test_a_check_knows_the_fewest_seeds_of_the_points_it_compares():
    """Known numbers (a teacher's accuracy) do not count; what settles an inconclusive check
    depends on its own points' seeds, not on the claim's fewest."""
    from kdlib.experiments import verdicts

    noise = ev.Noise(0.01, "test")
    three, one = ev.Estimate((0.80, 0.81, 0.80), "a"), ev.Estimate((0.805,), "b")
    assert ev.greater("x", three, one, noise).seeds == 1
    assert ev.at_least("x", three, ev.constant(0.9, "teacher"), 0.02, noise).seeds == 3
    assert ev.difference_greater("x", (three, one), (three, three), noise).seeds == 1
    close = ev.greater("close at 3 seeds", three, ev.Estimate((0.80, 0.80, 0.81), "c"), noise)
    assert close.outcome == "inconclusive" and close.seeds == 3
    decided = ev.greater("decided at 1 seed", ev.Estimate((0.9,), "d"), one, noise)
    text = verdicts._default_settle([close, decided], min_seeds=1)
    assert "within noise at 3 seeds" in text and "now 1 per point" not in text
    assert "now 1 per point" in verdicts._default_settle(
        [ev.greater("n=1", one, ev.Estimate((0.80,), "e"), noise)], min_seeds=1)


def test_settle_names_checks_decided_on_too_few_seeds_and_keeps_a_rules_own_words():
    """A verdict decided on 1 seed is provisional: what would settle it names the seeds that
    would confirm it, even for a claim whose checks all hold; a rule's own words come first and
    replace the generic "gpu preset" line."""
    from kdlib.experiments import verdicts

    noise = ev.Noise(0.01, "test")
    one, three = ev.Estimate((0.70,), "a"), ev.Estimate((0.80, 0.81, 0.80), "b")
    decided = ev.greater("b > a", three, one, noise)
    assert decided.outcome == "holds"
    assert verdicts._default_settle([decided], 1) == (
        "3 seeds per point to confirm the checks decided on 1: b > a")
    assert verdicts._default_settle([ev.greater("b > b", three, three, noise)], 3) == (
        "a difference within noise at 3 seeds per point; more seeds would narrow it (in "
        "brackets: about how many per point would decide it, were the difference what it reads "
        "now, and the outcome it leans to), a longer schedule may move it: b > b (more than "
        "30)")
    near = ev.greater("d > b", ev.Estimate((0.815, 0.815, 0.815), "d"), three, noise)
    assert near.outcome == "inconclusive"  # +1.2 pts against 2 SE = 1.63 pts
    assert verdicts._default_settle([near], 3).endswith(": d > b (6, leaning holds)")
    behind = ev.greater("b > d", three, ev.Estimate((0.815, 0.815, 0.815), "d"), noise)
    assert verdicts._default_settle([behind], 3).endswith(": b > d (6, leaning fails)")
    decided3 = ev.greater("b > c", three, ev.Estimate((0.6, 0.6, 0.6), "c"), noise)
    assert verdicts._default_settle([decided3], 3) == ""
    untestable = ev.not_testable("long", "beyond our schedules")
    assert verdicts._default_settle([decided3, untestable], 3) == (
        "longer schedules or more data than the cpu preset: the gpu preset")
    assert verdicts._default_settle([decided, untestable], 1, "a sharper teacher") == (
        "a sharper teacher; 3 seeds per point to confirm the checks decided on 1: b > a")


def test_seeds_to_decide_scales_the_se_to_the_gap_from_the_bound():
    noise = ev.Noise(0.01, "test")
    a, b = ev.Estimate((0.815,) * 3, "a"), ev.Estimate((0.80, 0.81, 0.80), "b")
    check = ev.greater("a > b", a, b, noise)
    assert check.bound == 0.0 and check.outcome == "inconclusive"
    assert ev.seeds_to_decide(check) == math.ceil(3 * (2 * check.se / check.margin) ** 2)
    # "at least b - 1 pt" is decided against -0.01: the same numbers hold already
    assert ev.at_least("a >= b - 1", a, b, 0.01, noise).bound == -0.01
    loose = ev.at_least("a >= b - 0.5", b, a, 0.005, noise)
    assert loose.outcome == "inconclusive"
    assert ev.seeds_to_decide(loose) == math.ceil(
        3 * (2 * loose.se / abs(loose.margin + 0.005)) ** 2)
    assert ev.seeds_to_decide(ev.greater("b > b", b, b, noise)) == math.inf
    assert ev.seeds_to_decide(ev.greater("a > c", a, ev.Estimate((0.5,) * 3), noise)) is None
    assert ev.seeds_to_decide(ev.not_testable("x", "why")) is None


def test_seeds_to_firm_is_the_seeds_a_decided_check_needs_to_stay_decided_at_3_se():
    """SE 0.01 x sqrt(2/3) = 0.00816 from a 0.01 pooled spread; a 2.0-pt gap holds at 2 SE
    (0.0163) but not at 3 (0.0245): 3 x (3 x 0.00816 / 0.02)^2 = 4.5, so 5 seeds."""
    noise = ev.Noise(0.01, "test")
    a, b = ev.Estimate((0.82,) * 3, "a"), ev.Estimate((0.80,) * 3, "b")
    check = ev.greater("a > b", a, b, noise)
    assert (check.outcome, check.strict_outcome) == ("holds", "inconclusive")
    assert check.se == pytest.approx(0.01 * math.sqrt(2 / 3))
    assert ev.seeds_to_firm(check) == 5.0
    assert ev.seeds_to_firm(check, k=2.0) is None  # decided at 2 SE already
    far = ev.greater("a > c", a, ev.Estimate((0.70,) * 3), noise)
    assert far.strict_outcome == "holds" and ev.seeds_to_firm(far) is None
    assert ev.seeds_to_firm(ev.greater("b > a", b, ev.Estimate((0.795,) * 3), noise)) is None
    assert ev.seeds_to_firm(ev.not_testable("x", "why")) is None


def test_a_check_records_whether_it_reads_a_point_selected_at_a_grid_edge():
    noise = ev.Noise(0.01, "test")
    inside, edge = ev.Estimate((0.8, 0.81, 0.79)), ev.Estimate((0.7,), at_edge=True)
    assert ev.greater("x", inside, edge, noise).at_edge is True
    assert ev.greater("x", inside, inside, noise).at_edge is False
    assert ev.at_least("x", edge, inside, 0.01, noise).at_edge is True
    assert ev.difference_greater("x", (inside, inside), (inside, edge), noise).at_edge is True
    assert ev.not_testable("x", "why").at_edge is None


def test_noise_and_k_must_be_measurable():
    """A NaN noise would leave every check inconclusive and a negative k would turn a < b into
    "holds": both are named; sd 0 stays allowed (numbers read exactly, the paper's own)."""
    a, b = ev.Estimate((0.80, 0.81, 0.80)), ev.Estimate((0.70, 0.71, 0.70))
    for sd in (math.nan, -0.01, math.inf):
        with pytest.raises(ValueError, match=r"Noise sd=.*; allowed: a finite number >= 0"):
            ev.Noise(sd, "x")
    with pytest.raises(ValueError, match=r"Noise by_regime\['1k'\]=nan"):
        ev.Noise(0.01, "x", {"1k": math.nan})
    assert ev.Noise(0.0, "exact").sd == 0.0
    for k in (-2.0, 0.0, math.nan):
        with pytest.raises(ValueError, match=r"k=.*; allowed: a finite number > 0"):
            ev.greater("x", b, a, NOISE, k=k)
        with pytest.raises(ValueError, match=r"k=.*; allowed"):
            ev.at_least("x", b, a, 0.01, NOISE, k=k)
        with pytest.raises(ValueError, match=r"k=.*; allowed"):
            ev.difference_greater("x", (a, b), (b, a), NOISE, k=k)


def test_an_estimate_takes_numpy_numbers_and_names_what_is_not_a_sequence_of_numbers():
    import numpy as np

    point = ev.Estimate(np.array([0.8, 0.82], dtype=np.float32), "np")
    assert point.values == (pytest.approx(0.8), pytest.approx(0.82)) and point.n == 2
    assert all(type(v) is float for v in point.values)
    with pytest.raises(ValueError, match=r"values=0\.8: give a sequence of per-seed numbers"):
        ev.Estimate(0.8, "x")
    with pytest.raises(ValueError, match=r"has values that are not numbers \['0\.8'\]"):
        ev.Estimate(("0.8",), "x")
    with pytest.raises(ValueError, match=r"has non-finite values \[nan\]"):
        ev.Estimate((0.8, math.nan), "x")
    with pytest.raises(ValueError, match=r"not numbers \[True\]"):
        ev.Estimate((True,), "x")


def test_pooled_noise_names_an_unknown_metric():
    with pytest.raises(ValueError, match=r"metric='test_accuracy'; allowed: \['test_acc'"):
        ev.pooled_noise([(0.8, 0.81)], "test_accuracy")


def test_leaving_the_selected_run_out_keeps_the_follow_up_seeds_in_place():
    grown = ev.Estimate((0.8,) * 3 + (0.7,) * 5, "g", selected_first=True, followup_from=3)
    held = grown.heldout()
    assert held.n == 7 and held.followup_from == 2 and held.followup().values == (0.7,) * 5
    none = ev.Estimate((0.80, 0.81, 0.82), "x", selected_first=True, followup_from=3)
    assert none.heldout().followup_from is None


# --- pinned by a mutation audit (2026-12-06): each fails if the named line is broken ---------


def test_a_difference_of_gains_counts_both_gains_noise():
    """C6, C12, C13 compare two gains: 83 -> 80 against 80 -> 80, one seed each at 1 pt per
    run. Each gain has SE sqrt(2) pts, their difference exactly 2 pts: a 3-pt difference is
    within 2 SE, a 5-pt one beyond it."""
    def gain(a, b):
        return e(a, label="a"), e(b, label="b")

    check = ev.difference_greater("g", gain(.83, .80), gain(.80, .80), NOISE)
    assert check.se == pytest.approx(0.02) and check.outcome == "inconclusive"
    assert ev.difference_greater("g", gain(.85, .80), gain(.80, .80), NOISE).outcome == "holds"


def test_a_tie_without_noise_is_not_greater_but_is_at_least():
    """The paper's own numbers compare at zero noise (C9's reading of them): equal values are
    not "greater", and are "at least" with no tolerance."""
    a = e(0.8)
    exact = ev.Noise(0.0, "exact")
    assert ev.greater("a > b", a, a, exact).outcome == "inconclusive"
    assert ev.at_least("a >= b", a, a, 0.0, exact).outcome == "holds"


def test_selection_sd_follows_the_validation_winner():
    """Two configs tie on validation (80%) and score 84% and 80% on test: a redrawn
    selection picks each about half the time, so the winner's test accuracy spreads 2 pts;
    the 50%-validation config (10% test) is never picked."""
    sd = ev.selection_sd([0.80, 0.80, 0.50], [0.84, 0.80, 0.10], 0, val_sd=0.01, draws=20000)
    assert sd == pytest.approx(0.02, abs=0.0005)


def test_pooled_noise_measures_from_exactly_ten_degrees_of_freedom():
    """Five points of 3 seeds are 10 degrees of freedom, the minimum (MIN_POOLED_DOF): their
    spread (0.5 pts) is used, not the assumed 1 pt."""
    noise = ev.pooled_noise([[0.800, 0.805, 0.810]] * 5)
    assert noise.sd == pytest.approx(0.005) and not noise.assumed


def test_the_follow_up_reading_needs_three_new_seeds():
    """A follow-up of 2 new seeds (5 in all, 3 before it) is too few to read on its own."""
    two_new = ev.Estimate((0.9,) * 5, "x", followup_from=3)
    assert not two_new.can_follow_up
    assert ev.greater("x", two_new, ev.constant(0.5), NOISE).followup_outcome is None
