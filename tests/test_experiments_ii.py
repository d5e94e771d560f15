"""Experiment definitions of chapters 04-09; the verdict rules are in test_verdicts.py."""

import pytest
from flax import nnx

from kdlib import models, plots
from kdlib.config import validate
from kdlib.experiments import (
    common,
    consistency,
    cross_family,
    dist_loss,
    imagenet,
    init,
    out_of_domain,
    resolution,
    shampoo,
)
from kdlib.experiments import teachers as teacher_chapter

CHAPTERS = (resolution, shampoo, init, cross_family, out_of_domain, dist_loss)


def all_arms(preset):
    out = [resolution.arms(preset), shampoo.arms(preset), init.arms(preset),
           cross_family.arms(preset), dist_loss.arms(preset)]
    out += [out_of_domain.arms(preset, t) for t in out_of_domain.targets(preset)]
    return out


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu", "paper"])
def test_every_config_of_every_chapter_validates(preset):
    for a in all_arms(preset):
        assert a
        for by_epochs in a.values():
            assert by_epochs
            for cfg, axes in by_epochs.values():
                validate(cfg)
                assert cfg.preset == preset and axes


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu"])
def test_arms_share_sweep_size_and_lengths(preset):
    for chapter in CHAPTERS:
        a = chapter.arms(preset)
        # smoke leaves out chapter 07's BatchNorm-momentum arm (one more MobileNet compile)
        left_out = {cross_family.BN_SLOW_STATS} if (chapter is cross_family
                                                    and preset == "smoke") else set()
        assert set(a) == set(chapter.ARMS) - left_out
        # same lengths for all arms (05's Adam also beyond Shampoo's longest, ADAM_LONGER;
        # 07's longer lengths for every arm but the BN-momentum one, LONGER)
        longer = (set(shampoo.ADAM_LONGER.get(preset, ())) if chapter is shampoo
                  else set(cross_family.LONGER.get(preset, ())) if chapter is cross_family
                  else set())
        assert len({tuple(e for e in by_ep if e not in longer) for by_ep in a.values()}) == 1
        sizes = set()
        for by_ep in a.values():
            # 05's Adam beyond Shampoo reads the grid chapter 02 grew for that point
            for _, axes in (v for e, v in by_ep.items() if e not in longer):
                n = 1
                for values in axes.values():
                    n *= len(values)
                sizes.add(n)
        assert len(sizes) == 1, chapter.SECTION  # the same sweep budget for every arm


def test_reference_runs_are_chapter_01s():
    fm01 = consistency.arms("cpu", "1k", planned=True)["mix"]
    for a, arm in ((resolution.arms("cpu"), "same resolution"), (shampoo.arms("cpu"), "Adam"),
                   (cross_family.arms("cpu"), "BiT student"),
                   (out_of_domain.arms("cpu"), "in-domain")):
        assert all(a[arm][e][0] == fm01[e][0] for e in a[arm])
    # chapter 06's lengths are chapter 02's: 3 epochs (retired from display, still stored) is
    # chapter 02's own run
    scratch = init.arms("cpu", planned=True)["random init"]
    assert scratch[3.0][0].section == "02_patience"
    assert scratch[300.0][0] == fm01[300.0][0]
    assert 3.0 not in init.arms("cpu")["random init"]


def test_chapter_06_follows_chapter_02_only_up_to_its_cap(monkeypatch):
    """Chapter 02's 1k lengths beyond init.MAX_EPOCHS (3000 epochs at cpu, issue 14) have no
    pretrained-init run: chapter 06 does not show them (nor plan them), so `make book` never
    trains one."""
    from kdlib.experiments import regimes

    cpu = dict(regimes.PATIENCE_REGIMES["cpu"])
    size, lengths = cpu["1k"]
    monkeypatch.setitem(regimes.PATIENCE_REGIMES, "cpu",
                        {**cpu, "1k": (size, (*lengths, 3000.0))})
    assert regimes.patience_regimes("cpu")["1k"][1][-1] == 3000.0
    for planned in (False, True):
        assert 3000.0 not in init.epochs("cpu", planned)
        assert max(init.arms("cpu", planned=planned)["pretrained init"]) == (
            init.MAX_EPOCHS["cpu"])


