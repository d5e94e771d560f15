"""The background queue of the cpu preset's evidence runs, in the order they settle claims.

Each item is one comparison (arms at one or more schedule lengths) run through
:func:`kdlib.experiments.common.run_arms` with the extras on: the short-schedule temperatures,
the grid grown until it brackets every selected run, then the seed replicates. Every finished
run is stored the moment its group finishes, and with ``--commit`` committed to git within
five minutes; an interrupted run resumes from its checkpoint when the queue is started
again. ``make queue`` runs it niced, from a clean ``git worktree`` of HEAD (clean
provenance), committing to this checkout.

After the item :data:`PROBES_AFTER` the queue trains the probes one step beyond the lr
ladder's end (:mod:`kdlib.experiments.ladder_probe`) at every selected config still sitting
there: single runs, no grid, no replicates.

``--list`` prints the plan (items, their estimated hours, how many runs of their base grids
are stored, the hours still to train and the hours their stored runs took) without training.

``--supervise`` runs the queue in a child process and starts it again when it dies of a crash
(a segfault inside the compiler is not an exception the queue can catch); an item it crashed on
twice is skipped for the rest of that run, said in the log (``make queue`` supervises).

``--park REPO`` commits the latest complete checkpoint (and the config and metrics log) of
every unfinished run, after the queue is stopped: checkpoints are gitignored and a session's
checkout is laid anew, so without it a group longer than the time left in a session would
start over in every session. The next ``make queue`` resumes them; a parked run that finishes
is committed with its checkpoint's removal (``make queue-park`` stops the queue and parks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
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
from kdlib.fileio import METRICS_FILE, MetricsLog

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
# A follow-up planned late on 2026-12-05, after results: the points read by every
# inconclusive check that, at 3 seeds, needed at most 12 seeds per point to be decided were
# its difference what it read (kdlib.evidence.seeds_to_decide: C1's two 250-image checks 4
# and 7, C5's 1k student vs scratch at 100 epochs 6, C10's head start at 30 epochs 10; all
# four then in the paper's direction) go to 8 seeds, a number fixed here before any of them
# is trained, and each check reads all 8 (arms.MAX_SEEDS). C11's distilled MobileNet vs the
# one from labels (12, against the paper's direction) is left out for its cost (10 MobileNet
# runs, about 4 h). Each claim's rule note says so.
FOLLOW_UP = ("seed follow-up: C1's 250-image points at 400 epochs to 8 seeds (same/ic, "
             "fix/cc, ind/rc)",
             "seed follow-up: C5's 1k points at 100 epochs to 8 seeds (function matching, "
             "from scratch)",
             "seed follow-up: C10's 30-epoch points to 8 seeds (pretrained, random init)")
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
     lambda: cross_family.label_arms(PRESET, planned=True)),
    ("01 1k images at 30 epochs (extras: C3's short check)",
     _extras_of(lambda: consistency.arms(PRESET, "1k"), (30.0,))),
    ("03 55k images at 1 epoch (extras: C6's short check)",
     _extras_of(lambda: imagenet.arms(PRESET), (1.0,))),
    ("04 at 300 epochs (extras: C8)", _extras_of(lambda: resolution.arms(PRESET), (300.0,))),
    ("08 at 30 and 300 epochs (extras: C12)",
     _extras_of(lambda: out_of_domain.arms(PRESET), (30.0, 300.0))),
    ("06 at 100 and 300 epochs (extras: the lengths the chapter's gap reads)",
     _extras_of(lambda: init.arms(PRESET), (100.0, 300.0))),
    (FOLLOW_UP[0], lambda: _only(consistency.arms(PRESET, "250"),
                                 ("same/ic", "fix/cc", "ind/rc"), (400.0,))),
    (FOLLOW_UP[1], lambda: _only(patience.arms(PRESET, "1k"),
                                 ("function matching", "from scratch"), (100.0,))),
    (FOLLOW_UP[2], lambda: _only(init.arms(PRESET), ("pretrained init", "random init"),
                                 (30.0,))),
    ("02 250 images at 4000 epochs (function matching)",
     _patience("250", (4000.0,), ("function matching",), upfront=False)),
    ("02 1k images at 3000 epochs (function matching)",
     _patience("1k", (3000.0,), ("function matching",), upfront=False)),
    ("03 55k images at 16 epochs (fixed teacher, consistent, FM, labels: Adam)",
     lambda: _only(imagenet.arms(PRESET, planned=True), imagenet.PLANNED_ARMS,
                   imagenet.PLANNED[PRESET])),
    ("01 1k images at 1000 epochs (consistent, best fixed and independent; FM is stored)",
     _consistency("1k", (1000.0,))),
    ("01 250 images at 1000 epochs (consistent, best fixed and independent; FM is 02's)",
     _consistency("250", (1000.0,))),
    ("07 at 300 epochs (MobileNetV3 students, the 2-teacher ensemble)",
     lambda: _only(cross_family.arms(PRESET, planned=True),
                   tuple(a for a in cross_family.PLANNED_ARMS if a != "BiT student"),
                   cross_family.PLANNED[PRESET])),
]

# Items cut from the plan for the budget (2026-12-04, issues 13 and 14 asked for about 30 h;
# the finished items took 33.5 h and the plan still holds about 50 h estimated, 1.43x that at
# the finished items' ratio): each settles no verdict, only fills tables. (name, arms builder,
# why); restore one by moving it back into PLAN.
CUT: list[tuple[str, Callable[[], common.Arms], str]] = [
    ("09 at 30 and 100 epochs (extras; tables only)",
     lambda: _only(dist_loss.arms(PRESET), dist_loss.ARMS, (30.0, 100.0)),
     "C13 reads 09 at 300 epochs, replicated by items 0 and 2"),
    ("01 1k images at 100 epochs (extras; tables only)",
     _extras_of(lambda: consistency.arms(PRESET, "1k"), (100.0,)),
     "C1-C3 read 01 at 30 and 300 epochs, and at 1000 once queued (each replicated by its "
     "own item)"),
]

# The plan item after which the queue probes one lr step beyond the ladder's end at every
# selected config still there (2026-12-05, after results: the 9 cheapest were probed by hand,
# lr 0.3 behind at 8; the 13 dearer ones, 30-1000 epochs on 250-4k images, 3.1 h at the
# plan's single-run rate, settle whether the ladder brackets the points C1-C5, C9, C10 and
# C13 read), before the long patience items.
PROBES_AFTER = "08 at 30 and 300 epochs (extras: C12)"
PROBES_NAME = "ladder probes: lr 0.3 at every selected config at the ladder's end (seed 0)"


def probe_row() -> dict[str, Any]:
    """The plan row of the ladder probes (:data:`PLAN_COLUMNS`): each probe one single run."""
    points = ladder_probe.ladder_end_points(PRESET)
    configs = [ladder_probe.probe_config(p["config"]) for p in points]
    stored = [store.fresh_run(c) for c in configs]
    hours = [_hours(c, 1, 0) for c in configs]
    done = [r for r in stored if r is not None]
    spent = wall_hours(done)
    return dict(zip(PLAN_COLUMNS, (
        f"{_probes_index()}+", PROBES_NAME, len(configs), round(sum(hours), 1),
        f"{len(done)}/{len(configs)}",
        round(sum(h for h, r in zip(hours, stored, strict=True) if r is None), 1),
        round(float(spent), 1)), strict=True))


def _probes_index() -> int:
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


def queued_points() -> set[str]:
    """The points (:func:`kdlib.experiments.arms.point_hash`: an arm at a length) of every
    :data:`PLAN` item: those whose grids the queue grows and whose selected configs it
    replicates (built from the plan, no store read)."""
    return {common.point_hash(cfg) for _, build in PLAN for by_epochs in build().values()
            for cfg, _ in by_epochs.values()}


# Measured batch images per second of a vectorized group of the cpu-preset BiT student, by
# its number of runs, on this project's 2-core machine beside other work (chapter 01's 2-run
# groups: median 323 img/s; chapter 09's 4-run groups: 96-175; the queue's 6-run group at 300
# epochs: 99 with tests running beside it). Label-only runs (no teacher) run about 1.5x faster.
GROUP_IMG_PER_S = {1: 400.0, 2: 320.0, 3: 240.0, 4: 175.0, 6: 110.0}


def _hours(cfg: RunConfig, runs_in_group: int, replicates: int) -> float:
    """Estimated hours of one base sweep trained as a group, plus ``replicates`` single runs."""
    images = cfg.epochs * (cfg.data.train_size or 55_000)
    speed = 1.5 if cfg.loss == "labels" else 1.0
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


def load_item(arms: common.Arms, sweeps: list[tuple[RunConfig, int, int]], seeds: int = 3
              ) -> dict[str, dict[float, Any]] | None:
    """An item's sweeps as the chapter loads them (grown grids, replicates), or None while a
    base run is missing (loading would train it)."""
    if any(missing for _, _, missing in sweeps):
        return None
    return common.run_arms(arms, progress=False, extras=False, seeds=seeds)


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
    resumed runs' earlier processes included: :func:`kdlib.book.section_totals`): every run
    the chapter loads (``loaded``), else the stored runs of its base grids. Runs trained
    before the queue existed (a chapter's first grid) count too, as the estimate does. Runs
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
    (:func:`kdlib.book.section_totals`); 0 for none."""
    from kdlib import book

    return sum(t["wall time (h)"] for t in book.section_totals(book.run_rows(runs))) \
        if runs else 0.0


