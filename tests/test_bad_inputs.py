"""Bad inputs, table-driven: each gives one clear line (the bad value, what is allowed, the
fix; a corrupt file's name) and leaves no run folder or partial result behind.

Nothing here trains or compiles: every input is checked before a folder is made or JAX runs
(kdlib.checks.check_run); a case that reached training fails loudly ("training started").
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kdlib import book, checks, claims, presets, store, sweep, train
from kdlib.checkpoint import Checkpointer
from kdlib.config import DataConfig, ModelConfig, RunConfig
from kdlib.data import embedded
from kdlib.experiments import common

TINY = {"depth": [1, 1, 1, 1], "width": 0.0625, "stem": "small"}
CARD = {"model": "bit", "model_kwargs": {**TINY, "num_classes": 10, "in_channels": 1},
        "image_size": 28}
N_TRAIN, N_TEST = 100, 20


def _idx(array: np.ndarray) -> bytes:
    """idx bytes of a uint8 array (magic 0x0000 08 <ndim>, big-endian dims)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A results root with one good teacher, a tiny Fashion-MNIST in KDLIB_DATA, no training."""
    root = tmp_path / "results"
    monkeypatch.setenv("KDLIB_RESULTS", str(root))
    teacher = root / "teachers" / "t_ok"
    teacher.mkdir(parents=True)
    (teacher / "card.json").write_text(json.dumps(CARD))
    np.savez_compressed(teacher / "weights.npz", **{"head/kernel": np.zeros((4, 10))})
    data_dir = tmp_path / "fmnist"
    data_dir.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        images, labels = embedded.FASHION_MNIST_FILES[split]
        (data_dir / images).write_bytes(gzip.compress(_idx(rng.integers(0, 255, (n, 28, 28)))))
        (data_dir / labels).write_bytes(gzip.compress(_idx(np.arange(n) % 10)))
    monkeypatch.setenv("KDLIB_DATA", str(data_dir))

    def no_training(*args, **kwargs):
        raise AssertionError("training started: the bad input was not caught at the boundary")

    monkeypatch.setattr(train.loop, "train", no_training)
    monkeypatch.setattr(train.loop, "train_group", no_training)
    return {"root": root, "teacher": teacher, "data": data_dir, "tmp": tmp_path}


def good() -> RunConfig:
    """A config that passes every check (on the fixture's tiny Fashion-MNIST)."""
    return RunConfig(
        preset="smoke", section="bad", student=ModelConfig("bit", dict(TINY)),
        data=DataConfig("fashion_mnist", "train[:80]", "train[80:]", "test"),
        teachers=("t_ok",), batch_size=16, student_size=28,
    )


def run(**changes) -> Callable[[dict], object]:
    """The case: train.run of the good config with ``changes`` (dotted keys allowed)."""
    return lambda env: train.run(good().replace(**changes), progress=False)


def sweep_over(axes) -> Callable[[dict], object]:
    return lambda env: train.sweep(good(), axes, progress=False)


def write(rel: str, payload: bytes | str, then: Callable[[dict], object]):
    """Case setup: replace the file ``rel`` (under tmp) with ``payload``, then act."""
    def case(env):
        path = env["tmp"] / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload if isinstance(payload, bytes) else payload.encode())
        env["snapshot"] = _snapshot(env["root"])  # the bad file itself is the setup
        return then(env)
    return case


def remove(rel: str, then: Callable[[dict], object]):
    """Case setup: delete the file ``rel`` (under tmp), then act."""
    def case(env):
        (env["tmp"] / rel).unlink()
        env["snapshot"] = _snapshot(env["root"])
        return then(env)
    return case


def _npy() -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


def stored(corrupt: Callable[[Path], None]):
    """Case: a finished stored run of the good config, corrupted, then loaded by train.run."""
    def case(env):
        config = good()
        path = store.prepare_run(config)
        store.MetricsLog.in_run(path).append({"step": 5, "train_loss": 1.0, "val_acc": 0.5})
        store.save_run(path, config, {"val_acc": 0.5},
                       {"config_hash": path.name, "inputs": store.input_record(config)[
                           "inputs"]}, "done")
        corrupt(path)
        env["snapshot"] = _snapshot(env["root"])  # the stored run itself is the setup
        return train.run(config, progress=False)
    return case


