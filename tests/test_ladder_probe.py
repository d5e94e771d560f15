"""The probe beyond the learning-rate ladder's end (kdlib.experiments.ladder_probe)."""

from __future__ import annotations

import shutil

import pytest

from kdlib import store
from kdlib.experiments import common
from kdlib.experiments import ladder_probe as probe


def _stored(root, config, val, test, status="done"):
    path = store.run_dir(config, root)
    store.save_run(path, config, {"val_acc": val, "test_acc": test},
                   {"commit": "x", **store.input_record(config)}, status)
    return path


def test_probes_the_selected_configs_at_the_ladders_end_cheapest_first(tmp_path):
    data = common.fmnist("cpu", 1000)
    long_ = common.base_config("cpu", "02_patience", data, epochs=300.0, lr=0.1,
                               teachers=("t",))
    short = long_.replace(epochs=30.0)
    inside = long_.replace(epochs=100.0, lr=0.03)  # inside the ladder: no probe
    for config in (long_, short, inside):
        _stored(tmp_path, config, 0.80, 0.79)
    rows = "\n".join(f"function matching,{c.epochs},{store.config_hash(c)},{end}"
                     for c, end in ((long_, "lr"), (short, "lr"), (inside, "")))
    (tmp_path / "cpu" / "02_patience" / "table_1k_arms.csv").write_text(
        "arm,epochs,best_hash,at_ladder_end\n" + rows + "\n")
    points = probe.ladder_end_points("cpu", tmp_path)
    assert [p["config"]["epochs"] for p in points] == [30.0, 300.0]  # cheapest first
    assert points[0]["read by"] == ["02_patience 1k_arms: function matching at 30 epochs"]
    assert probe.probe_config(points[0]["config"]).lr == probe.BEYOND
    assert probe.probe_rows("cpu", tmp_path) == []
    assert "No probe beyond the ladder's end" in probe.report("cpu", tmp_path)
    # lr 0.3 wins at 30 epochs on validation and diverges at 300
    _stored(tmp_path, short.replace(lr=0.3), 0.82, 0.78)
    _stored(tmp_path, long_.replace(lr=0.3), 0.1, 0.1, status="diverged")
    rows = probe.probe_rows("cpu", tmp_path)
    assert [r["ahead on val"] for r in rows] == [True, False]
    assert rows[1]["val beyond"] == "diverged" and rows[1]["test beyond"] is None
    assert rows[0]["lr at end"] == 0.1
    text = probe.report("cpu", tmp_path)
    assert text.startswith("Of the 2 selected configs at lr 0.1, the ladder's end, all 2 were "
                           "probed one step beyond (lr 0.3 from 0.1): the probe is ahead")
    assert ("ahead on validation at 1 of them (02_patience 1k_arms: function matching at 30 "
            "epochs)") in text and "diverged at 1" in text
    # a probe behind everywhere, and probes not all trained yet, read as such
    _stored(tmp_path, short.replace(lr=0.3), 0.70, 0.78)
    assert "ahead on validation at none of them" in probe.report("cpu", tmp_path)
    shutil.rmtree(store.run_dir(long_.replace(lr=0.3), tmp_path))
    assert "the ladder's end, 1 (the cheapest) was probed" in probe.report("cpu", tmp_path)


def test_a_probe_behind_brackets_the_point_it_probes(tmp_path, monkeypatch):
    """A chapter's table reads the stored probe of a point selected at lr 0.1: behind on
    validation (or diverged) brackets it, ahead does not, none stored says nothing."""
    from kdlib import evidence, sweep

    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    data = common.fmnist("cpu", 1000)
    end = common.base_config("cpu", "02_patience", data, epochs=300.0, lr=0.1,
                             teachers=("t",))
    inside = end.replace(lr=0.03)
    runs = [store.load_run(_stored(tmp_path, c, val, 0.8))
            for c, val in ((inside, 0.79), (end, 0.80))]
    result = sweep.SweepResult(points=[{"lr": 0.03}, {"lr": 0.1}], runs=runs)

    def read() -> str:
        table = common.results_table({"fm": {300.0: result}},
                                     val_noise=evidence.Noise(0.01, "t"), test_means={})
        assert table.iloc[0]["at_ladder_end"] == "lr"
        return table.iloc[0]["beyond_probe"]

    assert read() == ""  # no probe stored
    _stored(tmp_path, end.replace(lr=probe.BEYOND), 0.81, 0.7)
    assert read() == "ahead"
    assert probe.beyond_reading(store.load_run(runs[1].path).config, 0.82) == "behind"
    shutil.rmtree(store.run_dir(end.replace(lr=probe.BEYOND), tmp_path))
    _stored(tmp_path, end.replace(lr=probe.BEYOND), 0.1, 0.1, status="diverged")
    assert read() == "behind"
    # a point inside the ladder has no probe to read, nor one whose probe is not stored
    assert probe.beyond_reading(runs[0].config, 0.79) == ""
    assert probe.beyond_reading({**runs[1].config, "optimizer": "shampoo"}, 0.80) == ""


