"""The protocol shared by the distillation chapters: data regimes, equal sweeps, presets.

Every compared arm of a chapter is a set of sweeps, one per schedule length, with the same
hyper-parameter grid (:func:`sweep_axes`) and the same number of steps; the best run is
chosen on validation and its test accuracy is reported (section 3.1 of the paper).

An experiment is a plain nested dict ``{arm: {epochs: (base_config, axes)}}`` that a notebook
prints, runs with :func:`run_arms` and plots with :mod:`kdlib.plots`. This module builds the
configs (the recipes every chapter starts from); :mod:`kdlib.experiments.arms` runs the arms
and tables what they give (its names are re-exported here: ``common.run_arms``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kdlib import data, presets, sweep, teachers, train  # noqa: F401  (sweep, train: tests patch)
from kdlib.config import LOSSES, OPTIMIZERS, DataConfig, ModelConfig, RunConfig
from kdlib.experiments import paper_recipes
from kdlib.experiments import teachers as teacher_chapter
from kdlib.experiments.arms import (  # noqa: F401  (re-exported: common.run_arms, ...)
    MAX_SEEDS,
    SEEDS,
    Arms,
    describe,
    model_costs,
    replicate,
    results_table,
    run_arms,
    save_table,
    seed_cells,
    seed_columns,
    selection_noise,
    throughput_table,
    train_extras_default,
)
from kdlib.experiments.grids import (  # noqa: F401  (re-exported)
    LADDER_BEYOND,
    LADDERS,
    SHORT_EPOCHS,
    SHORT_TEMPERATURES,
    at_edge,
    at_ladder_end,
    comparison_ladders,
    edge_report,
    extended_axes,
    ladders_for,
    open_ends,
    widen,
)
from kdlib.experiments.regimes import fm_section, small_data_regime
from kdlib.experiments.run_keys import (  # noqa: F401  (re-exported)
    config_key,
    noise_regime,
    point_hash,
    seed_family,
    training_key,
)
from kdlib.experiments.shared_points import (  # noqa: F401  (re-exported)
    elsewhere_report,
    shared_points,
    shared_points_report,
)
from kdlib.experiments.store_stats import (  # noqa: F401  (re-exported)
    selection_bias,
    selection_bias_report,
    store_means,
    store_noise,
    store_noise_table,
)

# The paper's grid (section 3.1): every distillation setting sweeps all of these.
PAPER_GRID = {
    "lr": [3e-4, 1e-3, 3e-3, 1e-2],
    "wd": [1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
    "temperature": [1.0, 2.0, 5.0, 10.0],
}

# The paper-scale models (BiT-M-R152x2 teacher, BiT ResNet-50 student).
PAPER_STUDENT = ModelConfig("bit", {"depth": 50, "width": 1})
PAPER_TEACHER_MODEL = ModelConfig("bit", {"depth": 152, "width": 2})


def teacher_name(preset: str) -> str:
    """The stored embedded teacher a preset distills from (trained in chapter 00)."""
    return next(iter(teacher_chapter.teacher_configs(presets.check(preset))))


def ensure_teacher(preset: str) -> str:
    """The teacher's name; trains and stores it first when it is missing (smoke: seconds)."""
    name = teacher_name(preset)
    if name not in teachers.available():
        config = teacher_chapter.teacher_configs(preset)[name]
        teacher_chapter.train_and_publish(name, config)
    return name


def ensure_stored(configs: Mapping[str, RunConfig]) -> list[str]:
    """Names of ``configs`` (name -> teacher run); trains and stores any that is missing.

    For the extra teachers of later chapters (``teachers.high_res_teacher_configs``, ...):
    seconds at smoke, minutes at cpu. A config that starts from a stored model (``init``)
    needs that model first; :func:`ensure_teacher` provides the chapter-00 teacher.
    """
    for name, config in configs.items():
        if name not in teachers.available():
            teacher_chapter.train_and_publish(name, config)
    return list(configs)


def reference_fm(preset: str, section: str, size: int | None, epochs: float) -> RunConfig:
    """The plain function-matching run (``base_config``) on ``size`` images for ``epochs``.

    When chapter 01 or 02 trains the very same config, it is returned with that chapter's
    section, so it is one stored run (:func:`kdlib.experiments.regimes.fm_section`);
    otherwise it belongs to ``section``.
    """
    config = base_config(preset, section, fmnist(preset, size), epochs=epochs)
    return config.replace(section=fm_section(preset, size, epochs, section))


def chapter_reference(preset: str, section: str, epochs: float) -> RunConfig:
    """The function-matching run a later chapter varies, at ``epochs``.

    paper: chapter 03's ImageNet FunMatch config; otherwise :func:`reference_fm` on the
    small-data regime (chapter 01's run when identical, else ``section``'s).
    """
    if presets.check(preset) == "paper":
        return paper_imagenet_config(epochs=epochs)
    return reference_fm(preset, section, small_data_regime(preset)[0], epochs)