def stored_runs(sweeps: list[tuple[RunConfig, int, int]]) -> tuple[int, int]:
    """(finished, all) runs of an item's base grids (``sweeps``: its :func:`base_sweeps`):
    how far it got; grown grids and replicates are not counted."""
    total = sum(runs for _, runs, _ in sweeps)
    return total - sum(missing for _, _, missing in sweeps), total


def _finished_uncommitted(repo: Path) -> list[str]:
    """Run folders under results/<PRESET>/ holding a summary.json whose files git does not
    hold as they are: new (untracked), rewritten in place (a stale run retrained under its
    hash) or with files gone (a parked run's checkpoint, removed when the run finished)."""
    out = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "-uall", "--",
                          f"results/{PRESET}"], capture_output=True, text=True,
                         check=True).stdout
    dirs = set()
    for line in out.splitlines():
        path = Path(line[3:])
        if len(path.parts) >= 4:
            run = Path(*path.parts[:4])
            if (repo / run / store.SUMMARY_FILE).is_file():
                dirs.add(str(run))
    return sorted(dirs)


CKPT_DIR = "ckpt"
# The file orbax writes last into a checkpoint step folder: the step is complete.
CKPT_COMPLETE = "commit_success.txt"


def _finished_elsewhere(run: Path, repo: Path) -> bool:
    """Whether another chapter's folder holds a finished run of ``run``'s config (the run
    every chapter reads then: store.fresh_run)."""
    config = store.read_json(run / store.CONFIG_FILE)
    if not (isinstance(config, dict) and config.get("preset") and config.get("section")):
        return False
    found = store.fresh_run(config, repo / "results")
    return found is not None and found.path != run