def test_every_optimizers_ladder_end_is_probed(tmp_path):
    """The ladder is every optimizer's (Shampoo's and SGD's grids grow through it too), so a
    Shampoo or SGD config selected at its end is probed as Adam's is."""
    data = common.fmnist("cpu", 1000)
    adam = common.base_config("cpu", "05_shampoo", data, epochs=100.0, lr=0.1, teachers=("t",))
    sgd = adam.replace(optimizer="sgd", epochs=300.0)
    for config in (adam, sgd):
        _stored(tmp_path, config, 0.80, 0.79)
    rows = "\n".join(f"{c.optimizer},{c.epochs},{store.config_hash(c)},lr" for c in (adam, sgd))
    (tmp_path / "cpu" / "05_shampoo" / "table_arms.csv").write_text(
        "arm,epochs,best_hash,at_ladder_end\n" + rows + "\n")
    points = probe.ladder_end_points("cpu", tmp_path)
    assert [p["config"]["optimizer"] for p in points] == ["adam", "sgd"]
    _stored(tmp_path, sgd.replace(lr=probe.BEYOND), 0.70, 0.70)
    assert probe.beyond_reading(points[1]["config"], 0.80, tmp_path) == "behind"


def test_the_report_names_each_extended_comparison_with_its_data():
    text = probe.beyond_text()
    assert "01_consistency's 1000 images at 30 epochs (lr 0.3)" in text
    assert "03_imagenet's full split at 1 epoch (lr 0.3, 1)" in text and "None" not in text


def test_an_extended_ladders_end_is_probed_one_step_further(tmp_path):
    """Where a probe led, the comparison's ladder ends at 0.3: a config selected there is
    probed at 1.0, and a point whose 1.0 probe is behind is bracketed."""
    import pytest

    data = common.fmnist("cpu", 1000)
    end = common.base_config("cpu", "01_consistency", data, epochs=30.0, lr=0.3,
                             teachers=("t",))
    _stored(tmp_path, end, 0.80, 0.79)
    (tmp_path / "cpu" / "01_consistency" / "table_1k_policies.csv").write_text(
        f"arm,epochs,best_hash,at_ladder_end\nfix/rs,30.0,{store.config_hash(end)},lr\n")
    points = probe.ladder_end_points("cpu", tmp_path)
    assert probe.probe_config(points[0]["config"]).lr == 1.0
    _stored(tmp_path, end.replace(lr=1.0), 0.5, 0.5)
    assert "further for the 1 in comparisons whose ladder a probe extended" in probe.report(
        "cpu", tmp_path)
    assert probe.beyond_reading(points[0]["config"], 0.80, tmp_path) == "behind"
    with pytest.raises(ValueError, match="lr=0.03 is no ladder end"):
        probe.probe_config({**points[0]["config"], "lr": 0.03})


@pytest.mark.parametrize("argv, names", [
    (["--preset", "bogus"], ["'bogus'", "'cpu'", "'paper'"]),
    (["--train", "-1"], ["'-1'", "0 or more"]),
])
def test_a_bad_preset_or_a_negative_probe_count_is_a_usage_error(argv, names, capsys):
    """--train -1 would slice off the last probe (train all but one), --preset bogus fail deep
    in a library: each is one line naming the value and what is allowed, exit status 2."""
    with pytest.raises(SystemExit) as exit_info:
        probe.main(argv)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert all(n in last for n in names), last
    with pytest.raises(ValueError, match="limit=-1"):
        probe.train_probes("cpu", -1)
