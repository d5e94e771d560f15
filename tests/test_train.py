"""The training engine end to end on tiny digits runs (8x8 px, tiny BiT)."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from kdlib import models, store, teachers, train, views
from kdlib.config import DataConfig, ModelConfig, RunConfig, config_to_dict

TINY = ModelConfig("bit", {"depth": [1, 1, 1, 1], "width": 0.0625, "stem": "small"})
REPO = Path(__file__).resolve().parents[1]
DIGITS = DataConfig("digits", "train[:1097]", "train[1097:]", "test", train_size=256,
                    val_size=100, test_size=100)


def tiny_config(**changes) -> RunConfig:
    base = RunConfig(
        preset="smoke", section="test_train", data=DIGITS, student=TINY, loss="labels",
        policy="same/rc", lr=3e-3, wd=1e-4, batch_size=32, epochs=1.0, student_size=8,
        steps_per_call=2, seed=0,
    )
    return base.replace(**changes)


@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    return tmp_path


@pytest.fixture()
def tiny_teacher(results):
    """A randomly initialized (untrained) teacher stored under the tmp results root."""
    kwargs = {"depth": [1, 1, 1, 1], "width": 0.125, "stem": "small", "num_classes": 10,
              "in_channels": 1}
    model = models.create("bit", rngs=nnx.Rngs(1), **kwargs)
    # A zero-initialized head gives constant logits; randomize it so the teacher has opinions.
    kernel = model.head.kernel
    kernel.value = np.random.default_rng(0).normal(size=kernel.value.shape).astype(np.float32)
    teachers.save("tiny", model, {"model": "bit", "model_kwargs": kwargs, "image_size": 8})
    return "tiny"


def test_labels_run_stores_history_and_summary(results):
    config = tiny_config()
    record = train.run(config, progress=False)
    steps = train.total_steps(config, 256)
    assert record.status == "done"
    assert record.summary["final_step"] == steps == 8
    assert 0.0 <= record.summary["test_acc"] <= 1.0
    assert [h["step"] for h in record.history][-1] == steps
    # Validation at every evaluation; the test split only once, at the end.
    assert len(record.history) > 1 and all("val_acc" in h for h in record.history)
    assert [h["step"] for h in record.history if "test_acc" in h] == [steps]
    assert record.history[-1]["test_acc"] == record.summary["test_acc"]
    assert record.path == store.run_dir(config)
    assert not (record.path / "ckpt").exists()  # checkpoints are removed once finished
    again = train.run(config, progress=False)  # stored: loads, does not train
    assert again.summary == record.summary


def test_checkpoints_are_saved_where_a_stop_waits(results, monkeypatch):
    """A SIGTERM (make queue-park) is acted on only between a group's checkpoint saves, never
    inside them (kdlib.interrupts): a stop between two runs' saves left them a step apart."""
    from kdlib import interrupts
    from kdlib.checkpoint import Checkpointer

    depths = []
    orig = Checkpointer.save

    def save(self, step, state):
        depths.append(interrupts._depth)
        orig(self, step, state)

    monkeypatch.setattr(Checkpointer, "save", save)
    train.train(tiny_config(checkpoint_every=2), results / "run", progress=False)
    assert len(depths) == 4 and all(d > 0 for d in depths)  # steps 2, 4, 6, 8


def test_a_checkpoint_of_another_state_layout_restarts_the_run(results, monkeypatch, caplog):
    """Restoring matches leaves by position: a code change that renames or reorders
    same-shaped leaves would load weights into the wrong slots. The layout logged with each
    checkpoint tells: the same layout resumes, another restarts from step 0 (warned)."""
    import json
    import logging

    from kdlib.checkpoint import Checkpointer

    saves = []
    orig = Checkpointer.save
    monkeypatch.setattr(Checkpointer, "save", lambda self, step, state: (
        saves.append(step), orig(self, step, state)))
    config, run = tiny_config(checkpoint_every=2), results / "run"
    first = train.train(config, run, progress=False)
    assert saves == [2, 4, 6, 8]
    log = run / "metrics.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len({r["layout"] for r in records}) == 1 and "layout" not in first
    saves.clear()
    train.train(config, run, progress=False)  # the same code: resumed at the final step
    assert saves == []
    records[-1]["layout"] = "0123456789abcdef"  # as if another code had saved step 8
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    with caplog.at_level(logging.WARNING, logger="kdlib"):
        again = train.train(config, run, progress=False)
    assert "another training-state layout" in caplog.text and saves == [2, 4, 6, 8]
    assert again["test_acc"] == first["test_acc"]  # trained afresh, deterministically


