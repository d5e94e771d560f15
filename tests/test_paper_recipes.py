"""The `paper` preset against the paper, field by field, and its input pipeline and engine
options against big_vision's.

``tests/data/paper_recipes.csv`` transcribes the paper (and, where it is silent, the authors'
big_vision configs) independently of ``kdlib/experiments/paper_recipes.py``, one row per
field with its source; every paper config the chapters build must agree with it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kdlib import augment, data, store, sweep, teachers, train
from kdlib.config import DataConfig, RunConfig, validate
from kdlib.data import pipelines, resize
from kdlib.experiments import (
    consistency,
    imagenet,
    init,
    out_of_domain,
    paper_recipes,
    patience,
    resolution,
    shampoo,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = ("oxford_flowers102", "oxford_iiit_pet", "food101", "sun397")


def transcription() -> dict[str, dict[str, object]]:
    """``{scope: {field: value}}`` from tests/data/paper_recipes.csv (values are JSON)."""
    out: dict[str, dict[str, object]] = {}
    with open(ROOT / "tests" / "data" / "paper_recipes.csv", newline="") as f:
        for row in csv.DictReader(f):
            assert row["source"].strip(), f"row {row} cites no source"
            out.setdefault(row["scope"], {})[row["field"]] = json.loads(row["value"])
    return out


PAPER = transcription()


def field(config: RunConfig, name: str) -> object:
    """A dotted config field (``data.pipeline``, ``shampoo.block_size``, ...)."""
    value: object = config
    for part in name.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return list(value) if isinstance(value, tuple) else value


def check(config: RunConfig, axes: dict, scope: str) -> None:
    """Every field of ``scope`` in the transcription; ``grid.<name>`` rows are sweep axes."""
    for name, expected in PAPER[scope].items():
        if name == "teacher_prefix":
            assert all(t.startswith(expected) for t in config.teachers), (config.teachers, name)
        elif name.startswith("grid."):
            assert axes[name[5:]] == expected, (scope, name, axes)
        else:
            assert field(config, name) == expected, (scope, name, field(config, name))


def small_data_configs():
    """(config, axes) of every small-dataset distillation config at the paper preset."""
    for regime in consistency.regimes("paper"):
        for by_ep in consistency.arms("paper", regime).values():
            yield from by_ep.values()
    for regime in patience.regimes("paper"):
        yield from patience.arms("paper", regime)["function matching"].values()
    for target in out_of_domain.targets("paper"):
        yield from out_of_domain.arms("paper", target)["in-domain"].values()


def test_small_dataset_paper_configs_match_the_transcription():
    configs = list(small_data_configs())
    assert {c.data.name for c, _ in configs} == set(SMALL)
    for config, axes in configs:
        if config.policy != "mix":  # chapter 01's other policies differ in that field only
            config = config.replace(policy="mix")
        check(config, axes, "small_data")
        validate(config)


def test_imagenet_paper_configs_match_listing_1():
    arms = imagenet.arms("paper")
    for config, axes in arms["function matching"].values():
        epochs = config.epochs
        check(config.replace(epochs=1200.0), {}, "imagenet")
        assert axes == {"lr": [0.03], "wd": [0.0003], "temperature": [1.0]}  # Listing 1's point
        assert epochs in PAPER["epochs_03"]["imagenet2012"]
    # the chapters that vary chapter 03's config keep Listing 1 (and its single-point sweep)
    for chapter in (resolution, init):
        for config, axes in chapter.arms("paper")[next(iter(chapter.ARMS))].values():
            check(config.replace(epochs=1200.0), {}, "imagenet")
            assert axes == {"lr": [0.03], "wd": [0.0003], "temperature": [1.0]}


def test_shampoo_paper_arm_matches_appendix_d():
    for config, axes in shampoo.arms("paper")["Shampoo"].values():
        point = sweep.expand(config, sweep.grid(**axes))
        assert len(point) == 1
        check(point[0], axes, "shampoo")
        assert point[0].optimizer == "shampoo"
        steps = train.total_steps(point[0], paper_recipes.TRAIN_IMAGES["imagenet2012"])
        assert int(train.schedule_arrays(point[0], steps)["warmup"]) == 1800


def test_paper_splits_and_schedule_lengths_match_tables_1_3_4_5():
    for name, splits in PAPER["splits"].items():
        got = data.paper_splits(name)
        assert [got["train"], got["validation"], got["test"]] == splits, name
    tfds_name = dict(zip(("flowers102", "pets", "food101", "sun397"), SMALL, strict=True))
    for regime, (_, lengths) in consistency.regimes("paper").items():
        assert list(lengths) == PAPER["epochs_01"][tfds_name[regime]], regime
    for regime, (_, lengths) in patience.regimes("paper").items():
        assert list(lengths) == PAPER["epochs_02"][tfds_name[regime]], regime
    assert list(imagenet.EPOCHS["paper"]) == PAPER["epochs_03"]["imagenet2012"]
    assert list(resolution.epochs("paper")) == PAPER["epochs_04"]["imagenet2012"]
    assert list(init.epochs("paper")) == PAPER["epochs_06"]["imagenet2012"]
    for arm, sizes in PAPER["resolution_04"].items():
        assert list(resolution.resolutions("paper")[arm]) == sizes
    # Table 4's student rows, as the repository's copy of the paper's CSV has them
    rows = list(csv.DictReader(open(ROOT / "book" / "paper_tables" / "table4_small_datasets.csv")))
    names = {"flowers102": "oxford_flowers102", "pets37": "oxford_iiit_pet",
             "food101": "food101", "sun397": "sun397"}
    for short, name in names.items():
        lengths = [float(r["epochs"]) for r in rows
                   if r["dataset"] == short and r["model"] == "R50x1 student"]
        assert lengths == PAPER["epochs_02"][name]


def test_fix_ic_ens_averages_1000_crops_at_paper_only():
    paper = consistency.arms("paper", "flowers102")["fix/ic_ens"]
    assert {c.fixed_num_crops for c, _ in paper.values()} == {1000}
    cpu = consistency.arms("cpu", "1k")["fix/ic_ens"]
    assert {c.fixed_num_crops for c, _ in cpu.values()} == {8}


def test_new_fields_are_hash_neutral_at_their_defaults_and_checked():
    base = RunConfig(teachers=("t",))
    plain = store.config_to_dict(base)
    for name in ("warmup_steps", "teacher_ensemble", "mu_dtype"):
        assert name not in plain
    assert "pipeline" not in plain["data"]
    for change in ({"warmup_steps": 10}, {"teacher_ensemble": "sum_losses"},
                   {"mu_dtype": "bfloat16"}, {"data.pipeline": "big_vision"}):
        assert store.config_hash(base.replace(**change)) != store.config_hash(base), change
    bad = {"warmup_steps": -1, "teacher_ensemble": "median", "mu_dtype": "float16",
           "data.pipeline": "torchvision"}
    for key, value in bad.items():
        with pytest.raises(ValueError, match=f"{key.split('.')[-1]}={value!r}"):
            validate(base.replace(**{key: value}))
    with pytest.raises(ValueError, match="sum_losses' with policy='fix/rs'"):
        validate(base.replace(teachers=("a", "b"), teacher_ensemble="sum_losses",
                              policy="fix/rs"))


def test_warmup_steps_override_the_fraction_and_cap_at_the_run_length():
    config = RunConfig(warmup_frac=0.5, warmup_steps=1500)
    assert int(train.schedule_arrays(config, 10_000)["warmup"]) == 1500
    assert int(train.schedule_arrays(config, 1_000)["warmup"]) == 1000
    assert int(train.schedule_arrays(config.replace(warmup_steps=None), 1_000)["warmup"]) == 500


@pytest.mark.slow
def test_book_page_is_generated_and_in_the_toc():
    assert paper_recipes.main(["--check", str(ROOT / "book" / "paper_scale.md")]) == 0
    toc = (ROOT / "_toc.yml").read_text()
    assert toc.index("book/running") < toc.index("book/paper_scale") < toc.index("book/00_")
    page = (ROOT / "book" / "paper_scale.md").read_text()
    for nb in paper_recipes.NOTEBOOKS:
        assert paper_recipes.papermill_command(nb) in page
    assert "1 h 10 min on a TPU v2-8" in page


# ----------------------------------------------------------------------------- pipeline


def _wide_image() -> np.ndarray:
    """A 90 x 180 image: black left half, white right half, a grey 10 px band at the top."""
    img = np.zeros((90, 180, 3), np.uint8)
    img[:, 90:] = 255
    img[:10] = 128
    return img


def test_big_vision_eval_crop_is_resize_small_then_central_crop():
    img = np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    ours = resize.resize_small_central_crop(img, 128, 0.8)
    # big_vision: resize_small(160) (shorter side 160, aspect kept), then the central 128 px
    small = np.asarray(jax.image.resize(img.astype(np.float32), (160, 267, 3), "linear",
                                        antialias=True))
    top, left = (160 - 128) // 2, (267 - 128) // 2
    ref = np.clip(np.rint(small[top:top + 128, left:left + 128]), 0, 255)
    assert ours.shape == (128, 128, 3)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="fraction=1.5 must lie in"):
        resize.resize_small_central_crop(img, 128, 1.5)


def test_full_layout_crops_see_off_centre_content_with_true_aspect():
    img = _wide_image()
    square, aspect = resize.resize_full(img, 64)
    assert square.shape == (64, 64, 3) and aspect == pytest.approx(2.0)
    # boxes at the far left and right read the original's edges (a centre square, the old
    # storage, keeps only its middle half: columns 45-135 of 180)
    left = augment.crop_resize(square[None], jnp.asarray([[0.2, 0.0, 0.8, 0.2]]), 16)
    right = augment.crop_resize(square[None], jnp.asarray([[0.2, 0.8, 0.8, 0.2]]), 16)
    assert float(left.max()) == 0.0 and float(right.min()) > 254.9
    # inception boxes with the true aspect: pixel aspect (w * W) / (h * H) within [3/4, 4/3]
    u = jax.random.uniform(jax.random.key(0), (512, 22))
    boxes = augment.inception_boxes_from_uniforms(u, (0.05, 1.0), (3 / 4, 4 / 3),
                                                  jnp.full((512,), 2.0))
    pixel_aspect = boxes[:, 3] * 2.0 / boxes[:, 2]
    assert float(pixel_aspect.min()) >= 0.75 - 1e-4 and float(pixel_aspect.max()) <= 4 / 3 + 1e-4
    assert float((boxes[:, 1] + boxes[:, 3]).max()) <= 1 + 1e-6


tfds = pytest.importorskip("tensorflow_datasets")


@pytest.fixture
def mock_world(tmp_path, monkeypatch):
    monkeypatch.setenv(store.RESULTS_ENV, str(tmp_path / "results"))
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        yield tmp_path


def test_big_vision_pipeline_on_mock_flowers(mock_world):
    """Train split stored whole with aspects; val/test as big_vision's central crops."""
    splits = data.paper_splits("oxford_flowers102")
    d = DataConfig("oxford_flowers102", splits["train"], splits["validation"], splits["test"],
                   pipeline="big_vision")
    config = RunConfig(data=d, student_size=32, loss="labels", policy="same/ic")
    rd = train.load_data(config)
    assert rd.train.aspect is not None and rd.train.aspect.shape == (len(rd.train),)
    assert rd.train.images.shape[1:] == (160, 160, 3) and rd.val.aspect is None
    assert rd.val.images.shape[1:] == (32, 32, 3)
    raw = tfds.data_source("oxford_flowers102", split=splits["validation"])
    fraction = pipelines.crop_fraction("oxford_flowers102")
    assert fraction == 0.8  # resize_small(160) | central_crop(128)
    for i, stored in enumerate(rd.val.images):
        expected = resize.resize_small_central_crop(np.asarray(raw[i]["image"]), 32, fraction)
        np.testing.assert_array_equal(stored, expected)
    train_raw = tfds.data_source("oxford_flowers102", split=splits["train"])
    shapes = [np.asarray(train_raw[i]["image"]).shape for i in range(len(train_raw))]
    np.testing.assert_allclose(rd.train.aspect, [w / h for h, w, _ in shapes], rtol=1e-6)
    for i in range(len(rd.train)):  # the whole image, squashed: equal to resize_full's
        np.testing.assert_array_equal(
            rd.train.images[i], resize.resize_full(np.asarray(train_raw[i]["image"]), 160)[0])


