"""Experiment definitions (chapters 01-03) and the claim verdict rules on synthetic tables."""

import pandas as pd
import pytest

from kdlib import views
from kdlib.config import validate
from kdlib.experiments import common, consistency, imagenet, patience, verdicts


def table(rows):
    return pd.DataFrame(rows, columns=["arm", "epochs", "test_acc", "train_loss"])


def policy_table(short, long, loss=None):
    loss = loss or {}
    rows = [(p, 10, short[p], 1.0) for p in views.POLICIES]
    rows += [(p, 100, long[p], loss.get(p, 1.0)) for p in views.POLICIES]
    return table(rows)


SHORT = {"fix/rs": .80, "fix/cc": .79, "fix/ic_ens": .78, "ind/rc": .70, "ind/ic": .71,
         "same/rc": .76, "same/ic": .77, "mix": .72}
LONG = {"fix/rs": .81, "fix/cc": .80, "fix/ic_ens": .80, "ind/rc": .78, "ind/ic": .79,
        "same/rc": .84, "same/ic": .85, "mix": .86}


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
    axes = {repr(ax) for by_ep in a.values() for _, ax in by_ep.values()}
    assert len(axes) == 1  # the same grid for every policy
    lengths = {tuple(by_ep) for by_ep in a.values()}
    assert lengths == {consistency.REGIMES["cpu"]["1k"][1]}


def test_patience_reuses_chapter_01_runs_where_identical():
    fm01 = consistency.arms("cpu", "1k")["mix"]
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


def test_c1_c3_verdicts():
    t = policy_table(SHORT, LONG)
    assert verdicts.c1_consistency_wins(t, "01_consistency").verdict == "reproduced"
    assert verdicts.c3_patience_changes_ranking(t, "01_consistency").verdict == "reproduced"
    flat = policy_table(SHORT, SHORT)
    assert verdicts.c1_consistency_wins(flat, "01_consistency").verdict == "not reproduced"
    assert verdicts.c3_patience_changes_ranking(flat, "01_consistency").verdict == \
        "not reproduced"
    partly = dict(LONG, **{"same/rc": .70})  # one consistent policy below a fixed one
    assert verdicts.c1_consistency_wins(policy_table(SHORT, partly),
                                        "01_consistency").verdict == "partly"


def test_c2_needs_lower_loss_and_lower_accuracy():
    low = {p: 0.2 for p in verdicts.FIXED}
    t = policy_table(SHORT, LONG, loss=low)
    c = verdicts.c2_fixed_overfits(t, "01_consistency")
    assert c.verdict == "reproduced" and "0.200" in c.ours
    high = {p: 3.0 for p in verdicts.FIXED}
    assert verdicts.c2_fixed_overfits(policy_table(SHORT, LONG, loss=high),
                                      "01_consistency").verdict == "partly"


def test_c4_c5_verdicts():
    rows = [("function matching", 10, .70, 1), ("function matching", 100, .80, 1),
            ("from scratch", 10, .60, 1), ("from scratch", 100, .65, 1),
            ("transfer", 10, .75, 1), ("transfer", 100, .78, 1)]
    t = table(rows)
    assert verdicts.c4_patience_pays({"a": t}, 0.81, "02_patience").verdict == "reproduced"
    assert verdicts.c4_patience_pays({"a": t}, 0.95, "02_patience").verdict == "partly"
    assert verdicts.c5_beats_baselines({"a": t}, "02_patience").verdict == "reproduced"
    worse = table([r if r[0] != "transfer" else (r[0], r[1], .9, 1) for r in rows])
    assert verdicts.c5_beats_baselines({"a": worse}, "02_patience").verdict == "partly"
    down = table([("function matching", 10, .80, 1), ("function matching", 100, .70, 1)])
    assert verdicts.c4_patience_pays({"a": down}, 0.81, "02_patience").verdict == \
        "not reproduced"


def test_c6_c7_verdicts():
    acc = {"fixed teacher": (.80, .82, .82), "consistent teaching": (.79, .82, .84),
           "function matching": (.78, .81, .85), "labels: Adam": (.80, .81, .80)}
    t = table([(a, e, v[i], 1) for a, v in acc.items() for i, e in enumerate((1, 2, 4))])
    assert verdicts.c6_fixed_saturates(t, "03_imagenet").verdict == "reproduced"
    c7 = verdicts.c7_labels_below_distillation(t, "03_imagenet", ["labels: Adam"],
                                               ["function matching"])
    assert c7.verdict == "reproduced"


def test_missing_row_names_arm_and_epochs():
    with pytest.raises(ValueError, match="arm='same/rc' at epochs=100"):
        verdicts.c1_consistency_wins(table([("fix/rs", 100, .5, 1)]), "01_consistency")


def test_save_table_writes_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    path = common.save_table(table([("mix", 1, .5, 1.0)]), "cpu", "01_consistency", "x")
    assert path == tmp_path / "cpu" / "01_consistency" / "table_x.csv"
    assert pd.read_csv(path)["arm"].tolist() == ["mix"]