@pytest.mark.slow
def test_same_config_gives_identical_results(results, tmp_path):
    config = tiny_config(epochs=0.5)
    a = train.train(config, tmp_path / "a", progress=False)
    b = train.train(config, tmp_path / "b", progress=False)
    for key in ("val_acc", "test_acc", "train_loss"):
        assert a[key] == b[key]


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mix", "fix/ic_ens", "ind/rc"])
def test_distillation_runs_for_policies(results, tiny_teacher, policy):
    config = tiny_config(loss="kl", teachers=(tiny_teacher,), policy=policy, epochs=0.25,
                         fixed_num_crops=2)
    summary = train.train(config, results / policy.replace("/", "_"), progress=False)
    assert summary["status"] == "done"
    assert np.isfinite(summary["train_loss"])
    for key in ("val_teacher_acc", "val_agreement", "val_kl", "test_teacher_acc"):
        assert key in summary


def test_diverged_run_is_recorded_not_raised(results):
    config = tiny_config(lr=1e38, grad_clip=1e38, epochs=2.0)  # overflows to inf
    record = train.run(config, progress=False)
    assert record.status == "diverged"


def test_bad_batch_size_is_a_clear_error(results):
    with pytest.raises(ValueError, match="batch_size=512"):
        train.train(tiny_config(batch_size=512), results / "x", progress=False)