def _tiny_teacher(name: str, classes: int, seed: int) -> None:
    kwargs = {"depth": [1, 1, 1, 1], "width": 0.0625, "num_classes": classes, "in_channels": 3}
    teachers.save(name, teachers.build("bit", kwargs, seed),
                  {"model": "bit", "model_kwargs": kwargs, "image_size": 16})


@pytest.mark.slow
def test_sum_losses_teacher_stacks_each_teachers_logits(tmp_path, monkeypatch):
    monkeypatch.setenv(store.RESULTS_ENV, str(tmp_path))
    _tiny_teacher("a", 5, 0)
    _tiny_teacher("b", 5, 1)
    x = jax.random.uniform(jax.random.key(0), (4, 16, 16, 3), minval=-1, maxval=1)
    summed = train.Teacher(("a", "b"), ensemble="sum_losses")
    mean = train.Teacher(("a", "b"))
    # One jitted program, as in the train step (eager, the forwards compiled ~260 one-op
    # programs: 13 s of the edit-test loop).
    each, summed_targets, mean_targets = jax.jit(lambda x: (
        summed.apply_each(summed.states, x), summed.targets(summed.states, x),
        mean.targets(mean.states, x)))(x)
    np.testing.assert_allclose(summed_targets, jnp.stack(each), rtol=1e-6)
    np.testing.assert_allclose(mean_targets[0], (each[0] + each[1]) / 2, rtol=1e-5, atol=1e-6)
    probs = [np.asarray(jax.nn.softmax(e)) for e in each]
    np.testing.assert_allclose(np.exp(summed.eval_logits([np.asarray(e) for e in each])),
                               (probs[0] + probs[1]) / 2, rtol=1e-5)