def fmnist(preset: str, train_size: int | None = None, classes: tuple[int, ...] | None = None
           ) -> DataConfig:
    """Fashion-MNIST with the embedded teacher's splits; a class-balanced subset of train.

    Validation uses a 2,000-image subset of the 5,000-image hold-out (speed); test is the
    full 10,000-image test split (smoke: 256 of each).
    """
    splits = data.paper_splits("fashion_mnist")
    small = presets.check(preset) == "smoke"
    return DataConfig(
        "fashion_mnist", splits["train"], splits["validation"], splits["test"],
        train_size=train_size, classes=classes, val_size=256 if small else 2000,
        test_size=256 if small else None,
    )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """A clear error for a ``name`` outside ``allowed``: a typo ("label") would otherwise
    pick another loss's or optimizer's grid without a word."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r}; allowed: {list(allowed)}")


def sweep_axes(preset: str, loss: str = "kl") -> dict[str, list[Any]]:
    """The hyper-parameter grid every arm gets (from labels: no temperature).

    cpu/smoke sweep the learning rate (two values, trained as one vectorized group); gpu adds
    the temperature; paper is the paper's full lr x wd x T grid.
    """
    preset = presets.check(preset)
    _check_choice("loss", loss, LOSSES)
    if preset in ("smoke", "cpu"):
        return {"lr": [1e-3, 3e-3]}
    if preset == "gpu":
        axes = {"lr": [1e-3, 3e-3, 1e-2], "temperature": [1.0, 5.0]}
    else:
        axes = dict(PAPER_GRID)
    if loss == "labels":
        axes.pop("temperature")
        axes.setdefault("wd", [1e-5, 1e-4, 1e-3])
    return axes


# The lr grid each long cpu length added for issue 14 starts from, by (chapter section, train
# size or None, epochs): where the stored long schedules selected their lr, not the short
# schedules' 1e-3/3e-3, so a 1000-4000-epoch sweep neither trains lrs that lose nor grows twice
# at its full length. Decided 2026-12-05 from the stored selections, before any of these
# lengths trained: at 300-1000 epochs every 1k and 250-image BiT arm selected 1e-2 to 1e-1
# (01's mix 3e-2, same/ic 1e-1, fix/cc 1e-1, ind/rc 3e-2 at 300; 02's function matching 1e-1
# (1k) and 3e-2 (250) at 1000); 03's arms all selected the grid's top (3e-3) at 1, 2 and 4
# epochs; 07's arms at 100 epochs selected 3e-3 (MobileNetV3-L GN) to 1e-1 (two teachers).
# Every arm of a length gets the same grid, and the grid still grows along the ladder
# (LADDERS) wherever a selected run sits at an edge. 03 at 16 epochs moved up one step on
# 2026-12-06, before any of its runs trained: the 3e-3 top that its 1-, 2- and 4-epoch arms
# selected was their base grid's edge, and the 1-epoch ladder, grown to 1.0 after the grid
# above was decided, selected 3e-2 (consistent teaching, function matching, labels: Adam) and
# 1e-1 (the fixed teacher); 3e-3 would have sat below every 1-epoch optimum, and 3e-2 at the
# top edge, which grows the grid by a run per arm and temperature at 16 epochs.
LONG_LR_GRIDS: dict[tuple[str, int | None, float], tuple[float, ...]] = {
    ("01_consistency", 1000, 1000.0): (1e-2, 3e-2, 1e-1),
    ("01_consistency", 250, 1000.0): (1e-2, 3e-2, 1e-1),
    ("02_patience", 1000, 3000.0): (1e-2, 3e-2, 1e-1),
    ("02_patience", 250, 4000.0): (1e-2, 3e-2, 1e-1),
    ("03_imagenet", None, 16.0): (1e-2, 3e-2, 1e-1),
    ("07_cross_family", 1000, 300.0): (3e-3, 1e-2, 3e-2, 1e-1),
}


def start_axes(preset: str, section: str, train_size: int | None, epochs: float,
               axes: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """``axes`` with the lr grid a long cpu length starts from (:data:`LONG_LR_GRIDS`, keyed
    by the chapter showing it), else unchanged."""
    grid = LONG_LR_GRIDS.get((section, train_size, float(epochs))) if preset == "cpu" else None
    return {**axes, "lr": list(grid)} if grid else dict(axes)


def base_config(preset: str, section: str, data_config: DataConfig, **changes: Any
                ) -> RunConfig:
    """The embedded default's distillation run: BiT student, Adam, batch 128, 28 px."""
    preset = presets.check(preset)
    small = preset == "smoke"
    config = RunConfig(
        preset=preset, section=section, data=data_config, student=teacher_chapter.STUDENT_MODEL,
        teachers=(teacher_name(preset),), policy="mix", loss="kl", temperature=1.0,
        optimizer="adam", lr=1e-3, wd=1e-4, warmup_frac=0.05,
        batch_size=64 if small else 128, epochs=1.0, student_size=28,
        steps_per_call=2 if small else 4, fixed_num_crops=4 if small else 8, seed=0,
    )
    return config.replace(**changes)


