"""The small-data regimes of chapters 01 and 02, and the rule that makes their runs shared.

Chapter 01 (consistency) and chapter 02 (patience) train function matching on class-balanced
subsets of Fashion-MNIST; later chapters vary chapter 01's main regime
(:func:`small_data_regime`). A function-matching run that two chapters would both train is one
stored run, under the section of the first chapter that trains it (:func:`fm_section`). The
tables live here, below every chapter, so that no chapter recipe imports another chapter;
``consistency.REGIMES`` and ``patience.REGIMES`` are these tables.
"""

from __future__ import annotations

from kdlib import presets
from kdlib.experiments import paper_recipes

Regimes = dict[str, tuple[int | None, tuple[float, ...]]]
# A preset -> regime name -> schedule lengths (epochs).
Lengths = dict[str, dict[str, tuple[float, ...]]]

CONSISTENCY_SECTION = "01_consistency"
PATIENCE_SECTION = "02_patience"

# Every smoke regime (of every chapter) trains on the same 128 images: runs that differ only in
# data size would otherwise compile their own programs (the images are an input of the training
# chunk), and compiling is most of a smoke run (issue 15). Smoke checks wiring, not data sizes.
SMOKE_TRAIN_SIZE = 128
_SMOKE = SMOKE_TRAIN_SIZE

# Chapter 01: regime -> (training images, schedule lengths in epochs), per preset.
CONSISTENCY_REGIMES: dict[str, Regimes] = {
    "smoke": {"1k": (_SMOKE, (1.0, 2.0)), "250": (_SMOKE, (2.0,))},
    "cpu": {"1k": (1000, (30.0, 100.0, 300.0)), "250": (250, (400.0,))},
    "gpu": {"1k": (1000, (30.0, 100.0, 300.0, 1000.0)), "250": (250, (100.0, 300.0, 1000.0))},
}
# The paper: the four small datasets at the lengths of Figures 9-12 (Figure 3 is flowers at
# 10 000 epochs): paper_recipes.FIGURES_9_12.
CONSISTENCY_PAPER_REGIMES = {name: (ds, paper_recipes.FIGURES_9_12[ds]) for name, ds in (
    ("flowers102", "oxford_flowers102"), ("pets", "oxford_iiit_pet"), ("food101", "food101"),
    ("sun397", "sun397"))}
# Longer schedules the background queue trains (issue 14) before chapter 01 shows them:
# function matching, the best consistent policy, and the best fixed and independent ones
# (at 300 epochs on 1k images: same/ic, fix/cc, ind/rc). None left since 2026-12-06.
CONSISTENCY_PLANNED: Lengths = {"cpu": {}}
# The longer lengths chapter 01 shows, for those policies only (consistency.PLANNED_POLICIES;
# the others stop at CONSISTENCY_REGIMES' lengths): a CONSISTENCY_PLANNED length moves here
# once all its runs (grown grids, 3 seeds) are stored (250 images at 1000 epochs: queue item
# 31, 2026-12-06: grids lr 0.01-0.1, ind/rc selected at 0.1 and probed at 0.3,
# behind; 1k images at 1000 epochs: queue item 32, 2026-12-06, grids lr 0.01-0.1, ind/rc
# selected at 0.1 and probed at 0.3, behind: 85.2 vs 85.5% validation).
CONSISTENCY_LONGER: Lengths = {"cpu": {"250": (1000.0,), "1k": (1000.0,)}}

# Chapter 02: regime -> (training images, schedule lengths in epochs), per preset.
PATIENCE_REGIMES: dict[str, Regimes] = {
    "smoke": {"250": (_SMOKE, (2.0,)), "1k": (_SMOKE, (1.0, 2.0))},
    "cpu": {"250": (250, (40.0, 400.0, 1000.0, 4000.0)),
            "1k": (1000, (30.0, 100.0, 300.0, 1000.0, 3000.0)), "4k": (4000, (3.0, 30.0))},
    "gpu": {"250": (250, (30.0, 300.0, 3000.0)), "1k": (1000, (10.0, 100.0, 1000.0)),
            "4k": (4000, (3.0, 30.0, 300.0))},
}
# The paper's Figure 4 datasets and lengths (Table 4: paper_recipes.TABLE_4).
PATIENCE_PAPER_REGIMES = {name: (ds, paper_recipes.TABLE_4[ds]) for name, ds in (
    ("flowers102", "oxford_flowers102"), ("pets", "oxford_iiit_pet"), ("food101", "food101"),
    ("sun397", "sun397"))}
