"""Seed replicates and grids that bracket the optimum (kdlib.experiments.common.run_arms)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from kdlib import evidence, store, train
from kdlib import sweep as sweeps
from kdlib.checkpoint import Checkpointer
from kdlib.config import config_to_dict
from kdlib.experiments import common, verdicts


def cfg(epochs=300.0, **changes):
    data = common.fmnist("cpu", 1000)
    return common.base_config("smoke", "x", data, epochs=epochs, teachers=("t",), **changes)


def test_replicate_changes_the_seed_and_keeps_the_images():
    base = cfg()
    rep = common.replicate(base, 2)
    assert rep.seed == 2 and rep.data.subset_seed == 0
    assert store.config_hash(rep) != store.config_hash(base)
    # subset_seed is hash-neutral at its default: stored runs keep their hashes.
    assert "subset_seed" not in store.canonical_json(base)
    full = cfg().replace(**{"data.train_size": None})
    assert common.replicate(full, 1).data.subset_seed is None


def test_a_replicate_trains_on_the_same_subset(monkeypatch):
    seen = {}

    def fake_subset(ds, n, *, seed, stratified=True):
        seen.setdefault("seeds", []).append(seed)
        return ds

    monkeypatch.setattr(train.data, "load", lambda *a, **k: "ds")
    monkeypatch.setattr(train.data, "to_memory", lambda ds: ds)
    monkeypatch.setattr(train.data, "subset", fake_subset)
    base = cfg().replace(seed=5)
    train.load_data(common.replicate(base, 6))
    train.load_data(base.replace(seed=6))  # a plain other seed draws another subset
    assert seen["seeds"][0::2] == [5, 6]  # train subsets (validation subsets use seed 0)


def test_at_edge_and_widen_follow_the_ladder():
    axes = {"lr": [1e-3, 3e-3], "temperature": [1.0, 10.0]}
    assert common.at_edge(axes, {"lr": 3e-3, "temperature": 10.0}) == ["lr"]
    assert common.at_edge(axes, {"lr": 1e-3}) == ["lr"]
    assert common.at_edge({"lr": [1e-3, 3e-3, 1e-2]}, {"lr": 3e-3}) == []
    assert common.at_edge({"lr": [3e-2, 1e-1]}, {"lr": 1e-1}) == []  # end of the ladder
    assert common.widen(axes, [{"lr": 3e-3}, {"lr": 1e-3}])["lr"] == [3e-4, 1e-3, 3e-3, 1e-2]
    assert common.widen(axes, [None]) == axes
    # off the ladder: the next ladder value beyond it, never a wrap-around
    assert common.widen({"lr": [1.5e-4, 1e-3]}, [{"lr": 1.5e-4}])["lr"] == [1e-4, 1.5e-4, 1e-3]
    assert common.widen({"lr": [1e-3, 4e-3]}, [{"lr": 4e-3}])["lr"] == [1e-3, 4e-3, 1e-2]
    assert common.widen({"lr": [4e-3, 5e-3]}, [{"lr": 4e-3}])["lr"] == [3e-3, 4e-3, 5e-3]


def test_a_comparison_whose_probe_led_grows_one_step_past_the_ladder():
    beyond = cfg(epochs=30.0).replace(section="01_consistency")
    assert common.ladders_for(beyond)["lr"][-2:] == (0.1, 0.3)
    assert common.ladders_for(beyond)["wd"] == common.LADDERS["wd"]
    # another section, size or length keeps the written ladder; so does a stored config dict
    for other in (cfg(epochs=30.0), beyond.replace(epochs=100.0),
                  beyond.replace(**{"data.train_size": 250})):
        assert common.ladders_for(other) == common.LADDERS
    stored = {"section": "01_consistency", "epochs": 400.0, "data": {"train_size": 250}}
    assert common.ladders_for(stored)["lr"][-1] == 0.3
    assert common.ladders_for(None) == common.LADDERS
    axes, top = {"lr": [3e-2, 1e-1]}, {"lr": 1e-1}
    ladders = common.ladders_for(beyond)
    assert common.at_edge(axes, top) == [] and common.at_ladder_end(axes, top) == ["lr"]
    assert common.at_edge(axes, top, ladders) == ["lr"]
    assert common.at_ladder_end(axes, top, ladders) == []
    assert common.widen(axes, [top], ladders)["lr"] == [3e-2, 1e-1, 0.3]
    assert common.widen(axes, [top]) == axes  # the written ladder ends at 0.1
    grown = {"lr": [3e-2, 1e-1, 0.3]}
    assert common.at_ladder_end(grown, {"lr": 0.3}, ladders) == ["lr"]
    assert common.widen(grown, [{"lr": 0.3}], ladders) == grown


def test_an_extended_ladder_reaches_a_comparison_only_where_every_arm_has_it():
    """Chapter 02's function matching is chapter 01's config (its section is 01's), so a
    ladder keyed by section would reach that one arm of chapter 02: the comparison keeps the
    written ladder unless all its arms extend alike."""
    from kdlib.experiments import chapters

    policy = cfg(epochs=30.0).replace(section="01_consistency")
    other = cfg(epochs=30.0).replace(section="02_patience")
    assert common.comparison_ladders([policy, policy])["lr"][-1] == 0.3
    assert common.comparison_ladders([policy, other]) == common.LADDERS
    assert common.comparison_ladders([policy, None]) == common.LADDERS
    assert common.comparison_ladders([]) == common.LADDERS
    extended = set()
    for section in chapters.SECTIONS:
        for arms in chapters.experiments(section, "cpu"):
            for ep in {e for by in arms.values() for e in by}:
                configs = [by[ep][0] for by in arms.values() if ep in by]
                if common.comparison_ladders(configs) != common.LADDERS:
                    extended.add((section, configs[0].data.train_size, ep))
    assert extended == set(common.LADDER_BEYOND)


def test_extended_axes_add_temperature_ten_to_short_kl_arms_only():
    axes = {"lr": [1e-3, 3e-3]}
    assert common.extended_axes(cfg(epochs=30.0), axes)["temperature"] == [1.0, 10.0]
    assert "temperature" not in common.extended_axes(cfg(epochs=300.0), axes)
    assert "temperature" not in common.extended_axes(cfg(epochs=30.0, loss="dist"), axes)
    # an arm that fixes another temperature asks for that one: it is not replaced by 1 and 10
    assert "temperature" not in common.extended_axes(cfg(epochs=30.0, temperature=4.0), axes)


class FakeEngine:
    """train.sweep / train.run / load_sweep over fake runs whose val accuracy peaks at
    ``best_lr`` per arm; ``stored`` holds the points a load-only pass may read."""

    def __init__(self, best_lr, stored=None):
        self.best_lr, self.stored, self.trained = best_lr, stored, []
        self.ran: list[tuple[float, int]] = []  # (lr, seed) of each single run, in order

    def _record(self, config):
        dist = abs(np.log(config.lr) - np.log(self.best_lr[config.policy]))
        acc = 0.9 - 0.01 * dist + 0.001 * config.seed
        return store.RunRecord(config.__dict__ | {"policy": config.policy},
                               {"val_acc": acc, "test_acc": acc, "train_loss": 1.0}, [], {},
                               "done", store.run_dir(config))

    def sweep(self, base, axes, progress=True):
        points = sweeps.grid(**axes)
        configs = sweeps.expand(base, points)
        self.trained += [(c.policy, c.lr) for c in configs]
        return sweeps.SweepResult(points, [self._record(c) for c in configs])

    def load(self, base, axes):
        points = sweeps.grid(**axes)
        if self.stored is not None and any(p["lr"] not in self.stored for p in points):
            return None
        return sweeps.SweepResult(points, [self._record(c) for c in
                                           sweeps.expand(base, points)])

    def run(self, config, progress=True):
        self.ran.append((config.lr, config.seed))
        return self._record(config)


def patch(monkeypatch, engine):
    monkeypatch.setattr(common.train, "sweep", engine.sweep)
    monkeypatch.setattr(common.train, "run", engine.run)
    monkeypatch.setattr(common.sweep, "load_sweep", engine.load)


def two_arms():
    axes = {"lr": [1e-3, 3e-3]}
    return {"mix": {300.0: (cfg(policy="mix"), axes)},
            "fix/rs": {300.0: (cfg(policy="fix/rs"), axes)}}


def test_grid_grows_for_every_arm_until_every_selected_run_is_inside(monkeypatch):
    engine = FakeEngine({"mix": 1e-2, "fix/rs": 1e-3})
    patch(monkeypatch, engine)
    results = common.run_arms(two_arms(), extras=True, seeds=3)
    for arm in ("mix", "fix/rs"):
        lrs = [p["lr"] for p in results[arm][300.0].points]
        assert lrs == [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]  # both arms get both new values
    assert results["mix"][300.0].best_point == {"lr": 1e-2}
    reps = results["mix"][300.0].replicates
    assert [r.config["seed"] for r in reps] == [1, 2] and reps[0].config["lr"] == 1e-2
    table = common.results_table(results)
    row = table[table["arm"] == "mix"].iloc[0]
    assert row["n_seeds"] == 3 and row["at_edge"] == "" and row["test_acc_sd"] > 0


@pytest.mark.parametrize("best_lr, leads", [(0.3, True), (0.1, False)])
def test_a_ladder_end_selection_is_probed_before_its_replicates(monkeypatch, best_lr, leads):
    """A run selected at the ladder's end (lr 0.1) gets its probe one step beyond (0.3, seed
    0) first; the replicates train only where the probe is behind on validation (where it
    leads, the ladder is too short and they wait for the comparison's ladder to grow)."""
    engine = FakeEngine({"mix": best_lr})
    patch(monkeypatch, engine)
    trained = engine.ran
    arms = {"mix": {300.0: (cfg(policy="mix"), {"lr": [3e-2, 1e-1]})}}
    result = common.run_arms(arms, extras=True, seeds=3)["mix"][300.0]
    assert result.best_point == {"lr": 0.1}  # the ladder's end: the grid grows no further
    assert trained[0] == (0.3, 0)  # the probe before any replicate
    assert trained[1:] == ([] if leads else [(0.1, 1), (0.1, 2)])
    assert len(result.replicates) == (0 if leads else 2)
    # a load-only pass (the book) trains nothing, the probe included; nor does a preset
    # that trains no replicate (the paper's: one seed)
    for extras, seeds in ((False, 3), (True, 1)):
        trained.clear()
        common.run_arms(arms, extras=extras, seeds=seeds)
        assert trained == []


def test_the_queues_workers_get_every_probe_then_every_missing_replicate_as_one_batch(
        monkeypatch):
    """With ``train_singles`` (the queue's side-by-side workers) an item's probes go out as one
    batch and then its replicates of every arm as one (an arm with one missing seed no longer
    trains alone), leaving out what the store holds; each is then loaded in the arm's order."""
    engine = FakeEngine({"mix": 0.1, "fix/rs": 0.1, "fix/cc": 3e-2})
    patch(monkeypatch, engine)
    stored = {("fix/rs", 1)}  # one replicate trained by an earlier, stopped queue
    monkeypatch.setattr(store, "fresh_run", lambda c, root=None: engine._record(c)
                        if (c.policy, c.seed) in stored else None)
    batches = []

    def train_singles(configs):
        batches.append([(c.policy, c.lr, c.seed) for c in configs])
        stored.update((c.policy, c.seed) for c in configs if c.seed > 0)

    axes = {"lr": [3e-2, 1e-1]}
    arms = {p: {300.0: (cfg(policy=p), axes)} for p in ("mix", "fix/rs", "fix/cc")}
    results = common.run_arms(arms, extras=True, seeds=3, train_singles=train_singles)
    assert batches == [[("mix", 0.3, 0), ("fix/rs", 0.3, 0)],  # both probes (behind), at once
                       [("mix", 0.1, 1), ("mix", 0.1, 2), ("fix/rs", 0.1, 2),
                        ("fix/cc", 3e-2, 1), ("fix/cc", 3e-2, 2)]]
    assert all(len(r[300.0].replicates) == 2 for r in results.values())


def test_a_selection_inside_the_ladder_trains_no_probe(monkeypatch):
    engine = FakeEngine({"mix": 3e-2})
    patch(monkeypatch, engine)
    arms = {"mix": {300.0: (cfg(policy="mix"), {"lr": [1e-2, 3e-2, 1e-1]})}}
    assert common.run_arms(arms, extras=True, seeds=3)["mix"][300.0].best_point == {"lr": 3e-2}
    assert engine.ran == [(3e-2, 1), (3e-2, 2)]  # its two replicates only


def test_load_only_keeps_the_last_grid_every_arm_has_stored(monkeypatch):
    engine = FakeEngine({"mix": 1e-2, "fix/rs": 1e-3}, stored={1e-3, 3e-3})
    patch(monkeypatch, engine)
    results = common.run_arms(two_arms(), extras=False, seeds=3)
    assert [p["lr"] for p in results["mix"][300.0].points] == [1e-3, 3e-3]
    table = common.results_table(results)
    assert list(table["at_edge"]) == ["lr", "lr"]  # reported, not hidden


def test_a_point_reads_every_stored_seed_up_to_max_seeds(monkeypatch):
    """Replicates past SEEDS (a follow-up's) are read wherever they are stored, up to
    MAX_SEEDS; a pass asked for 8 seeds trains the 7 replicates."""
    engine = FakeEngine({"mix": 3e-3})
    patch(monkeypatch, engine)
    stored = {1, 2, 4, 5, common.MAX_SEEDS}  # the last one is past the cap: not read
    monkeypatch.setattr(store, "fresh_run", lambda c, root=None: engine._record(c)
                        if c.seed in stored else None)
    arms = {"mix": {300.0: (cfg(policy="mix"), {"lr": [1e-3, 3e-3, 1e-2]})}}
    loaded = common.run_arms(arms, extras=False, seeds=3)["mix"][300.0]
    assert [r.config["seed"] for r in loaded.replicates] == [1, 2, 4, 5]
    assert len(loaded.seed_values()) == 5
    assert loaded.seed_offsets() == [0, 1, 2, 4, 5]
    # the table marks where the seeds past the preset's SEEDS (smoke: 2) begin, and a
    # verdict's estimate reads them as the follow-up's
    table = common.results_table({"mix": {300.0: loaded}}, val_noise=evidence.Noise(0.01, "t"),
                                 test_means={})
    assert table.iloc[0]["followup_from"] == common.SEEDS["smoke"] == 2
    point = verdicts.est(table, "mix", 300.0)
    assert point.followup().values == tuple(round(v, 6) for v in loaded.seed_values()[2:])
    assert engine.ran == []  # the load-only pass trained nothing
    follow_up = common.run_arms(arms, extras=True, seeds=common.MAX_SEEDS)["mix"][300.0]
    assert [seed for _, seed in engine.ran] == list(range(1, common.MAX_SEEDS))
    assert len(follow_up.seed_values()) == common.MAX_SEEDS


def test_checkpoint_at_an_existing_step_is_replaced(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt")
    ckpt.save(4, {"w": np.zeros(2)})
    ckpt.save(4, {"w": np.ones(2)})  # a group resumed from an earlier step saves 4 again
    assert ckpt.restore(4, {"w": np.zeros(2)})["w"].tolist() == [1.0, 1.0]
    ckpt.close()


@pytest.mark.parametrize("status", ["done", "diverged"])
def test_checkpoints_go_only_when_the_result_is_saved(tmp_path, status):
    run = tmp_path / "abc"
    (run / "ckpt").mkdir(parents=True)
    store.save_run(run, cfg(), {"val_acc": 0.5}, {}, "failed")
    assert (run / "ckpt").is_dir()  # a failed run keeps them for its resume
    store.save_run(run, cfg(), {"val_acc": 0.5}, {}, status)
    assert not (run / "ckpt").exists()


def test_store_noise_pools_the_seeds_of_each_stored_config(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    base = cfg().replace(preset="cpu")
    for seed, acc in ((0, 0.80), (1, 0.82), (2, 0.84)):
        c = base if seed == 0 else common.replicate(base, seed)
        store.save_run(store.prepare_run(c), c, {"test_acc": acc}, {}, "done")
    other = base.replace(lr=3e-3)  # one seed only: no spread to pool
    store.save_run(store.prepare_run(other), other, {"test_acc": 0.5}, {}, "done")
    noise = common.store_noise("cpu")
    assert noise.sd == pytest.approx(0.02) and "pooled over 1 replicated points" in noise.source
    assert common.store_noise("gpu").source.startswith("assumed")
    # another training-set size, louder than the overall pool: its own spread, by regime
    small = base.replace(data=dataclasses.replace(base.data, train_size=10))
    for seed, acc in ((0, 0.50), (1, 0.60)):
        c = small if seed == 0 else common.replicate(small, seed)
        store.save_run(store.prepare_run(c), c, {"test_acc": acc}, {}, "done")
    noise = common.store_noise("cpu")
    assert common.noise_regime(config_to_dict(small)) == f"10 images, {small.epochs:g} epochs"
    assert common.noise_regime(small) == common.noise_regime(config_to_dict(small))
    # students of other images than the evaluation dataset's pool their noise apart
    other = small.replace(data=dataclasses.replace(small.data, name="digits",
                                                   eval_name="fashion_mnist"))
    assert common.noise_regime(other) == f"10 images of digits, {small.epochs:g} epochs"
    assert common.noise_regime(config_to_dict(other)) == common.noise_regime(other)
    subset = small.replace(data=dataclasses.replace(small.data, classes=(0, 3)))
    assert common.noise_regime(subset).startswith(
        f"10 images of {small.data.name} classes 0,3, ")
    assert noise.sd_for(common.noise_regime(small)) == pytest.approx(math.sqrt(0.005))
    assert noise.sd_for(common.noise_regime(config_to_dict(base))) == pytest.approx(noise.sd)
    assert noise.source.startswith("per regime: 10 images 7.07 pts (1 point)")
    # a longer schedule of the first size, louder than that size's pool: its own spread
    longer = base.replace(epochs=2 * base.epochs)
    for seed, acc in ((0, 0.60), (1, 0.76)):
        c = longer if seed == 0 else common.replicate(longer, seed)
        store.save_run(store.prepare_run(c), c, {"test_acc": acc}, {}, "done")
    noise = common.store_noise("cpu")
    assert noise.sd_for(common.noise_regime(longer)) == pytest.approx(math.sqrt(0.0128))
    assert noise.sd_for(common.noise_regime(longer), coarse=True) == pytest.approx(
        noise.sd_for(common.noise_regime(base), coarse=True))
    # the same pools as one table, in points of accuracy, each with what its points read
    table = common.store_noise_table("cpu").set_index("regime")
    row = table.loc[common.noise_regime(longer)]
    assert row["pooled sd per run"] == pytest.approx(100 * math.sqrt(0.0128))
    assert row["its points read"] == pytest.approx(row["pooled sd per run"])
    assert row["from"] == "its own pool" and row["degrees of freedom"] == 1
    store.save_run(store.prepare_run(subset), subset, {"test_acc": 0.7}, {}, "done")
    one_seed = common.store_noise_table("cpu").set_index("regime").loc[
        common.noise_regime(subset)]  # no spread of its own: it reads the overall pool
    assert math.isnan(one_seed["pooled sd per run"]) and one_seed["from"] == "the overall pool"
    assert common.store_noise_table("gpu").empty


def test_a_training_loss_pools_the_noise_of_one_objective_only(tmp_path, monkeypatch):
    """KL at T=1 and cross-entropy losses live on other scales: a loss check reads its own."""
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    kl = cfg().replace(preset="cpu")
    labels = kl.replace(loss="labels", teachers=())
    for config, losses in ((kl, (0.30, 0.40)), (labels, (0.10, 0.90))):
        for seed, loss in enumerate(losses):
            c = config if seed == 0 else common.replicate(config, seed)
            store.save_run(store.prepare_run(c), c, {"train_loss": loss}, {}, "done")
    mixed = common.store_noise("cpu", "train_loss")
    own = common.store_noise("cpu", "train_loss", loss=("kl", kl.temperature))
    assert own.sd == pytest.approx(math.sqrt(0.005))  # 0.30 and 0.40 only
    assert mixed.sd == pytest.approx(math.sqrt((0.005 + 0.32) / 2))
    assert common.store_noise("cpu", "train_loss", loss=("kl", 10.0)).source.startswith(
        "assumed")  # no config of that objective stored


def test_a_seed_two_chapters_stored_counts_once_as_the_run_every_chapter_reads(
        tmp_path, monkeypatch):
    """Copies of one config in two sections (stored before one config, one run) are one
    seed: the first section's, which kdlib.store.fresh_run gives every chapter."""
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    base = cfg().replace(preset="cpu", section="01_consistency")
    for section, seed, acc in (("01_consistency", 0, 0.80), ("01_consistency", 1, 0.84),
                               ("09_dist", 0, 0.70), ("09_dist", 2, 0.88)):
        c = common.replicate(base, seed) if seed else base
        c = c.replace(section=section)
        store.save_run(store.prepare_run(c), c, {"test_acc": acc}, {}, "done")
    assert common.store_means("cpu") == {common.config_key(base): pytest.approx(0.84)}
    assert common.store_noise("cpu").sd == pytest.approx(0.04)  # 0.80, 0.84, 0.88


def test_selection_bias_is_the_selected_run_against_its_own_replicates(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    assert common.selection_bias("cpu") is None
    assert "not measured" in common.selection_bias_report("cpu")
    base = cfg().replace(preset="cpu")
    for lr, accs in ((1e-3, (0.84, 0.80, 0.82)), (3e-3, (0.68, 0.69, 0.69))):
        first = base.replace(lr=lr)
        for seed, acc in enumerate(accs):
            c = first if seed == 0 else common.replicate(first, seed)
            store.save_run(store.prepare_run(c), c, {"test_acc": acc}, {}, "done")
    single = base.replace(lr=1e-2)  # no replicates: not counted
    store.save_run(store.prepare_run(single), single, {"test_acc": 0.5}, {}, "done")
    bias = common.selection_bias("cpu")
    assert bias.n == 2 and bias.values == pytest.approx((0.03, -0.01))
    report = common.selection_bias_report("cpu")
    assert "Across the 2 replicated configs" in report and "**+1.00 pts** (±4.00 at 2 SE)" in report
    assert "within 2 standard errors" in report


def test_edge_report_counts_selected_configs_at_an_edge():
    import pandas as pd

    t = pd.DataFrame({"arm": ["a", "b"], "epochs": [1.0, 1.0], "at_edge": ["lr", ""]})
    assert common.edge_report({"x": t}).startswith("1 of 2 selected configs sit at a grid edge")
    assert common.edge_report(t.iloc[1:]).startswith("Every one of the 1 selected configs")
    # with the queued points: which edges the queue grows, and which stay as trained
    t = pd.DataFrame({"arm": ["a", "b", "c"], "epochs": [30.0, 300.0, 4.0],
                      "at_edge": ["lr", "lr", "lr"], "point": ["p30", "p300", "p4"]})
    report = common.edge_report(t, queued={"p300", "p4"})
    assert report == ("3 of 3 selected configs sit at a grid edge (lr): their grids do not "
                      "bracket the optimum yet; the background queue grows 2 of them (their "
                      "points are queued) for every arm alike; no queue item trains the other "
                      "1 further (a at 30 epochs), so they stay as trained.")
    assert "queue" not in common.edge_report(t, preset="smoke")
    assert "; no queue item trains them further (a at 30, b at 300, c at 4 epochs)" in \
        common.edge_report(t, queued=set())


def test_a_point_is_its_config_without_seed_and_swept_values():
    from kdlib.config import config_to_dict

    base = cfg()
    assert common.point_hash(base) == common.point_hash(config_to_dict(base))
    assert common.point_hash(base.replace(lr=0.1, temperature=10.0)) == common.point_hash(base)
    assert common.point_hash(common.replicate(base, 2)) == common.point_hash(base)
    assert common.point_hash(base.replace(epochs=30.0)) != common.point_hash(base)
    assert common.point_hash(base.replace(policy="fix/rs")) != common.point_hash(base)


def test_the_queued_points_are_the_plans_and_cover_every_verdict_point():
    from kdlib.experiments import consistency, queue_plan

    queued = queue_plan.queued_points()
    items = [cfg for _, build in queue_plan.PLAN for by in build().values()
             for cfg, _ in by.values()]
    assert {common.point_hash(c) for c in items} == queued
    points = {(c.section, c.data.train_size, c.epochs) for c in items}
    assert set(queue_plan.VERDICT_POINTS) <= points
    # 01's 1k policies at 100 epochs are cut (tables only); the 07 item still trains 01's mix
    mix, fixed = (consistency.arms("cpu", "1k")[p][100.0][0] for p in ("mix", "fix/rs"))
    assert common.point_hash(mix) in queued and common.point_hash(fixed) not in queued
    # ... in its own comparison: chapter 01's grid there is not grown by any item of its own
    # (its last cell must not say the queue grows it)
    own = {s: queue_plan.queued_points(s) for s in ("01_consistency", "07_cross_family")}
    assert common.point_hash(mix) not in own["01_consistency"]
    assert common.point_hash(mix) in own["07_cross_family"]
    assert set().union(*(queue_plan.queued_points(s) for s in {
        queue_plan.item_section(n) for n, _ in queue_plan.PLAN})) == queued


def test_every_plan_item_names_its_chapter():
    from kdlib.experiments import queue_plan

    sections = {n: queue_plan.item_section(n) for n, _ in queue_plan.PLAN}
    assert sections["02 1k images at 3000 epochs (function matching; C4, C5)"] == "02_patience"
    assert sections[queue_plan.FOLLOW_UP[3]] == "07_cross_family"  # C11's MobileNet seeds
    for bad in ("10 something", "seed follow-up: C99's x", "ladder probes"):
        with pytest.raises(ValueError, match="names no chapter"):
            queue_plan.item_section(bad)


def test_a_selected_value_at_the_ladders_end_is_reported_not_hidden():
    """The grid cannot grow past the ladder (the written rule), so a winner there is named."""
    import pandas as pd

    assert common.at_ladder_end({"lr": [3e-2, 1e-1]}, {"lr": 1e-1}) == ["lr"]
    assert common.at_ladder_end({"lr": [1e-4, 3e-4]}, {"lr": 1e-4}) == ["lr"]
    assert common.at_ladder_end({"lr": [3e-2, 1e-1]}, {"lr": 3e-2}) == []
    assert common.at_ladder_end({"lr": [1e-3, 3e-3]}, {"lr": 3e-3}) == []  # at_edge's case
    assert common.at_ladder_end({"temperature": [1.0, 10.0]}, {"temperature": 10.0}) == []
    t = pd.DataFrame({"arm": ["fm", "labels"], "epochs": [1000.0, 1000.0],
                      "at_edge": ["", ""], "at_ladder_end": ["lr", ""]})
    report = common.edge_report({"1k": t})
    assert report.startswith("1 of 2 selected configs sit at the end of the written ladder")
    assert "fm at 1000 epochs (1k)" in report and "labels" not in report
    both = common.edge_report(t.assign(at_edge=["", "lr"]))
    assert both.startswith("1 of 2 selected configs sit at a grid edge (lr)")
    assert ("end of the written ladder, the values a grid may grow through (lr: 0.0001, "
            "0.0003, 0.001, 0.003, 0.01, 0.03, 0.1; one step further where a probe past its "
            "end led: LADDER_BEYOND): fm at 1000 epochs;") in both
    # a stored probe one step beyond, behind on validation: the ladder brackets the optimum
    probed = t.assign(beyond_probe=["behind", ""])
    assert common.edge_report(probed) == (
        "1 of 2 selected configs sit at the ladder's end, but a probe one step beyond it is "
        "behind on validation, so the optimum lies inside their ladder "
        "(`kdlib.experiments.ladder_probe`). The other 1 lie inside their grid.")
    assert common.edge_report(t.assign(beyond_probe=["ahead", ""])).startswith(
        "1 of 2 selected configs sit at the end of the written ladder")
    # ... and a check reading that point is not flagged at the ladder's end
    rows = t.assign(test_acc=[0.8, 0.7], beyond_probe=["behind", ""])
    assert not verdicts.est(rows, "fm", 1000.0).at_ladder_end
    assert verdicts.est(rows.assign(beyond_probe=["ahead", ""]), "fm", 1000.0).at_ladder_end
    # the probe varies lr only: a weight-decay end stays open
    both = rows.assign(at_ladder_end=["lr, wd", ""])
    assert common.open_ends("lr, wd", "behind") == "wd"
    assert verdicts.est(both, "fm", 1000.0).at_ladder_end
    assert "fm at 1000 epochs" in common.edge_report(both).split(". ")[0]
    assert "sit at the end of the written ladder" in common.edge_report(both)


def test_a_group_whose_runs_disagree_resumes_from_the_step_they_all_hold(tmp_path):
    """A stop between two runs' saves (a crash, a full disk) leaves them a step apart: the
    group resumes from the older step both kept, not from 0, and the newer one is dropped so
    no later save meets it; with no step in common the group restarts from 0."""
    from kdlib.checkpoint import group_start

    a, b = Checkpointer(tmp_path / "a"), Checkpointer(tmp_path / "b")
    a.save(4, {"w": np.zeros(2)})  # killed before b saved step 4
    assert group_start([a, b]) == 0 and a.steps() == []
    for step in (4, 8):
        a.save(step, {"w": np.full(2, float(step))})
        b.save(step, {"w": np.full(2, float(step))})
    a.save(12, {"w": np.full(2, 12.0)})  # killed before b saved step 12
    assert a.steps() == [8, 12] and b.steps() == [4, 8]  # two kept
    assert group_start([a, b]) == 8
    assert a.steps() == [8] and b.steps() == [4, 8]
    assert float(a.restore(8, {"w": np.zeros(2)})["w"][0]) == 8.0
    assert group_start([a, b]) == 8  # a second look changes nothing
    a.close()
    b.close()


def _write_point(root, section, run_hash, lr, test, n, edge="", epochs=300.0):
    import json

    run = root / "cpu" / section / run_hash
    run.mkdir(parents=True)
    config = {"section": section, "seed": 0, "lr": lr, "wd": 1e-4, "temperature": 1.0,
              "epochs": epochs, "policy": "mix", "data": {"train_size": 1000}}
    (run / "config.json").write_text(json.dumps(config))
    table = root / "cpu" / section / "table_arms.csv"
    header = "arm,epochs,best_hash,test_acc,test_acc_sd,n_seeds,grid,at_edge\n"
    old = table.read_text() if table.exists() else header
    table.write_text(old + f"FM,{epochs},{run_hash},{test},,{n},\"lr=[...]\",{edge}\n")


def test_shared_points_find_one_training_config_read_by_two_chapters(tmp_path):
    _write_point(tmp_path, "01_a", "aaaaaaaaaaaa", 0.03, 0.855, 3)
    _write_point(tmp_path, "02_b", "bbbbbbbbbbbb", 0.003, 0.821, 1, edge="lr")
    _write_point(tmp_path, "03_c", "cccccccccccc", 0.03, 0.700, 3, epochs=30.0)  # alone
    shared = common.shared_points("cpu", root=tmp_path)
    assert list(shared["chapter"]) == ["01_a", "02_b"] and shared["key"].nunique() == 1
    # a rerun of one selection with a wider gap is not "the largest gap" of a selection
    _write_point(tmp_path, "01_a", "dddddddddddd", 0.003, 0.30, 1, epochs=10.0)
    _write_point(tmp_path, "02_b", "eeeeeeeeeeee", 0.003, 0.50, 1, epochs=10.0)
    both = common.shared_points("cpu", root=tmp_path)
    assert both["key"].nunique() == 2
    assert common.shared_points_report(both).endswith(
        "at 300 epochs: 02_b's FM reads 82.1% (n=1, lr=0.003, wd=0.0001, temperature=1), "
        "01_a's FM 85.5% (n=3, lr=0.03, wd=0.0001, temperature=1).")
    assert list(shared["at_edge"]) == ["", "lr"]
    assert shared.loc[0, "selected"] == "lr=0.03, wd=0.0001, temperature=1"
    text = common.shared_points_report(shared)
    assert text.startswith("1 point (an arm at a length, the same training config) is "
                           "read by more than one chapter; 0 read the same numbers everywhere;")
    assert "1 select differently" in text
    assert text.endswith("The largest gap, at 300 epochs: 02_b's FM reads 82.1% (n=1, "
                         "lr=0.003, wd=0.0001, temperature=1), 01_a's FM 85.5% (n=3, lr=0.03, "
                         "wd=0.0001, temperature=1).")


def test_a_chapter_names_the_points_other_chapters_select_differently(tmp_path):
    _write_point(tmp_path, "01_a", "aaaaaaaaaaaa", 0.03, 0.855, 3)
    _write_point(tmp_path, "02_b", "bbbbbbbbbbbb", 0.003, 0.821, 1, edge="lr")
    _write_point(tmp_path, "04_d", "dddddddddddd", 0.03, 0.855, 3)  # 01_a's selection
    _write_point(tmp_path, "01_a", "eeeeeeeeeeee", 0.01, 0.70, 1, epochs=30.0)  # alone
    shared = common.shared_points("cpu", root=tmp_path)
    assert common.elsewhere_report(shared, "02_b") == (
        "1 point this chapter reads is read by other chapters from another selection (the "
        "same training config; each chapter selects on the grid its compared arms share, so "
        "this chapter's checks read its own value): FM at 300 epochs: here 82.1% (n=1; "
        "lr=0.003, wd=0.0001, temperature=1, grid edge lr); 85.5% (n=3; lr=0.03, wd=0.0001, "
        "temperature=1) in 01_a, 04_d.")
    assert common.elsewhere_report(shared, "01_a").endswith(
        "here 85.5% (n=3; lr=0.03, wd=0.0001, temperature=1); 82.1% (n=1; lr=0.003, "
        "wd=0.0001, temperature=1, grid edge lr) in 02_b.")
    assert common.elsewhere_report(shared, "09_none") == ""  # reads no shared point
    own = shared.assign(chapter="01_a")  # both selections in one chapter's own two tables
    assert common.elsewhere_report(own, "01_a") == ""
    same = shared[shared["chapter"] != "02_b"]  # 01_a and 04_d select alike
    assert common.elsewhere_report(same, "01_a") == ""


def test_shared_points_report_a_rerun_of_the_same_selection_apart(tmp_path):
    _write_point(tmp_path, "01_a", "aaaaaaaaaaaa", 0.003, 0.3675, 1)
    _write_point(tmp_path, "09_b", "bbbbbbbbbbbb", 0.003, 0.3727, 1)
    text = common.shared_points_report(common.shared_points("cpu", root=tmp_path))
    assert "1 select the same hyper-parameters but read different runs" in text
    assert "36.75% vs 37.27% for FM at 300 epochs" in text and text.endswith(").")
    assert "select differently" not in text
    empty = common.shared_points("cpu", root=tmp_path / "none")
    assert common.shared_points_report(empty).startswith("No point is read")


def test_training_key_ignores_the_section_seed_and_swept_values_only():
    base = cfg()
    assert common.training_key(base) == common.training_key(
        common.replicate(base.replace(section="09_dist", lr=0.1), 2))
    assert common.point_hash(base) != common.point_hash(base.replace(section="09_dist"))
    assert common.training_key(base) != common.training_key(base.replace(epochs=30.0))


def test_results_table_records_how_far_reselection_moves_each_point():
    """select_sd: 0 where one config wins validation by far; about half the test gap where two
    configs tie on validation (each re-selection picks either); it reads the val noise given."""
    from kdlib import evidence

    def result(vals, tests):
        points = [{"lr": lr} for lr in (1e-3, 3e-3)]
        runs = [store.RunRecord(config_to_dict(cfg(lr=p["lr"])),
                                {"val_acc": v, "test_acc": t, "train_loss": 1.0}, [], {}, "done",
                                store.run_dir(cfg(lr=p["lr"])))
                for p, v, t in zip(points, vals, tests, strict=True)]
        return sweeps.SweepResult(points, runs)

    results = {"clear": {300.0: result([0.90, 0.70], [0.88, 0.60])},
               "tied": {300.0: result([0.80, 0.80], [0.84, 0.80])}}
    table = common.results_table(results, val_noise=evidence.Noise(0.01, "test"))
    sd = dict(zip(table["arm"], table["select_sd"], strict=True))
    assert sd["clear"] == 0.0 and sd["tied"] == pytest.approx(0.02, abs=0.001)
    quiet = common.results_table(results, val_noise=evidence.Noise(0.0, "test"))
    assert list(quiet["select_sd"]) == [0.0, 0.0]  # no validation noise: nothing re-selects
    # Where the store holds more seeds of a grid config (in any chapter), their mean stands in
    # for its single run: the runs tie on test (80%), the configs' means are 4 pts apart.
    same = {"tied": {300.0: result([0.80, 0.80], [0.80, 0.80])}}
    noise = evidence.Noise(0.01, "test")
    assert common.results_table(same, val_noise=noise, test_means={})["select_sd"][0] == 0.0
    means = {common.config_key(cfg(lr=1e-3)): 0.84, common.config_key(cfg(lr=3e-3)): 0.80}
    pooled = common.results_table(same, val_noise=noise, test_means=means)["select_sd"][0]
    assert pooled == pytest.approx(0.02, abs=0.001)


def test_config_key_drops_seed_and_section_only():
    base = cfg(lr=1e-3)
    assert common.config_key(base) == common.config_key(
        common.replicate(base, 4).replace(section="y"))
    # another seed without the replicate's pinned subset trains on other images
    assert common.config_key(base) != common.config_key(base.replace(seed=4))
    assert common.config_key(base) != common.config_key(base.replace(lr=3e-3))
    assert common.config_key(base) == common.config_key(config_to_dict(base))


def test_seed_columns_give_the_mean_the_verdicts_read_and_the_selected_run():
    def rec(seed, acc):
        c = cfg(lr=1e-3).replace(seed=seed)
        return store.RunRecord(config_to_dict(c), {"val_acc": acc, "test_acc": acc}, [], {},
                               "done", store.run_dir(c))

    result = sweeps.SweepResult([{"lr": 1e-3}], [rec(0, 0.86)], replicates=[rec(1, 0.82),
                                                                            rec(2, 0.84)])
    assert common.seed_columns(result) == {"test accuracy (%)": 84.0, "sd": 2.0, "seeds": 3,
                                           "selected run (%)": 86.0}
    alone = common.seed_columns(sweeps.SweepResult([{"lr": 1e-3}], [rec(0, 0.86)]))
    assert alone["seeds"] == 1 and math.isnan(alone["sd"]) and alone["test accuracy (%)"] == 86.0


def test_seed_cells_show_mean_sd_and_seeds_per_arm_and_length():
    import pandas as pd

    table = pd.DataFrame({"arm": ["b", "b", "a"], "epochs": [30.0, 300.0, 30.0],
                          "test_acc": [0.8552, 0.6938, float("nan")],
                          "test_acc_sd": [0.0014, float("nan"), float("nan")],
                          "n_seeds": [3, 1, 0]})
    grid = common.seed_cells(table, ["b", "a"])
    assert list(grid.index) == ["b", "a"] and list(grid.columns) == ["30 epochs", "300 epochs"]
    assert grid.loc["b", "30 epochs"] == "85.52 ±0.14 (n=3)"
    assert grid.loc["b", "300 epochs"] == "69.38 (n=1)"
    assert grid.loc["a", "30 epochs"] == "" and grid.loc["a", "300 epochs"] == ""
    # the seeds a follow-up added are counted beside the total
    grown = table.assign(n_seeds=[8, 1, 0], followup_from=[3, 1, 0])
    cells = common.seed_cells(grown, ["b", "a"])
    assert cells.loc["b", "30 epochs"] == "85.52 ±0.14 (n=8, 5 follow-up)"
    assert cells.loc["b", "300 epochs"] == "69.38 (n=1)"
    # a selection at a grid edge the ladder goes beyond says so; one inside its grid does not
    edged = table.assign(at_edge=["", "lr", ""])
    cells = common.seed_cells(edged, ["b", "a"])
    assert cells.loc["b", "300 epochs"] == "69.38 (n=1, grid edge)"
    assert cells.loc["b", "30 epochs"] == "85.52 ±0.14 (n=3)"


def test_a_state_layout_names_paths_shapes_and_dtypes():
    from kdlib.checkpoint import layout, logged_layout

    state = {"conv": {"kernel": np.zeros((3, 3)), "bias": np.zeros(3)}, "step": np.int32(0)}
    assert layout(state) == layout({k: v for k, v in reversed(state.items())})  # same tree
    renamed = {"conv1": state["conv"], "step": state["step"]}
    reshaped = {**state, "conv": {"kernel": np.zeros((3, 3)), "bias": np.zeros(4)}}
    retyped = {**state, "step": np.float32(0)}
    assert len({layout(s) for s in (state, renamed, reshaped, retyped)}) == 4
    history = [{"step": 2, "layout": "a"}, {"step": 4}, {"step": 4, "layout": "b"}]
    assert logged_layout(history, 4) == "b" and logged_layout(history, 6) is None
