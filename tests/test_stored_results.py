"""The committed results: every run is complete and findable by the configs the chapters build.

A change to a config default or to a chapter's arms silently orphans stored runs (the book
would retrain them); these tests catch that without training anything.
"""

import json
from pathlib import Path

import pytest

from kdlib import book, store, sweep
from kdlib.experiments import (
    consistency,
    cross_family,
    dist_loss,
    imagenet,
    init,
    out_of_domain,
    patience,
    resolution,
    shampoo,
)

RESULTS = Path(__file__).resolve().parents[1] / "results"
# Finished runs (a run being trained here has no summary yet).
RUN_DIRS = sorted(p.parent for p in RESULTS.glob("*/*/*/summary.json"))


def chapter_configs(arms) -> list:
    """Every run config of an experiment's sweeps."""
    return [c for by_epochs in arms.values()
            for cfg, axes in by_epochs.values() for c in sweep.expand(cfg, sweep.grid(**axes))]


def chapter_hashes(arms) -> set[str]:
    return {store.config_hash(c) for c in chapter_configs(arms)}


def test_there_are_stored_runs():
    assert len(RUN_DIRS) > 50


@pytest.mark.parametrize("run_dir", RUN_DIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_run_is_whole_and_hashes_to_its_folder(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert store.config_hash(config) == run_dir.name
    assert run_dir.parts[-3] == config["preset"] and run_dir.parts[-2] == config["section"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] in ("done", "diverged")
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["config_hash"] == run_dir.name and provenance["commit"]
    assert not (run_dir / "ckpt").exists()


CHAPTER_ARMS = [
    ("01_consistency", lambda: [consistency.arms("cpu", r) for r in consistency.regimes("cpu")]),
    ("03_imagenet", lambda: [imagenet.arms("cpu")]),
    # Chapter 02's function-matching runs of chapter 01's regimes are chapter 01's runs.
    ("02_patience", lambda: [patience.arms("cpu", r) for r in patience.regimes("cpu")]),
    *[(m.SECTION, lambda m=m: [m.arms("cpu")])
      for m in (resolution, shampoo, init, cross_family, out_of_domain, dist_loss)],
]


@pytest.mark.parametrize(("section", "arms"), CHAPTER_ARMS)
def test_stored_cpu_runs_are_the_chapters_configs(section, arms):
    """Every stored run of a chapter is one its code builds today (else it is orphaned)."""
    stored = {p.name for p in RUN_DIRS if p.parts[-3] == "cpu" and p.parts[-2] == section}
    built = set().union(*(chapter_hashes(a) for a in arms()))
    assert stored <= built, f"orphaned runs of {section}: {sorted(stored - built)}"


@pytest.mark.parametrize(("section", "arms"),
                         [(s, a) for s, a in CHAPTER_ARMS if s in book.toc_stems()])
def test_book_chapters_have_every_cpu_run_stored(section, arms):
    """A chapter in the toc has all its runs stored: `make book` replots, it never trains."""
    missing = [store.config_hash(c) for a in arms() for c in chapter_configs(a)
               if not (store.run_dir(c) / "summary.json").is_file()]
    assert not missing, f"{section} is in _toc.yml but {len(missing)} runs are not stored"
