"""Experiment configs: frozen dataclasses of plain values, readable in a notebook and hashable.

One :class:`RunConfig` fully determines a run (data, student, teacher, views, loss, optimizer,
schedule, seed); its hash keys the results store, so two runs with equal configs are one run.
The config owns that identity: :func:`config_to_dict`, :func:`canonical_json` and
:func:`config_hash` are here (the store only uses them), and so is :data:`HASH_NEUTRAL`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Field metadata of a config field added after runs were stored: at its default it is left out
# of config.json and the hash, so those runs keep their folders (see _at_neutral_default).
HASH_NEUTRAL = "hash_neutral_default"
HASH_LENGTH = 12
_FLOAT_DIGITS = 15  # canonical floats: 15 significant digits absorb round-off like 0.1 + 0.2
_PATH_PART = re.compile(r"^[A-Za-z0-9_.+-]+$")

LOSSES = ("kl", "dist", "labels")
OPTIMIZERS = ("adam", "sgd", "shampoo")
# Smallest image side a run may use: below it every model's last stage sees one pixel of
# almost nothing (student_size=1 trained and was stored as done).
MIN_IMAGE_SIZE = 8
# How several teachers combine (RunConfig.teacher_ensemble):
# - "mean_logits": one teacher whose logits are the mean of theirs (the paper, section 3.6:
#   "averaging the logits from our default teacher at 224px ... and ... at 384px").
# - "sum_losses": the distillation loss summed over teachers (big_vision
#   trainers/proj/distill/distill.py, loss_fn: ``distill_loss += dist(student, teacher)``;
#   for KL the same gradient as distilling their mean probabilities, times their number).
# With one teacher both are the same loss.
TEACHER_ENSEMBLES = ("mean_logits", "sum_losses")
# DataConfig.pipeline: None = kdlib's (tfds images stored as centre squares, evaluated whole);
# "big_vision" = the authors' (train crops from the whole image, evaluation
# resize_small | central_crop; see kdlib.experiments.paper_recipes.PIPELINE).
PIPELINES = (None, "big_vision")
MU_DTYPES = (None, "bfloat16")


@dataclass(frozen=True)
class DataConfig:
    """Which images a run trains and evaluates on (split strings with tfds semantics)."""

    name: str = "fashion_mnist"
    train_split: str = "train[:55000]"
    val_split: str = "train[55000:]"
    test_split: str = "test"
    train_size: int | None = None  # class-balanced subset of the train split (small-data regimes)
    classes: tuple[int, ...] | None = None  # keep only these classes of the train split
    val_size: int | None = None  # evaluate on a balanced subset of validation (speed)
    test_size: int | None = None
    # Evaluate (val_split, test_split) on this dataset instead of ``name``: distilling on
    # images of another domain (chapter 08). Added later: hash-neutral at its default.
    eval_name: str | None = field(default=None, metadata={HASH_NEUTRAL: True})
    # Seed of the ``train_size`` subset; None: the run's seed. Seed replicates of a small-data
    # run fix it, so they differ in initialization, data order and augmentation, not in which
    # images they see. Added later: hash-neutral at its default.
    subset_seed: int | None = field(default=None, metadata={HASH_NEUTRAL: True})
    # How tfds images are stored and evaluated (see PIPELINES). Added later: hash-neutral.
    pipeline: str | None = field(default=None, metadata={HASH_NEUTRAL: True})

    @property
    def eval_dataset(self) -> str:
        """The dataset whose val/test splits score the run."""
        return self.eval_name or self.name


@dataclass(frozen=True)
class ModelConfig:
    """A model by its registry name (``kdlib.models.create``) and keyword arguments."""

    name: str = "bit"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    """One training run: distillation from ``teachers`` or, with ``loss='labels'``, from labels."""

    preset: str = "smoke"
    section: str = "scratch"
    data: DataConfig = field(default_factory=DataConfig)
    student: ModelConfig = field(default_factory=ModelConfig)
    teachers: tuple[str, ...] = ()  # names of stored teachers (results/teachers/<name>)
    policy: str = "mix"  # one of kdlib.policies.POLICIES
    loss: str = "kl"  # "kl" | "dist" | "labels"
    temperature: float = 1.0
    dist_beta: float = 1.0
    dist_gamma: float = 1.0
    fixed_num_crops: int = 8  # K of fix/ic_ens
    student_size: int = 28
    # None: the student's; a tuple: one per teacher (an ensemble at several resolutions)
    teacher_size: int | tuple[int, ...] | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    wd: float = 1e-4
    momentum: float = 0.9
    warmup_frac: float = 0.05
    grad_clip: float = 1.0
    shampoo: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 128
    epochs: float = 1.0
    steps_per_call: int = 50  # steps fused into one jitted lax.scan call
    eval_every: int = 0  # steps between evaluations; 0: about 10 evaluations per run
    checkpoint_every: int = 0  # steps between checkpoints; 0: at every evaluation
    init: str | None = None  # a stored model's name (results/teachers/<name>) to start from
    seed: int = 0
    # Added later, hash-neutral at their defaults (every stored run keeps its hash):
    # warmup in optimizer steps, as the paper's configs give it (overrides warmup_frac; capped
    # at the run's length); how several teachers combine (TEACHER_ENSEMBLES); the dtype of
    # Adam's first moment (Listing 1: mu_dtype='bfloat16').
    warmup_steps: int | None = field(default=None, metadata={HASH_NEUTRAL: True})
    teacher_ensemble: str = field(default="mean_logits", metadata={HASH_NEUTRAL: True})
    mu_dtype: str | None = field(default=None, metadata={HASH_NEUTRAL: True})

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (dotted keys like ``"data.train_size"`` allowed)."""
        return replace(self, **changes)