@pytest.mark.slow
def test_paper_config_with_two_teachers_trains_on_mock_flowers(mock_world):
    """big_vision's pipeline and summed KL terms, end to end on tfds mock data."""
    paper = consistency.arms("paper", "flowers102")["mix"][1000.0][0]
    _tiny_teacher("t1", 102, 0)
    _tiny_teacher("t2", 102, 1)
    config = paper.replace(
        teachers=("t1", "t2"), student=paper.student.__class__("bit", {"depth": [1, 1, 1, 1],
                                                                       "width": 0.0625}),
        student_size=16, batch_size=4, epochs=1.2, steps_per_call=1)
    assert config.teacher_ensemble == "sum_losses" and config.data.pipeline == "big_vision"
    summary = train.train(config, mock_world / "run", progress=False)
    assert summary["status"] == "done" and summary["final_step"] == summary["steps"] >= 2
    assert np.isfinite(summary["train_loss"]) and 0 <= summary["test_agreement"] <= 1


# ----------------------------------------------------------------------------- accelerators


def test_gpu_and_paper_batches_divide_over_8_devices():
    """A GPU is one device, a TPU v2-8 / v3-8 eight, a Colab v5e one: batches must split."""
    from kdlib.experiments import cross_family, dist_loss

    for preset in ("gpu", "paper"):
        experiments = [imagenet.arms(preset), shampoo.arms(preset), init.arms(preset),
                       resolution.arms(preset), cross_family.arms(preset),
                       dist_loss.arms(preset)]
        experiments += [consistency.arms(preset, r) for r in consistency.regimes(preset)]
        experiments += [patience.arms(preset, r) for r in patience.regimes(preset)]
        for experiment in experiments:
            for by_ep in experiment.values():
                for config, _ in by_ep.values():
                    assert config.batch_size % 8 == 0, (preset, config.section, config.batch_size)