def test_retired_lengths_are_not_shown_but_stay_findable():
    """Chapter 02's chance-only lengths leave the chapter; planned lengths still build them
    (the stored runs keep their hashes, fm_section its answer)."""
    from kdlib.experiments import patience, regimes

    for regime, retired in regimes.PATIENCE_RETIRED["cpu"].items():
        shown = patience.arms("cpu", regime)["function matching"]
        every = patience.arms("cpu", regime, planned=True)["function matching"]
        for ep in retired:
            assert ep not in shown and ep in every
            size = every[ep][0].data.train_size
            assert regimes.fm_section("cpu", size, ep, "06_init") == "02_patience"
    # the paper preset reuses chapter 03's FunMatch runs
    fm03 = imagenet.arms("paper")["function matching"]
    assert resolution.arms("paper")["same resolution"][1200.0][0] == fm03[1200.0][0]


def test_patience_baselines_stop_at_the_presets_cap():
    """At cpu the label-trained baselines stop at 1,000 epochs (issue 14) while function
    matching goes on (250 images at 4,000); a preset without a cap trains them at every
    length it shows (gpu: 250 images at 3,000)."""
    from kdlib.experiments import patience

    arms = patience.arms("cpu", "250", planned=True)
    assert 4000.0 in arms["function matching"]
    for baseline in ("from scratch", "transfer"):
        assert max(arms[baseline]) == patience.BASELINE_MAX_EPOCHS["cpu"] == 1000.0
    gpu = patience.arms("gpu", "250")
    assert set(gpu["from scratch"]) == set(gpu["function matching"]) == {30.0, 300.0, 3000.0}


def test_new_arms_differ_only_where_they_should():
    a = resolution.arms("cpu")
    same, low, high = (a[arm][30.0][0] for arm in resolution.ARMS)
    assert (low.student_size, low.teacher_size) == (resolution.LOW_RES, 28)
    assert high.teachers == ("fmnist_bit_t48",) and high.teacher_size == 48
    assert low.replace(student_size=28, teacher_size=None, section=same.section) == same
    s = shampoo.arms("cpu")["Shampoo"][30.0][0]
    assert s.optimizer == "shampoo" and s.shampoo["block_size"] == 128
    assert init.arms("cpu")["pretrained init"][30.0][0].init == "digits_bit_s28"
    ens = cross_family.arms("cpu")[cross_family.ENSEMBLE][30.0][0]
    assert ens.teachers == ("fmnist_bit_t28", "fmnist_bit_t48") and ens.teacher_size == (28, 48)
    ood = out_of_domain.arms("cpu")
    assert ood["related"][30.0][0].data.classes == out_of_domain.KEPT_CLASSES
    assert ood["unrelated"][30.0][0].data.name == "digits"
    assert ood["unrelated"][30.0][0].data.train_size == 1000
    assert out_of_domain.eval_data("cpu").name == "fashion_mnist"


def test_extra_teachers_are_not_trained_by_chapter_00():
    for preset in ("smoke", "cpu"):
        base = set(teacher_chapter.teacher_configs(preset))
        high = teacher_chapter.high_res_teacher_configs(preset)
        weak = teacher_chapter.weak_teacher_configs(preset)
        assert not base & set(high) and not base & set(weak)
        (cfg,) = high.values()
        assert cfg.init in base and cfg.student_size > 28
    assert resolution.high_res_teacher("smoke").startswith("smoke_")
    assert dist_loss.teacher_names("smoke")["weak teacher"].startswith("smoke_")


def test_dist_and_kl_get_the_same_sweep_budget():
    for preset in ("smoke", "cpu", "gpu", "paper"):
        n = {}
        for loss in ("kl", "dist"):
            axes = dist_loss.loss_axes(preset, loss)
            n[loss] = 1
            for values in axes.values():
                n[loss] *= len(values)
        assert n["kl"] == n["dist"], preset