def replace(config: Any, _prefix: str = "", **changes: Any) -> Any:
    """``dataclasses.replace`` that also accepts dotted keys for nested dataclasses."""
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    names = {f.name for f in dataclasses.fields(config)}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if head not in names:
            raise ValueError(
                f"unknown config field {_prefix + key!r} for {type(config).__name__}; "
                f"allowed: {sorted(names)}"
            )
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = replace(direct.get(head, getattr(config, head)), f"{_prefix}{head}.", **sub)
    return dataclasses.replace(config, **direct)


# Numeric fields: (kind, lowest allowed, whether the lowest is excluded, highest excluded).
_NUMBERS: dict[str, tuple[type, float, bool, float | None]] = {
    "temperature": (float, 0, True, None), "dist_beta": (float, 0, False, None),
    "dist_gamma": (float, 0, False, None), "lr": (float, 0, True, None),
    "wd": (float, 0, False, None), "momentum": (float, 0, False, 1),
    "warmup_frac": (float, 0, False, 1), "epochs": (float, 0, True, None),
    "fixed_num_crops": (int, 1, False, None), "student_size": (int, MIN_IMAGE_SIZE, False, None),
    "batch_size": (int, 1, False, None), "steps_per_call": (int, 1, False, None),
    "eval_every": (int, 0, False, None), "checkpoint_every": (int, 0, False, None),
    "seed": (int, 0, False, None),
}


