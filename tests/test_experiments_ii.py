"""Experiment definitions of chapters 04-09 and the claim verdict rules C8-C13."""

import pandas as pd
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
    verdicts,
)
from kdlib.experiments import teachers as teacher_chapter

CHAPTERS = (resolution, shampoo, init, cross_family, out_of_domain, dist_loss)


def table(rows):
    return pd.DataFrame(rows, columns=["arm", "epochs", "test_acc", "train_loss"])


def long(acc):
    """A long table from ``{arm: (acc at 10, acc at 100, ...)}`` (lengths 10, 100, 1000)."""
    return table([(a, 10 ** (i + 1), v, 1.0) for a, vs in acc.items() for i, v in enumerate(vs)])


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
        assert set(a) == set(chapter.ARMS)
        assert len({tuple(by_ep) for by_ep in a.values()}) == 1  # same lengths for all arms
        sizes = set()
        for by_ep in a.values():
            for _, axes in by_ep.values():
                n = 1
                for values in axes.values():
                    n *= len(values)
                sizes.add(n)
        assert len(sizes) == 1, chapter.SECTION  # the same sweep budget for every arm


def test_reference_runs_are_chapter_01s():
    fm01 = consistency.arms("cpu", "1k")["mix"]
    for a, arm in ((resolution.arms("cpu"), "same resolution"), (shampoo.arms("cpu"), "Adam"),
                   (cross_family.arms("cpu"), "BiT student"),
                   (out_of_domain.arms("cpu"), "in-domain")):
        assert all(a[arm][e][0] == fm01[e][0] for e in a[arm])
    # chapter 06's lengths are chapter 02's: 3 epochs is chapter 02's own run
    scratch = init.arms("cpu")["random init"]
    assert scratch[3.0][0].section == "02_patience"
    assert scratch[300.0][0] == fm01[300.0][0]
    # the paper preset reuses chapter 03's FunMatch runs
    fm03 = imagenet.arms("paper")["function matching"]
    assert resolution.arms("paper")["same resolution"][1200.0][0] == fm03[1200.0][0]


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


def test_c8_resolution():
    acc = {"same resolution": (.80, .85, .88), "low-res student": (.78, .83, .86),
           "high-res teacher": (.81, .86, .89)}
    assert verdicts.c8_resolution(long(acc), "04").verdict == "reproduced"
    worse = dict(acc, **{"high-res teacher": (.79, .84, .89)})
    assert verdicts.c8_resolution(long(worse), "04").verdict == "partly"
    bad = dict(acc, **{"low-res student": (.6, .6, .6), "high-res teacher": (.7, .7, .7)})
    c = verdicts.c8_resolution(long(bad), "04")
    assert c.verdict == "not reproduced" and "-28.0 pts" in c.ours


def test_c9_shampoo():
    acc = {"Adam": (.70, .80, .85), "Shampoo": (.75, .85, .87)}
    t = long(acc)
    assert verdicts.c9_shampoo(t, "05").verdict == "reproduced"
    slow = verdicts.c9_shampoo(t, "05", speed={"Adam": 1000.0, "Shampoo": 400.0})
    assert slow.verdict == "partly" and "2.50x" in slow.ours
    assert verdicts.c9_shampoo(long({"Adam": (.7, .8, .85), "Shampoo": (.72, .79, .86)}),
                               "05").verdict == "partly"
    assert verdicts.c9_shampoo(long({"Adam": (.7, .8, .85), "Shampoo": (.6, .7, .8)}),
                               "05").verdict == "not reproduced"


def test_c10_init():
    t = long({"random init": (.60, .80, .86), "pretrained init": (.70, .82, .85)})
    assert verdicts.c10_init(t, "06").verdict == "reproduced"
    t = long({"random init": (.60, .80, .80), "pretrained init": (.70, .82, .85)})
    assert verdicts.c10_init(t, "06").verdict == "partly"
    t = long({"random init": (.70, .80, .80), "pretrained init": (.70, .82, .85)})
    assert verdicts.c10_init(t, "06").verdict == "not reproduced"


def test_c11_cross_family():
    acc = {"MobileNetV3-L (GN)": (.70, .75, .80), "MobileNetV3-L (BN)": (.68, .73, .78),
           "BiT student": (.75, .80, .85), "BiT student, 2 teachers": (.76, .81, .86)}
    assert verdicts.c11_cross_family(long(acc), "07").verdict == "reproduced"
    bn_better = dict(acc, **{"MobileNetV3-L (BN)": (.7, .8, .9)})
    assert verdicts.c11_cross_family(long(bn_better), "07").verdict == "partly"
    none = dict(bn_better, **{"MobileNetV3-L (GN)": (.8, .7, .6),
                              "BiT student, 2 teachers": (.7, .7, .7)})
    assert verdicts.c11_cross_family(long(none), "07").verdict == "not reproduced"
    no_bn = dict(acc, **{"MobileNetV3-L (BN)": (float("nan"),) * 3})
    c = verdicts.c11_cross_family(long(no_bn), "07")
    assert c.verdict == "partly" and "not measured" in c.ours


def test_c12_out_of_domain():
    acc = {"in-domain": (.70, .80, .85), "related": (.60, .75, .82), "unrelated": (.2, .3, .4)}
    c = verdicts.c12_out_of_domain(long(acc), "08")
    assert c.verdict == "reproduced" and "chance 10.0%" in c.ours
    assert "gap to in-domain +10.0 pts at 10 epochs, +3.0 at 1000 (closes)" in c.ours
    # Related images fall further behind with longer schedules: not "close".
    widening = dict(acc, related=(.68, .70, .70))
    w = verdicts.c12_out_of_domain(long(widening), "08")
    assert w.verdict == "partly" and "(does not close)" in w.ours
    near_chance = dict(acc, unrelated=(.1, .1, .15))
    assert verdicts.c12_out_of_domain(long(near_chance), "08").verdict == "partly"
    upside_down = {"in-domain": (.1, .1, .1), "related": (.1, .1, .1), "unrelated": (.1, .1, .15)}
    assert verdicts.c12_out_of_domain(long(upside_down), "08").verdict == "not reproduced"
    floor = verdicts.c12_out_of_domain(long(dict(acc, noise=(.3, .2, .12))), "08")
    assert floor.verdict == "reproduced" and floor.ours.endswith("noise images (floor): 12.0%")
    assert "floor" not in c.ours


def test_c13_dist():
    acc = {"KL, strong teacher": (.80, .84), "DIST, strong teacher": (.81, .86),
           "KL, weak teacher": (.78, .82), "DIST, weak teacher": (.78, .83)}
    assert verdicts.c13_dist(long(acc), "09").verdict == "reproduced"
    weak_only = dict(acc, **{"DIST, strong teacher": (.8, .83)})
    assert verdicts.c13_dist(long(weak_only), "09").verdict == "partly"
    kl_wins = dict(weak_only, **{"DIST, weak teacher": (.7, .8)})
    c = verdicts.c13_dist(long(kl_wins), "09")
    assert c.verdict == "not reproduced" and "+2.0 pts" in c.ours


def test_throughput_table_reads_the_selected_runs_summary(tmp_path):
    from kdlib.store import RunRecord
    from kdlib.sweep import SweepResult

    run = RunRecord({}, {"val_acc": .5, "test_acc": .5, "img_per_s": 900.0, "train_time_s": 3.0,
                         "group_size": 2}, [], {}, "done", tmp_path / "abc")
    t = common.throughput_table({"Adam": {1.0: SweepResult([{}], [run])}})
    assert t.loc[0, "img_per_s"] == 900.0 and t.loc[0, "group_size"] == 2
