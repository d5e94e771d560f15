"""The protocol shared by the distillation chapters: data regimes, equal sweeps, presets.

Every compared arm of a chapter is a set of sweeps, one per schedule length, with the same
hyper-parameter grid (:func:`sweep_axes`) and the same number of steps; the best run is
chosen on validation and its test accuracy is reported (section 3.1 of the paper).

An experiment is a plain nested dict ``{arm: {epochs: (base_config, axes)}}`` that a notebook
prints, runs with :func:`run_arms` and plots with :mod:`kdlib.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kdlib import data, models, presets, profile, sweep, teachers, train
from kdlib.config import DataConfig, ModelConfig, RunConfig, teacher_sizes
from kdlib.experiments import teachers as teacher_chapter

Arms = dict[str, dict[float, tuple[RunConfig, dict[str, list[Any]]]]]

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


def small_data_regime(preset: str) -> tuple[int | None, tuple[float, ...]]:
    """Chapter 01's main regime (training images, schedule lengths): chapters 04-09 use it.

    Sharing it means the plain function-matching runs of those chapters are chapter 01's.
    """
    from kdlib.experiments import consistency

    if presets.check(preset) == "paper":
        raise ValueError("preset='paper' has no Fashion-MNIST regime: its chapters use the "
                         "paper's datasets (see each chapter's paper configs)")
    return consistency.regimes(preset)["1k"]


def reference_fm(preset: str, section: str, size: int | None, epochs: float) -> RunConfig:
    """The plain function-matching run (``base_config``) on ``size`` images for ``epochs``.

    When chapter 01 or 02 trains the very same config, it is returned with that chapter's
    section, so it is one stored run; otherwise it belongs to ``section``.
    """
    from kdlib.experiments import consistency, patience

    config = base_config(preset, section, fmnist(preset, size), epochs=epochs)
    for chapter in (consistency, patience):
        for n, lengths in chapter.regimes(preset).values():
            if n == size and epochs in lengths:
                return config.replace(section=chapter.SECTION)
    return config


def chapter_reference(preset: str, section: str, epochs: float) -> RunConfig:
    """The function-matching run a later chapter varies, at ``epochs``.

    paper: chapter 03's ImageNet FunMatch config; otherwise :func:`reference_fm` on the
    small-data regime (chapter 01's run when identical, else ``section``'s).
    """
    if presets.check(preset) == "paper":
        from kdlib.experiments import imagenet

        return imagenet.paper_imagenet_config(epochs=epochs)
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


def sweep_axes(preset: str, loss: str = "kl") -> dict[str, list[Any]]:
    """The hyper-parameter grid every arm gets (from labels: no temperature).

    cpu/smoke sweep the learning rate (two values, trained as one vectorized group); gpu adds
    the temperature; paper is the paper's full lr x wd x T grid.
    """
    preset = presets.check(preset)
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
    from kdlib.experiments import paper_recipes as recipe

    r = recipe.SMALL_DATA
    splits = data.paper_splits(dataset)
    d = DataConfig(dataset, splits["train"], splits["validation"], splits["test"],
                   pipeline=r["pipeline"])
    config = RunConfig(
        preset="paper", section=section, data=d, student=PAPER_STUDENT,
        teachers=(f"bit_m_r152x2_{dataset}",), policy=r["policy"], loss=r["loss"],
        optimizer=r["optimizer"], lr=1e-3, wd=1e-4, warmup_frac=0.0,
        warmup_steps=r["warmup_steps"], grad_clip=r["grad_clip"], batch_size=r["batch_size"],
        epochs=1000.0, student_size=r["student_size"], steps_per_call=10,
        fixed_num_crops=recipe.FIX_IC_ENS_CROPS, teacher_ensemble=r["teacher_ensemble"],
        mu_dtype=r["mu_dtype"], seed=0,
    )
    return config.replace(**changes)


def run_arms(arms: Mapping[str, Mapping[float, tuple[RunConfig, dict[str, list[Any]]]]],
             *, progress: bool = True) -> dict[str, dict[float, sweep.SweepResult]]:
    """Trains (or loads) every sweep of every arm; ``{arm: {epochs: SweepResult}}``."""
    return {arm: {ep: train.sweep(cfg, axes, progress=progress)
                  for ep, (cfg, axes) in by_epochs.items()}
            for arm, by_epochs in arms.items()}


def describe(arms: Arms) -> list[dict[str, Any]]:
    """One row per (arm, epochs): what is trained, for the notebook's setup table."""
    rows = []
    for arm, by_epochs in arms.items():
        for ep, (cfg, axes) in by_epochs.items():
            n = 1
            for values in axes.values():
                n *= len(values)
            rows.append({"arm": arm, "epochs": ep, "train images": cfg.data.train_size,
                         "policy": cfg.policy, "loss": cfg.loss, "optimizer": cfg.optimizer,
                         "sweep": ", ".join(f"{k}={v}" for k, v in axes.items()), "runs": n})
    return rows