def paper_config(section: str, dataset: str, **changes: Any) -> RunConfig:
    """The paper's small-dataset recipe (``paper_recipes.SMALL_DATA``): R152x2 -> R50x1.

    Batch 512, 128 px views through big_vision's pipeline, Adam (first moment in bfloat16),
    warmup 1500 steps then cosine, grad clip 1, fix/ic_ens over 1000 crops, several teachers'
    losses summed. lr, wd and T are the section 3.1 grid's (:func:`sweep_axes`). The teacher is
    a BiT-M-R152x2 ``.npz`` imported with :func:`kdlib.teachers.import_bit_npz` under the
    name ``bit_m_r152x2_<dataset>``.
    """
    r = paper_recipes.SMALL_DATA
    splits = data.paper_splits(dataset)
    d = DataConfig(dataset, splits["train"], splits["validation"], splits["test"],
                   pipeline=r["pipeline"])
    config = RunConfig(
        preset="paper", section=section, data=d, student=PAPER_STUDENT,
        teachers=(f"bit_m_r152x2_{dataset}",), policy=r["policy"], loss=r["loss"],
        optimizer=r["optimizer"], lr=1e-3, wd=1e-4, warmup_frac=0.0,
        warmup_steps=r["warmup_steps"], grad_clip=r["grad_clip"], batch_size=r["batch_size"],
        epochs=1000.0, student_size=r["student_size"], steps_per_call=10,
        fixed_num_crops=paper_recipes.FIX_IC_ENS_CROPS, teacher_ensemble=r["teacher_ensemble"],
        mu_dtype=r["mu_dtype"], seed=0,
    )
    return config.replace(**changes)


# --------------------------------------------------------------------------- shared recipes
# What several chapters build on, here below them all so that no chapter imports another:
# chapter 03's ImageNet config and sweep, chapter 04's high-resolution teacher.

IMAGENET_SECTION = "03_imagenet"
PAPER_HIGH_RES_TEACHER = "bit_m_r152x2_imagenet2012_384"
LOW_RES = 20  # the low-res student's side: 28 * 160 / 224


def paper_imagenet_config(**changes) -> RunConfig:
    """The paper's ImageNet config (appendix F, Listing 1): R152x2@224 -> R50x1@224.

    Batch 4096, 1200 epochs, lr 0.03, wd 0.0003, T 1, warmup 5000 steps then cosine, Adam with
    its first moment in bfloat16, mixup; big_vision's ``resize_small(256)|central_crop(224)``
    evaluation (``paper_recipes.LISTING_1``).
    """
    r = paper_recipes.LISTING_1
    config = paper_config(
        IMAGENET_SECTION, r["dataset"], teachers=("bit_m_r152x2_imagenet2012",),
        student_size=r["student_size"], batch_size=r["batch_size"], epochs=r["epochs"],
        lr=r["lr"], wd=r["wd"], temperature=r["temperature"], warmup_steps=r["warmup_steps"],
        policy=r["policy"], loss=r["loss"], optimizer=r["optimizer"], grad_clip=r["grad_clip"],
        mu_dtype=r["mu_dtype"],
    )
    return config.replace(**changes)


def paper_imagenet_axes(loss: str = "kl", optimizer: str = "adam") -> dict[str, list]:
    """The ImageNet sweep at the paper preset: Listing 1's single point (the paper gives no
    ImageNet grid); from labels, a small grid around it (SGD: learning rates x 10); Shampoo:
    appendix D's weight decay."""
    _check_choice("loss", loss, LOSSES)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    r = paper_recipes.LISTING_1
    if loss == "labels":
        lrs = [0.01, 0.03]
        return {"lr": [10 * lr for lr in lrs] if optimizer == "sgd" else lrs,
                "wd": [1e-4, r["wd"]]}
    wd = paper_recipes.APPENDIX_D["wd"] if optimizer == "shampoo" else r["wd"]
    return {"lr": [r["lr"]], "wd": [wd], "temperature": [r["temperature"]]}


def imagenet_axes(preset: str, loss: str = "kl", optimizer: str = "adam") -> dict[str, list]:
    """The sweep of the ImageNet-based chapters: :func:`paper_imagenet_axes` at the paper
    preset, else the preset's common grid (:func:`sweep_axes`)."""
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    if presets.check(preset) == "paper":
        return paper_imagenet_axes(loss, optimizer)
    return sweep_axes(preset, loss)


def high_res_teacher(preset: str) -> str:
    """Name of the preset's higher-resolution teacher (chapter 04)."""
    return next(iter(teacher_chapter.high_res_teacher_configs(presets.check(preset))))


def resolutions(preset: str) -> dict[str, tuple[int, int]]:
    """Chapter 04's ``{arm: (teacher px, student px)}``."""
    if presets.check(preset) == "paper":
        return {"same resolution": (224, 224), "low-res student": (224, 160),
                "high-res teacher": (384, 224)}
    high = teacher_chapter.high_res_teacher_configs(preset)[high_res_teacher(preset)]
    return {"same resolution": (28, 28), "low-res student": (28, LOW_RES),
            "high-res teacher": (high.student_size, 28)}
