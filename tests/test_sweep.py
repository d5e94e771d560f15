"""Tests of kdlib.sweep: grids, overrides, cached sweeps, failures, selection, batching."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np
import pytest

from kdlib.store import MetricsLog, RunRecord, list_runs, load_run, run_dir
from kdlib.sweep import (
    SweepResult,
    apply_overrides,
    best_by_validation,
    expand,
    grid,
    sweep,
)


@dataclasses.dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    wd: float = 0.0


@dataclasses.dataclass(frozen=True)
class Cfg:
    preset: str = "smoke"
    section: str = "03_sweeps"
    seed: int = 0
    temperature: float = 1.0
    optim: Optim = dataclasses.field(default_factory=Optim)
    aug: dict = dataclasses.field(default_factory=lambda: {"mixup": True})


def fake_metrics(config) -> dict:
    """Deterministic fake outcome: val peaks at lr=0.01; test is NOT monotone in val."""
    lr = config.optim.lr
    val = {0.001: 0.60, 0.01: 0.80, 0.1: 0.70, 1.0: 0.99}.get(lr, 0.5)
    test = {0.001: 0.58, 0.01: 0.75, 0.1: 0.90, 1.0: 0.97}.get(lr, 0.5)
    return {"val_acc": val + config.seed * 1e-3, "test_acc": test, "steps": 3}


class FakeTrain:
    """Counts calls; lr=1.0 diverges, lr=10.0 raises, call number `interrupt_at` is ^C."""

    def __init__(self, interrupt_at: int | None = None):
        self.calls: list = []
        self.interrupt_at = interrupt_at

    def __call__(self, config, path):
        self.calls.append(config)
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        MetricsLog.in_run(path).append({"step": 1, "loss": 1.0})
        if config.optim.lr == 10.0:
            raise FloatingPointError("loss is inf")
        summary = fake_metrics(config)
        if config.optim.lr == 1.0:
            summary["status"] = "diverged"
        return summary


# ----------------------------------------------------------------------------- grids


def test_grid_cartesian_in_stable_order():
    assert grid(a=[1, 2], b=["x", "y", "z"]) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 2, "b": "z"},
    ]
    assert grid() == [{}]
    assert grid(**{"optim.lr": (0.1,)}) == [{"optim.lr": 0.1}]


def test_grid_numpy_axis_values_become_python():
    points = grid(lr=np.logspace(-3, -1, 3))
    assert [type(p["lr"]) for p in points] == [float] * 3
    assert [p["lr"] for p in points] == pytest.approx([1e-3, 1e-2, 1e-1])


@pytest.mark.parametrize(
    "axis, match", [([], "empty"), ("abc", "list or tuple"), ({1, 2}, "list"), (3, "list")]
)
def test_grid_rejects_bad_axes(axis, match):
    with pytest.raises(ValueError, match=match):
        grid(lr=axis)


# ----------------------------------------------------------------------------- overrides


def test_expand_nested_keys_and_dict_fields():
    configs = expand(Cfg(), [{"optim.lr": 0.1, "seed": 2}, {"aug.mixup": False}, {}])
    assert configs[0] == Cfg(seed=2, optim=Optim(lr=0.1))
    assert configs[1].aug == {"mixup": False} and configs[1].optim == Optim()
    assert configs[2] == Cfg()
    assert Cfg().aug == {"mixup": True}  # base untouched


def test_expand_unknown_key_names_key_and_fields():
    with pytest.raises(ValueError, match=r"'lrr'.*'preset', 'section', 'seed'"):
        apply_overrides(Cfg(), {"lrr": 0.1})
    with pytest.raises(ValueError, match=r"'optim.lrr'.*Optim fields are \['lr', 'wd'\]"):
        expand(Cfg(), [{"optim.lrr": 0.1}])
    with pytest.raises(ValueError, match=r"'seed.x'.*'seed' is a int"):
        apply_overrides(Cfg(), {"seed.x": 1})
    with pytest.raises(ValueError, match="'optim.'"):
        apply_overrides(Cfg(), {"optim.": 1})
    with pytest.raises(ValueError, match="dataclass"):
        apply_overrides({"lr": 1}, {"lr": 2})


# ----------------------------------------------------------------------------- sweeps


def test_sweep_trains_once_records_diverged_and_failed_and_selects_by_val(tmp_path):
    train = FakeTrain()
    axes = {"optim.lr": [0.001, 0.01, 1.0, 10.0, 0.1]}
    result = sweep(Cfg(), axes, train, root=tmp_path)
    assert len(train.calls) == 5  # the failing lr=10 did not stop the sweep
    assert [r.status for r in result.runs] == ["done", "done", "diverged", "failed", "done"]
    assert "FloatingPointError: loss is inf" in result.runs[3].summary["error"]
    # Best by validation excludes the diverged run (val 0.99) and picks lr=0.01 (val 0.80),
    # and reports ITS test accuracy (0.75), not the best test accuracy (0.90 at lr=0.1).
    assert result.best.config["optim"]["lr"] == 0.01
    assert result.best_test() == 0.75
    assert result.best_test("steps") == 3

    rows = result.table()
    assert [r["optim.lr"] for r in rows] == axes["optim.lr"]
    assert rows[1]["status"] == "done" and rows[1]["val_acc"] == 0.80
    assert rows[2]["status"] == "diverged" and rows[3]["status"] == "failed"
    assert "loss is inf" in rows[3]["error"] and "traceback" not in rows[3]

    again = sweep(Cfg(), axes, train, root=tmp_path)
    assert [c.optim.lr for c in train.calls[5:]] == [10.0]  # only the failed run is retried
    assert [r.path for r in again.runs] == [r.path for r in result.runs]


def test_sweep_on_error_raise(tmp_path):
    with pytest.raises(FloatingPointError):
        sweep(Cfg(), {"optim.lr": [10.0, 0.1]}, FakeTrain(), root=tmp_path, on_error="raise")
    assert (
        load_run(run_dir(Cfg(optim=Optim(lr=10.0)), tmp_path), finished_only=False).status
        == "failed"
    )


def test_interrupted_sweep_keeps_finished_runs_and_resumes(tmp_path):
    axes = {"optim.lr": [0.001, 0.01, 0.1], "seed": [0, 1]}
    with pytest.raises(KeyboardInterrupt):
        sweep(Cfg(), axes, FakeTrain(interrupt_at=3), root=tmp_path)
    stored = list_runs(tmp_path)
    assert len(stored) == 2
    expected_first = expand(Cfg(), grid(**axes)[:2])
    assert sorted(r.path for r in stored) == sorted(run_dir(c, tmp_path) for c in expected_first)
    assert (
        load_run(run_dir(expand(Cfg(), grid(**axes))[2], tmp_path), finished_only=False).status
        == "running"
    )

    resumed = FakeTrain()
    result = sweep(Cfg(), axes, resumed, root=tmp_path)
    assert resumed.calls == expand(Cfg(), grid(**axes)[2:])  # only the missing ones, in order
    assert [r.status for r in result.runs] == ["done"] * 6
    assert len(list_runs(tmp_path)) == 6


def test_sweep_duplicate_points_train_once(tmp_path):
    train = FakeTrain()
    result = sweep(Cfg(), {"optim.lr": [0.01, 0.01]}, train, root=tmp_path)
    assert len(train.calls) == 1
    assert result.runs[0] == result.runs[1]


def test_sweep_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        sweep(Cfg(), {}, FakeTrain(), root=tmp_path, mode="best")
    with pytest.raises(ValueError, match="on_error"):
        sweep(Cfg(), {}, FakeTrain(), root=tmp_path, on_error="ignore")
    with pytest.raises(ValueError, match="train_fn or batch_train_fn"):
        sweep(Cfg(), {}, None, root=tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        sweep(Cfg(), {}, None, root=tmp_path, batch_train_fn=lambda c, d: [], batch_size=0)
    with pytest.raises(ValueError, match="preset"):
        sweep(Cfg(), {"preset": ["ok", "../up"]}, FakeTrain(), root=tmp_path)
    assert list_runs(tmp_path) == []  # nothing was trained before the bad point was found


# ----------------------------------------------------------------------------- selection


def _record(status: str, order: int, **summary) -> RunRecord:
    return RunRecord({}, {**summary, "status": status}, [], {}, status, Path(f"/r/{order}"))


def test_best_by_validation_ties_modes_and_errors():
    runs = [
        _record("failed", 0, error="x", val_acc=1.0, test_acc=1.0),
        _record("done", 1, val_acc=0.7, val_loss=0.3, test_acc=0.1),
        _record("done", 2, val_acc=0.8, val_loss=0.5, test_acc=0.2),
        _record("done", 3, val_acc=0.8, val_loss=0.2, test_acc=0.3),  # tie: grid order wins
        _record("diverged", 4, val_acc=0.95, val_loss=0.0, test_acc=0.9),
        _record("done", 5, val_acc=float("nan"), val_loss=float("nan")),
    ]
    assert best_by_validation(runs).path.name == "2"
    assert best_by_validation(runs, "val_loss", mode="min").path.name == "3"
    assert best_by_validation([]) is None
    assert best_by_validation(runs[:1] + runs[4:5]) is None  # only failed / diverged
    with pytest.raises(ValueError, match="'val_acc_typo'.*summary keys"):
        best_by_validation(runs, "val_acc_typo")
    with pytest.raises(ValueError, match="mode"):
        best_by_validation(runs, mode="up")

    result = SweepResult([{}] * len(runs), runs)
    assert result.best_test() == 0.2
    with pytest.raises(ValueError, match="'test_top5'"):
        result.best_test("test_top5")
    assert SweepResult([{}], runs[:1]).best_test() is None


# ----------------------------------------------------------------------------- batching


class FakeBatchTrain:
    """Records the configs and dirs of each batch call; returns fake summaries."""

    def __init__(self, wrong_length: bool = False):
        self.calls: list[tuple[list, list]] = []
        self.wrong_length = wrong_length

    def __call__(self, configs, dirs):
        self.calls.append((list(configs), list(dirs)))
        for d in dirs:
            assert (Path(d) / "config.json").is_file()
        summaries = [fake_metrics(c) for c in configs]
        return summaries[:-1] if self.wrong_length else summaries


def test_batch_train_fn_gets_only_missing_configs(tmp_path):
    axes = {"optim.lr": [0.001, 0.01, 0.1], "optim.wd": [0.0, 1e-4]}
    configs = expand(Cfg(), grid(**axes))
    single = FakeTrain()
    sweep(Cfg(), {"optim.lr": [0.01], "optim.wd": [1e-4]}, single, root=tmp_path)
    assert len(single.calls) == 1  # one point already stored

    batch = FakeBatchTrain()
    result = sweep(Cfg(), axes, None, root=tmp_path, batch_train_fn=batch, batch_size=3)
    trained = [c for call_configs, _ in batch.calls for c in call_configs]
    assert trained == [c for c in configs if c != Cfg(optim=Optim(lr=0.01, wd=1e-4))]
    assert [len(c) for c, _ in batch.calls] == [3, 2]
    assert [d for _, dirs in batch.calls for d in dirs] == [run_dir(c, tmp_path) for c in trained]
    assert [r.status for r in result.runs] == ["done"] * 6
    assert result.best.config["optim"]["lr"] == 0.01
    stored = load_run(run_dir(trained[0], tmp_path))
    assert stored.summary["val_acc"] == 0.60 and stored.provenance["batch_size"] == 3

    again = FakeBatchTrain()
    sweep(Cfg(), axes, None, root=tmp_path, batch_train_fn=again)
    assert again.calls == []  # everything stored: batch_train_fn not called at all


def test_batch_train_fn_wrong_length_is_recorded_or_raised(tmp_path):
    axes = {"optim.lr": [0.001, 0.01]}
    result = sweep(Cfg(), axes, None, root=tmp_path, batch_train_fn=FakeBatchTrain(True))
    assert [r.status for r in result.runs] == ["failed", "failed"]
    assert "returned 1 summaries for 2 configs" in result.runs[0].summary["error"]
    assert result.best is None
    with pytest.raises(ValueError, match="returned 1 summaries"):
        sweep(
            Cfg(), axes, None, root=tmp_path, batch_train_fn=FakeBatchTrain(True), on_error="raise"
        )


def test_batch_train_fn_trains_duplicate_points_once(tmp_path):
    batch = FakeBatchTrain()
    result = sweep(
        Cfg(), {"optim.lr": [0.01, 0.1, 0.01]}, None, root=tmp_path, batch_train_fn=batch
    )
    assert [[c.optim.lr for c in configs] for configs, _ in batch.calls] == [[0.01, 0.1]]
    assert result.runs[0] == result.runs[2]


def test_a_killed_multi_group_sweep_keeps_the_groups_that_finished(tmp_path):
    """Each group (group_by) is stored when it finishes: a kill in the second loses only it."""
    axes = {"optim.wd": [0.0, 1e-4], "optim.lr": [0.001, 0.01]}

    class KilledInSecondGroup(FakeBatchTrain):
        def __call__(self, configs, dirs):
            if self.calls:
                raise KeyboardInterrupt
            return super().__call__(configs, dirs)

    by_wd = lambda c: c.optim.wd  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        sweep(Cfg(), axes, None, root=tmp_path, batch_train_fn=KilledInSecondGroup(),
              group_by=by_wd)
    stored = [c for c in expand(Cfg(), grid(**axes)) if load_run(run_dir(c, tmp_path))]
    assert [(c.optim.wd, c.optim.lr) for c in stored] == [(0.0, 0.001), (0.0, 0.01)]
    again = FakeBatchTrain()
    result = sweep(Cfg(), axes, None, root=tmp_path, batch_train_fn=again, group_by=by_wd)
    assert [[c.optim.wd for c in configs] for configs, _ in again.calls] == [[1e-4, 1e-4]]
    assert [r.status for r in result.runs] == ["done"] * 4


def test_load_sweep_reads_only_complete_sweeps(tmp_path):
    from kdlib.sweep import load_sweep

    axes = {"optim.lr": [0.001, 0.01]}
    assert load_sweep(Cfg(), axes, root=tmp_path) is None
    sweep(Cfg(), {"optim.lr": [0.01]}, FakeTrain(), root=tmp_path)
    assert load_sweep(Cfg(), axes, root=tmp_path) is None  # one point missing: nothing trained
    sweep(Cfg(), axes, FakeTrain(), root=tmp_path)
    loaded = load_sweep(Cfg(), axes, root=tmp_path)
    assert loaded.best_point == {"optim.lr": 0.01}
    assert loaded.seed_values("val_acc") == [0.80]


def test_a_resumed_groups_provenance_counts_the_wall_time_of_earlier_processes(tmp_path):
    def batch(configs, dirs):
        return [{**fake_metrics(c), "earlier_wall_time_s": 500.0} for c in configs]

    result = sweep(Cfg(), {"optim.lr": [0.001, 0.01]}, None, root=tmp_path,
                   batch_train_fn=batch, batch_size=2)
    assert all(500.0 <= r.provenance["wall_time_s"] < 560.0 for r in result.runs)
