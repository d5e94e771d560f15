"""Chapter 00: the embedded teachers, trained from labels like the paper's BiT teachers.

The paper distills BiT-M-R152x2 teachers fine-tuned on each dataset. The embedded default
trains its own: a BiT ResNet-v2 several times bigger than the students, on the full
Fashion-MNIST training split minus a validation hold-out.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from flax import nnx

from kdlib import data, presets, store, teachers, train
from kdlib.config import DataConfig, ModelConfig, RunConfig
from kdlib.provenance import provenance

SECTION = "00_teachers"

# Architectures of the embedded default (BiT ResNet-v2, small-image stem for 28 px).
TEACHER_MODEL = ModelConfig("bit", {"depth": [2, 2, 2, 2], "width": 0.125, "stem": "small"})
STUDENT_MODEL = ModelConfig("bit", {"depth": [1, 1, 1, 1], "width": 0.0625, "stem": "small"})


def teacher_configs(preset: str) -> dict[str, RunConfig]:
    """The teachers to train at ``preset``, by the name they are stored under."""
    presets.check(preset)
    splits = data.paper_splits("fashion_mnist")
    fmnist = DataConfig("fashion_mnist", splits["train"], splits["validation"], splits["test"])
    base = RunConfig(
        preset=preset, section=SECTION, data=fmnist, student=TEACHER_MODEL, loss="labels",
        policy="same/rc", optimizer="adam", lr=3e-3, wd=1e-4, warmup_frac=0.05,
        batch_size=128, epochs=8, student_size=28, steps_per_call=4, seed=0,
    )
    if preset == "smoke":
        small = base.replace(
            student=STUDENT_MODEL, epochs=2, batch_size=64, steps_per_call=2,
            **{"data.train_size": 512, "data.val_size": 256, "data.test_size": 256},
        )
        return {"smoke_fmnist_bit_t28": small}
    return {"fmnist_bit_t28": base}


# Chapter 04's higher-resolution teacher: 28 px * 384 / 224 (the paper's T384 / T224) = 48 px.
HIGH_RES = 48
SMOKE_HIGH_RES = 36


def high_res_teacher_configs(preset: str) -> dict[str, RunConfig]:
    """The teacher fine-tuned at a higher resolution (chapters 04 and 07), by stored name.

    As the paper's T384 teacher is the 224 px teacher fine-tuned at 384 px, this is the
    preset's chapter-00 teacher (``init``) fine-tuned on the same labels at :data:`HIGH_RES`
    px (Fashion-MNIST upsampled), with a lower learning rate for 2 epochs (smoke: 1 epoch of
    512 images at 36 px). Kept out of :func:`teacher_configs` so that chapter 00 (and so
    ``make book``) does not train it: chapter 04 trains it on demand.
    """
    base_name, base = next(iter(teacher_configs(presets.check(preset)).items()))
    if preset == "smoke":
        config = base.replace(init=base_name, student_size=SMOKE_HIGH_RES, epochs=1, lr=1e-3)
        return {f"smoke_fmnist_bit_t{SMOKE_HIGH_RES}": config}
    config = base.replace(init=base_name, student_size=HIGH_RES, epochs=2, lr=1e-3)
    return {f"fmnist_bit_t{HIGH_RES}": config}


def weak_teacher_configs(preset: str) -> dict[str, RunConfig]:
    """A weaker teacher for chapter 09: the student architecture trained on all the labels.

    The DIST paper contrasts a teacher close to the student with a much stronger one; this
    teacher has the student's size (about 6x cheaper than the chapter-00 teacher), trained
    from labels on the full training split for 2 epochs (smoke: 256 images, 1 epoch).
    """
    base = next(iter(teacher_configs(presets.check(preset)).values()))
    if preset == "smoke":
        return {"smoke_fmnist_bit_w28": base.replace(epochs=1, **{"data.train_size": 256})}
    return {"fmnist_bit_s28": base.replace(student=STUDENT_MODEL, epochs=2)}


def pretrained_student_name(preset: str) -> str:
    """The stored student pretrained on other data (the analog of BiT's upstream weights)."""
    return "smoke_digits_bit_s28" if presets.check(preset) == "smoke" else "digits_bit_s28"


def pretrained_student_config(preset: str) -> RunConfig:
    """The student architecture trained from labels on scikit-learn digits upsampled to 28 px.

    The transfer baseline (chapter 02) and the pretrained init (chapter 06) start from it:
    labeled images of another domain, as BiT-M's ImageNet-21k weights are for the paper.
    """
    splits = data.paper_splits("digits")
    digits = DataConfig("digits", splits["train"], splits["validation"], splits["test"])
    config = RunConfig(
        preset=preset, section=SECTION, data=digits, student=STUDENT_MODEL, loss="labels",
        policy="same/ic", optimizer="adam", lr=3e-3, wd=1e-4, warmup_frac=0.05,
        batch_size=128, epochs=100, student_size=28, steps_per_call=4, seed=0,
    )
    if presets.check(preset) == "smoke":
        return config.replace(epochs=2, batch_size=64, steps_per_call=2)
    return config


def other_models(preset: str) -> dict[str, str]:
    """The other stored models the chapters train on first use -> the chapters that read them:
    the high-resolution teacher (04), the weak, student-sized teacher (09) and the student
    pretrained on digits (02's transfer baseline, 06's pretrained init)."""
    preset = presets.check(preset)
    return {**{name: "04 (teacher at a higher resolution)"
               for name in high_res_teacher_configs(preset)},
            **{name: "09 (weak teacher: the student's architecture)"
               for name in weak_teacher_configs(preset)},
            pretrained_student_name(preset): "02 (transfer baseline), 06 (pretrained init)"}


def other_models_table(preset: str) -> list[dict[str, Any]]:
    """One row per :func:`other_models` entry from its card (None where it is not stored
    yet: its chapter trains it on first use)."""
    stored = set(teachers.available())
    rows = []
    for name, used_by in other_models(preset).items():
        card = teachers.load_card(name) if name in stored else {}
        rows.append({"model": name, "read by chapter": used_by, "dataset": card.get("dataset"),
                     "image size": card.get("image_size"), "epochs": card.get("epochs"),
                     "val acc": card.get("val_acc"), "test acc": card.get("test_acc"),
                     "commit": card.get("provenance", {}).get("commit")})
    return rows


def train_and_publish(name: str, config: RunConfig, *, retrain: bool = False) -> dict[str, Any]:
    """Trains (or loads) the teacher run, stores it as teacher ``name``; returns its card."""
    if not retrain and name in teachers.available():
        card = teachers.load_card(name)
        if card.get("config_hash") == store.config_hash(config):
            return card
    started = time.time()
    record = train.run(config, retrain=retrain, save_model=True)
    rd = train.load_data(config)
    # channels from the validation split, held in memory even where the training split is
    # streamed (as train_group reads them; the training split's .images crashed on ImageNet)
    kwargs = train.student_kwargs(config, rd.train.num_classes, rd.val.images.shape[-1])
    model = teachers.build(config.student.name, kwargs)
    teachers.load_weights(model, record.path / "model.npz")
    model.eval()
    accs = {}
    for split, ds in (("val", rd.val), ("test", rd.test)):
        accs[f"{split}_acc"] = evaluate(model, ds, config.student_size)
    card = {
        "name": name,
        "model": config.student.name,
        "model_kwargs": kwargs,
        "image_size": config.student_size,
        "dataset": config.data.name,
        "splits": {"train": config.data.train_split, "validation": config.data.val_split,
                   "test": config.data.test_split},
        "num_train": record.summary.get("num_train"),
        "epochs": config.epochs,
        "val_acc": accs["val_acc"],
        "test_acc": accs["test_acc"],
        "config_hash": store.config_hash(config),
        "run_dir": str(record.path.relative_to(store.results_root().parent)),
        "train_wall_time_s": record.summary.get("wall_time_s"),
        "provenance": record.provenance or provenance(config, wall_time_s=time.time() - started,
                                                      started_at=started),
    }
    teachers.save(name, model, card)
    return card


def evaluate(model: Any, ds: data.Dataset, image_size: int) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on ``ds`` at ``image_size``."""
    graphdef, state = nnx.split(model)
    logits = train.predict(graphdef, (state,), ds.images, image_size)
    return float(np.mean(np.argmax(logits, -1) == ds.labels))


def student_baseline_config(preset: str) -> RunConfig:
    """The student architecture trained from labels on a 1,000-image subset (the bar to beat)."""
    config = next(iter(teacher_configs(preset).values()))
    if preset == "smoke":
        return config.replace(**{"data.train_size": 256}, epochs=2)
    return config.replace(
        student=STUDENT_MODEL, epochs=100, **{"data.train_size": 1000}
    )