def parkable_runs(repo: Path) -> list[tuple[str, int]]:
    """(run folder relative to ``repo``, step) of every unfinished run under
    results/<PRESET>/ (a config, no summary; a failed run keeps its checkpoint to resume from)
    with a complete checkpoint: the latest step it holds. A run whose config another chapter
    has finished meanwhile is left out: every chapter reads that one (store.fresh_run)."""
    out = []
    for config in sorted((repo / "results" / PRESET).glob(f"*/*/{store.CONFIG_FILE}")):
        run = config.parent
        if (run / store.SUMMARY_FILE).exists() or _finished_elsewhere(run, repo):
            continue
        steps = [int(p.name) for p in (run / CKPT_DIR).glob("*")
                 if p.name.isdigit() and (p / CKPT_COMPLETE).is_file()]
        if steps:
            out.append((str(run.relative_to(repo)), max(steps)))
    return out


PROGRESS_COLUMNS = ("run", "what", "step", "of", "done", "hours so far", "hours left")


def progress_rows(repo: Path) -> list[dict[str, Any]]:
    """One row per unfinished run under ``repo``'s results/<PRESET>/ with a metrics log
    (:data:`PROGRESS_COLUMNS`; step 0 until its first record): its steps against the
    schedule's, and its hours so far and
    left at the pace its log shows (its logged times cover every process that trained it,
    a resumed run's included). Reads the metrics logs; trains nothing."""
    rows = []
    for config_path in sorted((repo / "results" / PRESET).glob(f"*/*/{store.CONFIG_FILE}")):
        run = config_path.parent
        log = run / METRICS_FILE
        if (run / store.SUMMARY_FILE).exists() or not log.is_file():
            continue
        records = MetricsLog.in_run(run).read()  # a torn last line (a live writer): left out
        last = next((r for r in reversed(records)
                     if r.get("step") and r.get("epoch") and "wall_time_s" in r), None)
        config = json.loads(config_path.read_text())
        what = (f"{config.get('policy')} {config.get('loss')} lr {config.get('lr'):g} "
                f"seed {config.get('seed')} at {config['epochs']:g} epochs")
        name = str(run.relative_to(repo / "results" / PRESET))
        if last is None:  # started: its first record comes at a tenth of the run, or later
            rows.append(dict(zip(PROGRESS_COLUMNS, (name, what, 0, "?", "0%", "?", "?"),
                                 strict=True)))
            continue
        total = round(config["epochs"] * last["step"] / last["epoch"])
        per_step = last["wall_time_s"] / last["step"]
        rows.append(dict(zip(PROGRESS_COLUMNS, (
            name, what, last["step"], total,
            f"{100 * last['step'] / total:.0f}%", round(last["wall_time_s"] / 3600, 2),
            round(max(0, total - last["step"]) * per_step / 3600, 2)), strict=True)))
    return rows