def check_number(name: str, value: Any, kind: type = float, low: float | None = None,
                 open_low: bool = False, high: float | None = None) -> None:
    """One-line ValueError unless ``value`` is a finite number of ``kind`` in range."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind is int and not is_int:
        hint = f" (write {name}={value!r} without quotes)" if isinstance(value, str) else ""
        raise ValueError(f"{name}={value!r} is a {type(value).__name__}; it must be an int"
                         f"{hint}")
    if kind is float and not (is_int or (isinstance(value, float) and math.isfinite(value))):
        hint = (f": write {name}={value} without quotes" if isinstance(value, str) else
                ": give a finite number such as 0.001")
        raise ValueError(f"{name}={value!r} is not a finite number{hint}")
    bound = ""
    if low is not None and (value <= low if open_low else value < low):
        bound = f"> {low}" if open_low else f">= {low}"
    if high is not None and value >= high:
        bound = f"< {high}"
    if bound:
        where = f"in [{low}, {high})" if high is not None else bound
        raise ValueError(f"{name}={value!r} must be {where}")


def _check_names(config: RunConfig) -> None:
    """preset, section, teachers and init: known preset, folder names, stored-model names."""
    from kdlib import presets

    presets.check(config.preset)
    check_folder_name("section", config.section)
    teachers = config.teachers
    if isinstance(teachers, str) or not isinstance(teachers, tuple | list):
        raise ValueError(f"teachers={teachers!r} must be a tuple of stored teacher names, "
                         f"e.g. teachers=({teachers!r},)")
    for name in teachers:
        check_folder_name("teacher name", name)
    if config.init is not None:
        check_folder_name("init", config.init)


def _check_parts(config: RunConfig) -> None:
    """data and student: the right dataclasses with plain values."""
    if not isinstance(config.data, DataConfig):
        raise ValueError(f"data={config.data!r} must be a DataConfig, e.g. DataConfig('digits')")
    if not isinstance(config.student, ModelConfig):
        raise ValueError(f"student={config.student!r} must be a ModelConfig, e.g. "
                         "ModelConfig('bit', {'depth': [1, 1, 1, 1], 'width': 0.0625})")
    d = config.data
    for name in ("name", "train_split", "val_split", "test_split"):
        if not isinstance(getattr(d, name), str):
            raise ValueError(f"data.{name}={getattr(d, name)!r} must be a str")
    for name in ("train_size", "val_size", "test_size"):
        if getattr(d, name) is not None:
            check_number(f"data.{name}", getattr(d, name), int, 1)
    if getattr(d, "subset_seed", None) is not None:
        check_number("data.subset_seed", d.subset_seed, int, 0)
    if d.classes is not None and (not isinstance(d.classes, tuple | list) or not d.classes or
                                  not all(isinstance(c, int) and not isinstance(c, bool)
                                          for c in d.classes)):
        raise ValueError(f"data.classes={d.classes!r} must be None or a non-empty tuple of "
                         "class ids, e.g. (0, 1, 2)")
    if not isinstance(config.student.kwargs, dict):
        raise ValueError(f"student.kwargs={config.student.kwargs!r} must be a dict")
    if not isinstance(config.shampoo, dict):
        raise ValueError(f"shampoo={config.shampoo!r} must be a dict of Shampoo options")


def validate(config: RunConfig) -> None:
    """Raises a one-line ValueError naming the first bad field of ``config``, what is
    allowed and how to fix it; never a TypeError (``lr="1e-3"`` is named as a str).

    Checks values only; :func:`kdlib.checks.check_run` also checks the files they name.
    """
    from kdlib.policies import POLICIES, teacher_mode

    if not isinstance(config, RunConfig):
        raise ValueError(f"config must be a RunConfig, got {type(config).__name__}")
    _check_names(config)
    for name, value, allowed in (("loss", config.loss, LOSSES),
                                 ("optimizer", config.optimizer, OPTIMIZERS),
                                 ("policy", config.policy, POLICIES)):
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"{name}={value!r} is not one of {allowed}")
    for name, (kind, low, open_low, high) in _NUMBERS.items():
        check_number(name, getattr(config, name), kind, low, open_low, high)
    if config.grad_clip is not None:
        check_number("grad_clip", config.grad_clip, float, 0, True)
    _check_parts(config)
    if config.loss != "labels" and not config.teachers:
        raise ValueError(f"loss={config.loss!r} distills from a teacher: set teachers=(name, ...)")
    if config.loss == "dist" and config.batch_size < 2:
        raise ValueError(f"loss='dist' with batch_size={config.batch_size}: DIST's intra-class "
                         "term correlates each class over the batch, so it needs batch_size >= 2")
    if config.loss == "dist" and config.dist_beta == 0 and config.dist_gamma == 0:
        raise ValueError("loss='dist' with dist_beta=0 and dist_gamma=0 is zero for every "
                         "input: set either (the defaults are 1 and 1)")
    if config.loss == "labels":
        # ignored in training, yet part of the run's hash: a second copy of the same run
        unused = [f"{name}={getattr(config, name)!r}" for name, is_default in (
            ("teachers", not config.teachers), ("temperature", config.temperature == 1.0),
            ("teacher_size", config.teacher_size is None)) if not is_default]
        if unused:
            raise ValueError(f"loss='labels' trains without a teacher, so {', '.join(unused)} "
                             "would change the run's hash but not its training: leave them at "
                             "teachers=(), temperature=1.0, teacher_size=None")
    if config.loss != "dist" and (config.dist_beta, config.dist_gamma) != (1.0, 1.0):
        raise ValueError(f"dist_beta={config.dist_beta!r}, dist_gamma={config.dist_gamma!r} "
                         f"weigh DIST's terms, but loss={config.loss!r}: leave them at 1.0 "
                         "(they would change the run's hash but not its training)")
    if config.loss == "labels" and teacher_mode(config.policy) == "fixed":
        raise ValueError(f"policy={config.policy!r} needs a teacher; loss='labels' has none")
    if isinstance(config.teacher_size, tuple | list):
        if len(config.teacher_size) != len(config.teachers):
            raise ValueError(
                f"teacher_size={config.teacher_size!r} gives {len(config.teacher_size)} sizes "
                f"for {len(config.teachers)} teachers {config.teachers!r}: one size per teacher"
            )
        bad = [s for s in config.teacher_size if not (
            isinstance(s, int) and not isinstance(s, bool) and s >= MIN_IMAGE_SIZE)]
        if bad:
            raise ValueError(f"teacher_size={config.teacher_size!r}: sizes must be ints >= "
                             f"{MIN_IMAGE_SIZE}")
    elif config.teacher_size is not None and not (
        isinstance(config.teacher_size, int) and not isinstance(config.teacher_size, bool)
        and config.teacher_size >= MIN_IMAGE_SIZE
    ):
        raise ValueError(
            f"teacher_size={config.teacher_size!r} must be None, an int >= {MIN_IMAGE_SIZE} "
            "or one such int per teacher"
        )
    if not 0 <= config.warmup_frac < 1:
        raise ValueError(f"warmup_frac={config.warmup_frac!r} must be in [0, 1)")
    if config.warmup_steps is not None and not (
        isinstance(config.warmup_steps, int) and not isinstance(config.warmup_steps, bool)
        and config.warmup_steps >= 0
    ):
        raise ValueError(f"warmup_steps={config.warmup_steps!r} must be None or an int >= 0")
    if config.teacher_ensemble not in TEACHER_ENSEMBLES:
        raise ValueError(f"teacher_ensemble={config.teacher_ensemble!r} is not one of "
                         f"{TEACHER_ENSEMBLES}")
    if (config.teacher_ensemble == "sum_losses" and len(config.teachers) > 1
            and teacher_mode(config.policy) == "fixed"):
        raise ValueError(f"teacher_ensemble='sum_losses' with policy={config.policy!r}: fixed "
                         "targets are one set of logits; use 'mean_logits' or one teacher")
    if config.mu_dtype not in MU_DTYPES:
        raise ValueError(f"mu_dtype={config.mu_dtype!r} is not one of {MU_DTYPES}")
    if config.data.pipeline not in PIPELINES:
        raise ValueError(f"data.pipeline={config.data.pipeline!r} is not one of {PIPELINES}")


def warmup_steps(config: RunConfig, steps: int) -> int:
    """Warmup steps of a run of ``steps`` steps: ``warmup_steps`` (at most ``steps``) when set,
    else ``round(warmup_frac * steps)``."""
    if config.warmup_steps is not None:
        return min(config.warmup_steps, steps)
    return int(round(config.warmup_frac * steps))


def config_from_dict(stored: dict[str, Any]) -> RunConfig:
    """The :class:`RunConfig` of a stored ``config.json`` (lists back to tuples); its hash is
    the run folder's name (tested over every stored run)."""
    d = dict(stored)
    data = dict(d.pop("data", {}))
    if data.get("classes") is not None:
        data["classes"] = tuple(data["classes"])
    student = d.pop("student", {})
    if isinstance(d.get("teacher_size"), list):
        d["teacher_size"] = tuple(d["teacher_size"])
    d["teachers"] = tuple(d.get("teachers", ()))
    return RunConfig(data=DataConfig(**data), student=ModelConfig(**student), **d)


