"""Chapter 08 (paper section 3.8, Figure 6): distilling on images of another domain.

If distillation is function matching, any images should do. The paper distills its pets and
sun397 teachers on in-domain images, on related / overlapping ones (ImageNet) and on
unrelated ones (food101), and evaluates on the teacher's own test split: in-domain is best,
related images come close (with longer schedules), unrelated ones still work to some extent
(pets from food images: roughly 30%).

Here the Fashion-MNIST teacher is distilled, by function matching with the same lr sweep and
steps, on 1,000 images (chapter 01's regime and lengths) of:

- ``in-domain``: the Fashion-MNIST training images (chapter 01's ``mix`` runs, reused);
- ``related``: Fashion-MNIST training images of only 5 of the 10 classes
  (:data:`KEPT_CLASSES`: t-shirt, trouser, dress, sandal, bag; every held-out class has a
  similar kept one), via ``DataConfig.classes``;
- ``unrelated``: scikit-learn digits (8x8, resized to 28 px by the views);
- ``noise``: uniform noise images (``kdlib.data``'s ``noise``), a floor the paper does not
  run: what the teacher's function alone, on images with no content, can transfer.

Every arm is selected on and evaluated on Fashion-MNIST (validation / test). The engine
evaluates a run on its own dataset's splits (``train.load_data``), so the ``unrelated`` and
``noise`` runs are trained with ``save_model`` and evaluated afterwards on Fashion-MNIST by
:func:`evaluate_on` (cached next to the run as ``eval_<dataset>.json``); their training
curves keep only the training loss.

Budget at the cpu preset: ``related``, ``unrelated`` and ``noise`` are 1,000 images x
(30 + 100 + 300) epochs = 430k images = 3,360 steps of 128 per run each, at ~1000 img/s per
2-run mix group -> 3 x (~7 min + 3 sweeps x ~70 s) = ~32 min; evaluating the 12
out-of-domain runs on 12,000 Fashion-MNIST images adds seconds. ``in-domain`` is chapter
01's (0 min when it has run).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from flax import nnx

from kdlib import data, presets, store, teachers, train
from kdlib import sweep as sweeps
from kdlib.config import DataConfig, RunConfig, teacher_sizes
from kdlib.experiments import common

SECTION = "08_out_of_domain"

ARMS = ("in-domain", "related", "unrelated", "noise")
PAPER_ARMS = ARMS[:3]  # the paper's Figure 6 (no noise arm)
KEPT_CLASSES = (0, 1, 3, 5, 8)  # t-shirt/top, trouser, dress, sandal, bag
# The paper's Figure 6: target dataset -> (teacher's dataset, related, unrelated), lengths.
PAPER_TARGETS = {
    "pets": (("oxford_iiit_pet", "imagenet2012", "food101"), (100.0, 300.0, 1000.0)),
    "sun397": (("sun397", "imagenet2012", "food101"), (30.0, 100.0, 300.0)),
}
PAPER_NUM_CLASSES = {"oxford_iiit_pet": 37, "sun397": 397}


def targets(preset: str) -> tuple[str, ...]:
    """The teachers' datasets this chapter distills (paper: pets and sun397)."""
    return tuple(PAPER_TARGETS) if presets.check(preset) == "paper" else ("fashion_mnist",)


def _paper_data(name: str) -> DataConfig:
    splits = data.paper_splits(name)
    return DataConfig(name, splits["train"], splits["validation"], splits["test"])


def _embedded_data(name: str, train_size: int | None) -> DataConfig:
    splits = data.paper_splits(name)
    return DataConfig(name, splits["train"], splits["validation"], splits["test"],
                      train_size=train_size)


def eval_data(preset: str, target: str | None = None) -> DataConfig:
    """The teacher's own data: every arm is selected on its validation, reported on its test."""
    target = _check_target(preset, target)
    if preset == "paper":
        return _paper_data(PAPER_TARGETS[target][0][0])
    return common.fmnist(preset)


def _check_target(preset: str, target: str | None) -> str:
    names = targets(preset)
    target = names[0] if target is None else target
    if target not in names:
        raise ValueError(f"target={target!r}; {preset} has {list(names)}")
    return target


def epochs(preset: str, target: str | None = None) -> tuple[float, ...]:
    """Schedule lengths of every arm."""
    target = _check_target(preset, target)
    if preset == "paper":
        return PAPER_TARGETS[target][1]
    return common.small_data_regime(preset)[1]