def park(repo: Path) -> int:
    """Commits each :func:`parkable_runs` folder's config, metrics log and latest complete
    checkpoint (checkpoints are gitignored: added by force), and the removal of the older
    steps a previous park committed. Run with the queue stopped: a checkpoint being written
    is not complete and is left out. Runs that finished since the queue's last commit are
    committed first. Returns the number of runs parked (0 when nothing changed since the last
    park)."""
    commit_finished(repo, "finished before the queue was parked")
    runs = parkable_runs(repo)
    if not runs:
        return 0

    def git(*args: str, check: bool = True) -> int:
        return subprocess.run(["git", "-C", str(repo), *args], check=check,
                              capture_output=True, text=True).returncode

    paths = []
    for run, step in runs:
        git("add", "-u", "--", run)  # older parked steps that orbax has since deleted
        files = [f"{run}/{store.CONFIG_FILE}", f"{run}/{CKPT_DIR}/{step}"]
        if (repo / run / METRICS_FILE).is_file():
            files.append(f"{run}/{METRICS_FILE}")
        git("add", "-f", "--", *files)
        paths.append(run)
    if git("diff", "--cached", "--quiet", "--", *paths, check=False) == 0:
        return 0  # parked as they are already
    steps = ", ".join(f"{Path(run).name} at step {step}" for run, step in runs)
    git("commit", "-q", "-m", f"queue: parked {len(runs)} unfinished runs at their latest "
        f"checkpoints, resumed by the next `make queue` ({steps})", "--", *paths)
    return len(runs)


def describe_runs(repo: Path, dirs: list[str]) -> str:
    """What run folders hold, by chapter and schedule length (read from each config), e.g.
    "07_cross_family: 3 at 30 epochs, 1 at 100": a commit names what it stores, not the item
    the queue is on (a run resumed from a parked checkpoint finishes under a later item)."""
    counts: dict[str, Counter] = {}
    for run in dirs:
        path = repo / run
        try:
            epochs = json.loads((path / store.CONFIG_FILE).read_text()).get("epochs")
        except (OSError, ValueError, AttributeError):  # a message must not stop the commit
            epochs = None
        counts.setdefault(path.parent.name, Counter())[epochs] += 1

    def lengths(c: Counter) -> str:
        known = sorted((e, n) for e, n in c.items() if isinstance(e, int | float))
        text = [f"{n} at {e:g}" + (" epochs" if i == 0 else "") for i, (e, n) in enumerate(known)]
        unknown = sum(n for e, n in c.items() if not isinstance(e, int | float))
        return ", ".join(text + ([f"{unknown} of unrecorded length"] if unknown else []))

    return "; ".join(f"{section}: {lengths(c)}" for section, c in sorted(counts.items()))


def commit_finished(repo: Path, item: str) -> int:
    """Commits every finished run folder git does not hold as it is
    (:func:`_finished_uncommitted`), retrying while git's index is locked (another commit
    running: the folders are looked up again each try, so one that committed them ends it)."""
    dirs: list[str] = []
    for attempt in range(30):
        dirs = _finished_uncommitted(repo)
        if not dirs:
            return 0
        message = (f"cpu results: {len(dirs)} finished run dirs ({describe_runs(repo, dirs)}; "
                   f"queue at: {item}; provenance in each)")
        add = subprocess.run(["git", "-C", str(repo), "add", "-A", "--", *dirs],
                             capture_output=True, text=True)
        if add.returncode == 0:
            done = subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", message,
                                   "--", *dirs], capture_output=True, text=True)
            if done.returncode == 0:
                return len(dirs)
        time.sleep(2 + attempt)
    print(f"could not commit {dirs}", file=sys.stderr)
    return 0


