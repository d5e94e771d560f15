"""The committed results: every run is complete and findable by the configs the chapters build.

A change to a config default or to a chapter's arms silently orphans stored runs (the book
would retrain them); these tests catch that without training anything.
"""

import json
import subprocess
from pathlib import Path

import pytest

from kdlib import book, store, sweep
from kdlib.experiments import chapters, common, dist_loss

RESULTS = Path(__file__).resolve().parents[1] / "results"
# Finished runs (a run being trained here has no summary yet).
RUN_DIRS = sorted(p.parent for p in RESULTS.glob("*/*/*/summary.json"))


def _parked_dirs() -> list[Path]:
    """Runs the queue parked unfinished (config, metrics log and checkpoints committed; no
    summary): the next `make queue` resumes each under its folder's hash, so a code change
    that gives its config another hash would orphan it as surely as a finished run. Committed
    ones only (git ls-files): a run training here right now may have no checkpoint yet."""
    listed = subprocess.run(["git", "-C", str(RESULTS), "ls-files", "--", "*/config.json"],
                            capture_output=True, text=True)
    configs = [RESULTS / line for line in listed.stdout.splitlines()]
    return sorted(c.parent for c in configs if not (c.parent / "summary.json").exists())


PARKED_DIRS = _parked_dirs()


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