def _truncate_metrics(path: Path) -> None:
    log = path / store.METRICS_FILE
    log.write_text(log.read_text() + '{"step": 10, "train_lo')


def _edit(name: str, change: Callable[[dict], dict]) -> Callable[[Path], None]:
    def corrupt(path: Path) -> None:
        p = path / name
        p.write_text(json.dumps(change(json.loads(p.read_text()))))
    return corrupt


def _list_section_of_a_stored_run(env: dict, section: str) -> object:
    """Stores a finished run of the good config (section 'bad'), then lists ``section``."""
    config = good()
    path = store.prepare_run(config)
    store.save_run(path, config, {"val_acc": 0.5}, {"config_hash": path.name}, "done")
    env["snapshot"] = _snapshot(env["root"])  # the stored run is the setup
    return store.list_runs(preset="smoke", section=section)


def _results_env(env: dict) -> object:
    os.environ["KDLIB_RESULTS"] = str(env["tmp"] / "results.json")  # the fixture restores it
    return store.list_runs()


def _consistency():
    from kdlib.experiments import consistency

    return consistency


def _imagenet():
    from kdlib.experiments import imagenet

    return imagenet


def _views():
    from kdlib import views

    return views


def cli(*argv: str) -> Callable[[dict], object]:
    return lambda env: book.main(list(argv))


def _object_npz(env) -> bytes:
    path = env["tmp"] / "obj.npz"
    np.savez(path, w=np.array([{"evil": 1}], dtype=object))
    return path.read_bytes()


def _ckpt_restore(env):
    ckpt = Checkpointer(env["tmp"] / "ckpt")
    (env["tmp"] / "ckpt" / "4").mkdir()
    (env["tmp"] / "ckpt" / "4" / "garbage").write_text("not a checkpoint")
    return ckpt.restore(4, {"a": np.zeros(2)})


