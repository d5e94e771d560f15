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

Every arm is selected on and evaluated on Fashion-MNIST (validation / test): the other
domains' configs set ``DataConfig.eval_name``, so the engine scores them on Fashion-MNIST
during training, curves included.

Budget at the cpu preset: ``related``, ``unrelated`` and ``noise`` are 1,000 images x
(30 + 100 + 300) epochs = 430k images = 3,360 steps of 128 per run each, at ~1000 img/s per
2-run mix group -> 3 x (~7 min + 3 sweeps x ~70 s) = ~32 min. ``in-domain`` is chapter
01's (0 min when it has run).
"""

from __future__ import annotations

import dataclasses

from kdlib import data, presets
from kdlib.config import DataConfig
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


def _other_domain(images: DataConfig, evaluation: str) -> DataConfig:
    """Distill on ``images``' training split; score on ``evaluation``'s val/test splits."""
    splits = data.paper_splits(evaluation)
    return dataclasses.replace(images, val_split=splits["validation"], test_split=splits["test"],
                               eval_name=None if images.name == evaluation else evaluation)


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
            new = ref.replace(student=dataclasses.replace(
                ref.student, kwargs={**ref.student.kwargs, "num_classes": num}))
            sources = {"related": _paper_data(related), "unrelated": _paper_data(unrelated)}
        else:
            size = common.small_data_regime(preset)[0]
            ref = common.reference_fm(preset, SECTION, size, ep)
            new = ref.replace(section=SECTION)
            sources = {"related": dataclasses.replace(ref.data, classes=KEPT_CLASSES)}
            for arm, name in (("unrelated", "digits"), ("noise", "noise")):
                sources[arm] = dataclasses.replace(ref.data, name=name,
                                                   train_split=data.paper_splits(name)["train"])
        out["in-domain"][ep] = (ref, axes)
        for arm, images in sources.items():
            out[arm][ep] = (new.replace(data=_other_domain(images, ref.data.name)), axes)
    return out


def experiments(preset: str, planned: bool = False) -> list[common.Arms]:
    """The chapter's experiments, one per target (:mod:`kdlib.experiments.chapters`; nothing
    is planned beyond their lengths)."""
    return [arms(preset, t) for t in targets(preset)]
