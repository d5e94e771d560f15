"""A run's identity covers what its inputs are: changing a teacher's weights, a pretrained init
or a dataset file retrains the runs that read it (kdlib.inputs, kdlib.store.fresh_run).

No training: a counting train_fn stands in for kdlib.train, the store logic is the real one.
"""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
from pathlib import Path

import pytest

from kdlib import inputs, migrate_inputs, store, sweep
from kdlib.config import DataConfig, RunConfig

REPO = Path(__file__).resolve().parents[1]


class Counting:
    """train_fn that counts its calls and returns a finished summary."""

    def __init__(self):
        self.calls = 0

    def __call__(self, config, path):
        self.calls += 1
        return {"val_acc": 0.5, "test_acc": 0.5}

    def batch(self, configs, paths):
        return [self(c, p) for c, p in zip(configs, paths, strict=True)]


@pytest.fixture
def results(tmp_path, monkeypatch):
    """An empty results root (KDLIB_RESULTS) with two stored teachers t1 and t2."""
    root = tmp_path / "results"
    monkeypatch.setenv("KDLIB_RESULTS", str(root))
    for name in ("t1", "t2"):
        folder = root / "teachers" / name
        folder.mkdir(parents=True)
        (folder / "weights.npz").write_bytes(f"weights of {name}".encode())
        (folder / "card.json").write_text("{}")
    return root


def _config(**changes) -> RunConfig:
    return RunConfig(section="inputs", data=DataConfig("noise"), teachers=("t1",)).replace(
        **changes)


def _replace_file(path: Path, payload: bytes) -> None:
    path.write_bytes(payload)


def test_file_hash_is_cached_and_follows_changes(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"one")
    first = inputs.file_sha256(f)
    assert inputs.file_sha256(f) == first
    f.write_bytes(b"two, longer")
    assert inputs.file_sha256(f) != first


def test_inputs_name_teachers_init_and_data(results):
    keys = set(inputs.of(_config(init="t2", **{"data.eval_name": "digits"})))
    assert {"teachers/t1/weights.npz", "teachers/t2/weights.npz",
            "digits/digits.csv.gz"} <= keys
    assert inputs.of({"preset": "smoke", "section": "x"}) == {}  # not a RunConfig


@pytest.mark.parametrize("changed", ["teacher", "init"])
def test_changing_an_input_retrains_the_run(results, caplog, changed):
    config = _config(init="t2")
    train = Counting()
    first = store.run_or_load(config, train)
    assert first.provenance["inputs"]["teachers/t1/weights.npz"] == inputs.file_sha256(
        results / "teachers/t1/weights.npz")
    store.run_or_load(config, train)
    assert train.calls == 1  # unchanged inputs: reused
    name = "t1" if changed == "teacher" else "t2"
    _replace_file(results / "teachers" / name / "weights.npz", b"retrained weights")
    with caplog.at_level(logging.WARNING, logger="kdlib"):
        again = store.run_or_load(config, train)
    assert train.calls == 2
    assert f"teachers/{name}/weights.npz changed" in caplog.text and "stale" in caplog.text
    assert again.provenance["inputs"][f"teachers/{name}/weights.npz"] == inputs.file_sha256(
        results / "teachers" / name / "weights.npz")
    store.run_or_load(config, train)
    assert train.calls == 2  # the retrained run is fresh


def test_an_unfinished_run_resumes_only_on_the_inputs_it_started_on(results, caplog):
    """A run parked half-way whose teacher is retrained meanwhile must not resume its
    checkpoint against the new teacher (a mixed run that would then pass as fresh): its
    checkpoints and log go and it trains from step 0. Same inputs: the resume is kept."""
    config = _config()
    path = store.prepare_run(config)
    started = json.loads((path / store.STARTED_INPUTS_FILE).read_text())
    assert started == inputs.of(config) and "teachers/t1/weights.npz" in started
    (path / store.CHECKPOINT_DIR / "40").mkdir(parents=True)
    (path / "metrics.jsonl").write_text('{"step": 40}\n')
    assert store.prepare_run(config) == path  # the next session, same inputs
    assert (path / store.CHECKPOINT_DIR / "40").is_dir() and (path / "metrics.jsonl").is_file()
    _replace_file(results / "teachers/t1/weights.npz", b"retrained weights")
    with caplog.at_level(logging.WARNING, logger="kdlib"):
        store.prepare_run(config)
    assert not (path / store.CHECKPOINT_DIR).exists() and not (path / "metrics.jsonl").exists()
    assert "restarts from step 0: teachers/t1/weights.npz changed" in caplog.text
    assert json.loads((path / store.STARTED_INPUTS_FILE).read_text()) == inputs.of(config)
    store.save_run(path, config, {"val_acc": 0.5}, {}, "done")  # provenance holds them now
    assert not (path / store.STARTED_INPUTS_FILE).exists()