def teacher_sizes(config: RunConfig) -> tuple[int, ...]:
    """The input resolution of each of ``config.teachers`` (see ``RunConfig.teacher_size``)."""
    if isinstance(config.teacher_size, tuple | list):
        return tuple(config.teacher_size)
    return (config.teacher_size or config.student_size,) * len(config.teachers)


def teacher_view_size(config: RunConfig) -> int:
    """The resolution teacher views are cut at: the largest teacher size (each teacher gets
    the view resized to its own); the student's size without teachers."""
    return max(teacher_sizes(config), default=config.student_size)


# --------------------------------------------------------------------------- identity


def _at_neutral_default(f: dataclasses.Field, value: Any) -> bool:
    """True for a field marked ``metadata={HASH_NEUTRAL: True}`` that holds its default."""
    if not f.metadata.get(HASH_NEUTRAL):
        return False
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return value == default


def _plain(value: Any, where: str) -> Any:
    """Convert one config value to plain JSON types (dataclass -> dict, tuple -> list)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(value)
            if not _at_neutral_default(f, getattr(value, f.name))
        }
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"config key {key!r} at {where} must be a str (JSON objects have str keys)"
                )
            out[key] = _plain(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and not value.shape:
        # numpy scalar: str() gives the shortest repr of its own precision (float32 0.001)
        item = value.item()
        return float(str(value)) if isinstance(item, float) else item
    raise ValueError(
        f"config value at {where} has type {type(value).__name__}; allowed: str, int, float, "
        "bool, None, list/tuple, dict with str keys, dataclass"
    )


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-ready dict of a (nested) dataclass config; tuples become lists.

    Field order follows the dataclass definition; a mapping is accepted too (e.g. a config
    read back from config.json). Fields marked hash-neutral (:data:`HASH_NEUTRAL`) are left
    out while they hold their default.
    """
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)) and not isinstance(
        config, Mapping
    ):
        raise ValueError(
            f"config must be a dataclass instance or a mapping, got {type(config).__name__}"
        )
    return _plain(config, "config")


def _canonical(value: Any) -> Any:
    """Canonical form for hashing: floats rounded to 15 digits, integral floats as ints."""
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        value = float(f"{value:.{_FLOAT_DIGITS}g}")
        if value.is_integer() and abs(value) < 1e15:
            return int(value)
        return value
    return value


def canonical_json(config: Any) -> str:
    """The exact string that config_hash hashes: sorted keys, no whitespace, canonical floats."""
    return json.dumps(
        _canonical(config_to_dict(config)),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )


def config_hash(config: Any) -> str:
    """First 12 hex chars of the sha256 of the canonical JSON of a config.

    1e-3 and 0.001 (and 1 and 1.0) hash equal; any other change of any field changes it.
    """
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:HASH_LENGTH]


def check_folder_name(name: str, value: Any) -> str:
    """``value`` if it is a safe single folder name, else a one-line ValueError naming it."""
    if not isinstance(value, str) or not _PATH_PART.match(value) or value in (".", ".."):
        raise ValueError(
            f"{name}={value!r} must be a non-empty folder name of letters, digits, "
            "'_', '-', '.', '+'"
        )
    return value