def arms(preset: str, target: str | None = None) -> common.Arms:
    """``{arm: {epochs: (base config, sweep axes)}}`` (see :data:`ARMS`)."""
    preset = presets.check(preset)
    target = _check_target(preset, target)
    axes = common.sweep_axes(preset)
    out: common.Arms = {arm: {} for arm in (PAPER_ARMS if preset == "paper" else ARMS)}
    for ep in epochs(preset, target):
        if preset == "paper":
            (own, related, unrelated), _ = PAPER_TARGETS[target]
            ref = common.paper_config(SECTION, own, epochs=ep)
            # The student must output the teacher's classes whatever images it sees.
            num = PAPER_NUM_CLASSES[own]
            student = dataclasses.replace(ref.student,
                                          kwargs={**ref.student.kwargs, "num_classes": num})
            rel = ref.replace(data=_paper_data(related), student=student)
            unrel = ref.replace(data=_paper_data(unrelated), student=student)
        else:
            size = common.small_data_regime(preset)[0]
            ref = common.reference_fm(preset, SECTION, size, ep)
            new = ref.replace(section=SECTION)
            rel = new.replace(**{"data.classes": KEPT_CLASSES})
            unrel = new.replace(data=_embedded_data("digits", size))
            out["noise"][ep] = (new.replace(data=_embedded_data("noise", size)), axes)
        out["in-domain"][ep] = (ref, axes)
        out["related"][ep] = (rel, axes)
        out["unrelated"][ep] = (unrel, axes)
    return out


def run_arms(experiment: common.Arms, evaluation: DataConfig, *, progress: bool = True
             ) -> dict[str, dict[float, sweeps.SweepResult]]:
    """Like :func:`common.run_arms`; sweeps on another dataset are evaluated on ``evaluation``."""
    out: dict[str, dict[float, sweeps.SweepResult]] = {}
    for arm, by_epochs in experiment.items():
        out[arm] = {}
        for ep, (cfg, axes) in by_epochs.items():
            if cfg.data.name == evaluation.name:
                out[arm][ep] = train.sweep(cfg, axes, progress=progress)
            else:
                out[arm][ep] = sweep_evaluated_on(cfg, axes, evaluation, progress=progress)
    return out


def sweep_evaluated_on(base: RunConfig, axes: dict[str, list[Any]], evaluation: DataConfig,
                       *, progress: bool = True) -> sweeps.SweepResult:
    """A sweep trained on ``base.data``, its runs scored (and selected) on ``evaluation``."""
    result = sweeps.sweep(
        base, axes, None,
        batch_train_fn=lambda cs, ds: train.train_many(cs, ds, progress=progress,
                                                       save_model=True),
    )
    configs = sweeps.expand(base, result.points)
    runs = [evaluate_on(run, cfg, evaluation) for run, cfg in zip(result.runs, configs,
                                                                 strict=True)]
    return sweeps.SweepResult(result.points, runs, result.select_metric, result.mode)


def evaluate_on(run: store.RunRecord, config: RunConfig, evaluation: DataConfig
                ) -> store.RunRecord:
    """``run`` with its val/test metrics replaced by those of its final model on ``evaluation``.

    Accuracy, teacher accuracy, agreement and KL as the engine computes them
    (``train.eval_metrics``); cached in ``<run>/eval_<dataset>.json`` (keyed by the evaluation
    data). History records keep only non-evaluation keys (the training loss). A run that did
    not finish, or has no saved model, is returned unchanged.
    """
    weights = run.path / "model.npz"
    if run.status != "done" or not weights.exists():
        return run
    cache = run.path / f"eval_{evaluation.name}.json"
    key = dataclasses.asdict(evaluation)
    key["classes"] = list(key["classes"]) if key["classes"] is not None else None
    stored = store.read_json(cache) if cache.exists() else None
    if stored and stored.get("data") == key:
        metrics = stored["metrics"]
    else:
        metrics = _evaluate(weights, config, evaluation)
        store.write_json_atomic(cache, {"data": key, "metrics": metrics})
    evaluated = ("val_", "test_")
    summary = {k: v for k, v in run.summary.items() if not k.startswith(evaluated)}
    summary.update(metrics, distill_data=config.data.name, eval_data=evaluation.name)
    history = [{k: v for k, v in r.items() if not k.startswith(evaluated)} for r in run.history]
    return dataclasses.replace(run, summary=summary, history=history)


def _evaluate(weights: Any, config: RunConfig, evaluation: DataConfig) -> dict[str, float]:
    card = teachers.load_card(config.teachers[0])
    kwargs = train.student_kwargs(config, card["model_kwargs"]["num_classes"],
                                  card["model_kwargs"]["in_channels"])
    model = teachers.load_weights(teachers.build(config.student.name, kwargs), weights)
    model.eval()
    graphdef, state = nnx.split(model)
    rd = train.load_data(config.replace(data=evaluation))
    metrics: dict[str, float] = {}
    for split, ds in (("val", rd.val), ("test", rd.test)):
        logits = train.predict(graphdef, (state,), ds.images, config.student_size)
        per = []
        for name, t_size in zip(config.teachers, teacher_sizes(config), strict=True):
            t_model, _ = teachers.load(name)
            t_graphdef, t_state = nnx.split(t_model)
            per.append(train.predict(t_graphdef, (t_state,), ds.images, t_size))
        metrics.update(train.eval_metrics(logits, ds.labels, np.mean(per, axis=0), split))
    return metrics
