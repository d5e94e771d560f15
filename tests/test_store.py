"""Tests of kdlib.store (hashing, paths, atomic files, run cache) and kdlib.provenance."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np
import pytest

from kdlib import provenance as prov_mod
from kdlib import store
from kdlib.store import (
    MetricsLog,
    config_hash,
    config_to_dict,
    list_runs,
    load_run,
    run_dir,
    run_or_load,
    save_run,
    summaries_table,
    write_json_atomic,
)


@dataclasses.dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    wd: float = 0.0


@dataclasses.dataclass(frozen=True)
class Cfg:
    preset: str = "smoke"
    section: str = "01_consistency"
    seed: int = 0
    steps: int = 10
    temperature: float = 1.0
    policy: str = "mix"
    mixup: bool = True
    teacher: str | None = None
    depths: tuple[int, ...] = (1, 1)
    optim: Optim = dataclasses.field(default_factory=Optim)
    extra: dict = dataclasses.field(default_factory=lambda: {"b": 1, "a": [1, 2]})


class CountingTrain:
    """Fake train_fn: counts calls, logs two metric records, returns a summary."""

    def __init__(self, summary=None, error: BaseException | None = None):
        self.calls = 0
        self.summary = summary if summary is not None else {"val_acc": 0.5, "test_acc": 0.4}
        self.error = error
        self.seen_dirs: list[Path] = []

    def __call__(self, config, path):
        self.calls += 1
        self.seen_dirs.append(Path(path))
        assert (Path(path) / "config.json").is_file(), "config.json must exist before training"
        assert not (Path(path) / "summary.json").exists()
        log = MetricsLog.in_run(path)
        log.append({"step": 1, "loss": 2.0})
        log.append({"step": 2, "loss": np.float32(1.5)})
        if self.error is not None:
            raise self.error
        return dict(self.summary)


# ----------------------------------------------------------------------------- hashing


def test_config_to_dict_nested_tuples_to_lists_and_field_order():
    d = config_to_dict(Cfg())
    assert list(d) == [f.name for f in dataclasses.fields(Cfg)]
    assert d["optim"] == {"lr": 1e-3, "wd": 0.0}
    assert d["depths"] == [1, 1] and isinstance(d["depths"], list)
    assert d["extra"] == {"b": 1, "a": [1, 2]}
    json.dumps(d)  # plain JSON types only


def test_config_to_dict_numpy_scalars_become_python():
    d = config_to_dict({"lr": np.float32(0.001), "n": np.int64(3), "flag": np.bool_(True)})
    assert d == {"lr": 0.001, "n": 3, "flag": True}
    assert type(d["lr"]) is float and type(d["n"]) is int and type(d["flag"]) is bool


@pytest.mark.parametrize(
    "bad, where", [({"s": {1, 2}}, "config.s"), ({"o": object()}, "config.o"), ({1: "x"}, "1")]
)
def test_config_to_dict_rejects_non_json_values(bad, where):
    with pytest.raises(ValueError, match=where):
        config_to_dict(bad)


def test_config_to_dict_rejects_non_config():
    with pytest.raises(ValueError, match="dataclass"):
        config_to_dict([1, 2])


def test_config_hash_is_pinned():
    # Pinned: an accidental change of the canonical form would orphan every stored run.
    small = {"preset": "smoke", "section": "s", "lr": 0.001, "depths": (1, 2), "flag": True}
    assert store.canonical_json(small) == (
        '{"depths":[1,2],"flag":true,"lr":0.001,"preset":"smoke","section":"s"}'
    )
    assert config_hash(small) == "c259d722297e"
    assert config_hash(Cfg()) == config_hash(config_to_dict(Cfg()))


def test_config_hash_canonical_floats_and_key_order():
    base = {"preset": "p", "section": "s", "lr": 0.001, "T": 1.0}
    assert config_hash(base) == config_hash({"T": 1.0, "section": "s", "preset": "p", "lr": 1e-3})
    assert config_hash(base) == config_hash({**base, "lr": np.float32(1e-3)})
    assert config_hash(base) == config_hash({**base, "lr": 0.0001 * 10})  # 0.0010000000000000002
    assert config_hash(base) == config_hash({**base, "T": 1})
    assert config_hash({**base, "x": 0.3}) == config_hash({**base, "x": 0.1 + 0.2})
    assert config_hash({**base, "x": True}) != config_hash({**base, "x": 1})
    assert config_hash({**base, "x": [1, 2]}) != config_hash({**base, "x": [2, 1]})
    h = config_hash(base)
    assert len(h) == 12 and all(c in "0123456789abcdef" for c in h)


def _leaf_changes(cfg: Cfg) -> list[Cfg]:
    """One config per field, each differing from `cfg` in exactly that field."""
    return [
        dataclasses.replace(cfg, preset="cpu"),
        dataclasses.replace(cfg, section="02_patience"),
        dataclasses.replace(cfg, seed=1),
        dataclasses.replace(cfg, steps=11),
        dataclasses.replace(cfg, temperature=1.0000001),
        dataclasses.replace(cfg, policy="same/ic"),
        dataclasses.replace(cfg, mixup=False),
        dataclasses.replace(cfg, teacher="bit"),
        dataclasses.replace(cfg, depths=(1, 1, 1)),
        dataclasses.replace(cfg, optim=Optim(lr=2e-3)),
        dataclasses.replace(cfg, optim=Optim(wd=1e-4)),
        dataclasses.replace(cfg, extra={"b": 1, "a": [1, 3]}),
        dataclasses.replace(cfg, extra={"b": 1, "a": [1, 2], "c": None}),
    ]


def test_config_hash_sensitive_to_every_field():
    base = Cfg()
    changed = _leaf_changes(base)
    changed_fields = {
        k for c in changed for k, v in config_to_dict(c).items() if config_to_dict(base)[k] != v
    }
    assert changed_fields == {f.name for f in dataclasses.fields(Cfg)}
    hashes = {config_hash(c) for c in changed} | {config_hash(base)}
    assert len(hashes) == len(changed) + 1
    assert config_hash(Cfg()) == config_hash(base)  # deterministic


@dataclasses.dataclass(frozen=True)
class Old:
    preset: str = "smoke"
    section: str = "s"
    lr: float = 1e-3


@dataclasses.dataclass(frozen=True)
class New(Old):
    """Old plus a field added later, marked hash-neutral at its default."""

    eval_on: str | None = dataclasses.field(default=None, metadata={store.HASH_NEUTRAL: True})
    tags: tuple = dataclasses.field(default=(), metadata={store.HASH_NEUTRAL: True})


def test_hash_neutral_field_at_its_default_keeps_the_old_hash():
    assert config_to_dict(New()) == config_to_dict(Old())  # config.json does not show it
    assert config_hash(New()) == config_hash(Old()) == config_hash(config_to_dict(New()))
    set_one = New(eval_on="digits")
    assert config_to_dict(set_one)["eval_on"] == "digits"
    assert config_hash(set_one) != config_hash(Old())
    assert config_hash(New(tags=("a",))) not in {config_hash(Old()), config_hash(set_one)}
    assert config_hash(set_one) == config_hash(config_to_dict(set_one))


# ----------------------------------------------------------------------------- paths


def test_run_dir_layout_and_presets_apart(tmp_path):
    smoke, cpu = Cfg(), Cfg(preset="cpu")
    assert run_dir(smoke, tmp_path) == tmp_path / "smoke" / "01_consistency" / config_hash(smoke)
    assert run_dir(cpu, tmp_path).parts[-3] == "cpu"
    assert run_dir(smoke, tmp_path) != run_dir(cpu, tmp_path)


def test_results_root_env_and_repo_root(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "kdlib").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    (repo / "notebooks" / "deep").mkdir(parents=True)
    monkeypatch.delenv(store.RESULTS_ENV, raising=False)
    monkeypatch.chdir(repo / "notebooks" / "deep")
    assert store.results_root() == repo.resolve() / "results"
    monkeypatch.chdir(tmp_path)
    assert store.results_root() == tmp_path.resolve() / "results"  # no repo: the CWD
    monkeypatch.setenv(store.RESULTS_ENV, str(tmp_path / "elsewhere"))
    assert run_dir(Cfg()).parents[2] == tmp_path / "elsewhere"
    assert store.results_root(tmp_path / "given") == tmp_path / "given"


@pytest.mark.parametrize("preset", ["", "..", "a/b", "smo ke", 3])
def test_run_dir_rejects_unsafe_folder_names(tmp_path, preset):
    with pytest.raises(ValueError, match="preset"):
        run_dir(Cfg(preset=preset), tmp_path)


def test_run_dir_requires_preset_and_section(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class NoSection:
        preset: str = "smoke"

    with pytest.raises(ValueError, match="section"):
        run_dir(NoSection(), tmp_path)


# ----------------------------------------------------------------------------- atomic files


def test_write_json_atomic_roundtrip(tmp_path):
    target = tmp_path / "sub" / "x.json"
    write_json_atomic(target, {"a": np.float64(0.5), "arr": np.arange(3), "cfg": Optim()})
    assert json.loads(target.read_text()) == {
        "a": 0.5,
        "arr": [0, 1, 2],
        "cfg": {"lr": 0.001, "wd": 0.0},
    }
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]


def _failing_fsync(fd):
    raise OSError("disk on fire")  # the temp file is written, but not durable


@pytest.mark.parametrize("breaker", ["fsync", "replace"])
def test_write_json_atomic_leaves_no_partial_file(tmp_path, monkeypatch, breaker):
    old = tmp_path / "old.json"
    write_json_atomic(old, {"version": 1})
    if breaker == "fsync":
        monkeypatch.setattr(store.os, "fsync", _failing_fsync)
    else:

        def broken_replace(src, dst):
            raise OSError("replace failed")

        monkeypatch.setattr(store.os, "replace", broken_replace)
    with pytest.raises((RuntimeError, OSError)):
        write_json_atomic(old, {"version": 2})
    with pytest.raises((RuntimeError, OSError)):
        write_json_atomic(tmp_path / "new.json", {"version": 2})
    monkeypatch.undo()
    assert json.loads(old.read_text()) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]  # no temp, no new.json


def test_read_json_names_corrupt_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": ')
    with pytest.raises(ValueError, match="bad.json"):
        store.read_json(bad)


# ----------------------------------------------------------------------------- metrics log


def test_metrics_log_appends_and_reads(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    assert log.read() == []
    log.append({"step": 1, "acc": np.float32(0.25)})
    log.append({"step": 2, "acc": 0.5, "nan": float("nan")})
    records = log.read()
    assert [r["step"] for r in records] == [1, 2]
    # Strict JSON: a non-finite value is written as null, never as a bare NaN.
    assert records[0]["acc"] == 0.25 and records[1]["nan"] is None
    assert "NaN" not in log.path.read_text()
    assert (tmp_path / "m.jsonl").read_text().count("\n") == 2
    with pytest.raises(ValueError, match="mapping"):
        log.append([1, 2])


def test_metrics_log_ignores_truncated_last_line_and_repairs_on_append(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "lo')  # writer killed mid-line
    log = MetricsLog(path)
    assert log.read() == [{"step": 1}, {"step": 2}]
    log.append({"step": 3})
    assert log.read() == [{"step": 1}, {"step": 2}, {"step": 3}]
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n{"step": 3}\n'


def test_metrics_log_keeps_complete_last_line_without_newline(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}')  # killed between the record and its newline
    log = MetricsLog(path)
    assert log.read() == [{"step": 1}, {"step": 2}]
    log.append({"step": 3})
    assert log.read() == [{"step": 1}, {"step": 2}, {"step": 3}]


def test_metrics_log_corrupt_middle_line_raises(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"st\n{"step": 3}\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2"):
        MetricsLog(path).read()


def test_metrics_log_drop_after_for_resume(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    for step in (1, 2, 3, 4):
        log.append({"step": step})
    log.append({"note": "no step"})
    log.drop_after(2)
    assert log.read() == [{"step": 1}, {"step": 2}, {"note": "no step"}]


# ----------------------------------------------------------------------------- run cache


def test_run_or_load_trains_once_then_loads(tmp_path):
    train = CountingTrain()
    first = run_or_load(Cfg(), train, root=tmp_path)
    assert train.calls == 1
    assert train.seen_dirs == [run_dir(Cfg(), tmp_path)]
    assert first.status == "done" and first.finished
    assert first.summary == {"val_acc": 0.5, "test_acc": 0.4, "status": "done"}
    assert first.history == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]
    assert first.hash == config_hash(Cfg())
    assert sorted(p.name for p in first.path.iterdir()) == [
        "config.json",
        "metrics.jsonl",
        "provenance.json",
        "summary.json",
    ]

    second = run_or_load(Cfg(), train, root=tmp_path)
    assert train.calls == 1  # loaded, not retrained
    assert second == first
    assert second.provenance["config_hash"] == first.hash
    assert second.provenance["preset"] == "smoke" and second.provenance["seed"] == 0

    run_or_load(Cfg(), train, root=tmp_path, retrain=True)
    assert train.calls == 2
    assert len(load_run(first.path).history) == 2  # retrain started from an empty folder


def test_run_or_load_writes_summary_last(tmp_path, monkeypatch):
    written = []
    real = store.write_json_atomic

    def spy(path, obj):
        written.append(Path(path).name)
        real(path, obj)

    monkeypatch.setattr(store, "write_json_atomic", spy)
    run_or_load(Cfg(), CountingTrain(), root=tmp_path)
    assert written[0] == "config.json"
    assert written[-1] == "summary.json"
    assert "provenance.json" in written


def test_diverged_run_is_stored_and_counts_as_finished(tmp_path):
    train = CountingTrain(summary={"status": "diverged", "val_acc": float("nan")})
    record = run_or_load(Cfg(), train, root=tmp_path)
    assert record.status == "diverged" and record.finished
    assert load_run(record.path).status == "diverged"
    run_or_load(Cfg(), train, root=tmp_path)
    assert train.calls == 1


def test_failed_run_propagates_is_recorded_and_retried(tmp_path):
    failing = CountingTrain(error=RuntimeError("nan in step 7"))
    with pytest.raises(RuntimeError, match="nan in step 7"):
        run_or_load(Cfg(), failing, root=tmp_path)
    path = run_dir(Cfg(), tmp_path)
    assert load_run(path) is None  # not finished
    failed = load_run(path, finished_only=False)
    assert failed.status == "failed"
    assert "RuntimeError: nan in step 7" in failed.summary["error"]
    assert len(failed.history) == 2  # partial metrics stay for inspection / resume
    assert not (path / "summary.json").exists()

    ok = CountingTrain()
    record = run_or_load(Cfg(), ok, root=tmp_path)
    assert ok.calls == 1 and record.status == "done"
    assert not (path / "failed.json").exists()


def test_interrupted_run_is_left_running(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_or_load(Cfg(), CountingTrain(error=KeyboardInterrupt()), root=tmp_path)
    path = run_dir(Cfg(), tmp_path)
    assert load_run(path) is None
    assert load_run(path, finished_only=False).status == "running"
    assert not (path / "failed.json").exists()


@pytest.mark.parametrize(
    "summary, match", [([0.5], "dict summary"), ({"status": "weird"}, "status='weird'")]
)
def test_bad_summary_raises_and_is_recorded(tmp_path, summary, match):
    def train(config, path):
        return summary

    with pytest.raises(ValueError, match=match):
        run_or_load(Cfg(), train, root=tmp_path)
    assert load_run(run_dir(Cfg(), tmp_path), finished_only=False).status == "failed"


def test_different_presets_do_not_overwrite(tmp_path):
    a = run_or_load(Cfg(), CountingTrain({"val_acc": 0.1}), root=tmp_path)
    b = run_or_load(Cfg(preset="cpu"), CountingTrain({"val_acc": 0.9}), root=tmp_path)
    assert a.path != b.path
    assert load_run(a.path).summary["val_acc"] == 0.1
    assert load_run(b.path).summary["val_acc"] == 0.9
    assert [r.path for r in list_runs(tmp_path)] == sorted([a.path, b.path])
    assert [r.path for r in list_runs(tmp_path, preset="cpu")] == [b.path]
    # a section typo names the sections stored, as a preset typo names the presets
    with pytest.raises(ValueError, match=r"section='nope' has no folder under .*smoke; the "
                       r"sections stored there: \['01_consistency'\]"):
        list_runs(tmp_path, preset="smoke", section="nope")
    assert list_runs(tmp_path, preset="gpu", section="nope") == []  # no gpu runs at all
    # a folder that is not a preset (results/teachers) is neither read nor named as a section
    (tmp_path / "teachers" / "fmnist_bit_t28").mkdir(parents=True)
    assert [r.path for r in list_runs(tmp_path)] == sorted([a.path, b.path])
    with pytest.raises(ValueError, match=r"the sections stored there: \['01_consistency'\]$"):
        list_runs(tmp_path, section="nope")


def test_list_runs_unfinished_and_hash_collision(tmp_path):
    done = run_or_load(Cfg(seed=1), CountingTrain(), root=tmp_path)
    store.prepare_run(Cfg(seed=2), tmp_path)  # started, never finished
    assert [r.path for r in list_runs(tmp_path)] == [done.path]
    everything = list_runs(tmp_path, include_unfinished=True)
    assert sorted(r.status for r in everything) == ["done", "running"]

    # A folder holding another config (as after a hash collision) is refused, not reused.
    store.write_json_atomic(done.path / "config.json", config_to_dict(Cfg(seed=3)))
    with pytest.raises(ValueError, match="hash"):
        run_or_load(Cfg(seed=1), CountingTrain(), root=tmp_path)


def test_save_run_rejects_unsavable_status(tmp_path):
    with pytest.raises(ValueError, match="running"):
        save_run(tmp_path / "r", Cfg(), {}, {}, "running")


def test_summaries_table_rows(tmp_path):
    a = run_or_load(Cfg(seed=1), CountingTrain({"val_acc": 0.1}), root=tmp_path)
    b = run_or_load(
        Cfg(seed=2, optim=Optim(lr=0.1)), CountingTrain({"val_acc": 0.2}), root=tmp_path
    )
    rows = summaries_table([a, b], ["val_acc", "seed", "optim.lr", "config.preset", "missing"])
    assert rows == [
        {
            "hash": a.hash,
            "status": "done",
            "val_acc": 0.1,
            "seed": 1,
            "optim.lr": 0.001,
            "config.preset": "smoke",
            "missing": None,
        },
        {
            "hash": b.hash,
            "status": "done",
            "val_acc": 0.2,
            "seed": 2,
            "optim.lr": 0.1,
            "config.preset": "smoke",
            "missing": None,
        },
    ]
    with pytest.raises(ValueError, match="list of names"):
        summaries_table([a], "val_acc")


# ----------------------------------------------------------------------------- provenance


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_git_commit_in_tmp_repo_and_outside(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    outside = tmp_path / "plain"
    outside.mkdir()
    assert prov_mod.git_commit(outside) == "unknown"
    assert prov_mod.git_commit(tmp_path / "does-not-exist") == "unknown"

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert prov_mod.git_commit(repo) == "unknown"  # no commit yet
    (repo / "a.txt").write_text("one")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "--short", "HEAD")
    assert prov_mod.git_commit(repo) == head
    (repo / "untracked.txt").write_text("ignored for dirtiness")
    assert prov_mod.git_commit(repo) == head
    (repo / "a.txt").write_text("two")
    assert prov_mod.git_commit(repo) == f"{head}-dirty"

    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # git not found
    assert prov_mod.git_commit(repo) == "unknown"


def test_machine_fields():
    info = prov_mod.machine()
    for key in ("hostname", "platform", "cpu_count", "python", "versions", "jax_backend"):
        assert key in info
    assert info["versions"]["jax"] is not None
    assert info["jax_backend"] == "cpu" and info["device_count"] >= 1
    info["hostname"] = "changed"
    assert prov_mod.machine()["hostname"] != "changed"  # callers get a copy


def test_provenance_fields_and_validation():
    record = prov_mod.provenance(
        Cfg(seed=7), wall_time_s=1.5, started_at=0.0, extra={"config_hash": "abc"}
    )
    assert record["preset"] == "smoke" and record["section"] == "01_consistency"
    assert record["seed"] == 7 and record["wall_time_s"] == 1.5
    assert record["started_at"] == "1970-01-01T00:00:00+00:00"
    assert record["finished_at"] > record["started_at"]
    assert record["config_hash"] == "abc"
    assert record["kdlib_version"] and record["commit"]
    assert record["machine"]["python"]
    assert (
        prov_mod.provenance({"preset": "p"}, wall_time_s=0, started_at="2024-01-02T03:04:05Z")[
            "started_at"
        ]
        == "2024-01-02T03:04:05+00:00"
    )
    with pytest.raises(ValueError, match="wall_time_s"):
        prov_mod.provenance(Cfg(), wall_time_s=-1.0, started_at=0.0)
    with pytest.raises(ValueError, match="started_at"):
        prov_mod.provenance(Cfg(), wall_time_s=1.0, started_at="yesterday")
    with pytest.raises(ValueError, match="'seed'"):
        prov_mod.provenance(Cfg(), wall_time_s=1.0, started_at=0.0, extra={"seed": 3})


_CONCURRENT = """
import sys, time
from pathlib import Path
from kdlib import store