RESUME_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from kdlib import train
    sys.path.insert(0, {tests!r})
    from test_train import tiny_config
    config = tiny_config(epochs=2.0, eval_every=4, checkpoint_every=4)
    kill_at = int(os.environ.get("KILL_AT_STEP", "0"))
    if kill_at:
        orig = train.Checkpointer.save
        def save_then_die(self, step, state):
            orig(self, step, state)
            if step >= kill_at:
                os._exit(17)
        train.Checkpointer.save = save_then_die
    summary = train.train(config, sys.argv[1], progress=False)
    print("SUMMARY", summary["test_acc"], summary["val_acc"], summary["train_loss"])
    timed = summary["img_per_s"] * summary["train_time_s"] / config.batch_size
    print("TIMES", summary["earlier_wall_time_s"], summary["untimed_steps"], timed,
          summary["steps"], summary["wall_time_s"])
    print("COMMITS", *summary["earlier_commits"])
    """
)


def test_window_losses_and_checkpoint_minutes(monkeypatch):
    """A resume at a timed checkpoint restores the evaluation window's chunk losses (NaN for a
    run without the record); the interval is a number of minutes >= 0, else a clear error."""
    from kdlib.train.loop import CHECKPOINT_MINUTES, checkpoint_seconds, window_losses

    runs = [[{"step": 4, "val_acc": 0.5}, {"step": 6, "checkpoint": "timed",
                                           "window_losses": [0.5, 0.25]}],
            [{"step": 4, "val_acc": 0.4}]]
    got = window_losses(runs, 6)
    assert [g.tolist()[0] for g in got] == [0.5, 0.25] and all(np.isnan(g[1]) for g in got)
    assert got[0].dtype == np.float32
    assert window_losses(runs, 4) == [] and window_losses([[], []], 0) == []
    monkeypatch.delenv("KDLIB_CHECKPOINT_MINUTES", raising=False)
    assert checkpoint_seconds() == 60 * CHECKPOINT_MINUTES
    monkeypatch.setenv("KDLIB_CHECKPOINT_MINUTES", "0")
    assert checkpoint_seconds() == 0
    for bad in ("-1", "soon", "nan"):
        monkeypatch.setenv("KDLIB_CHECKPOINT_MINUTES", bad)
        with pytest.raises(ValueError, match=f"KDLIB_CHECKPOINT_MINUTES='{bad}'"):
            checkpoint_seconds()


def test_earlier_times_read_the_last_timed_record_at_or_before_the_resumed_step():
    """A resumed run's earlier time is the cumulative time of its last evaluation at or before
    the checkpoint; steps past it (or a log written before times were recorded) are untimed."""
    from kdlib.train.loop import EarlierTimes, earlier_times

    records = [{"step": 4, "train_time_s": 2.0, "wall_time_s": 9.0},
               {"step": 8, "train_time_s": 4.0, "wall_time_s": 12.0},
               {"step": 12, "train_time_s": 6.0, "wall_time_s": 15.0}]
    assert earlier_times(records, 0) == EarlierTimes()
    got = earlier_times(records, 8)
    assert got == EarlierTimes(8, 8, 4.0, 12.0) and got.untimed_steps == 0
    assert earlier_times(records, 10) == EarlierTimes(10, 8, 4.0, 12.0)  # checkpoint past eval
    assert earlier_times(records, 10).untimed_steps == 2
    legacy = [{"step": 4, "val_acc": 0.5}, {"step": 8, "val_acc": 0.6}]
    assert earlier_times(legacy, 8) == EarlierTimes(resumed_at=8)
    assert earlier_times(legacy, 8).untimed_steps == 8

    # a group whose first run diverged after step 4 (its log stops there): the group's time
    # is read from the run that logged furthest
    from kdlib.train.loop import group_earlier_times

    assert group_earlier_times([records[:1], records], 8) == EarlierTimes(8, 8, 4.0, 12.0)
    assert group_earlier_times([legacy, legacy], 8) == EarlierTimes(resumed_at=8)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(results, tmp_path):
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT.format(tests=os.path.dirname(__file__)))
    env = dict(os.environ, KDLIB_RESULTS=str(results), JAX_PLATFORMS="cpu")
    killed = subprocess.run([sys.executable, str(script), str(tmp_path / "resumed")],
                            env=dict(env, KILL_AT_STEP="8"), capture_output=True, text=True)
    assert killed.returncode == 17, killed.stderr[-2000:]
    log = tmp_path / "resumed" / "metrics.jsonl"
    history = [json.loads(x) for x in log.read_text().splitlines()]
    assert history[-1]["step"] == 8
    # Killed after a timed checkpoint between evaluations (every chunk here: steps 2 and 6;
    # 4 and 8 are evaluations): the evaluation window's chunk loss so far is in the log.
    timed_env = dict(env, KDLIB_CHECKPOINT_MINUTES="1e-9")
    killed = subprocess.run([sys.executable, str(script), str(tmp_path / "timed")],
                            env=dict(timed_env, KILL_AT_STEP="6"), capture_output=True, text=True)
    assert killed.returncode == 17, killed.stderr[-2000:]
    timed_log = [json.loads(x) for x in (tmp_path / "timed" / "metrics.jsonl").read_text()
                 .splitlines()]
    assert [(r["step"], r.get("checkpoint")) for r in timed_log] == [
        (2, "timed"), (4, None), (6, "timed")]
    assert len(timed_log[-1]["window_losses"]) == 1  # the chunk from step 4 to 6
    outs, times, commits = {}, {}, {}
    for folder, folder_env in (("resumed", env), ("timed", timed_env), ("straight", env)):
        done = subprocess.run([sys.executable, str(script), str(tmp_path / folder)],
                              env=folder_env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        outs[folder] = [x for x in done.stdout.splitlines() if x.startswith("SUMMARY")]
        times[folder] = [float(x) for x in done.stdout.split("TIMES ")[1].split("\n")[0].split()]
        commits[folder] = done.stdout.split("COMMITS")[1].split()
    assert outs["resumed"] == outs["straight"] and outs["timed"] == outs["straight"]
    evals = {folder: {r["step"]: (r["train_loss"], r["val_acc"]) for r in map(
        json.loads, (tmp_path / folder / "metrics.jsonl").read_text().splitlines())
        if "val_acc" in r} for folder in ("timed", "straight")}
    assert evals["timed"] == evals["straight"]  # the window across the kill averages alike
    records = [json.loads(x) for x in log.read_text().splitlines()]
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps))  # no duplicated evaluations after the resume
    # The time spent before the kill carries over: the summary covers every step, and the
    # evaluation records' cumulative times keep growing across the resume.
    before_kill = next(r for r in history if r["step"] == 8)
    earlier, untimed, timed_steps, total_steps, wall = times["resumed"]
    assert earlier == pytest.approx(before_kill["wall_time_s"]) and untimed == 0
    assert timed_steps == pytest.approx(total_steps) and wall > earlier
    assert times["straight"][:2] == [0.0, 0.0]
    # Each record names the commit that logged it; a resumed run's summary names the commits
    # of the processes before the one that finished it (a parked run, trained in two sessions).
    assert {r["commit"] for r in records} == {records[0]["commit"]} and records[0]["commit"]
    assert commits == {"resumed": [records[0]["commit"]], "timed": [records[0]["commit"]],
                       "straight": []}
    for key in ("train_time_s", "wall_time_s"):
        assert [r[key] for r in records] == sorted(r[key] for r in records)


SHARDED_SCRIPT = textwrap.dedent(
    """
    import sys, json
    import jax
    sys.path.insert(0, {tests!r})
    from test_train import tiny_config
    from kdlib import train
    config = tiny_config(loss="kl", teachers=("tiny",), policy="mix", epochs=0.25)
    summary = train.train(config, sys.argv[1], progress=False)
    print("RESULT", json.dumps({{"devices": jax.device_count(), **summary}}))
    """
)


@pytest.mark.slow
def test_eight_simulated_devices_match_one(results, tiny_teacher, tmp_path):
    """The batch-sharded step on 8 CPU devices gives the 1-device results (float tolerance)."""
    script = tmp_path / "sharded.py"
    script.write_text(SHARDED_SCRIPT.format(tests=os.path.dirname(__file__)))
    outs = {}
    for n in (1, 8):
        env = dict(os.environ, KDLIB_RESULTS=str(results), JAX_PLATFORMS="cpu",
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        done = subprocess.run([sys.executable, str(script), str(tmp_path / f"d{n}")], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
        outs[n] = json.loads(line.split(" ", 1)[1])
    assert outs[1]["devices"] == 1 and outs[8]["devices"] == 8
    assert outs[8]["train_loss"] == pytest.approx(outs[1]["train_loss"], rel=1e-4, abs=1e-5)
    assert outs[8]["val_kl"] == pytest.approx(outs[1]["val_kl"], rel=1e-3, abs=1e-5)
    assert abs(outs[8]["val_acc"] - outs[1]["val_acc"]) <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cpu", "smoke"])  # runs unrolled one by one / vmapped
def test_group_equals_runs_trained_alone(results, tiny_teacher, tmp_path, preset):
    """A vectorized group (different lr and T) gives each run's solo results, with the
    student steps unrolled run by run (CPU) or vmapped (smoke, accelerators)."""
    base = tiny_config(loss="kl", teachers=(tiny_teacher,), policy="mix", epochs=0.5,
                       preset=preset)
    assert train.vectorize_runs(base) == (preset == "smoke")
    configs = [base.replace(lr=1e-3, temperature=1.0), base.replace(lr=3e-3, temperature=2.0)]
    grouped = train.train_group(configs, [tmp_path / "g0", tmp_path / "g1"], progress=False)
    for i, config in enumerate(configs):
        alone = train.train(config, tmp_path / f"a{i}", progress=False)
        assert grouped[i]["group_size"] == 2 and alone["group_size"] == 1
        assert grouped[i]["train_loss"] == pytest.approx(alone["train_loss"], rel=1e-4)
        assert grouped[i]["val_kl"] == pytest.approx(alone["val_kl"], rel=1e-3)
        assert abs(grouped[i]["val_acc"] - alone["val_acc"]) <= 0.02
    assert grouped[0]["train_loss"] != grouped[1]["train_loss"]  # the runs really differ
    history = [json.loads(x) for x in (tmp_path / "g1" / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["step"] == grouped[1]["steps"]


def test_group_rejects_configs_that_differ_beyond_hparams(results, tmp_path):
    configs = [tiny_config(), tiny_config(epochs=2.0, lr=1e-3)]
    with pytest.raises(ValueError, match="epochs"):
        train.train_group(configs, [tmp_path / "a", tmp_path / "b"], progress=False)
    with pytest.raises(ValueError, match="one run_dir per config"):
        train.train_group(configs[:1], [], progress=False)


@pytest.mark.slow
def test_diverged_run_does_not_stop_its_group(results, tmp_path):
    ok, bad = tiny_config(epochs=2.0), tiny_config(epochs=2.0, lr=1e38)
    bad = bad.replace(grad_clip=1e38)
    # same group: grad_clip is not vectorized, so share it; wd=0 (a float 0.0 once dropped the
    # decay from the optimizer state's chain, and the run failed inside optax)
    ok = ok.replace(grad_clip=1e38, wd=0.0)
    out = train.train_group([ok, bad], [tmp_path / "ok", tmp_path / "bad"], progress=False)
    assert [o["status"] for o in out] == ["done", "diverged"]
    assert out[0]["final_step"] == out[0]["steps"]


@pytest.mark.slow
def test_sweep_trains_groups_and_selects_by_validation(results):
    base = tiny_config(epochs=0.5)
    swept = train.sweep(base, {"lr": [1e-3, 3e-3], "epochs": [0.5, 1.0]}, progress=False)
    assert len(swept.runs) == 4 and all(r.status == "done" for r in swept.runs)
    assert {r.summary["group_size"] for r in swept.runs} == {2}  # lr pairs trained together
    best = swept.best
    assert best.summary["val_acc"] == max(r.summary["val_acc"] for r in swept.runs)
    again = train.sweep(base, {"lr": [1e-3, 3e-3], "epochs": [0.5, 1.0]}, progress=False)
    assert [r.hash for r in again.runs] == [r.hash for r in swept.runs]


@pytest.mark.slow
def test_batchnorm_student_trains_and_updates_its_statistics(results):
    """A BatchNorm student (MobileNetV3, BN) trains: its batch statistics move off init."""
    student = ModelConfig("mobilenet_v3", {"variant": "small", "width": 0.25, "norm": "bn",
                                           "stem": "small", "shallow": True})
    config = tiny_config(student=student, epochs=0.25, steps_per_call=2)
    record = train.run(config, progress=False, save_model=True)
    assert record.status == "done" and np.isfinite(record.summary["train_loss"])
    model = train.build_student(config, 10, 1)
    init_stats = [np.array(x) for x in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]
    assert init_stats
    teachers.load_weights(model, record.path / "model.npz")
    trained = [np.array(x) for x in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]
    assert any(not np.allclose(a, b) for a, b in zip(init_stats, trained, strict=True))


@pytest.mark.slow
def test_ensemble_teachers_each_see_the_crop_at_their_own_resolution(results, tiny_teacher):
    """teacher_size=(8, 12): views are cut at 12 px and resized to 8 px for the first teacher."""
    teachers.save("tiny12", teachers.load(tiny_teacher)[0],
                  {**teachers.load_card(tiny_teacher), "image_size": 12})
    ens = train.Teacher((tiny_teacher, "tiny12"), (8, 12))
    images = jax.random.uniform(jax.random.key(0), (4, 12, 12, 1))
    # Jitted, as the engine runs them (eager, each forward compiled ~500 one-op programs: 19
    # s). Separate programs sum in other orders: ~2e-5 apart on logits up to ~13, while a
    # wrong ensemble (one teacher, or the wrong size) is off by half the teachers' gap (> 0.01).
    forward = jax.jit(lambda graphdef, state, x: nnx.merge(graphdef, state)(x),
                      static_argnums=0)
    small = jax.image.resize(images, (4, 8, 8, 1), "linear", antialias=True)
    a = np.asarray(forward(ens.graphdefs[0], ens.states[0], small))
    b = np.asarray(forward(ens.graphdefs[1], ens.states[1], images))
    assert np.abs(a - b).max() > 0.02
    np.testing.assert_allclose(np.asarray(jax.jit(ens.apply)(ens.states, images)),
                               np.mean([a, b], axis=0), rtol=1e-5, atol=1e-4)

    config = tiny_config(loss="kl", teachers=(tiny_teacher, "tiny12"), teacher_size=(8, 12),
                         policy="mix", epochs=0.25)
    summary = train.train(config, results / "ens", progress=False)
    assert summary["status"] == "done" and np.isfinite(summary["train_loss"])
    # The teacher's eval logits: each teacher on the full image at its own size.
    rd = train.load_data(config)
    per = [train.predict(gd, (s,), rd.val.images, size)
           for gd, s, size in zip(ens.graphdefs, ens.states, (8, 12), strict=True)]
    want = train.eval_metrics(per[0], rd.val.labels, np.mean(per, axis=0), "val")
    assert summary["val_teacher_acc"] == pytest.approx(want["val_teacher_acc"])



@pytest.mark.slow
def test_run_distills_on_one_dataset_and_is_scored_on_another(results, tiny_teacher):
    """data.eval_name: noise images for distillation, digits val/test for every evaluation."""
    noise_data = DataConfig("noise", "train[:500]", DIGITS.val_split, DIGITS.test_split,
                            train_size=64, val_size=100, test_size=100, eval_name="digits")
    config = tiny_config(loss="kl", teachers=(tiny_teacher,), policy="mix", epochs=0.5,
                         data=noise_data)
    rd = train.load_data(config)
    assert rd.train.name == "noise" and rd.train.images.shape[1:] == (28, 28, 1)
    assert rd.val.name == rd.test.name == "digits" and len(rd.val) == len(rd.test) == 100
    summary = train.train(config, results / "noise", progress=False)
    ens = train.Teacher((tiny_teacher,), (8,))
    logits = train.predict(ens.graphdefs[0], (ens.states[0],), rd.val.images, 8)
    assert summary["val_teacher_acc"] == pytest.approx(np.mean(logits.argmax(-1) == rd.val.labels))


@pytest.mark.slow
def test_chunk_timer_times_the_group_without_writing(results, tiny_teacher):
    config = tiny_config(loss="kl", teachers=(tiny_teacher,), policy="mix")
    group = [config, config.replace(lr=1e-3)]
    before = sorted(results.rglob("*"))
    timer = train.chunk_timer(group, num_train=64)
    first, second = timer(2), timer(1)
    assert set(first) == {"step_s", "img_per_s", "compile_s"}
    assert first["step_s"] > 0 and first["compile_s"] > 0 and second["compile_s"] == 0.0
    assert first["img_per_s"] == pytest.approx(config.batch_size / first["step_s"])
    assert sorted(results.rglob("*")) == before  # no run dir, no checkpoint
    with pytest.raises(ValueError, match="calls=0"):
        timer(0)
    with pytest.raises(ValueError, match="differ only in"):
        train.chunk_timer([config, config.replace(policy="same/ic")])


def test_host_stack_and_take_equal_the_traced_ones():
    """The host-side stack/slice of a group's state equal jnp's, leaf for leaf and dtype."""
    from kdlib.train.step import host_stack_runs, host_take_run, stack_runs, take_run

    trees = [{"w": np.full((2, 3), i, np.float32), "n": np.int32(i),
              "k": jax.random.key(i)} for i in range(3)]
    host, traced = host_stack_runs(trees), stack_runs(trees)
    for a, b in zip(jax.tree.leaves(host), jax.tree.leaves(traced), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(host["w"], traced["w"])
    one = host_take_run(host, 2)
    np.testing.assert_array_equal(one["w"], take_run(traced, 2)["w"])
    assert one["n"] == 2 and one["w"].shape == (2, 3)
    np.testing.assert_array_equal(jax.random.key_data(one["k"]),
                                  jax.random.key_data(jax.random.key(2)))


def test_smoke_evaluates_in_smaller_batches_with_the_same_logits():
    """Smoke's 256-image splits are not padded to the other presets' 500 (issue 15); the
    batch changes no logit beyond float rounding."""
    from kdlib.train.evaluate import EVAL_BATCH, eval_batch

    assert eval_batch("smoke") == 256 and eval_batch("cpu") == eval_batch("paper") == EVAL_BATCH
    graphdef, state = nnx.split(models.create(TINY.name, rngs=nnx.Rngs(0), num_classes=10,
                                              in_channels=1, **TINY.kwargs))
    images = np.random.default_rng(0).integers(0, 256, (300, 8, 8, 1), dtype=np.uint8)
    small = train.predict(graphdef, (state,), images, 8, eval_batch("smoke"))
    assert small.shape == (300, 10)
    np.testing.assert_allclose(small, train.predict(graphdef, (state,), images, 8),
                               rtol=1e-5, atol=1e-5)


def test_train_chunk_is_reused_only_for_the_same_program():
    """Configs differing in hparams, length or seed share a process's jitted chunk; any other
    field (here the policy) gets its own."""
    from kdlib.train.state import make_mesh, train_chunk

    graphdef, _ = nnx.split(models.create(TINY.name, rngs=nnx.Rngs(0), num_classes=10,
                                          in_channels=1, **TINY.kwargs))
    mesh = make_mesh()
    base = tiny_config()
    chunk = train_chunk(base, graphdef, None, mesh)
    for same in (base.replace(lr=1e-2, wd=0.0), base.replace(epochs=7.0), base.replace(seed=3)):
        assert train_chunk(same, graphdef, None, mesh) is chunk
    assert train_chunk(base.replace(policy="same/ic"), graphdef, None, mesh) is not chunk
    assert train_chunk(base, graphdef, None, mesh, unroll=True) is not chunk


@pytest.mark.slow
def test_split_chunk_trains_as_the_fused_one(results, tiny_teacher, tmp_path, monkeypatch):
    """The smoke preset's two programs (inputs, then students: ``split_chunk``) train a group
    as the one fused program the cpu preset uses (same losses and metrics within float
    tolerance), with the teacher run on the fly and mixup (one policy: the inputs half is the
    fused program's own code, so the fixed policies differ from mix only inside it; ~30 s)."""
    from kdlib.train import state, step

    base = tiny_config(loss="kl", teachers=(tiny_teacher,), policy="mix", epochs=0.5)
    assert step.split_chunk(base) and not step.split_chunk(base.replace(preset="cpu"))
    configs = [base.replace(lr=1e-3), base.replace(lr=3e-3, temperature=2.0)]
    split = train.train_group(configs, [tmp_path / "s0", tmp_path / "s1"], progress=False)
    monkeypatch.setattr(step, "split_chunk", lambda config: False)
    monkeypatch.setattr(state, "_CHUNKS", type(state._CHUNKS)())  # not the split ones again
    fused = train.train_group(configs, [tmp_path / "f0", tmp_path / "f1"], progress=False)
    for s, f in zip(split, fused, strict=True):
        # two XLA programs: their float order differs (1.8e-5 relative on this machine's
        # processor, 2026-12-05; under 1e-5 on the one before)
        assert s["train_loss"] == pytest.approx(f["train_loss"], rel=1e-4)
        assert s["val_kl"] == pytest.approx(f["val_kl"], rel=1e-4)
        assert s["val_acc"] == f["val_acc"] and s["test_acc"] == f["test_acc"]
    assert split[0]["train_loss"] != split[1]["train_loss"]


@pytest.mark.slow
def test_the_students_program_does_not_depend_on_the_policy(results, tiny_teacher):
    """At smoke, the students' half of a split chunk is one jitted function for configs that
    differ only in policy, teachers, data, length, seed or hyper-parameters (chapter 01's eight
    policies trace it once: issue 15), and each config's own build lowers to that very
    program: what the key leaves out (kdlib.train.step.INPUT_ONLY_FIELDS) cannot matter."""
    from kdlib.train.state import make_mesh
    from kdlib.train.step import build_students_chunk, make_train_chunk, stack_runs
    from kdlib.train.teacher import Teacher

    mesh = make_mesh()
    student = models.create(TINY.name, rngs=nnx.Rngs(0), num_classes=10, in_channels=1,
                            **TINY.kwargs)
    graphdef, params, rest = nnx.split(student, nnx.Param, ...)
    teacher = Teacher((tiny_teacher,))
    base = tiny_config(loss="kl", teachers=(tiny_teacher,), policy="fix/rs")
    configs = [base, base.replace(policy="ind/ic", epochs=3.0, seed=4, lr=0.1, wd=0.0),
               base.replace(policy="same/rc", data=dataclasses.replace(DIGITS, train_size=64),
                            section="other", warmup_frac=0.3, temperature=2.0,
                            fixed_num_crops=2, init=None, steps_per_call=3)]

    def text(fn, config):
        opt = train.make_optimizer(config, 10, wd=jnp.asarray(config.wd)).init(params)
        carry = stack_runs([(params, rest, opt)])
        hp, sched = train.hparams([config]), train.schedule_arrays(config, 10)
        inputs = (jax.ShapeDtypeStruct((2, 32, 8, 8, 1), np.float32),
                  jax.ShapeDtypeStruct((2, 32, 10), np.float32), None)
        return fn.lower(carry, hp, sched, jnp.asarray(0, jnp.int32),
                        inputs).as_text(debug_info=False)

    shared = {id(make_train_chunk(c, graphdef, teacher, mesh).students) for c in configs}
    assert len(shared) == 1
    texts = {text(build_students_chunk(c, graphdef, mesh, False), c) for c in configs}
    assert len(texts) == 1
    # ... and a field the key keeps (the loss) does give another program.
    dist = base.replace(loss="dist")
    assert id(make_train_chunk(dist, graphdef, teacher, mesh).students) not in shared
    assert text(build_students_chunk(dist, graphdef, mesh, False), dist) not in texts


@pytest.mark.slow
def test_fixed_targets_run_jitted_except_at_the_cpu_preset(results, tiny_teacher):
    """Fixed targets come from a jitted teacher forward (one program) except at the cpu
    preset, whose stored runs were trained on the op-by-op forward; the two agree to float
    rounding, and the cpu ones equal the plain forward's to the bit."""
    from kdlib.train.batches import load_data
    from kdlib.train.teacher import Teacher, fixed_targets, jit_fixed_targets

    config = tiny_config(loss="kl", teachers=(tiny_teacher,), policy="fix/cc")
    assert jit_fixed_targets(config) and not jit_fixed_targets(config.replace(preset="cpu"))
    teacher, train_ds = Teacher((tiny_teacher,)), load_data(config).train
    jitted = fixed_targets(config, teacher, train_ds, 8)
    eager = fixed_targets(config.replace(preset="cpu"), teacher, train_ds, 8)
    plain = views.precompute_fixed_targets(
        "fix/cc", lambda x: teacher.apply(teacher.states, x), train_ds.images,
        teacher_size=8, batch_size=500)
    assert jitted.shape == (len(train_ds), 10)
    np.testing.assert_array_equal(eager, plain)
    # The untrained tiny teacher amplifies rounding (logits up to ~16 differ by up to 3e-3);
    # the cpu teacher's targets differ by up to 1.6e-5. A wrong crop or teacher is off by ~1.
    np.testing.assert_allclose(jitted, eager, rtol=1e-3, atol=1e-2)


@pytest.mark.slow
def test_a_parked_run_resumes_from_a_fresh_clone_to_the_same_result(results, tmp_path):
    """The cross-session path: a run killed mid-way is parked (its checkpoint committed by
    kdlib.experiments.queue_checkout.park), the repository is cloned afresh (checkpoints are
    gitignored, so only what was committed travels), and the run resumes there to an
    uninterrupted run's result; the finished run's commit then drops the checkpoint from git."""
    from conftest import scratch_repo

    from kdlib.experiments import queue_checkout

    repo, clone = tmp_path / "repo", tmp_path / "clone"
    git = scratch_repo(repo, (REPO / ".gitignore").read_text())
    run = Path("results") / "cpu" / "test_train" / "parkedrun001"  # results/smoke is ignored
    (repo / run).mkdir(parents=True)
    (repo / run / "config.json").write_text(json.dumps(config_to_dict(tiny_config(
        epochs=2.0, eval_every=4, checkpoint_every=4))))
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT.format(tests=os.path.dirname(__file__)))
    env = dict(os.environ, KDLIB_RESULTS=str(results), JAX_PLATFORMS="cpu")
    killed = subprocess.run([sys.executable, str(script), str(repo / run)],
                            env=dict(env, KILL_AT_STEP="8"), capture_output=True, text=True)
    assert killed.returncode == 17, killed.stderr[-2000:]
    assert queue_checkout.park(repo) == 1
    git("clone", "-q", str(repo), str(clone))
    assert (clone / run / "ckpt" / "8").is_dir()
    outs = {}
    for folder in (clone / run, tmp_path / "straight"):
        done = subprocess.run([sys.executable, str(script), str(folder)], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        outs[folder.name] = [x for x in done.stdout.splitlines() if x.startswith("SUMMARY")]
    assert outs[run.name] == outs["straight"]
    shutil.rmtree(clone / run / "ckpt")  # as the store does when it saves the result
    (clone / run / "summary.json").write_text("{}")
    cloned = scratch_repo(clone)  # sets the committer (init on a clone keeps its history)
    assert queue_checkout.commit_finished(clone, "item") == 1
    assert not [p for p in cloned("ls-files").split() if "/ckpt/" in p]


def test_compiled_programs_are_released_past_a_share_of_the_map_limit(monkeypatch):
    """A long queue compiles program after program and each keeps ~2,500 memory regions:
    past a quarter of the kernel's per-process limit the caches are cleared (not before: tests and
    notebooks keep their compiled programs)."""
    from kdlib.train import loop

    cleared = []
    monkeypatch.setattr(loop.jax, "clear_caches", lambda: cleared.append(True))
    monkeypatch.setattr(loop, "map_count", lambda: (15_000, 65_530))
    assert not loop.release_compiled() and not cleared
    monkeypatch.setattr(loop, "map_count", lambda: (20_000, 65_530))
    assert loop.release_compiled() and cleared == [True]
    monkeypatch.setattr(loop, "map_count", lambda: None)  # off Linux: nothing to read
    assert not loop.release_compiled()


def test_compile_cache_entries_too_large_to_load_are_pruned(tmp_path, monkeypatch):
    """jaxlib segfaults loading a very large cached program (a 2 MB thread stack): entries
    above the limit go before a process could read them, at start and before the in-process
    caches are dropped; smaller entries and other files stay."""
    from kdlib.train import loop

    big, small = tmp_path / "jit_chunk-aa-cache", tmp_path / "jit_chunk-bb-cache"
    big.write_bytes(b"x" * 2049)
    small.write_bytes(b"x" * 2048)
    (tmp_path / "notes.txt").write_bytes(b"x" * 4096)
    assert loop.prune_compile_cache(tmp_path, max_bytes=2048) == 1
    assert not big.exists() and small.exists() and (tmp_path / "notes.txt").exists()
    assert loop.prune_compile_cache(tmp_path, max_bytes=2048) == 0
    big.write_bytes(b"x" * 2049)
    monkeypatch.setattr(loop, "CACHE_ENTRY_MAX_BYTES", 2048)
    monkeypatch.setattr(loop, "compile_cache_dir", lambda: str(tmp_path))
    monkeypatch.setattr(loop.jax, "clear_caches", lambda: None)
    monkeypatch.setattr(loop, "map_count", lambda: (20_000, 65_530))
    assert loop.release_compiled() and not big.exists() and small.exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="Linux only")
def test_map_count_reads_this_process_and_the_limit():
    from kdlib.train import loop

    count, limit = loop.map_count()
    assert 0 < count < limit
