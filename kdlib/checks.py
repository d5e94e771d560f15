"""A run checked at the boundary: before its folder is created and before JAX runs anything.

:func:`check_run` raises one line naming the bad value, what is allowed and the fix, for the
config's values (:func:`kdlib.config.validate`), its model and optimizer options, and the
files its names stand for: the stored teachers and pretrained init (card and weights read
and checked, never unpickled) and the embedded dataset's splits (read with numpy and cached,
so training does not read them again). tfds datasets are checked by split name only.
"""

from __future__ import annotations

import inspect
from typing import Any

from kdlib import data, models, teachers
from kdlib.config import RunConfig, validate

# Shampoo options a config may set; the rest come from the config's own fields.
_SHAMPOO_OWN = ("learning_rate", "schedule", "weight_decay", "grad_clip_norm")


def check_run(config: RunConfig) -> None:
    """Raises a one-line ValueError (or FileNotFoundError) for anything that would fail the
    run later; returns None for a config that can train."""
    validate(config)
    check_model(config.student.name, config.student.kwargs)
    if config.optimizer == "shampoo" or config.shampoo:
        _check_shampoo(config.shampoo)
    for name in (*config.teachers, *([config.init] if config.init else [])):
        teachers.check_stored(name)
    num_train = _check_data(config)
    if num_train is not None and config.batch_size > num_train:
        raise ValueError(f"batch_size={config.batch_size} exceeds the {num_train} training "
                         "images: lower batch_size or use more data (data.train_size)")


def check_model(name: Any, kwargs: dict[str, Any]) -> None:
    """The model name is registered and its kwargs are keyword arguments it takes."""
    if not isinstance(name, str) or name not in models.MODELS:
        raise ValueError(f"student.name={name!r} is not one of {sorted(models.MODELS)}")
    params = inspect.signature(models.MODELS[name].__init__).parameters.values()
    allowed = sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
                     and p.name != "rngs")
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"student.kwargs has unknown key(s) {unknown} for model {name!r}; "
                         f"allowed: {allowed}")


def _check_shampoo(options: dict[str, Any]) -> None:
    from kdlib.optim import shampoo

    params = inspect.signature(shampoo).parameters
    allowed = sorted(p for p in params if p not in _SHAMPOO_OWN)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"shampoo has unknown option(s) {unknown}; allowed: {allowed} "
                         "(lr, wd and grad_clip are the config's own fields)")


def _check_data(config: RunConfig) -> int | None:
    """Checks the dataset names and splits (reading embedded splits); the number of
    training images when known without tfds, else None."""
    d = config.data
    for field, name in (("data.name", d.name), ("data.eval_name", d.eval_name)):
        if name is not None and name not in data.DATASETS:
            raise ValueError(f"{field}={name!r} is not one of {data.DATASETS}")
    num_train = None
    for field, name, split in (("data.train_split", d.name, d.train_split),
                               ("data.val_split", d.eval_dataset, d.val_split),
                               ("data.test_split", d.eval_dataset, d.test_split)):
        if name not in data.EMBEDDED:
            data.check_split(name, split)
            continue
        classes = d.classes if field == "data.train_split" else None
        try:
            ds = data.load(name, split, classes=classes)
        except ValueError as err:
            raise ValueError(f"{field}={split!r} of {name}: {err}") from None
        n = len(ds)
        size = {"data.train_split": d.train_size, "data.val_split": d.val_size,
                "data.test_split": d.test_size}[field]
        if size is not None and size > n:
            what = field.replace("_split", "_size").replace("data.", "")
            raise ValueError(f"data.{what}={size} exceeds the {n} images of {name} "
                             f"{split!r}: lower it or widen the split")
        if field == "data.train_split":
            num_train = size or n
    return num_train