# Longer schedules the background queue trains (issue 14) before chapter 02 shows them; a
# length moves into PATIENCE_REGIMES once all its runs (grown grids, 3 seeds) are stored
# (1k at 1000 epochs: 2026-12-03; 250 at 1000: 2026-12-04; 250 at 4000: 2026-12-05;
# 1k at 3000: 2026-12-06).
PATIENCE_PLANNED: Lengths = {"cpu": {"250": (1000.0, 4000.0), "1k": (1000.0, 3000.0)}}
# Lengths chapter 02 no longer shows because they only show chance (issue 14): function
# matching's selected run read 10.0% test (chance on 10 classes) at each, and at 0.3 epochs on
# 4k images every arm was within 5.3 pts of it. Retired on 2026-12-04, after their results
# existed; their runs stay stored (and findable: `planned` lengths include them).
PATIENCE_RETIRED: Lengths = {"cpu": {"250": (4.0,), "1k": (3.0,), "4k": (0.3,)}}


def regimes(table: dict[str, Regimes], paper: dict[str, tuple[str, tuple[float, ...]]],
            planned_table: dict[str, dict[str, tuple[float, ...]]], preset: str,
            planned: bool = False,
            retired_table: dict[str, dict[str, tuple[float, ...]]] | None = None) -> Regimes:
    """Data regimes of ``preset`` in ``table``: name -> (training images, schedule lengths);
    at the paper preset, ``paper``'s datasets (all their images); with ``planned``, every
    length the store holds or the queue trains: those of ``planned_table`` and of
    ``retired_table`` (no longer shown) too."""
    preset = presets.check(preset)
    if preset == "paper":
        return {name: (None, eps) for name, (_, eps) in paper.items()}
    if not planned:
        return table[preset]
    extra = planned_table.get(preset, {})
    retired = (retired_table or {}).get(preset, {})
    return {name: (size, tuple(sorted(set(eps) | set(extra.get(name, ()))
                                      | set(retired.get(name, ())))))
            for name, (size, eps) in table[preset].items()}


def consistency_regimes(preset: str, planned: bool = False) -> Regimes:
    """Chapter 01's regimes (see :func:`regimes`): the lengths every policy trains; with
    ``planned``, the longer ones a few policies train too (:data:`CONSISTENCY_PLANNED`, and
    :data:`CONSISTENCY_LONGER`, which the chapter shows)."""
    planned_table = {p: {r: CONSISTENCY_PLANNED.get(p, {}).get(r, ())
                         + CONSISTENCY_LONGER.get(p, {}).get(r, ()) for r in regs}
                     for p, regs in CONSISTENCY_REGIMES.items()}
    return regimes(CONSISTENCY_REGIMES, CONSISTENCY_PAPER_REGIMES, planned_table, preset,
                   planned)


def patience_regimes(preset: str, planned: bool = False) -> Regimes:
    """Chapter 02's regimes (see :func:`regimes`)."""
    return regimes(PATIENCE_REGIMES, PATIENCE_PAPER_REGIMES, PATIENCE_PLANNED, preset, planned,
                   PATIENCE_RETIRED)


def small_data_regime(preset: str) -> tuple[int | None, tuple[float, ...]]:
    """Chapter 01's main regime (training images, schedule lengths): chapters 04-09 use it.

    Sharing it means the plain function-matching runs of those chapters are chapter 01's.
    """
    if presets.check(preset) == "paper":
        raise ValueError("preset='paper' has no Fashion-MNIST regime: its chapters use the "
                         "paper's datasets (see each chapter's paper configs)")
    return consistency_regimes(preset)["1k"]


def fm_section(preset: str, size: int | None, epochs: float, section: str) -> str:
    """The section that stores the plain function-matching run on ``size`` images for
    ``epochs``: chapter 01's when it trains (or plans) it, else chapter 02's when it does,
    else ``section``."""
    for chapter_section, chapter_regimes in ((CONSISTENCY_SECTION, consistency_regimes),
                                             (PATIENCE_SECTION, patience_regimes)):
        for n, lengths in chapter_regimes(preset, planned=True).values():
            if n == size and epochs in lengths:
                return chapter_section
    return section