def _ckpt_disk_full(env, monkeypatch):
    ckpt = Checkpointer(env["tmp"] / "ckpt")

    def full(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: write failed: No space left on device\n  at ...")

    monkeypatch.setattr(ckpt._manager, "save", full)
    return ckpt.save(4, {"a": np.zeros(2)})


FMNIST_TRAIN = f"fmnist/{embedded.FASHION_MNIST_FILES['train'][0]}"
TEACHER = "results/teachers/t_ok"
RUN = "results/smoke/bad"
NOT_JSON = "is not valid JSON"

CASES: list[tuple[str, Callable, str]] = [
    # --- config values (RunConfig fields)
    ("preset unknown", run(preset="foo"), r"preset='foo' is not one of \('smoke'.*-p preset cpu"),
    ("preset empty", run(preset=""), r"preset='' is not one of"),
    ("preset int", run(preset=0), r"preset=0 is not one of"),
    ("section path", run(section="../x"), r"section='\.\./x' must be a non-empty folder name"),
    ("section empty", run(section=""), r"section='' must be a non-empty folder name"),
    ("lr str", run(lr="1e-3"), r"lr='1e-3' is not a finite number: write lr=1e-3 without quotes"),
    ("lr zero", run(lr=0), r"lr=0 must be > 0"),
    ("lr nan", run(lr=math.nan), r"lr=nan is not a finite number"),
    ("lr bool", run(lr=True), r"lr=True is not a finite number"),
    ("lr list", run(lr=[1e-3]), r"lr=\[0\.001\] is not a finite number"),
    ("wd negative", run(wd=-1e-4), r"wd=-0\.0001 must be >= 0"),
    ("temperature zero", run(temperature=0), r"temperature=0 must be > 0"),
    ("temperature str", run(temperature="2"), r"temperature='2' is not a finite number"),
    ("momentum 1", run(momentum=1.0), r"momentum=1\.0 must be in \[0, 1\)"),
    ("warmup 1", run(warmup_frac=1.0), r"warmup_frac=1\.0 must be in \[0, 1\)"),
    ("epochs zero", run(epochs=0), r"epochs=0 must be > 0"),
    ("epochs inf", run(epochs=math.inf), r"epochs=inf is not a finite number"),
    ("dist_beta negative", run(dist_beta=-1), r"dist_beta=-1 must be >= 0"),
    ("batch zero", run(batch_size=0), r"batch_size=0 must be >= 1"),
    ("batch float", run(batch_size=12.5), r"batch_size=12\.5 is a float; it must be an int"),
    ("batch str", run(batch_size="128"), r"batch_size='128' is a str; it must be an int "
                                          r"\(write batch_size='128' without quotes\)"),
    ("batch too large", run(batch_size=4096), r"batch_size=4096 exceeds the 80 training images"),
    ("steps_per_call zero", run(steps_per_call=0), r"steps_per_call=0 must be >= 1"),
    ("student_size 1", run(student_size=1), r"student_size=1 must be >= 8"),
    ("student_size float", run(student_size=28.0), r"student_size=28\.0 is a float"),
    ("teacher_size small", run(teacher_size=4), r"teacher_size=4 must be None, an int >= 8"),
    ("teacher_size count", run(teacher_size=(28, 48)), r"gives 2 sizes for 1 teachers"),
    ("fixed crops zero", run(fixed_num_crops=0), r"fixed_num_crops=0 must be >= 1"),
    ("seed negative", run(seed=-1), r"seed=-1 must be >= 0"),
    ("seed str", run(seed="0"), r"seed='0' is a str; it must be an int"),
    ("eval_every negative", run(eval_every=-5), r"eval_every=-5 must be >= 0"),
    ("grad_clip zero", run(grad_clip=0), r"grad_clip=0 must be > 0"),
    ("loss unknown", run(loss="mse"), r"loss='mse' is not one of \('kl', 'dist', 'labels'\)"),
    ("optimizer unknown", run(optimizer="lion"), r"optimizer='lion' is not one of"),
    ("policy unknown", run(policy="mixup"), r"policy='mixup' is not one of"),
    ("kl without teacher", run(teachers=()), r"loss='kl' distills from a teacher: set teachers"),
    ("labels with fixed policy", run(loss="labels", teachers=(), policy="fix/rs"),
     r"policy='fix/rs' needs a teacher"),
    ("unknown field", run(lrr=1e-3), r"unknown config field 'lrr' for RunConfig; allowed"),
    ("unknown nested field", run(**{"data.nmae": "x"}), r"unknown config field 'data\.nmae'"),
    ("student unknown model", run(student=ModelConfig("resnet")),
     r"student\.name='resnet' is not one of \['bit', 'mobilenet_v3'\]"),
    ("student unknown kwarg", run(student=ModelConfig("bit", {"depht": 2})),
     r"student\.kwargs has unknown key\(s\) \['depht'\] for model 'bit'; allowed"),
    ("student not a ModelConfig", run(student="bit"), r"student='bit' must be a ModelConfig"),
    ("shampoo option", run(optimizer="shampoo", shampoo={"blocksize": 3}),
     r"shampoo has unknown option\(s\) \['blocksize'\]; allowed"),
    ("shampoo block 0", run(optimizer="shampoo", shampoo={"block_size": 0}),
     r"shampoo=\{'block_size': 0\}: block_size must be an integer >= 1, got 0"),
    ("student channels", run(student=ModelConfig("bit", {**TINY, "in_channels": 3})),
     r"student\.kwargs in_channels=3, but fashion_mnist images have 1: drop it"),
    ("student classes", run(student=ModelConfig("bit", {**TINY, "num_classes": 5})),
     r"student\.kwargs num_classes=5, but fashion_mnist has 10 classes: drop it"),
    ("big_vision pipeline on embedded data", run(**{"data.pipeline": "big_vision"}),
     r"data\.pipeline='big_vision' is the authors' input pipeline for the paper's tfds "
     r"datasets, not the embedded fashion_mnist"),
    ("shampoo options with adam", run(shampoo={"block_size": 64}),
     r"shampoo=\{'block_size': 64\} sets Shampoo's options, but optimizer='adam' would "
     r"ignore them"),
    ("dist batch 1", run(loss="dist", batch_size=1),
     r"loss='dist' with batch_size=1: .*needs batch_size >= 2"),
    ("labels with a teacher", run(loss="labels", policy="same/ic"),
     r"loss='labels' trains without a teacher, so teachers=\('t_ok',\) would change the "
     r"run's hash but not its training"),
    ("labels with a temperature", run(loss="labels", teachers=(), temperature=4.0),
     r"loss='labels' trains without a teacher, so temperature=4\.0 would change"),
    ("dist weights without dist", run(dist_beta=2.0),
     r"dist_beta=2\.0, dist_gamma=1\.0 weigh DIST's terms, but loss='kl': leave them at 1\.0"),
    ("student depth bad", run(**{"student.kwargs": {**TINY, "depth": [0, 0, 0, 0]}}),
     r"student\.kwargs of model 'bit': depth=\[0, 0, 0, 0\] must be one of"),
    ("student width zero", run(**{"student.kwargs": {**TINY, "width": 0}}),
     r"student\.kwargs of model 'bit': width=0 must be a positive number"),
    ("student stem typo", run(**{"student.kwargs": {**TINY, "stem": "smal"}}),
     r"student\.kwargs of model 'bit': stem='smal' is not one of \('imagenet', 'small'\)"),
    ("mobilenet variant typo", run(student=ModelConfig("mobilenet_v3", {"variant": "medium"})),
     r"student\.kwargs of model 'mobilenet_v3': variant='medium' is not one of"),
    ("dataset typo with a teacher", run(**{"data.name": "fashion_mnistt"}),
     r"data\.name='fashion_mnistt' is not one of"),
    ("dist all zero", run(loss="dist", dist_beta=0, dist_gamma=0),
     r"dist_beta=0 and dist_gamma=0 is zero for every input"),
    # --- teachers and pretrained inits
    ("teacher of another dataset",
     write(f"{TEACHER}/card.json", json.dumps({**CARD, "dataset": "digits"}), run()),
     r"teacher 't_ok' was trained on digits, but this run is evaluated on fashion_mnist"),
    ("init of another width", run(init="t_ok", student=ModelConfig("bit", {**TINY,
                                                                          "width": 0.125})),
     r"init='t_ok' differs from the student in width=0\.0625 vs 0\.125: init needs the "
     r"student's architecture"),
    ("init of another model", run(init="t_ok", student=ModelConfig("mobilenet_v3")),
     r"init='t_ok' is a 'bit' model, the student a 'mobilenet_v3'"),
    ("teachers as str", run(teachers="t_ok"),
     r"teachers='t_ok' must be a tuple of stored teacher names, e\.g\. teachers=\('t_ok',\)"),
    ("teacher missing", run(teachers=("nope",)),
     r"no stored teacher 'nope' in .*; available: \['t_ok'\]\. Run notebooks/00_teachers"),
    ("teacher name path", run(teachers=("../t",)), r"teacher name='\.\./t' must be a non-empty"),
    ("init missing", run(init="gone"), r"no stored teacher 'gone'"),
    ("card corrupt", write(f"{TEACHER}/card.json", "{\"model\": ", run()),
     rf"t_ok/card\.json {NOT_JSON} .*restore it \(git checkout"),
    ("card missing keys", write(f"{TEACHER}/card.json", "{\"model\": \"bit\"}", run()),
     r"t_ok/card\.json lacks the key\(s\) \['model_kwargs', 'image_size'\]"),
    ("card not utf-8", write(f"{TEACHER}/card.json", b"\xff\xfe\x00garbage", run()),
     rf"t_ok/card\.json {NOT_JSON}"),
    ("weights garbage", write(f"{TEACHER}/weights.npz", b"garbage, not a zip", run()),
     r"t_ok/weights\.npz is not a readable weights file \(not an \.npz archive\): restore it"),
    ("weights truncated", lambda env: write(
        f"{TEACHER}/weights.npz", (env["teacher"] / "weights.npz").read_bytes()[:60],
        run())(env), r"t_ok/weights\.npz is not a readable weights file"),
    ("weights pickled", lambda env: write(f"{TEACHER}/weights.npz", _object_npz(env), run())(env),
     r"t_ok/weights\.npz is not a readable weights file \(not an \.npz archive\)"),
    ("weights single npy", write(f"{TEACHER}/weights.npz", _npy(), run()),
     r"t_ok/weights\.npz is not a readable weights file \(a single array"),
    ("weights missing", remove(f"{TEACHER}/weights.npz", run()),
     r"t_ok/weights\.npz is missing: restore it"),
    # --- data
    ("dataset unknown", run(**{"data.name": "mnist"}), r"data\.name='mnist' is not one of"),
    ("eval dataset unknown", run(**{"data.eval_name": "cifar"}),
     r"data\.eval_name='cifar' is not one of"),
    ("split malformed", run(**{"data.train_split": "train[:abc]"}),
     r"data\.train_split='train\[:abc\]' of fashion_mnist: .*[Mm]alformed split"),
    ("split name", run(**{"data.val_split": "validation"}),
     r"data\.val_split='validation' of fashion_mnist: .*validation"),
    ("split not str", run(**{"data.test_split": 5}), r"data\.test_split=5 must be a str"),
    ("train overlaps val", run(**{"data.val_split": "train[40:]"}),
     r"data\.train_split='train\[:80\]' and data\.val_split='train\[40:\]' share 40 images "
     r"of fashion_mnist: use disjoint splits"),
    ("test is val", run(**{"data.test_split": "train[80:]"}),
     r"data\.val_split='train\[80:\]' and data\.test_split='train\[80:\]' share"),
    ("tfds split name", run(**{"data.name": "oxford_iiit_pet", "data.train_split": "validation"}),
     r"Unknown split 'validation' of oxford_iiit_pet .*allowed: \['train', 'test'\]"),
    ("train_size too big", run(**{"data.train_size": 5000}),
     r"data\.train_size=5000 exceeds the 80 images of fashion_mnist 'train\[:80\]'"),
    ("val_size zero", run(**{"data.val_size": 0}), r"data\.val_size=0 must be >= 1"),
    ("classes out of range", run(**{"data.classes": (42,)}),
     r"Bad class id 42 .*allowed: integers in \[0, 10\)"),
    ("classes str", run(**{"data.classes": "0,1"}), r"data\.classes='0,1' must be None or a"),
    ("gz garbage", write(FMNIST_TRAIN, b"not gzip at all", run()),
     r"train-images-idx3-ubyte\.gz is not a readable \.gz file .*reinstall dataset-fashion"),
    ("gz truncated", lambda env: write(
        FMNIST_TRAIN, (env["data"] / FMNIST_TRAIN.split("/")[1]).read_bytes()[:200], run())(env),
     r"train-images-idx3-ubyte\.gz is not a readable \.gz file \(EOFError"),
    ("idx bad magic", write(FMNIST_TRAIN, gzip.compress(b"\x00\x00\x0c\x03" + bytes(40)), run()),
     r"train-images-idx3-ubyte\.gz: bad idx magic 00000c03; expected 00000803"),
    ("idx short", write(FMNIST_TRAIN, gzip.compress(_idx(np.zeros((N_TRAIN, 28, 28)))[:-9]), run()),
     r"train-images-idx3-ubyte\.gz: header says shape \(100, 28, 28\) but holds"),
    ("KDLIB_DATA incomplete", remove("fmnist/t10k-labels-idx1-ubyte.gz", run()),
     r"KDLIB_DATA='.*' does not hold the Fashion-MNIST files"),
    # --- sweeps
    ("sweep axis str", sweep_over({"lr": "1e-3"}), r"axis 'lr'='1e-3' must be a list or tuple"),
    ("sweep axis empty", sweep_over({"lr": []}), r"axis 'lr' is empty; give at least one value"),
    ("sweep unknown key", sweep_over({"lrr": [1e-3]}), r"unknown config key 'lrr'"),
    ("sweep bad value", sweep_over({"lr": [1e-3, "3e-3"]}), r"lr='3e-3' is not a finite number"),
    ("sweep bad preset", sweep_over({"preset": ["smoke", "foo"]}), r"preset='foo' is not one of"),
    ("select a loss by max", lambda env: sweep.best_by_validation([], "val_kl"),
     r"select_metric='val_kl' reads like a loss or error, and mode='max' would pick its "
     r"worst run: pass mode='min'"),
    # --- stored results files
    ("summary corrupt", stored(lambda p: (p / "summary.json").write_text("{\"val")),
     rf"summary\.json {NOT_JSON} .*delete the folder to retrain"),
    ("summary status", stored(_edit("summary.json", lambda s: {**s, "status": "weird"})),
     r"summary\.json has status 'weird'; allowed: \('done', 'diverged'\)"),
    ("config edited", stored(_edit("config.json", lambda c: {**c, "lr": 0.5})),
     r"config\.json holds a config whose hash is not|holds a config whose hash is not"),
    ("summary not an object", stored(lambda p: (p / "summary.json").write_text("[1, 2]")),
     r"summary\.json holds a list, not the run's summary object: restore it"),
    ("provenance corrupt", stored(lambda p: (p / "provenance.json").write_text("[1,")),
     rf"provenance\.json {NOT_JSON}"),
    ("metrics truncated tail", stored(_truncate_metrics),
     r"metrics\.jsonl:2 is not valid JSON .*restore the file .*or delete .* to retrain"),
    ("metrics corrupt line", stored(lambda p: (p / "metrics.jsonl").write_text("{]\n{}\n")),
     r"metrics\.jsonl:1 is not valid JSON"),
    ("claims corrupt", write("results/smoke/01_x/claims.json", "{\"claims\": [",
                             lambda env: claims.load("smoke")), rf"claims\.json {NOT_JSON}"),
    ("claims malformed", write("results/smoke/01_x/claims.json", "{\"claims\": 3}",
                               lambda env: claims.load("smoke")),
     r"claims\.json must hold \{'claims': \[\.\.\.\]\}"),
    ("notebook times corrupt", write("results/smoke/notebook_times.json", "{",
                                     lambda env: book.record_times([], "smoke")),
     rf"notebook_times\.json {NOT_JSON}"),
    # --- checkpoints
    ("checkpoint corrupt", _ckpt_restore,
     r"checkpoint .*ckpt/4 cannot be read \(.*\): delete .*ckpt to restart the run from step 0"),
    ("checkpoint disk full", "disk_full",
     r"cannot write the checkpoint of step 4 to .*ckpt \(RuntimeError: RESOURCE_EXHAUSTED: "
     r"write failed: No space left on device\): free disk space"),
    # --- presets and the notebooks' papermill parameter (presets.resolve)
    ("papermill preset 0", lambda env: presets.resolve(0), r"preset=0 is not one of"),
    ("papermill preset empty", lambda env: presets.resolve(""), r"preset='' is not one of"),
    ("papermill preset case", lambda env: presets.resolve("CPU"), r"preset='CPU' is not one of"),
    ("papermill preset list", lambda env: presets.resolve(["cpu"]),
     r"preset=\['cpu'\] is not one of"),
    ("KDLIB_PRESET unknown", "env_preset", r"KDLIB_PRESET='bogus' is not one of"),
    ("chapter preset", lambda env: common.base_config("tpu", "x", common.fmnist("smoke")),
     r"preset='tpu' is not one of"),
    # --- the kdlib.book command line
    ("cli only without names", cli("run", "--only"),
     r"argument --only: expected at least one argument"),
    ("cli only unmatched", cli("run", "--preset", "smoke", "--only", "99"),
     r"--only \['99'\] matches no notebook"),
    ("cli preset unknown", cli("run", "--preset", "foo"), r"invalid choice: 'foo'"),
    ("cli out into book", cli("run", "--preset", "smoke", "--out", str(book.REPO / "book")),
     r"only the 'cpu' preset's copies go into the book"),
    ("cli toc file missing", cli("run", "--preset", "smoke", "--toc", "--toc-file", "nope.yml"),
     r"nope\.yml"),
    ("cli dir missing", cli("run", "--preset", "smoke", "--dir", "/no/such/dir"),
     r"--dir /no/such/dir is not a folder"),
    ("cli command unknown", cli("build"), r"invalid choice: 'build'"),
    ("cli normalize unmatched", cli("normalize", "--only", "zzz"),
     r"--only \['zzz'\] matches no executed notebook"),
    ("cli normalize dir missing", cli("normalize", "--dir", "/no/such/dir"),
     r"--dir /no/such/dir is not a folder: give the folder of the executed copies"),
    ("runs of a preset typo", lambda env: store.list_runs(preset="cpuu"),
     r"preset='cpuu' is not one of"),
    ("runs of a section typo", lambda env: _list_section_of_a_stored_run(env, "bda"),
     r"section='bda' has no folder under .*; the sections stored there: \['bad'\]"),
    ("KDLIB_RESULTS a file", write("results.json", "{}", lambda env: _results_env(env)),
     r"KDLIB_RESULTS='.*results\.json' is a file, not a folder"),
    # --- the chapters' grids and lengths (a typo would pick another grid without a word)
    ("grid of a loss typo", lambda env: common.sweep_axes("gpu", "label"),
     r"loss='label'; allowed: \['kl', 'dist', 'labels'\]"),
    ("paper grid of an optimizer typo", lambda env: common.paper_imagenet_axes("labels", "SGD"),
     r"optimizer='SGD'; allowed: \['adam', 'sgd', 'shampoo'\]"),
    ("imagenet grid of an optimizer typo",
     lambda env: common.imagenet_axes("cpu", optimizer="adamw"), r"optimizer='adamw'; allowed"),
    ("chapter 01 regime typo", lambda env: _consistency().lengths("cpu", "1K", "mix"),
     r"regime='1K'; cpu has \['1k', '250'\]"),
    ("chapter 03 preset typo", lambda env: _imagenet().lengths("gpuu", "function matching"),
     r"preset='gpuu' is not one of"),
    ("views of a bad key", lambda env: _views().make_views(
        "same/ic", 0, np.zeros((2, 28, 28, 1), np.uint8), student_size=8),
     r"rng=0 must be one JAX PRNG key, e.g\. jax\.random\.key\(0\)"),
    ("views of an array for a key", lambda env: _views().make_views(
        "same/ic", np.zeros((30, 30)), np.zeros((2, 28, 28, 1), np.uint8), student_size=8),
     r"rng=an array must be one JAX PRNG key.*ndarray of dtype float64, shape \(30, 30\)"),
    ("cli colab config missing", cli("colab", "--check", "--config", "nope.yml"), r"nope\.yml"),
]


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_there_are_at_least_60_distinct_cases():
    names = [name for name, _, _ in CASES]
    assert len(names) == len(set(names)) >= 60


@pytest.mark.parametrize(("name", "case", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line_and_leaves_no_trace(
        env, name, case, message, monkeypatch, capsys):
    env["snapshot"] = _snapshot(env["root"])
    if case == "disk_full":
        case = lambda env: _ckpt_disk_full(env, monkeypatch)  # noqa: E731
    elif case == "env_preset":
        monkeypatch.setenv("KDLIB_PRESET", "bogus")
        case = lambda env: presets.resolve(None)  # noqa: E731
    with pytest.raises((ValueError, FileNotFoundError, OSError, SystemExit)) as info:
        case(env)
    if info.type is SystemExit:  # argparse: usage, then one "error:" line
        assert info.value.code == 2
        text = capsys.readouterr().err.strip().splitlines()[-1]
        assert re.match(r"python -m kdlib\.book( \w+)?: error: ", text), text
    else:
        text = str(info.value)
        assert "\n" not in text, f"not one line: {text!r}"
        assert "allow_pickle" not in text
    assert re.search(message, text), f"{text!r} !~ {message!r}"
    after = _snapshot(env["root"])
    assert after == env["snapshot"], f"left behind: {sorted(after ^ env['snapshot'])}"
    assert not list(env["root"].rglob(".*.tmp"))


def test_the_good_config_passes_the_checks(env):
    """The table's base config is valid: each case fails because of its one change."""
    checks.check_run(good())
    # an init of the student's architecture, however its kwargs spell it, is no mismatch
    checks.check_run(good().replace(init="t_ok", student=ModelConfig(
        "bit", {**TINY, "depth": (1, 1, 1, 1), "impl": "xla"})))
    assert store.run_dir(good()).parent.parent == env["root"] / "smoke"
    assert os.environ["KDLIB_DATA"] == str(env["data"])
    assert sweep.grid(lr=[1e-3]) == [{"lr": 1e-3}]


@pytest.mark.parametrize("preset", presets.PRESETS)
def test_every_chapter_config_of_every_preset_passes_the_value_checks(preset):
    """A new boundary check must not refuse a config a chapter builds (one did: mu_dtype with
    SGD, which the paper recipe sets on every ImageNet config): every grid point of every
    chapter, planned lengths included, at every preset."""
    from kdlib.experiments import chapters

    configs = [c for section in chapters.SECTIONS
               for experiment in chapters.experiments(section, preset, planned=True)
               for by_epochs in experiment.values()
               for base, axes in by_epochs.values()
               for c in sweep.expand(base, sweep.grid(**common.extended_axes(base, axes)))]
    assert configs
    for config in configs:
        checks.check_values(config)