# The line the queue prints as it starts an item ("[12:00:00] item 16: ..."; "item 21+:" for
# the ladder probes after item 21), which the supervisor reads to know where a crash happened.
ITEM_LINE = re.compile(r"^\[[\d:]+\] item (\d+\+?): ")


def supervise(command: Callable[[set[str]], list[str]], *, retries: int = 2,
              pause_s: float = 10.0, skip: Iterable[str] = ()) -> int:
    """Runs ``command(skip)`` (the queue's command line, skipping the items in ``skip``) as a
    child process, echoing its output, and starts it again after ``pause_s`` when it dies of
    anything but a stop: an item it died in ``retries`` times is skipped from then on. Ends
    when the child finishes (0), dies before starting any item (its exit code: not an item's
    fault), or on SIGTERM (passed on to the child; ``make queue-park``), also one that comes
    during the pause. The child gets ``PYTHONFAULTHANDLER=1``: a segfault prints its stack."""
    skip = set(skip)
    crashes: Counter[str] = Counter()
    stopping = False
    child: subprocess.Popen | None = None

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    try:
        while not stopping:
            child = subprocess.Popen(command(set(skip)), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace",
                                     bufsize=1, env=env)
            if stopping:  # the stop came between the check and the start
                child.terminate()
            item = None
            assert child.stdout is not None
            for line in child.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                found = ITEM_LINE.match(line)
                if found:
                    item = found.group(1)
            code = child.wait()
            if code == 0 or stopping or item is None:
                return 0 if stopping else code
            crashes[item] += 1
            if crashes[item] >= retries:
                skip.add(item)
            print(f"[{time.strftime('%H:%M:%S')}] supervisor: the queue died (exit {code}) in "
                  f"item {item} ({crashes[item]} times"
                  + (": skipped from now on" if item in skip else "") + f"); restarting in "
                  f"{pause_s:g} s", flush=True)
            time.sleep(pause_s)
        return 0
    finally:
        if child is not None and child.poll() is None:  # the supervisor itself failed
            child.terminate()
            child.wait()
        signal.signal(signal.SIGTERM, previous)


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m kdlib.experiments.queue``."""
    out = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    out.add_argument("--list", action="store_true", help="print the plan, train nothing")
    out.add_argument("--commit", type=Path, default=None,
                     help="the checkout to commit finished run folders to")
    out.add_argument("--start", type=int, default=0, help="first plan item (0-based)")
    out.add_argument("--skip", nargs="+", default=[], metavar="ITEM",
                     help="items not to run (e.g. 16, or 21+ for the ladder probes)")
    out.add_argument("--supervise", action="store_true",
                     help="run the queue in a child process, restarted after a crash; an item "
                     "it crashed in twice is skipped")
    out.add_argument("--progress", type=Path, default=None, metavar="REPO",
                     help="how far each unfinished run under REPO's results is, and its hours "
                     "left at its logged pace; trains nothing")
    out.add_argument("--park", type=Path, default=None, metavar="REPO",
                     help="commit the unfinished runs' latest checkpoints to REPO (stop the "
                     "queue first), train nothing")
    return out


def _committer(repo: Path, item: list[str], every_s: float) -> threading.Event:
    """Commits finished run folders every ``every_s`` seconds in a daemon thread (so a run
    that finishes mid-item is in git minutes later); set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            commit_finished(repo, item[0])

    threading.Thread(target=loop, daemon=True).start()
    return stop


PLAN_COLUMNS = ("item", "what", "runs (with replicates)", "estimated hours",
                "base grid stored", "hours left", "hours spent")


def plan_rows(start: int = 0) -> list[dict[str, Any]]:
    """One row per :data:`PLAN` item from ``start`` (:data:`PLAN_COLUMNS`): its runs and
    estimated hours, how much of its base grid is stored, the hours still to train and the
    hours its stored runs took (a run two items load counts in the first). Reads the store;
    trains nothing."""
    rows, counted = [], set()
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
        text += (" Cut for the budget (no verdict reads them): "
                 + "; ".join(f"{name} ({why})" for name, _, why in CUT) + ".")
    return text


