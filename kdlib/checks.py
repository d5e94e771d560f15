"""A run checked at the boundary: before its folder is created and before JAX runs anything.

:func:`check_run` raises one line naming the bad value, what is allowed and the fix, for the
config's values (:func:`kdlib.config.validate`), its model and optimizer options, and the
files its names stand for: the stored teachers and pretrained init (card and weights read
and checked, never unpickled) and the embedded dataset's splits (read with numpy and cached,
so training does not read them again). tfds datasets are checked by split name only.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

from kdlib import data, models, teachers
from kdlib.config import RunConfig, validate

# Shampoo options a config may set; the rest come from the config's own fields.
_SHAMPOO_OWN = ("learning_rate", "schedule", "weight_decay", "grad_clip_norm")


def check_run(config: RunConfig) -> None:
    """Raises a one-line ValueError (or FileNotFoundError) for anything that would fail the
    run later; returns None for a config that can train."""
    check_values(config)
    _check_dataset_names(config)  # before the teachers: a typo is named as one, not a mismatch
    for name in (*config.teachers, *([config.init] if config.init else [])):
        teachers.check_stored(name)
    check_stored_models_fit(config)
    num_train = _check_data(config)
    if num_train is not None and config.batch_size > num_train:
        raise ValueError(f"batch_size={config.batch_size} exceeds the {num_train} training "
                         "images: lower batch_size or use more data (data.train_size)")


def check_values(config: RunConfig) -> None:
    """What :func:`check_run` checks without reading a file: the config's values, its model
    and its optimizer's options (every preset's chapter configs pass it, tested)."""
    validate(config)
    check_model(config.student.name, config.student.kwargs)
    if config.shampoo and config.optimizer != "shampoo":
        raise ValueError(f"shampoo={config.shampoo!r} sets Shampoo's options, but optimizer="
                         f"{config.optimizer!r} would ignore them: drop them or use "
                         "optimizer='shampoo'")
    if config.optimizer == "shampoo":
        _check_shampoo(config.shampoo)
    _check_disjoint(config)


def check_model(name: Any, kwargs: dict[str, Any]) -> None:
    """The model name is registered, its kwargs are keyword arguments it takes, and their
    values are ones it accepts (its constructor's own check, :data:`kdlib.models.ARG_CHECKS`,
    run before a run folder is made)."""
    if not isinstance(name, str) or name not in models.MODELS:
        raise ValueError(f"student.name={name!r} is not one of {sorted(models.MODELS)}")
    params = inspect.signature(models.MODELS[name].__init__).parameters.values()
    allowed = sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
                     and p.name != "rngs")
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"student.kwargs has unknown key(s) {unknown} for model {name!r}; "
                         f"allowed: {allowed}")
    try:
        models.ARG_CHECKS[name](**kwargs)
    except ValueError as e:
        raise ValueError(f"student.kwargs of model {name!r}: {e}") from None


def _resolved_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A model's keyword arguments with its defaults filled in, lists for tuples (as a
    card's JSON holds them)."""
    params = inspect.signature(models.MODELS[name].__init__).parameters.values()
    out = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
           and p.name != "rngs" and p.default is not inspect.Parameter.empty}
    out.update(kwargs)
    out.pop("impl", None)  # which ops compute it, not the architecture
    if name == "bit" and "depth" in out:  # 50 is [3, 4, 6, 3]
        from kdlib.models.bit import block_sizes

        try:
            out["depth"] = block_sizes(out["depth"])
        except ValueError:
            pass  # a bad depth: named where the model is built
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def check_stored_models_fit(config: RunConfig) -> None:
    """Each teacher was trained on the labels this run is evaluated on (its card's dataset is
    the evaluation dataset: a digits teacher on Fashion-MNIST would score chance), and a
    pretrained ``init`` has the student's architecture (else only the leaves whose shapes
    happen to agree are copied and the run is, silently, mostly from scratch)."""
    labels = config.data.eval_dataset
    for name in config.teachers:
        trained_on = teachers.load_card(name).get("dataset")
        if trained_on is not None and trained_on != labels:
            raise ValueError(f"teacher {name!r} was trained on {trained_on}, but this run is "
                             f"evaluated on {labels} (data.eval_name or data.name): pick a "
                             f"teacher of {labels}")
    if not config.init:
        return
    card = teachers.load_card(config.init)
    if card.get("model") != config.student.name:
        raise ValueError(f"init={config.init!r} is a {card.get('model')!r} model, the student "
                         f"a {config.student.name!r}: init needs the student's architecture")
    if card.get("model") not in models.MODELS:
        return
    mine = _resolved_kwargs(config.student.name, config.student.kwargs)
    theirs = _resolved_kwargs(card["model"], card.get("model_kwargs", {}))
    # the head may differ (a new task's classes) and the channels come from the data
    differ = sorted(k for k in set(mine) | set(theirs)
                    if k not in ("num_classes", "in_channels") and mine.get(k) != theirs.get(k))
    if differ:
        raise ValueError(f"init={config.init!r} differs from the student in "
                         + ", ".join(f"{k}={theirs.get(k)!r} vs {mine.get(k)!r}" for k in differ)
                         + ": init needs the student's architecture (student.kwargs)")