def results_table(results: dict[str, dict[float, sweep.SweepResult]]) -> Any:
    """Long table (arm, epochs, val_acc, test_acc, train_loss, ...) of the selected runs."""
    from kdlib import plots

    table = plots.arm_table(results, metric="test_acc")
    loss = plots.arm_table(results, metric="train_loss")[["arm", "epochs", "train_loss"]]
    return table.merge(loss, on=["arm", "epochs"], how="left")


def throughput_table(results: dict[str, dict[float, sweep.SweepResult]]) -> Any:
    """Measured speed of the selected run per (arm, epochs): img/s, training seconds, group.

    ``img_per_s`` counts batch images per second of the whole vectorized group (its runs
    share views and the teacher forward pass), so compare arms with equal group sizes.
    """
    import pandas as pd

    rows = []
    for arm, by_epochs in results.items():
        for ep, result in by_epochs.items():
            best = result.best
            summary = best.summary if best is not None else {}
            rows.append({"arm": arm, "epochs": ep, "img_per_s": summary.get("img_per_s"),
                         "train_time_s": summary.get("train_time_s"),
                         "group_size": summary.get("group_size")})
    return pd.DataFrame(rows, columns=["arm", "epochs", "img_per_s", "train_time_s",
                                       "group_size"])


def model_costs(experiment: Arms, num_classes: int = 10, in_channels: int = 1
                ) -> list[dict[str, Any]]:
    """Per arm: resolutions, forward MFLOPs of student and teacher(s) per image, parameters,
    and the student's measured inference speed here (img/s, batches of 256).

    The teachers' FLOPs are counted when they are stored (``teachers.available``).
    """
    rows = []
    for arm, by_epochs in experiment.items():
        cfg = next(iter(by_epochs.values()))[0]
        t_sizes = teacher_sizes(cfg)
        kwargs = train.student_kwargs(cfg, num_classes, in_channels)
        student = teachers.build(cfg.student.name, kwargs)
        s_shape = (1, cfg.student_size, cfg.student_size, in_channels)
        t_flops = None
        if all(n in teachers.available() for n in cfg.teachers):
            t_flops = sum(profile.forward_flops(teachers.load(n)[0],
                                                (1, size, size, in_channels))
                          for n, size in zip(cfg.teachers, t_sizes, strict=True)) / 1e6
        t_px = t_sizes[0] if len(set(t_sizes)) == 1 else " + ".join(map(str, t_sizes))
        rows.append({"arm": arm, "teacher px": t_px, "student px": cfg.student_size,
                     "student MFLOPs": profile.forward_flops(student, s_shape) / 1e6,
                     "student params": models.count_params(student),
                     "student img/s": profile.forward_throughput(
                         student, (256, *s_shape[1:])),
                     "teacher MFLOPs": t_flops})
    return rows


def save_table(table: Any, preset: str, section: str, name: str) -> Any:
    """Writes ``table`` as results/<preset>/<section>/table_<name>.csv (atomically)."""
    from kdlib import store

    path = store.results_root() / presets.check(preset) / section / f"table_{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes_atomic(path, table.to_csv(index=False).encode())
    return path