def test_mobilenet_students_are_scaled_down_and_stateless():
    s = cross_family.student("MobileNetV3-L (BN)", "cpu")
    assert s.kwargs == {"variant": "large", "norm": "bn", "bn_momentum": 0.9, "width": 0.25,
                        "stem": "imagenet"}
    slow = cross_family.student(cross_family.BN_SLOW_STATS, "cpu")
    assert "bn_momentum" not in slow.kwargs and slow.kwargs["norm"] == "bn"
    paper_bn = cross_family.student("MobileNetV3-L (BN)", "paper").kwargs
    assert paper_bn == {"variant": "large", "norm": "bn"}  # full size, Keras' momentum
    with pytest.raises(ValueError, match="no MobileNet student at preset='paper'"):
        cross_family.student(cross_family.BN_SLOW_STATS, "paper")
    assert "width" not in cross_family.student("MobileNetV3-S (GN)", "paper").kwargs
    # Only the smoke preset's students are shallow (one block per stage: compile time).
    for arm in cross_family.STUDENTS:
        assert cross_family.student(arm, "smoke").kwargs == {
            **cross_family.student(arm, "cpu").kwargs, "shallow": True}
        assert "shallow" not in cross_family.student(arm, "gpu").kwargs
    model = models.create(s.name, num_classes=10, in_channels=1, **s.kwargs)
    kinds = {type(v).__name__ for _, v in nnx.to_flat_state(nnx.state(model, nnx.Not(nnx.Param)))}
    assert "RngKey" not in kinds  # no dropout: no RNG key in the state (checkpointable)
    assert kinds == {"BatchStat"}


def test_unknown_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="preset='tpu'"):
        resolution.arms("tpu")
    with pytest.raises(ValueError, match="target='flowers'"):
        out_of_domain.arms("cpu", "flowers")
    with pytest.raises(ValueError, match="loss='labels'"):
        dist_loss.loss_axes("cpu", "labels")
    with pytest.raises(ValueError, match="arm='BiT student' has no MobileNet"):
        cross_family.student("BiT student", "cpu")
    with pytest.raises(ValueError, match="preset='paper' has no Fashion-MNIST regime"):
        common.small_data_regime("paper")


def test_new_arms_have_distinct_colors():
    for chapter in CHAPTERS:
        colors = [plots.color_for(a) for a in chapter.ARMS]
        assert len(set(colors)) == len(colors), chapter.SECTION


def test_throughput_table_reads_the_selected_runs_summary(tmp_path):
    from kdlib.store import RunRecord
    from kdlib.sweep import SweepResult

    run = RunRecord({}, {"val_acc": .5, "test_acc": .5, "img_per_s": 900.0, "train_time_s": 3.0,
                         "group_size": 2}, [], {}, "done", tmp_path / "abc")
    t = common.throughput_table({"Adam": {1.0: SweepResult([{}], [run])}})
    assert t.loc[0, "img_per_s"] == 900.0 and t.loc[0, "group_size"] == 2
    assert t.loc[0, "n_seeds"] == 1 and t.loc[0, "seed_img_per_s_min"] == 900.0
    # a replicate (same program, another time) widens the seeds' range; the selected run's
    # own img/s stays the table's img_per_s
    slow = RunRecord({"seed": 1}, {"test_acc": .5, "img_per_s": 300.0}, [], {}, "done",
                     tmp_path / "def")
    t = common.throughput_table({"Adam": {1.0: SweepResult([{}], [run], replicates=[slow])}})
    assert (t.loc[0, "img_per_s"], t.loc[0, "seed_img_per_s_min"],
            t.loc[0, "seed_img_per_s_max"], t.loc[0, "n_seeds"]) == (900.0, 300.0, 900.0, 2)