def _check_shampoo(options: dict[str, Any]) -> None:
    from kdlib.optim import shampoo

    params = inspect.signature(shampoo).parameters
    allowed = sorted(p for p in params if p not in _SHAMPOO_OWN)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"shampoo has unknown option(s) {unknown}; allowed: {allowed} "
                         "(lr, wd and grad_clip are the config's own fields)")
    try:  # its values, as the optimizer checks them when built (pure Python, no JAX)
        shampoo(1e-3, **options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"shampoo={options!r}: {err}") from None


def _check_dataset_names(config: RunConfig) -> None:
    """The training and evaluation datasets are ones kdlib knows."""
    for field, name in (("data.name", config.data.name),
                        ("data.eval_name", config.data.eval_name)):
        if name is not None and name not in data.DATASETS:
            raise ValueError(f"{field}={name!r} is not one of {data.DATASETS}")


def _check_data(config: RunConfig) -> int | None:
    """Checks the dataset splits (reading embedded splits; :func:`check_run` checked the
    names first); the number of training images when known without tfds, else None."""
    d = config.data
    if d.pipeline == "big_vision":
        embedded = [n for n in (d.name, d.eval_dataset) if n in data.EMBEDDED]
        if embedded:
            raise ValueError(f"data.pipeline='big_vision' is the authors' input pipeline for "
                             f"the paper's tfds datasets, not the embedded {embedded[0]}: "
                             "leave data.pipeline=None")
    kwargs = config.student.kwargs
    num_train = None
    for field, name, split in (("data.train_split", d.name, d.train_split),
                               ("data.val_split", d.eval_dataset, d.val_split),
                               ("data.test_split", d.eval_dataset, d.test_split)):
        if name not in data.EMBEDDED:
            data.check_split(name, split)
            continue
        classes = d.classes if field == "data.train_split" else None
        try:
            ds = cast(data.Dataset, data.load(name, split, classes=classes))  # embedded: in memory
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
            channels = ds.images.shape[-1] if ds.images.ndim == 4 else 1
            if kwargs.get("in_channels", channels) != channels:
                raise ValueError(f"student.kwargs in_channels={kwargs['in_channels']!r}, but "
                                 f"{name} images have {channels}: drop it (the data sets it)")
        elif kwargs.get("num_classes", ds.num_classes) != ds.num_classes:
            raise ValueError(f"student.kwargs num_classes={kwargs['num_classes']!r}, but "
                             f"{name} has {ds.num_classes} classes: drop it (the data sets it)")
    return num_train


def _check_disjoint(config: RunConfig) -> None:
    """The training split shares no image with the validation or test split, nor validation
    with test, where both are of one embedded dataset (a tfds dataset's split sizes need tfds:
    its splits are not compared; the paper's own, PAPER_SPLITS, are disjoint)."""
    d = config.data
    named = (("data.train_split", d.name, d.train_split),
             ("data.val_split", d.eval_dataset, d.val_split),
             ("data.test_split", d.eval_dataset, d.test_split))
    for i, (field_a, name_a, a) in enumerate(named):
        for field_b, name_b, b in named[i + 1:]:
            if name_a != name_b or name_a not in data.EMBEDDED_SIZES:
                continue
            try:
                shared = data.overlap(a, b, data.EMBEDDED_SIZES[name_a])
            except ValueError:
                continue  # a bad split string: named by the split checks that follow
            if shared:
                raise ValueError(f"{field_a}={a!r} and {field_b}={b!r} share {shared} images "
                                 f"of {name_a}: use disjoint splits (e.g. train[:55000], "
                                 "train[55000:] and test)")