LOWER_PAPER_STEP = textwrap.dedent("""
    import jax, jax.numpy as jnp
    from flax import nnx
    from jax.sharding import NamedSharding, PartitionSpec as P
    from kdlib import models, train
    from kdlib.experiments import consistency

    class AbstractTeacher(train.Teacher):
        def __init__(self, model):
            self.names, self.cards, self.sizes = ("t",), [{"image_size": 128}], (128,)
            gd, state = nnx.split(model)
            self.graphdefs, self.states = [gd], [state]

    config = consistency.arms("paper", "flowers102")["mix"][1000.0][0].replace(
        batch_size=64, steps_per_call=1)
    mesh = train.make_mesh()
    assert mesh.size == 8
    kw = dict(num_classes=102, in_channels=3)
    teacher = AbstractTeacher(nnx.eval_shape(lambda: models.create(
        "bit", depth=152, width=2, rngs=nnx.Rngs(0), **kw)))
    student = nnx.eval_shape(lambda: models.create("bit", depth=50, width=1,
                                                   rngs=nnx.Rngs(0), **kw))
    student.train()
    graphdef, params, rest = nnx.split(student, nnx.Param, ...)
    tx = train.make_optimizer(config, 100)
    opt = jax.eval_shape(tx.init, params)
    rep = NamedSharding(mesh, P())
    def spec(x):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep)
    stack = lambda t: jax.tree.map(lambda x: jax.ShapeDtypeStruct((1, *x.shape), x.dtype,
                                                                  sharding=rep), t)
    carry = stack((params, rest, opt))
    images = jax.ShapeDtypeStruct((256, 160, 160, 3), jnp.uint8, sharding=rep)
    consts = (images, jax.ShapeDtypeStruct((256,), jnp.int32, sharding=rep),
              jax.ShapeDtypeStruct((1, 102), jnp.float32, sharding=rep),
              jax.tree.map(spec, teacher.states),
              jax.ShapeDtypeStruct((256,), jnp.float32, sharding=rep))
    hp = jax.tree.map(spec, train.hparams([config]))
    sched = jax.tree.map(spec, train.schedule_arrays(config, 100))
    chunk = train.make_train_chunk(config, graphdef, teacher, mesh)
    lowered = chunk.lower(carry, consts, hp, sched,
                          jax.ShapeDtypeStruct((), jnp.int32, sharding=rep))
    out_carry, loss = lowered.out_info
    text = lowered.as_text()
    n_teacher = sum(x.size for x in jax.tree.leaves(teacher.states))
    print("OK", loss.shape, n_teacher, "sharding" in text, "bf16" in text)
""")