def test_changing_a_dataset_file_retrains(results, tmp_path, monkeypatch):
    data_dir = tmp_path / "fmnist"
    data_dir.mkdir()
    from kdlib.data import embedded

    for pair in embedded.FASHION_MNIST_FILES.values():
        for name in pair:
            (data_dir / name).write_bytes(gzip.compress(name.encode()))
    monkeypatch.setenv("KDLIB_DATA", str(data_dir))
    config = _config(**{"data.name": "fashion_mnist"})
    train = Counting()
    store.run_or_load(config, train)
    store.run_or_load(config, train)
    assert train.calls == 1
    (data_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"other labels"))
    store.run_or_load(config, train)
    assert train.calls == 2


def test_a_sweep_retrains_only_the_runs_of_the_changed_teacher(results):
    train = Counting()
    axes = {"teachers": [("t1",), ("t2",)], "lr": [1e-3, 3e-3]}
    sweep.sweep(_config(), axes, None, batch_train_fn=train.batch)
    assert train.calls == 4
    sweep.sweep(_config(), axes, None, batch_train_fn=train.batch)
    assert train.calls == 4
    _replace_file(results / "teachers/t2/weights.npz", b"new t2")
    result = sweep.sweep(_config(), axes, None, batch_train_fn=train.batch)
    assert train.calls == 6
    assert [r.status for r in result.runs] == ["done"] * 4
    mates = result.runs[2].provenance["group"]
    assert sorted(mates) == sorted(r.hash for r in result.runs[2:])


def test_a_run_without_the_record_is_stale_until_migrated(results, tmp_path):
    """Old-format runs (no "inputs" in provenance) are retrained unless migrated from git."""
    config = _config()
    train = Counting()
    record = store.run_or_load(config, train)
    prov_path = record.path / store.PROVENANCE_FILE
    prov = json.loads(prov_path.read_text())
    del prov["inputs"]
    prov["commit"] = "unknown"
    prov_path.write_text(json.dumps(prov))
    assert store.fresh_run(config) is None

    # Commit the teacher and the run, then migrate: the run is fresh again.
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True,
                                    capture_output=True)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "kdlib").mkdir()
    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "runs")
    counts = migrate_inputs.migrate(results)
    assert counts == {f"{migrate_inputs.FIRST_HOLDING} (unknown)": 1}
    assert store.fresh_run(config) is not None

    # The migration recorded the committed weights, so replacing them makes the run stale.
    _replace_file(results / "teachers/t1/weights.npz", b"changed after the commit")
    assert store.fresh_run(config) is None


def test_every_stored_cpu_run_saw_todays_inputs(monkeypatch):
    """The committed runs carry input hashes equal to today's files: none would retrain."""
    monkeypatch.setenv("KDLIB_RESULTS", str(REPO / "results"))  # its teachers
    records = store.list_runs(REPO / "results", preset="cpu")
    assert len(records) > 50
    stale = {r.hash: inputs.stale(r.provenance.get("inputs"), inputs.of(r.config))
             for r in records}
    stale = {h: why for h, why in stale.items() if why}
    assert not stale, f"run `python -m kdlib.migrate_inputs` (runs stored without it): {stale}"
    assert all(None not in inputs.of(r.config).values() for r in records[:3])  # all found


@pytest.mark.parametrize("argv", [["--dry-run"], []])
def test_migrating_a_results_folder_that_does_not_exist_is_a_usage_error(
        tmp_path, capsys, argv):
    """A missing --results finds no run and would print nothing and succeed: refused, named."""
    missing = tmp_path / "nonexistent"
    with pytest.raises(SystemExit) as exit_info:
        migrate_inputs.main(["--results", str(missing), *argv])
    assert exit_info.value.code == 2
    assert (f"--results {missing} is not a folder: give the results folder"
            in capsys.readouterr().err.strip().splitlines()[-1])