root, log, section = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

def train_fn(config, path):
    with open(log, "a") as f:
        f.write("trained\\n")
    time.sleep(1.5)
    return {"acc": 0.5}

record = store.run_or_load({"preset": "smoke", "section": section, "seed": 1}, train_fn,
                           root=root)
print(record.status, record.summary["acc"])
"""


@pytest.mark.parametrize("sections", [("locks", "locks"), ("01_a", "09_b")])
def test_two_processes_needing_one_run_train_it_once(tmp_path, sections):
    """The second process waits on the config's lock, then loads what the first stored; also
    when the two ask for it for two chapters (one config, one run: store.config_lock)."""
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text(_CONCURRENT)
    log = tmp_path / "trained.log"
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "r"), str(log),
                               section], stdout=subprocess.PIPE, text=True)
             for section in sections]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == ["done 0.5\n", "done 0.5\n"]
    assert log.read_text() == "trained\n"  # trained exactly once


def test_sweep_batch_skips_runs_finished_while_waiting(tmp_path):
    """A batch that finds some of its runs stored after taking the locks trains the rest."""
    from kdlib import sweep as sweeps

    base = {"preset": "smoke", "section": "locks", "lr": 0.1}
    done = dict(base, lr=0.2)
    store.run_or_load(done, lambda c, p: {"acc": 0.2}, root=tmp_path)
    trained = []

    def batch_fn(configs, paths):
        trained.extend(c["lr"] for c in configs)
        return [{"acc": c["lr"]} for c in configs]

    sweeps._train_batch([base, done], batch_fn, tmp_path, "raise")
    assert trained == [0.1]
    assert store.load_run(store.run_dir(base, tmp_path)).summary["acc"] == 0.1


def test_provenance_records_cpu_flags_xla_env_and_versions(tmp_path, monkeypatch):
    """What shapes a run's last bits: CPU model and vector flags, XLA/JAX env, versions."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9B45\n"
                       "flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw\n")
    info = prov_mod.cpu_info(cpuinfo)
    assert info == {"model": "AMD EPYC 9B45",
                    "flags": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw"]}
    assert prov_mod.cpu_info(tmp_path / "absent")["flags"] == []
    env = prov_mod.xla_env({"XLA_FLAGS": "--xla_force_host_platform_device_count=8",
                            "JAX_ENABLE_X64": "0", "HOME": "/root", "OPENBLAS_NUM_THREADS": "1"})
    assert env == {"JAX_ENABLE_X64": "0", "OPENBLAS_NUM_THREADS": "1",
                   "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    machine = prov_mod.machine()
    assert {"cpu", "env", "versions", "device_count", "device_kinds"} <= set(machine)
    assert {"jax", "jaxlib", "flax", "optax"} <= set(machine["versions"])


def test_a_resumed_runs_provenance_counts_the_wall_time_of_earlier_processes(tmp_path):
    """The training loop reports the wall time a resumed run spent before this process; the
    provenance's wall time is the whole run's, not the last process's."""
    def resumed(config, path):
        return {"val_acc": 0.5, "status": "done", "earlier_wall_time_s": 1000.0}

    record = run_or_load(Cfg(), resumed, root=tmp_path)
    assert 1000.0 <= record.provenance["wall_time_s"] < 1000.0 + 60
    assert store.earlier_wall({"earlier_wall_time_s": None}) == 0.0
    assert store.earlier_wall({}) == 0.0


# ----------------------------------------------------------------------------- one config, one run


def test_a_config_another_chapter_stored_reads_that_run_and_trains_nothing(tmp_path):
    """Configs equal but for their section train the same numbers: the second chapter reads
    the first's run (run_or_load and a batched sweep alike) instead of training a copy."""
    from kdlib import sweep as sweeps

    train = CountingTrain()
    first = run_or_load(Cfg(section="01_consistency"), train, root=tmp_path)
    again = run_or_load(Cfg(section="09_dist"), train, root=tmp_path)
    assert train.calls == 1 and again.path == first.path
    assert not run_dir(Cfg(section="09_dist"), tmp_path).exists()

    trained = []

    def batch_fn(configs, paths):
        trained.extend(c.optim.lr for c in configs)
        return [{"val_acc": c.optim.lr} for c in configs]

    base = Cfg(section="01_consistency", steps=3)
    sweeps.sweep(base, {"optim.lr": [0.1]}, None, batch_train_fn=batch_fn, root=tmp_path)
    late = dataclasses.replace(base, section="09_dist")
    result = sweeps.sweep(late, {"optim.lr": [0.1, 0.2]}, None, batch_train_fn=batch_fn,
                          root=tmp_path)
    assert trained == [0.1, 0.2]  # 09's lr 0.1 is 01's run
    assert [r.config["section"] for r in result.runs] == ["01_consistency", "09_dist"]
    assert result.base_config == late
    loaded = sweeps.load_sweep(late, {"optim.lr": [0.1, 0.2]}, root=tmp_path)
    assert [r.path for r in loaded.runs] == [r.path for r in result.runs]


def test_copies_of_one_config_are_read_from_the_first_section_by_every_chapter(tmp_path):
    """Copies stored before the rule: every chapter reads the first section's, whatever the
    numbers say; store.shadowed_runs names the others."""
    early = Cfg(section="01_consistency")
    late = Cfg(section="09_dist")
    save_run(store.prepare_run(late, tmp_path), late, {"val_acc": 0.9}, {}, "done")
    assert store.fresh_run(early, tmp_path).config["section"] == "09_dist"  # the only copy
    save_run(store.prepare_run(early, tmp_path), early, {"val_acc": 0.1}, {}, "done")
    for asking in (early, late):
        assert store.fresh_run(asking, tmp_path).summary["val_acc"] == 0.1
    assert store.shadowed_runs("smoke", tmp_path) == {
        run_dir(late, tmp_path): run_dir(early, tmp_path)}
    other = Cfg(section="01_consistency", seed=1)  # another config: no copy anywhere
    assert store.fresh_run(other, tmp_path) is None
    assert [p.parent.name for p in store.twin_dirs(other, tmp_path)] == [
        "01_consistency", "09_dist"]


def test_a_stale_copy_is_not_read_and_the_fresh_one_shadows_it(tmp_path, monkeypatch):
    """A copy whose inputs changed is skipped (the asking chapter trains its own), and the
    scans of the store follow the same choice: shadowed_runs and read_copy name the stale
    copy, not the run every chapter reads."""
    from kdlib import inputs

    early, late = Cfg(section="01_consistency"), Cfg(section="09_dist")
    save_run(store.prepare_run(early, tmp_path), early, {"val_acc": 0.1}, {}, "done")
    monkeypatch.setattr(inputs, "check_fresh", lambda path, prov, config:
                        "01_consistency" not in str(path))
    train = CountingTrain({"val_acc": 0.9})
    read = run_or_load(late, train, root=tmp_path)
    assert train.calls == 1 and read.path == run_dir(late, tmp_path)
    assert store.fresh_run(early, tmp_path).path == run_dir(late, tmp_path)
    assert store.shadowed_runs("smoke", tmp_path) == {
        run_dir(early, tmp_path): run_dir(late, tmp_path)}
    is_read = store.read_copy("smoke", tmp_path)
    assert is_read(run_dir(late, tmp_path)) and not is_read(run_dir(early, tmp_path))