@pytest.mark.slow
def test_paper_pair_lowers_as_one_sharded_step_on_8_devices():
    """R152x2 -> R50x1 at 128 px, policy mix, big_vision pipeline: one jitted chunk over an
    8-device mesh, lowered (not compiled: compiling R152x2 takes minutes on 2 CPU cores)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", LOWER_PAPER_STEP], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    ok, shape, n_teacher, sharded, bf16 = out.stdout.split()[-5:]
    assert ok == "OK" and shape == "(1,)"
    assert 230e6 < int(n_teacher) < 240e6  # BiT-R152x2: ~236M parameters
    assert sharded == "True" and bf16 == "True"  # batch sharded; Adam's mu in bfloat16


def test_the_command_line_names_a_bad_page_path_and_its_whole_description(tmp_path, capsys):
    """--write into a folder or a missing folder, --check of a folder or a missing page: one
    line naming the path and what is wrong (not a traceback, not "out of date"), exit status
    2, before the page is computed; --help describes the module in whole sentences."""
    for argv, message in (
            (["--write", str(tmp_path / "no" / "x.md")], f"its folder {tmp_path / 'no'} does "
                                                          "not exist"),
            (["--write", str(tmp_path)], f"--write {tmp_path} is a folder, not a file"),
            (["--check", str(tmp_path / "x.md")], f"--check {tmp_path / 'x.md'} is missing"),
            (["--check", str(tmp_path)], f"--check {tmp_path} is a folder, not a file")):
        with pytest.raises(SystemExit) as exit_info:
            paper_recipes.main(argv)
        assert exit_info.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert message in last and "out of date" not in last, last
    with pytest.raises(SystemExit) as exit_info:
        paper_recipes.main(["--help"])
    assert exit_info.value.code == 0
    assert ("where each number comes from, what a chapter costs to run, and what still differs "
            "from the paper.") in " ".join(capsys.readouterr().out.split())
