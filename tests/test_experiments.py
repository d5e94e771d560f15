"""Experiment definitions (chapters 01-03); the verdict rules are in test_verdicts.py."""

import pandas as pd
import pytest

from kdlib import views
from kdlib.config import validate
from kdlib.experiments import common, consistency, imagenet, patience


def table(rows):
    return pd.DataFrame(rows, columns=["arm", "epochs", "test_acc", "train_loss"])


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu", "paper"])
def test_every_config_of_every_chapter_validates(preset):
    arms = [consistency.arms(preset, r) for r in consistency.regimes(preset)]
    arms += [patience.arms(preset, r) for r in patience.regimes(preset)]
    arms.append(imagenet.arms(preset))
    for a in arms:
        for by_epochs in a.values():
            for cfg, axes in by_epochs.values():
                validate(cfg)
                assert cfg.preset == preset and axes


def test_arms_share_one_sweep_and_length_per_arm():
    a = consistency.arms("cpu", "1k")
    assert set(a) == set(views.POLICIES)
    for ep in {ep for by_ep in a.values() for ep in by_ep}:  # the same grid for every policy
        assert len({repr(by_ep[ep][1]) for by_ep in a.values() if ep in by_ep}) == 1, ep
    base = consistency.REGIMES["cpu"]["1k"][1]
    longer = consistency.LONGER["cpu"].get("1k", ())
    for policy, by_ep in a.items():  # a longer length for the planned policies only
        assert tuple(by_ep) == base + (longer if policy in consistency.PLANNED_POLICIES else ())


def test_patience_reuses_chapter_01_runs_where_identical():
    """Chapter 02's function-matching runs are chapter 01's wherever chapter 01 trains or
    plans the same length (1000 epochs: planned there, shown in chapter 02)."""
    fm01 = consistency.arms("cpu", "1k", planned=True)["mix"]
    fm02 = patience.arms("cpu", "1k")["function matching"]
    shared = set(fm01) & set(fm02)
    assert shared and all(fm01[e][0] == fm02[e][0] for e in shared)
    only02 = set(fm02) - set(fm01)
    assert all(fm02[e][0].section == patience.SECTION for e in only02)


def test_unknown_regime_is_a_clear_error():
    with pytest.raises(ValueError, match="regime='huge'"):
        consistency.arms("cpu", "huge")
    with pytest.raises(ValueError, match="preset='tpu'"):
        imagenet.arms("tpu")


def test_sgd_sweeps_ten_times_the_adam_learning_rates():
    a = imagenet.arms("cpu")
    adam = a["labels: Adam"][1.0][1]["lr"]
    assert a["labels: SGD"][1.0][1]["lr"] == [10 * x for x in adam]


def test_save_table_writes_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    path = common.save_table(table([("mix", 1, .5, 1.0)]), "cpu", "01_consistency", "x")
    assert path == tmp_path / "cpu" / "01_consistency" / "table_x.csv"
    assert pd.read_csv(path)["arm"].tolist() == ["mix"]
