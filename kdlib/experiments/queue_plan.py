"""The plan of the cpu evidence queue: its items in the order they settle claims, what each
costs (estimated from measured img/s) and what of it is stored.

Each item is one comparison (arms at one or more schedule lengths) that
:mod:`kdlib.experiments.queue` runs through :func:`kdlib.experiments.common.run_arms` with the
extras on. :func:`plan_rows` is ``python -m kdlib.experiments.queue --list``: each item's runs,
estimated hours, stored base grid, hours left and hours spent; it reads the store and trains
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kdlib import store
from kdlib.config import RunConfig
from kdlib.experiments import (
    common,
    consistency,
    cross_family,
    dist_loss,
    imagenet,
    init,
    ladder_probe,
    out_of_domain,
    patience,
    resolution,
    shampoo,
)

PRESET = "cpu"


def _only(arms: common.Arms, names: tuple[str, ...], lengths: tuple[float, ...]
          ) -> common.Arms:
    """The arms ``names`` at ``lengths`` (those each has)."""
    return {a: {ep: arms[a][ep] for ep in lengths if ep in arms[a]} for a in names}


def _upfront(arms: common.Arms) -> common.Arms:
    """The arms with each lr grid grown one ladder step up before training: 110 of 119 selected
    cpu runs sat at the top lr, so a new length trains it in the same group (one teacher
    forward) instead of a second pass; every arm alike."""
    out: common.Arms = {}
    for arm, by_epochs in arms.items():
        out[arm] = {}
        for ep, (cfg, axes) in by_epochs.items():
            grown = common.widen(axes, [{"lr": max(axes["lr"])}]) if "lr" in axes else axes
            out[arm][ep] = (cfg, grown)
    return out


def _dist(teacher: str, lengths: tuple[float, ...]) -> Callable[[], common.Arms]:
    def build() -> common.Arms:
        arms = dist_loss.arms(PRESET, planned=True)
        return _upfront(_only(arms, (f"KL, {teacher}", f"DIST, {teacher}"), lengths))
    return build


def _patience(regime: str, lengths: tuple[float, ...],
              names: tuple[str, ...] = patience.ARMS, upfront: bool = True
              ) -> Callable[[], common.Arms]:
    def build() -> common.Arms:
        arms = _only(patience.arms(PRESET, regime, planned=True), names, lengths)
        return _upfront(arms) if upfront else arms
    return build


def _consistency(regime: str, lengths: tuple[float, ...],
                 names: tuple[str, ...] = consistency.PLANNED_POLICIES
                 ) -> Callable[[], common.Arms]:
    """A chapter-01 regime's planned policies at ``lengths``, from their long-length grids
    (:data:`kdlib.experiments.common.LONG_LR_GRIDS`: no upfront growth)."""
    def build() -> common.Arms:
        return _only(consistency.arms(PRESET, regime, planned=True), names, lengths)
    return build


def _distilled_and_labels(epochs: float) -> Callable[[], common.Arms]:
    """C11's follow-up points at ``epochs``: chapter 07's MobileNetV3-L (GN), distilled and
    from labels (two comparisons: :func:`comparisons`)."""
    def build() -> common.Arms:
        return {**_only(cross_family.arms(PRESET), ("MobileNetV3-L (GN)",), (epochs,)),
                **_only(cross_family.label_arms(PRESET), (cross_family.LABELS_ARM,),
                        (epochs,))}
    return build


def _extras_of(build: Callable[[], common.Arms], lengths: tuple[float, ...]
               ) -> Callable[[], common.Arms]:
    """Every arm of a chapter's ``build()`` at ``lengths``, as the chapter shows them (no
    upfront growth): the queue then grows grids and replicates over the same arms the chapter
    does, so what it stores is what the chapter loads."""
    def arms() -> common.Arms:
        built = build()
        return _only(built, tuple(built), lengths)
    return arms


# (name, arms builder), in the order they settle claims. Reordered 2026-12-04 (after
# results, issue 13): first the seed replicates of the n=1 points a verdict reads where its
# check is within noise (C1, C9, C5, C11), then those of every other point a verdict reads
# (issue 13: >= 3 seeds per point read; cheap, 7 claims still read 1 seed), then the longer
# schedules in issue 14's order (02, then 03, then 01; 07 last); replicates that only fill
# tables (no verdict reads those points) were cut (CUT). 03's 4 epochs are not replicated: C7
# reads the longest length, 16 epochs, replicated by its own item, so that item was moved
# (2026-12-05) from last to right after 02's: issue 13's >= 3 seeds for C7 waits on it, though
# its 16 epochs cannot move C6/C7 off "not testable" (the paper sees those effects at 1000s of
# ImageNet epochs). 01's 1000 epochs replicate themselves. The long lengths (items from 02 at
# 4000 epochs on) start from LONG_LR_GRIDS, with no upfront growth. On 2026-12-05 the items
# after 07 at 30 epochs were put cheapest first (C11's labels baseline, 01 at 30, 03 at 1, 04
# at 300, 08 at 30 and 300: 0.2 to 2.0 h each), so a session settles the most checks it can.
# Late on 2026-12-05 (after results: a reader's audit) 06 at 100 and 300 epochs went in after
# the probes: no verdict reads them, but the chapter's pretrained-minus-random gap does, and
# its random init sat at the edge of a grid that chapters 01 and 02 had grown (one config, one
# run: that arm's growth and replicates are stored already, only the pretrained arm trains).
# On 2026-12-06 01's 250 images at 1000 epochs moved before its 1k images (2.3 h against 9.0 h
# estimated, neither started): the cheaper item lands a session sooner.
# In the session after 2026-12-05 06 at 100 and 300 epochs moved after the seed follow-ups:
# those decide checks of C1, C5, C10 and C11, while 06's lengths decide none (the chapter's
# end now names the grown values chapter 02 reads for the same configs).
# A follow-up planned late on 2026-12-05, after results: the points read by every
# inconclusive check that, at 3 seeds, needed at most 12 seeds per point to be decided were
# its difference what it read (kdlib.evidence.seeds_to_decide: C1's two 250-image checks 4
# and 7, C5's 1k student vs scratch at 100 epochs 6, C10's head start at 30 epochs 10; all
# four then in the paper's direction) go to 8 seeds, a number fixed here before any of them
# is trained, and each check reads all 8 (arms.MAX_SEEDS). C11's distilled MobileNet vs the
# one from labels (12, against the paper's direction) was left out for its cost (10 MobileNet
# runs, about 4 h); in the next session (a reader's audit: following up only the checks that
# lean the paper's way biases the tally towards it) it was added under the same criterion,
# the same 8 seeds, before any of its new seeds trained. Each claim's rule note says so.
# In the session after that, when item 27's 4000-epoch point on 250 images was first read, the
# same criterion picked C4's '250: 4000 beats 1000 epochs' (7 seeds per point, leaning holds;
# no other inconclusive check not yet followed up needed 12 or fewer: C7's 4-epoch points,
# 1 seed each, wait for the 16-epoch item that replaces them): its two points go to 8 seeds,
# fixed before any new seed trained, ahead of the 3000-epoch item so a session can read it.
# On 2026-12-06, when item 29's 3000-epoch point on 1k images was first read (3 seeds), the
# criterion picked C4's '1k: 3000 beats 1000 epochs' (+0.4 pts, +-0.7 at 2 SE; about 8 seeds
# per point to be decided, leaning holds): its two points go to 8 seeds, fixed before any new
# seed trained. It goes last, after the lengths issue 14 asks for (about 5 h at the idle
# single-run rate): C4 stays not testable whatever it reads, while its 250- and 4k-image
# "within 2 pts of the teacher" checks are. Cut later on 2026-12-06 for the budget (CUT),
# before any of its new seeds trained.
# On 2026-12-06, when item 32's 1000-epoch points on 1k images were first read (3 seeds), the
# criterion picked C3's 'mix leads every other policy at 1000 epochs' (its deciding comparison,
# mix vs same/ic: +0.3 pts, +-0.6 at 2 SE; about 9 seeds per point to be decided, leaning
# holds; mix leads fix/cc and ind/rc beyond the noise): mix and same/ic there go to 8 seeds,
# fixed before any new seed trained, queued after issue 14's last items (07 at 300 epochs).
# No other inconclusive check not yet followed up needed 12 or fewer.
# On 2026-12-07, when chapter 07's 300-epoch points were first read (items 33 and 34, 3 seeds
# each), the criterion picked C11's 'distilled > from labels at 300 epochs' (+1.6 pts, +-2.1
# at 2 SE; about 6 seeds per point to be decided, leaning holds): the distilled MobileNetV3-L
# (GN) and the one from labels there go to 8 seeds, fixed before any new seed trained, ahead
# of C3's follow-up (about 1 h against 4 h at the pace of that day, so a session lands it).
# '2 teachers > 1 at 300 epochs' (-0.5 pts, +-1.2) needed about 15: not followed up.
FOLLOW_UP = ("seed follow-up: C1's 250-image points at 400 epochs to 8 seeds (same/ic, "
             "fix/cc, ind/rc)",
             "seed follow-up: C5's 1k points at 100 epochs to 8 seeds (function matching, "
             "from scratch)",
             "seed follow-up: C10's 30-epoch points to 8 seeds (pretrained, random init)",
             "seed follow-up: C11's MobileNetV3-L (GN) at 100 epochs to 8 seeds (distilled, "
             "from labels)",
             "seed follow-up: C4's 250-image points at 1000 and 4000 epochs to 8 seeds "
             "(function matching)",
             "seed follow-up: C4's 1k-image points at 1000 and 3000 epochs to 8 seeds "
             "(function matching)",
             "seed follow-up: C3's 1k points at 1000 epochs to 8 seeds (mix, same/ic)",
             "seed follow-up: C11's MobileNetV3-L (GN) at 300 epochs to 8 seeds (distilled, "
             "from labels)")
# Seeds per selected config an item trains, where it is not arms.SEEDS.
ITEM_SEEDS = dict.fromkeys(FOLLOW_UP, common.MAX_SEEDS)
PLAN: list[tuple[str, Callable[[], common.Arms]]] = [
    ("09 strong teacher, KL vs DIST at 300 epochs", _dist("strong teacher", (300.0,))),
    ("02 1k images at 1000 epochs (function matching, both baselines)",
     _patience("1k", (1000.0,))),
    ("09 weak teacher, KL vs DIST at 300 epochs", _dist("weak teacher", (300.0,))),
    ("02 250 images at 1000 epochs", _patience("250", (1000.0,))),
    ("06 pretrained vs random init at 1000 epochs (the random init is 02's function matching)",
     lambda: _upfront(_only(init.arms(PRESET, planned=True), init.ARMS, init.QUEUED[PRESET]))),
    ("01 250 images at 400 epochs (extras: C1's 250-image checks)",
     lambda: consistency.arms(PRESET, "250")),
    ("05 Adam vs Shampoo at 300 epochs (extras: C9's 300-epoch check)",
     _extras_of(lambda: shampoo.arms(PRESET), (300.0,))),
    ("02 1k images at 100 epochs (extras: C5's 1k check)",
     _extras_of(lambda: patience.arms(PRESET, "1k"), (100.0,))),
    ("02 4k images at 30 epochs (extras: C5's 4k checks)",
     _extras_of(lambda: patience.arms(PRESET, "4k"), (30.0,))),
    ("07 at 100 epochs (extras: C11's GN vs BN check)",
     _extras_of(lambda: cross_family.arms(PRESET), (100.0,))),
    ("01 1k images at 300 epochs (extras: C1-C3's 1k checks)",
     _extras_of(lambda: consistency.arms(PRESET, "1k"), (300.0,))),
    ("02 250 images at 40 and 400 epochs (extras: C4, C5)",
     _extras_of(lambda: patience.arms(PRESET, "250"), (40.0, 400.0))),
    ("02 1k images at 30 and 300 epochs (extras: C4, C5)",
     _extras_of(lambda: patience.arms(PRESET, "1k"), (30.0, 300.0))),
    ("02 4k images at 3 epochs (extras: C4)",
     _extras_of(lambda: patience.arms(PRESET, "4k"), (3.0,))),
    ("05 Adam vs Shampoo at 30 and 100 epochs (extras: C9)",
     _extras_of(lambda: shampoo.arms(PRESET), (30.0, 100.0))),
    ("06 at 30 epochs (extras: C10's head start)",
     _extras_of(lambda: init.arms(PRESET), (30.0,))),
    ("07 at 30 epochs (extras: C11)", _extras_of(lambda: cross_family.arms(PRESET), (30.0,))),
    ("07 MobileNetV3-L (GN) from labels at 30 and 100 epochs (C11's baseline)",
     lambda: _only(cross_family.label_arms(PRESET), (cross_family.LABELS_ARM,),
                   (30.0, 100.0))),
    ("01 1k images at 30 epochs (extras: C3's short check)",
     _extras_of(lambda: consistency.arms(PRESET, "1k"), (30.0,))),
    ("03 55k images at 1 epoch (extras: C6's short check)",
     _extras_of(lambda: imagenet.arms(PRESET), (1.0,))),
    ("04 at 300 epochs (extras: C8)", _extras_of(lambda: resolution.arms(PRESET), (300.0,))),
    ("08 at 30 and 300 epochs (extras: C12)",
     _extras_of(lambda: out_of_domain.arms(PRESET), (30.0, 300.0))),
    (FOLLOW_UP[0], lambda: _only(consistency.arms(PRESET, "250"),
                                 ("same/ic", "fix/cc", "ind/rc"), (400.0,))),
    (FOLLOW_UP[1], lambda: _only(patience.arms(PRESET, "1k"),
                                 ("function matching", "from scratch"), (100.0,))),
    (FOLLOW_UP[2], lambda: _only(init.arms(PRESET), ("pretrained init", "random init"),
                                 (30.0,))),
    (FOLLOW_UP[3], _distilled_and_labels(100.0)),
    ("06 at 100 and 300 epochs (extras: the lengths the chapter's gap reads)",
     _extras_of(lambda: init.arms(PRESET), (100.0, 300.0))),
    ("02 250 images at 4000 epochs (function matching; C4, C5)",
     _patience("250", (4000.0,), ("function matching",), upfront=False)),
    (FOLLOW_UP[4], lambda: _only(patience.arms(PRESET, "250"), ("function matching",),
                                 (1000.0, 4000.0))),
    ("02 1k images at 3000 epochs (function matching; C4, C5)",
     _patience("1k", (3000.0,), ("function matching",), upfront=False)),
    ("03 55k images at 16 epochs (fixed teacher, consistent, FM, labels: Adam; C6, C7)",
     lambda: _only(imagenet.arms(PRESET, planned=True), imagenet.PLANNED_ARMS, (16.0,))),
    ("01 250 images at 1000 epochs (consistent, best fixed and independent; FM is 02's; C1)",
     _consistency("250", (1000.0,))),
    ("01 1k images at 1000 epochs (consistent, best fixed and independent; FM is stored; C1-C3)",
     _consistency("1k", (1000.0,))),
    ("07 at 300 epochs (MobileNetV3 students, the 2-teacher ensemble; C11)",
     lambda: _only(cross_family.arms(PRESET, planned=True),
                   tuple(a for a in cross_family.PLANNED_ARMS
                         if a not in ("BiT student", cross_family.LABELS_ARM)),
                   (300.0,))),
    # Queued on 2026-12-06, before any 07 run at 300 epochs trained; an item of its own, as
    # at 30 and 100 epochs, so that its grid grows apart from the distillation arms'.
    ("07 MobileNetV3-L (GN) from labels at 300 epochs (C11's baseline)",
     lambda: _only(cross_family.label_arms(PRESET, planned=True), (cross_family.LABELS_ARM,),
                   (300.0,))),
    (FOLLOW_UP[7], _distilled_and_labels(300.0)),
    (FOLLOW_UP[6], lambda: _only(consistency.arms(PRESET, "1k"), ("mix", "same/ic"),
                                 (1000.0,))),
]

# Items cut from the plan for the budget (2026-12-04, issues 13 and 14 asked for about 30 h;
# the finished items took 33.5 h and the plan still holds about 50 h estimated, 1.43x that at
# the finished items' ratio): each settles no verdict, only fills tables. On 2026-12-06 (the
# finished items had taken 62.2 h, 38.1 h estimated were left) C4's 1k-image seed follow-up
# was cut too: its points are read, at 3 seeds, but C4 is not testable whatever they read.
# (name, arms builder, why); restore one by moving it back into PLAN.
CUT: list[tuple[str, Callable[[], common.Arms], str]] = [
    ("09 at 30 and 100 epochs (extras; tables only)",
     lambda: _only(dist_loss.arms(PRESET), dist_loss.ARMS, (30.0, 100.0)),
     "C13 reads 09 at 300 epochs, replicated by items 0 and 2"),
    ("01 1k images at 100 epochs (extras; tables only)",
     _extras_of(lambda: consistency.arms(PRESET, "1k"), (100.0,)),
     "C1-C3 read 01 at 30, 300 and 1000 epochs (each replicated by its own item)"),
    (FOLLOW_UP[5], lambda: _only(patience.arms(PRESET, "1k"), ("function matching",),
                                 (1000.0, 3000.0)),
     "C4 stays not testable whatever it reads; its two points hold 3 seeds each, issue 13's "
     "minimum; about 14 h at the plan's rate, cut on 2026-12-06 before any of its new seeds "
     "trained"),
]

# The plan item after which the queue probes one lr step beyond the ladder's end at every
# selected config still there (2026-12-05, after results: the 9 cheapest were probed by hand,
# lr 0.3 behind at 8; the 13 dearer ones, 30-1000 epochs on 250-4k images, 3.1 h at the
# plan's single-run rate, settle whether the ladder brackets the points C1-C5, C9, C10 and
# C13 read), before the long patience items.
PROBES_AFTER = "08 at 30 and 300 epochs (extras: C12)"
PROBES_NAME = ("ladder probes: one lr step past every selected config at the ladder's end "
               "(0.3; 1.0 where a probe extended it; seed 0)")


def probe_row() -> dict[str, Any]:
    """The plan row of the ladder probes (:data:`PLAN_COLUMNS`): each probe one single run."""
    points = ladder_probe.ladder_end_points(PRESET)
    configs = [ladder_probe.probe_config(p["config"]) for p in points]
    stored = [store.fresh_run(c) for c in configs]
    hours = [_hours(c, 1, 0) for c in configs]
    done = [r for r in stored if r is not None]
    spent = wall_hours(done)
    return dict(zip(PLAN_COLUMNS, (
        f"{probes_index()}+", PROBES_NAME, len(configs), round(sum(hours), 1),
        f"{len(done)}/{len(configs)}",
        round(sum(h for h, r in zip(hours, stored, strict=True) if r is None), 1),
        round(float(spent), 1)), strict=True))


def probes_index() -> int:
    """The PLAN index of :data:`PROBES_AFTER` (the probes run right after it)."""
    return [name for name, _ in PLAN].index(PROBES_AFTER)


# The (chapter section, regime train size, epochs) points the cpu verdicts read
# (kdlib.experiments.verdicts, C1-C13, at the lengths stored or queued); each is replicated to
# 3 seeds by an item above (tested).
VERDICT_POINTS: tuple[tuple[str, int | None, float], ...] = (
    ("01_consistency", 1000, 30.0), ("01_consistency", 1000, 300.0),
    ("01_consistency", 250, 400.0),
    ("02_patience", 250, 40.0), ("02_patience", 250, 400.0), ("02_patience", 1000, 30.0),
    ("02_patience", 1000, 100.0), ("02_patience", 1000, 300.0), ("02_patience", 4000, 3.0),
    ("02_patience", 4000, 30.0),
    ("03_imagenet", None, 1.0), ("03_imagenet", None, 16.0), ("04_resolution", 1000, 300.0),
    ("05_shampoo", 1000, 30.0), ("05_shampoo", 1000, 100.0), ("05_shampoo", 1000, 300.0),
    ("06_init", 1000, 30.0), ("07_cross_family", 1000, 30.0), ("07_cross_family", 1000, 100.0),
    ("08_out_of_domain", 1000, 30.0), ("08_out_of_domain", 1000, 300.0),
)


def item_section(name: str) -> str:
    """The chapter whose comparison a :data:`PLAN` item trains: the one its name opens with
    ("02 1k images at 1000 epochs ..."), or a seed follow-up's claim's ("seed follow-up: C5's
    ..." -> 02_patience)."""
    from kdlib.experiments import chapters, claim_texts

    if (number := re.match(r"^(\d\d) ", name)) is not None:
        found = [s for s in chapters.SECTIONS if s.startswith(number[1] + "_")]
        if found:
            return found[0]
    if (claim := re.match(r"^seed follow-up: (C\d+)'s ", name)) is not None:
        if claim[1] in claim_texts.STATEMENTS:
            return claim_texts.STATEMENTS[claim[1]][2]
    raise ValueError(f"plan item {name!r} names no chapter: open it with the chapter's number "
                     "('02 ...') or a claim's id ('seed follow-up: C5's ...')")


def queued_points(section: str | None = None) -> set[str]:
    """The points (:func:`kdlib.experiments.run_keys.point_hash`: an arm at a length) of every
    :data:`PLAN` item (of ``section``'s comparisons only, where given: an item grows the grids
    of its own chapter's arms, and another chapter that reads the same point keeps its own
    grid): those whose grids the queue grows and whose selected configs it replicates (built
    from the plan, no store read)."""
    return {common.point_hash(cfg) for name, build in PLAN
            if section is None or item_section(name) == section
            for by_epochs in build().values() for cfg, _ in by_epochs.values()}


# Measured batch images per second of a vectorized group of the cpu-preset BiT student, by
# its number of runs, on this project's 2-core machine beside other work (chapter 01's 2-run
# groups: median 323 img/s; chapter 09's 4-run groups: 96-175; the queue's 6-run group at 300
# epochs: 99 with tests running beside it). Label-only runs (no teacher) run about 1.5x faster.
GROUP_IMG_PER_S = {1: 400.0, 2: 320.0, 3: 240.0, 4: 175.0, 6: 110.0}


# A distilled MobileNetV3 student trains at about half the BiT student's img/s at the same
# group size (medians of the stored cpu runs' img_per_s, 2026-12-05, MobileNetV3 / BiT: single
# runs 531 / 944, groups of 2 331 / 493, of 4 61 / 146, group not recorded 104 / 238); trained
# from labels about the same (single runs 1,307 / 1,211). Until then the plan counted it as a
# BiT student.
STUDENT_SPEED = {"mobilenet_v3": 0.5}


def _hours(cfg: RunConfig, runs_in_group: int, replicates: int) -> float:
    """Estimated hours of one base sweep trained as a group, plus ``replicates`` single runs."""
    images = cfg.epochs * (cfg.data.train_size or 55_000)
    speed = 1.5 if cfg.loss == "labels" else STUDENT_SPEED.get(cfg.student.name, 1.0)
    rate = GROUP_IMG_PER_S.get(runs_in_group, min(GROUP_IMG_PER_S.values()))
    group = images / (rate * speed) if runs_in_group else 0.0
    return (group + replicates * images / (GROUP_IMG_PER_S[1] * speed)) / 3600


def _base_grid(cfg: RunConfig, axes: dict) -> list[RunConfig]:
    """The runs of a base sweep (its grid with the short-schedule temperatures)."""
    from kdlib import sweep as sweeps

    return sweeps.expand(cfg, sweeps.grid(**common.extended_axes(cfg, axes)))


def estimate_hours(arms: common.Arms, seeds: int = 3) -> tuple[int, float]:
    """(runs, hours) of an item: each base sweep as one group, plus its seed replicates."""
    runs, hours = 0, 0.0
    for by_epochs in arms.values():
        for cfg, axes in by_epochs.values():
            n = len(_base_grid(cfg, axes))
            hours += _hours(cfg, n, seeds - 1)
            runs += n + seeds - 1
    return runs, hours


def base_sweeps(arms: common.Arms) -> list[tuple[RunConfig, int, int]]:
    """(base config, runs, runs not stored) of each base sweep of an item (the store read
    once for :func:`stored_runs` and :func:`remaining_hours`)."""
    out = []
    for by_epochs in arms.values():
        for cfg, axes in by_epochs.values():
            configs = _base_grid(cfg, axes)
            out.append((cfg, len(configs), sum(store.fresh_run(c) is None for c in configs)))
    return out


def comparisons(arms: common.Arms) -> list[common.Arms]:
    """An item's arms split as their chapters grow grids over them (run_arms widens every
    arm of a call alike): chapter 07's MobileNet from labels apart from the distillation arms,
    as the chapter runs :func:`cross_family.label_arms` on its own; every other arm
    together. (A C11 follow-up that mixed them grew the distilled arm's grid by the labels
    arm's edge, 2026-12-07: a run no chapter loads.)"""
    apart = {a: by for a, by in arms.items() if a == cross_family.LABELS_ARM}
    rest = {a: by for a, by in arms.items() if a not in apart}
    return [part for part in (rest, apart) if part] or [dict(arms)]


def run_item(arms: common.Arms, **kwargs: Any) -> dict[str, dict[float, Any]]:
    """:func:`common.run_arms` over each of the item's :func:`comparisons` (``kwargs``
    passed on), the results of all together."""
    return {a: by for part in comparisons(arms)
            for a, by in common.run_arms(part, **kwargs).items()}


def load_item(arms: common.Arms, sweeps: list[tuple[RunConfig, int, int]], seeds: int = 3
              ) -> dict[str, dict[float, Any]] | None:
    """An item's sweeps as the chapter loads them (grown grids, replicates), or None while a
    base run is missing (loading would train it)."""
    if any(missing for _, _, missing in sweeps):
        return None
    return run_item(arms, progress=False, extras=False, seeds=seeds)


def remaining_hours(arms: common.Arms, sweeps: list[tuple[RunConfig, int, int]],
                    loaded: dict[str, dict[float, Any]] | None, seeds: int = 3) -> float:
    """Estimated hours still to train of an item (``sweeps``: its :func:`base_sweeps`;
    ``loaded``: its :func:`load_item`): its base sweeps with a run missing (each as a whole
    group) and the missing seed replicates. Once every base run is stored, the replicates
    missing are counted exactly, of the configs the grown grids select; before that, every
    sweep's are. Grids the extras may still grow are not counted (unknown until then)."""
    if loaded is None:
        return sum(_hours(cfg, runs if missing else 0, seeds - 1)
                   for cfg, runs, missing in sweeps)
    return sum(_hours(arms[a][ep][0], 0, max(0, seeds - 1 - len(result.replicates or [])))
               for a, by_epochs in loaded.items() for ep, result in by_epochs.items())


def spent_hours(arms: common.Arms, loaded: dict[str, dict[float, Any]] | None,
                counted: set[str] | None = None) -> float:
    """Hours of wall time the item's stored runs took (a vectorized group's time counted once,
    resumed runs' earlier processes included:
    :func:`kdlib.provenance_tables.section_totals`): every run the chapter loads
    (``loaded``), else the stored runs of its base grids. Runs trained before the queue
    existed (a chapter's first grid) count too, as the estimate does. Runs
    whose hash is in ``counted`` (an earlier item's) are left out; this item's are added."""
    if loaded is not None:
        records = {r.hash: r for by_epochs in loaded.values() for result in by_epochs.values()
                   for r in [*result.runs, *(result.replicates or [])] if r is not None}
    else:
        found = (store.fresh_run(c) for by_epochs in arms.values()
                 for cfg, axes in by_epochs.values() for c in _base_grid(cfg, axes))
        records = {r.hash: r for r in found if r is not None}
    if counted is not None:
        records = {h: r for h, r in records.items() if h not in counted}
        counted.update(records)
    return wall_hours(list(records.values()))


def wall_hours(runs: list[Any]) -> float:
    """Hours of wall time stored runs took, a vectorized group's time counted once
    (:func:`kdlib.provenance_tables.section_totals`); 0 for none."""
    from kdlib import provenance_tables as tables

    return sum(t["wall time (h)"] for t in tables.section_totals(tables.run_rows(runs))) \
        if runs else 0.0


def stored_runs(sweeps: list[tuple[RunConfig, int, int]]) -> tuple[int, int]:
    """(finished, all) runs of an item's base grids (``sweeps``: its :func:`base_sweeps`):
    how far it got; grown grids and replicates are not counted."""
    total = sum(runs for _, runs, _ in sweeps)
    return total - sum(missing for _, _, missing in sweeps), total



PLAN_COLUMNS = ("item", "what", "runs (with replicates)", "estimated hours",
                "base grid stored", "hours left", "hours spent")


def plan_rows(start: int = 0) -> list[dict[str, Any]]:
    """One row per :data:`PLAN` item from ``start`` (:data:`PLAN_COLUMNS`): its runs and
    estimated hours, how much of its base grid is stored, the hours still to train and the
    hours its stored runs took (a run two items load counts in the first). Reads the store;
    trains nothing."""
    rows: list[dict[str, Any]] = []
    counted: set[str] = set()
    for i, (name, build) in enumerate(PLAN):
        arms, seeds = build(), ITEM_SEEDS.get(name, common.SEEDS[PRESET])
        sweeps = base_sweeps(arms)
        loaded = load_item(arms, sweeps, seeds)
        spent = spent_hours(arms, loaded, counted)
        if i < start:
            continue
        runs, hours = estimate_hours(arms, seeds)
        done, total = stored_runs(sweeps)
        rows.append(dict(zip(PLAN_COLUMNS, (
            i, name, runs, round(hours, 1), f"{done}/{total}",
            round(remaining_hours(arms, sweeps, loaded, seeds), 1), round(float(spent), 1)),
            strict=True)))
        if name == PROBES_AFTER:
            rows.append(probe_row())
    return rows


def pending_followups(claim: str) -> list[str]:
    """The seed follow-ups of ``claim`` ("C3") in :data:`PLAN` with seeds still to train, as
    named there less the "seed follow-up: " prefix: what the claim still waits for besides its
    chapter's queued lengths (its checks read each follow-up seed once it is stored). Reads
    the store; trains nothing."""
    pending = []
    for name, build in PLAN:
        if name in FOLLOW_UP and name.startswith(f"seed follow-up: {claim}'s "):
            arms, seeds = build(), ITEM_SEEDS.get(name, common.SEEDS[PRESET])
            sweeps = base_sweeps(arms)
            if remaining_hours(arms, sweeps, load_item(arms, sweeps, seeds), seeds) > 0:
                pending.append(name.removeprefix("seed follow-up: "))
    return pending


def _finished(row: dict[str, Any]) -> bool:
    """Whether a plan row's item is done: its base grid stored and no hours left."""
    done, total = (int(n) for n in row["base grid stored"].split("/"))
    return row["hours left"] == 0 and done == total


def plan_summary(rows: list[dict[str, Any]]) -> str:
    """The plan's totals in two sentences: hours left, and what the finished items took
    against their estimate."""
    left = sum(r["hours left"] for r in rows)
    text = (f"{left:.1f} hours left in all, at the img/s measured beside other work "
            "(GROUP_IMG_PER_S; an idle machine trains about 2-3x faster).")
    finished = [r for r in rows if _finished(r)]
    if finished:
        est = sum(r["estimated hours"] for r in finished)
        spent = sum(r["hours spent"] for r in finished)
        text += (f" The {len(finished)} finished items took {spent:.1f} h of stored wall time "
                 f"against {est:.1f} h estimated ({spent / est:.2f}x; grown grids are not "
                 "estimated; a run two items load counts in the first).")
    if CUT:
        text += (" Cut for the budget (none can move a verdict): "
                 + "; ".join(f"{name} ({why})" for name, _, why in CUT) + ".")
    return text