@pytest.mark.parametrize("run_dir", PARKED_DIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_parked_run_hashes_to_its_folder_and_has_a_checkpoint(run_dir):
    """A parked run resumes only under its own hash, from a complete checkpoint it holds."""
    from kdlib.config import config_from_dict
    from kdlib.experiments import queue_checkout

    config = json.loads((run_dir / "config.json").read_text())
    assert store.config_hash(config_from_dict(config)) == run_dir.name
    assert queue_checkout.complete_steps(run_dir), f"{run_dir} holds no complete checkpoint"


CHAPTER_ARMS = [(s, lambda s=s: chapters.experiments(s, "cpu")) for s in chapters.SECTIONS]


# What the evidence extras may change in a chapter's config (common.run_arms): the grown grid
# (lr, wd on their ladders) and the short-schedule temperature; a replicate's seed is left out
# by common.seed_family.
EXTRA_FIELDS = ("lr", "wd", "temperature")


def _family(config: dict) -> str:
    """A config without the fields the evidence extras vary: grid points and seed
    replicates of one sweep share it."""
    family = common.seed_family(config)
    return json.dumps({k: v for k, v in family.items() if k not in EXTRA_FIELDS},
                      sort_keys=True)


def _is_extra_of(config: dict, families: dict[str, set[float]]) -> bool:
    """A grid point or seed replicate of a chapter's sweep: same family, lr and wd on their
    ladders (or the sweep's own values), temperature one the sweeps use or 10."""
    temps = families.get(_family(config))
    if temps is None:
        return False
    from kdlib.experiments import ladder_probe

    lrs = (set(common.LADDERS["lr"]) | {10 * x for x in common.LADDERS["lr"]}  # SGD: 10x
           | set(ladder_probe.STEPS.values()))  # the probes past a ladder's end
    return (config["lr"] in lrs and config["wd"] in set(common.LADDERS["wd"]) | {0.0}
            and config["temperature"] in temps | set(common.SHORT_TEMPERATURES))


@pytest.mark.parametrize(("section", "arms"), CHAPTER_ARMS)
def test_stored_cpu_runs_are_the_chapters_configs(section, arms):
    """Every stored run of a chapter, finished or parked, is one its code builds today, a
    planned longer schedule, or an evidence extra (grown grid, temperature 10, seed replicate)
    of one; else orphaned."""
    stored = {p.name for p in RUN_DIRS + PARKED_DIRS
              if p.parts[-3] == "cpu" and p.parts[-2] == section}
    all_arms = arms() + chapters.experiments(section, "cpu", planned=True)
    built = set().union(*(chapter_hashes(a) for a in all_arms))
    families: dict[str, set[float]] = {}
    for a in all_arms:
        for c in chapter_configs(a):
            families.setdefault(_family(store.config_to_dict(c)), set()).add(c.temperature)
    orphans = sorted(h for h in stored - built if not _is_extra_of(
        json.loads((RESULTS / "cpu" / section / h / "config.json").read_text()), families))
    hint = ("; every stored run is orphaned, so the configs' hashes changed: a field added "
            "to RunConfig needs metadata={config.HASH_NEUTRAL: True} to keep the stored runs "
            "(kdlib/config.py)" if orphans and len(orphans) == len(stored) else "")
    assert not orphans, f"orphaned runs of {section}: {orphans}{hint}"


def test_a_run_outside_every_sweep_is_an_orphan():
    """The extras rule does not accept everything: another student size is no chapter's run."""
    arms = dist_loss.arms("cpu", planned=True)
    cfg = next(iter(arms["KL, strong teacher"].values()))[0]
    families = {_family(store.config_to_dict(cfg)): {1.0, 4.0}}
    assert _is_extra_of(store.config_to_dict(common.replicate(cfg.replace(lr=1e-2), 2)),
                        families)
    assert not _is_extra_of(store.config_to_dict(cfg.replace(student_size=20)), families)
    assert not _is_extra_of(store.config_to_dict(cfg.replace(lr=5e-3)), families)


@pytest.mark.parametrize(("section", "arms"),
                         [(s, a) for s, a in CHAPTER_ARMS if s in book.toc_stems()])
def test_book_chapters_have_every_cpu_run_stored(section, arms):
    """A chapter in the toc has all its runs stored (in its own folder, or another chapter's
    run of the same config: store.fresh_run): `make book` replots, it never trains."""
    missing = [store.config_hash(c) for a in arms() for c in chapter_configs(a)
               if store.fresh_run(c) is None]
    assert not missing, f"{section} is in _toc.yml but {len(missing)} runs are not stored"


def test_retired_patience_lengths_only_showed_chance():
    """The numbers chapter 02 and `regimes.PATIENCE_RETIRED` give for the lengths they retired
    (issue 13: prose checked against the store): function matching's validation-selected run
    read 10.0% test at each, and at 0.3 epochs on 4k images every arm was within 5.3 pts."""
    from kdlib.experiments import patience, regimes

    for regime, lengths in regimes.PATIENCE_RETIRED["cpu"].items():
        arms = patience.arms("cpu", regime, planned=True)
        for ep in lengths:
            selected = {arm: sweep.load_sweep(*by_epochs[ep]) for arm, by_epochs in arms.items()}
            assert all(s is not None for s in selected.values()), (regime, ep)
            accs = {arm: s.best.summary["test_acc"] for arm, s in selected.items()}
            assert accs["function matching"] == pytest.approx(0.10, abs=5e-4), (regime, ep)
            if regime == "4k":
                assert max(accs.values()) - 0.10 <= 0.053, accs


def _prose(stem: str) -> str:
    """A notebook's markdown cells as one line (line breaks and runs of spaces as one space)."""
    nb = json.loads((RESULTS.parent / "notebooks" / f"{stem}.ipynb").read_text())
    text = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return " ".join(text.split())


def test_chapter_02_says_how_long_its_schedules_go():
    """The intro's sentence on the cpu schedules (prose, issue 13: checked against what the
    chapter shows) names each regime's longest length there, and the baselines' cap."""
    from kdlib.experiments import patience, regimes

    text = _prose("02_patience")
    shown = regimes.PATIENCE_REGIMES["cpu"]
    longest = {name: f"{max(eps):,.0f}" for name, (_, eps) in shown.items()}
    cap = f"{patience.BASELINE_MAX_EPOCHS['cpu']:,.0f}"
    assert (f"The cpu schedules reach {longest['250']} epochs on 250 images (function matching "
            f"only: the label-trained baselines stop at {cap}) and {longest['1k']} on 1,000 "
            "images") in text


def test_chapter_01_names_where_it_shows_its_longer_lengths():
    """Chapter 01's intro names the longer lengths it shows and on which subsets
    (regimes.CONSISTENCY_LONGER), so the prose moves with the table when a queued length joins."""
    from kdlib.experiments import regimes

    longer = regimes.CONSISTENCY_LONGER["cpu"]
    lengths = " and ".join(f"{ep:,.0f}" for ep in sorted({e for eps in longer.values()
                                                           for e in eps}))
    where = ("both subsets" if set(longer) == {"250", "1k"}
             else {"250": "the 250 images", "1k": "the 1,000 images"}[next(iter(longer))])
    assert f"issue 14 adds {lengths} epochs on {where}" in _prose("01_consistency")


def test_chapter_07_names_the_lengths_it_shows_and_those_still_training():
    """Chapter 07's intro names its cpu lengths as cross_family has them: the base ones, and
    300 epochs as added (PLANNED: training) or shown (LONGER), so the prose moves with the
    table when the queue's length joins."""
    from kdlib.experiments import cross_family

    text = _prose("07_cross_family")
    base = " and ".join(f"{ep:g}" for ep in cross_family.CPU_EPOCHS)
    longer = cross_family.LONGER.get("cpu", ())
    planned = cross_family.PLANNED.get("cpu", ())
    assert not set(longer) & set(planned), "a length is planned or shown, not both"
    if planned:
        assert (f"at the cpu preset {base} epochs; issue 14 adds "
                + " and ".join(f"{ep:g}" for ep in planned) + " for every arm but the "
                "BatchNorm-momentum one, shown once the background queue has stored them all"
                ) in text
    else:
        shown = ", ".join(f"{ep:g}" for ep in cross_family.CPU_EPOCHS)
        assert (f"at the cpu preset {shown} and " + " and ".join(f"{ep:g}" for ep in longer)
                + " epochs, the longer for every arm but the BatchNorm-momentum one") in text


def test_chapter_03_says_how_far_its_grids_go():
    """Chapter 03's intro names how far the 1-epoch ladder goes past 0.1 (grids.LADDER_BEYOND)
    and says the unreplicated lengths' points all sit at their base grid's edge (the stored
    table): prose checked against the code and the store, not typed from memory."""
    import pandas as pd

    from kdlib.experiments import grids

    text = _prose("03_imagenet")
    beyond = grids.LADDER_BEYOND[("03_imagenet", None, 1.0)]["lr"]
    assert ("at 1 epoch the ladder goes on to "
            + " and then ".join(f"{v:.1f}" for v in beyond) + " for every arm") in text
    table = pd.read_csv(RESULTS / "cpu" / "03_imagenet" / "table_arms.csv")
    single = table[table["n_seeds"] < 3]
    assert set(single["epochs"]) == {2.0, 4.0}, "the prose names the 2- and 4-epoch points"
    assert single["at_edge"].notna().all()
    assert ("the 2- and 4-epoch points are single runs of the two-value base grid, every one of "
            "them at its edge at cpu") in text


def test_every_chapter_read_the_same_seed_noise():
    """Seed noise is pooled over the whole cpu store, so a chapter whose claims are older than
    the latest replicates reads a different pool than the others: when replicates land, the book
    re-executes every chapter (`python -m kdlib.book run --preset cpu --toc`), not only theirs."""
    from kdlib import claims

    pools: dict[str, set[str]] = {}
    for claim in claims.load("cpu", root=RESULTS):
        if claim.noise:
            pools.setdefault(claim.noise, set()).add(claim.chapter)
    assert len(pools) == 1, "chapters read different noise pools: " + "; ".join(
        f"{sorted(chs)}: {noise[:80]}" for noise, chs in pools.items())


def test_the_ladder_goes_past_its_end_exactly_where_a_stored_probe_led():
    """grids.LADDER_BEYOND (set after the probes' results) against the store: each comparison
    it extends reads a selected config whose probe (that config at lr 0.3, rebuilt from it at
    lr 0.1 as ladder_probe does) beat it on validation, or shares its size and length with
    one that does (a comparison extends only where all its arms do: chapter 05's Adam arm is
    chapter 01's config), and no probe still at the ladder's end leads outside it."""
    import pandas as pd

    from kdlib import claims
    from kdlib.config import config_from_dict
    from kdlib.experiments import grids, ladder_probe

    tables = claims.chapter_tables("cpu")
    leads: dict[tuple, list[str]] = {}
    for (section, size, epochs), extra in grids.LADDER_BEYOND.items():
        led = leads.setdefault((section, size, epochs), [])
        for path in tables[section]:
            frame = pd.read_csv(path)
            if not {"epochs", "best_hash"} <= set(frame.columns):
                continue  # a paper-shaped table, not one row per (arm, length)
            for row in frame.query("epochs == @epochs").itertuples():
                folder = next((RESULTS / "cpu").glob(f"*/{row.best_hash}"), None)
                config = json.loads((folder / store.CONFIG_FILE).read_text())
                if config["data"].get("train_size") != size:
                    continue
                end = config_from_dict(config).replace(lr=ladder_probe.AT_END)
                ran = store.fresh_run(end), store.fresh_run(
                    ladder_probe.probe_config(json.loads(store.canonical_json(end))))
                if None not in ran and ran[1].status == "done" and (
                        ran[1].summary["val_acc"] > ran[0].summary["val_acc"]):
                    led.append(row.arm)
        steps = extra["lr"]  # 0.3, then each further step a probe of the last one led
        assert set(extra) == {"lr"} and steps[0] == ladder_probe.BEYOND and all(
            ladder_probe.STEPS[a] == b for a, b in zip(steps[:-1], steps[1:], strict=True)), (
            section, size)
    for (section, size, epochs), led in leads.items():
        companions = [k for k, v in leads.items() if k[1:] == (size, epochs) and v]
        assert led or companions, (section, size, epochs)
    for row in ladder_probe.probe_rows("cpu"):
        if row["ahead on val"]:
            probe = store.load_run(next((RESULTS / "cpu").glob(f"*/{row['probe run']}")))
            key = (probe.config["section"], probe.config["data"].get("train_size"),
                   float(probe.config["epochs"]))
            assert key in grids.LADDER_BEYOND, row
            assert probe.config["lr"] in grids.LADDER_BEYOND[key]["lr"], row  # a step it led


def test_the_readme_example_of_the_shorter_schedules_reading_is_the_store():
    """The README's example of `at_shorter` (C13: reproduced on the 100-epoch points, one seed
    at a grid edge; not testable with the 300-epoch ones) is what chapter 09 stored."""
    from kdlib import claims

    readme = " ".join((RESULTS.parent / "README.md").read_text().split())
    assert ('C13 reads "reproduced" on the 100-epoch points, one seed at a grid edge, and "not '
            'testable" with the 300-epoch ones') in readme
    (c13,) = [c for c in claims.load("cpu", root=RESULTS) if c.id == "C13"]
    assert c13.verdict == "not testable at this scale"
    assert c13.at_shorter.startswith("reproduced up to 100 epochs")
    assert "seeds per point 1," in c13.at_shorter and "grid's edge" in c13.at_shorter


def test_the_readme_counts_the_store_checks_families_within_seed_noise():
    """The README's count of the store check's families that only seed noise separates from
    their stored runs is the recorded check's (results/cpu/store_check.json)."""
    from kdlib import retrain

    readme = " ".join((RESULTS.parent / "README.md").read_text().split())
    _, rows = retrain.check_rows("cpu", root=RESULTS)
    checked = [r["verdict"] for r in rows if r["verdict"] != "not checked"]
    in_noise = checked.count("within seed noise")
    assert "outside seed noise" not in checked
    assert (f"{in_noise} of the {len(checked)} checked families, all 30-epoch runs retrained "
            "on another machine, are there, none outside it") in readme


def test_the_readme_names_every_verdict_another_reading_changes():
    """The README's list of the verdicts marked † (claims.verdict_robustness) is the store's."""
    from kdlib import claims

    readme = " ".join((RESULTS.parent / "README.md").read_text().split())
    marked = [c for c in claims.load("cpu", root=RESULTS) if claims.verdict_robustness(c)]
    texts = {c.id: claims.verdict_robustness(c) for c in marked}
    assert [c.id for c in marked] == ["C1", "C5"], texts
    assert texts["C1"] == texts["C5"] == "inconclusive under 1 of 4 other readings"
    assert ('C1\'s "reproduced" and C5\'s "partly" are each inconclusive under 1 of 4 other '
            "readings, the only two in the store") in readme


def test_the_readme_snippet_for_reading_the_store_runs():
    """The README's "Reading the stored runs yourself" code gives one row per stored run."""
    readme = (RESULTS.parent / "README.md").read_text()
    section = readme.split("### Reading the stored runs yourself", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(code, scope)  # noqa: S102  (the README's own snippet)
    runs = scope["runs"]
    assert len(runs) == len(list((RESULTS / "cpu" / "02_patience").glob("*/summary.json")))
    assert runs["test_acc"].notna().all() and set(runs["data.train_size"]) >= {250, 1000}


def test_queued_lengths_are_the_planned_ones_not_yet_shown():
    """chapters.queued_lengths: chapter 02's planned lengths less those shown (its retired,
    chance-only lengths, which planned lengths also build, are not queued); a chapter with no
    planned length has none; the smoke preset queues nothing."""
    from kdlib.experiments import regimes

    expected: dict = {}
    for name, lengths in regimes.PATIENCE_PLANNED["cpu"].items():
        size, shown = regimes.PATIENCE_REGIMES["cpu"][name]
        left = tuple(sorted(set(lengths) - set(shown)))
        if left:
            expected[size] = left
    assert chapters.queued_lengths("02_patience", "cpu") == expected
    assert chapters.queued_lengths("08_out_of_domain", "cpu") == {}
    assert chapters.queued_note("08_out_of_domain", "cpu") == ""
    for section in chapters.SECTIONS:
        assert chapters.queued_lengths(section, "smoke") == {}
    for size, lengths in expected.items():
        note = chapters.queued_note("02_patience", "cpu")
        assert f"{lengths[-1]:,g} epochs on {size:,} images" in note and "3 seeds" in note


def test_chapter_03_trains_the_best_label_only_arm_on_validation_at_its_longer_length():
    """Issue 14 asks 03's longer length for the best label-only arm: imagenet.PLANNED_ARMS
    names one, which must lead every other label-only arm on validation at each length the
    chapter shows (the stored table), as every choice in the book is made."""
    import pandas as pd

    from kdlib.experiments import imagenet

    table = pd.read_csv(RESULTS / "cpu" / "03_imagenet" / "table_arms.csv")
    labels = table[~table["arm"].isin(imagenet.DISTILL_ARMS)]
    planned = [a for a in imagenet.PLANNED_ARMS if a not in imagenet.DISTILL_ARMS]
    shorter = labels[labels["epochs"].isin(imagenet.EPOCHS["cpu"])]
    assert len(planned) == 1 and set(shorter["epochs"]) == set(imagenet.EPOCHS["cpu"])
    best = shorter.loc[shorter.groupby("epochs")["val_acc"].idxmax(), "arm"]
    assert set(best) == set(planned), shorter.pivot(index="arm", columns="epochs",
                                                    values="val_acc")
    # the longer lengths train that arm alone among the label-only ones
    longer = labels[~labels["epochs"].isin(imagenet.EPOCHS["cpu"])]
    assert set(longer["epochs"]) == set(imagenet.LONGER.get("cpu", ()))
    assert set(longer.dropna(subset=["test_acc"])["arm"]) <= set(planned)


@pytest.mark.parametrize("regime", ["1k", "250"])
def test_chapter_01s_longer_lengths_train_each_familys_best_at_the_shared_length(regime):
    """The queue trains chapter 01's longer lengths for consistency.PLANNED_POLICIES only, and
    C1-C3 read a family over the policies trained there: that is each family's best only if
    those are the validation-best at the longest length every policy shares (stored table)."""
    import pandas as pd

    from kdlib.experiments import consistency, verdict_tables, verdicts

    table = pd.read_csv(RESULTS / "cpu" / consistency.SECTION / f"table_{regime}_policies.csv")
    shared = max(consistency.regimes("cpu")[regime][1])
    for family in (verdicts.CONSISTENT, verdicts.FIXED, verdicts.INDEPENDENT):
        best = verdict_tables.best_arm(table, family, shared)
        assert best in consistency.PLANNED_POLICIES, (regime, family, best)
    assert "mix" in consistency.PLANNED_POLICIES  # function matching, C2's and C3's reference