def _stop_once(*_: Any) -> None:
    """SIGTERM in the queue: ignore any further one, then unwind (``finally`` commits)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(128 + signal.SIGTERM)


def _without_options(argv: list[str], flags: tuple[str, ...], lists: tuple[str, ...]
                     ) -> list[str]:
    """``argv`` without the ``flags`` and without the ``lists`` options and their values
    (the supervisor passes its own ``--skip``)."""
    out, dropping = [], False
    for arg in argv:
        if arg in flags:
            continue
        if arg in lists:
            dropping = True
            continue
        if dropping and not arg.startswith("--"):
            continue
        dropping = False
        out.append(arg)
    return out


def check_args(args: argparse.Namespace) -> str | None:
    """The first bad option of a queue command line as one line, or None: an item number
    outside the plan would otherwise skip nothing or run nothing, and a --commit or --park
    checkout that is not a git checkout would fail only at its first commit, minutes in."""
    probes = ([f"{_probes_index()}+"] if PROBES_AFTER in (name for name, _ in PLAN) else [])
    items = [str(i) for i in range(len(PLAN))] + probes
    if not 0 <= args.start < len(PLAN):
        return f"--start {args.start} is not a plan item; allowed: 0..{len(PLAN) - 1}"
    bad = [s for s in args.skip if s not in items]
    if bad:
        return (f"--skip {' '.join(bad)}: not plan items; allowed: 0..{len(PLAN) - 1}"
                + "".join(f" and {p} (the ladder probes)" for p in probes))
    for option, repo in (("--commit", args.commit), ("--park", args.park),
                         ("--progress", args.progress)):
        if repo is not None and not (repo / ".git").exists():
            return f"{option} {repo} is not a git checkout (no .git in it)"
    return None


def _print_table(columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """``rows`` as a markdown table of ``columns`` on stdout (--list, --progress)."""
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" for _ in columns) + " |")
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    problem = check_args(args)
    if problem:
        cli.error(problem)
    if args.park:
        print(f"parked {park(args.park)} unfinished runs")
        return 0
    if args.progress:
        rows = progress_rows(args.progress)
        _print_table(PROGRESS_COLUMNS, rows)
        print(f"\n{len(rows)} unfinished run(s) with a metrics log (step 0: no record yet)")
        return 0
    if args.list:
        rows = plan_rows(args.start)
        _print_table(PLAN_COLUMNS, rows)
        print("\n" + plan_summary(rows))
        return 0
    if args.supervise:
        argv = _without_options(sys.argv[1:] if argv is None else argv, ("--supervise",),
                                ("--skip",))
        return supervise(lambda skip: [sys.executable, "-m", "kdlib.experiments.queue", *argv,
                                       *(["--skip", *sorted(skip)] if skip else [])],
                         skip=args.skip)
    skip = set(args.skip)
    current = ["starting"]
    stop = _committer(args.commit, current, 300.0) if args.commit else None
    # A stop (make queue-park's SIGTERM) unwinds like an error, so the finished runs are
    # committed on the way out (the committer thread dies with the process); a second SIGTERM
    # (the supervisor passes the stop on) must not cut that commit short.
    signal.signal(signal.SIGTERM, _stop_once)
    try:
        for i, (name, build) in enumerate(PLAN):
            if i < args.start:
                continue
            if str(i) not in skip:
                t0 = time.time()
                current[0] = name
                # printed before anything of the item runs: the supervisor reads it to know
                # which item a crash belongs to
                print(f"[{time.strftime('%H:%M:%S')}] item {i}: {name}", flush=True)
                common.run_arms(build(), progress=False, extras=True,
                                seeds=ITEM_SEEDS.get(name))
                print(f"[{time.strftime('%H:%M:%S')}] item {i} done in "
                      f"{time.time() - t0:.0f} s", flush=True)
                if args.commit:
                    print(f"committed {commit_finished(args.commit, name)} run dirs",
                          flush=True)
            if name == PROBES_AFTER and f"{i}+" not in skip:
                t0, current[0] = time.time(), PROBES_NAME
                print(f"[{time.strftime('%H:%M:%S')}] item {i}+: {PROBES_NAME}", flush=True)
                n = ladder_probe.train_probes(PRESET, limit=None)
                print(f"[{time.strftime('%H:%M:%S')}] item {i}+: {n} probes stored in "
                      f"{time.time() - t0:.0f} s", flush=True)
    finally:
        if stop is not None:
            stop.set()
        if args.commit:
            commit_finished(args.commit, current[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