def test_chapter_03_shows_its_longer_lengths_for_the_planned_arms_only(monkeypatch):
    """A PLANNED length moved to LONGER (once stored) is shown for PLANNED_ARMS and no other
    arm, with the same configs the queue trained; a length is in one of the two, not both."""
    from kdlib.experiments import imagenet

    for preset in ("smoke", "cpu"):
        assert not set(imagenet.LONGER.get(preset, ())) & set(imagenet.PLANNED.get(preset, ()))
    queued = imagenet.arms("cpu", planned=True)
    monkeypatch.setattr(imagenet, "LONGER", {"cpu": (16.0,)})
    monkeypatch.setattr(imagenet, "PLANNED", {})
    shown = imagenet.arms("cpu")
    assert shown == queued
    assert {a for a, by in shown.items() if 16.0 in by} == set(imagenet.PLANNED_ARMS)
    assert imagenet.lengths("cpu", "labels: SGD") == imagenet.EPOCHS["cpu"]
    assert imagenet.lengths("cpu", "function matching") == (*imagenet.EPOCHS["cpu"], 16.0)
    with pytest.raises(ValueError, match="arm='labels'.*fixed teacher"):
        imagenet.lengths("cpu", "labels")


def test_chapter_01_shows_its_longer_lengths_for_the_planned_policies_only(monkeypatch):
    """A CONSISTENCY_PLANNED length moved to CONSISTENCY_LONGER (once stored) is shown for
    PLANNED_POLICIES and no other policy, with the configs the queue trained; a length is in
    one of the two tables, not both; the regime's own lengths (which chapters 04-09 read)
    stay those every policy trains."""
    from kdlib.experiments import consistency, regimes

    for preset, by_regime in consistency.LONGER.items():
        for regime, eps in by_regime.items():
            assert not set(eps) & set(consistency.PLANNED.get(preset, {}).get(regime, ()))
    queued = consistency.arms("cpu", "1k", planned=True)
    monkeypatch.setitem(consistency.LONGER, "cpu", {"1k": (1000.0,)})
    monkeypatch.setitem(consistency.PLANNED, "cpu", {})
    shown = consistency.arms("cpu", "1k")
    assert shown == queued
    assert {p for p, by in shown.items() if 1000.0 in by} == set(consistency.PLANNED_POLICIES)
    assert consistency.lengths("cpu", "1k", "fix/rs") == (30.0, 100.0, 300.0)
    assert consistency.lengths("cpu", "1k", "mix") == (30.0, 100.0, 300.0, 1000.0)
    assert consistency.shown_lengths("cpu", "1k") == (30.0, 100.0, 300.0, 1000.0)
    assert regimes.small_data_regime("cpu") == (1000, (30.0, 100.0, 300.0))
    assert regimes.fm_section("cpu", 1000, 1000.0, "05_shampoo") == consistency.SECTION
    with pytest.raises(ValueError, match="policy='fix'.*fix/rs"):
        consistency.lengths("cpu", "1k", "fix")


def test_planned_lengths_add_only_the_queued_arms_and_keep_the_shown_ones(monkeypatch):
    """A planned length (here a made-up 07 at 3000) adds to every arm but the BN-momentum one
    and leaves the shown grids unchanged; 03's 16 epochs and 07's 300 are shown since they
    are stored (nothing planned there). 05's Adam at 1000 (chapter 01's stored run) is shown,
    beyond Shampoo's longest."""
    from kdlib.experiments import consistency, imagenet

    queued = set(cross_family.ARMS) - {cross_family.BN_SLOW_STATS}
    assert {a for a, by in cross_family.arms("cpu").items() if 300.0 in by} == queued
    monkeypatch.setitem(cross_family.PLANNED, "cpu", (3000.0,))
    for chapter, added in (
        (imagenet, {}),
        (shampoo, {}),
        (cross_family, dict.fromkeys(queued, {3000.0})),
    ):
        shown, planned = chapter.arms("cpu"), chapter.arms("cpu", planned=True)
        assert set(shown) == set(planned)
        for arm in shown:
            assert all(planned[arm][e] == shown[arm][e] for e in shown[arm])
            assert set(planned[arm]) - set(shown[arm]) == added.get(arm, set()), arm
        assert chapter.arms("smoke", planned=True) == chapter.arms("smoke")
    adam = shampoo.arms("cpu")["Adam"][1000.0][0]
    assert adam == consistency.arms("cpu", "1k", planned=True)["mix"][1000.0][0]
    assert 1000.0 not in shampoo.arms("cpu")["Shampoo"]
    assert shampoo.timed_length(shampoo.arms("cpu")) == 300.0
    assert shampoo.arms("cpu")["Adam"][1000.0][1]["lr"] == [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
