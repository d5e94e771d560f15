"""Experiment configs: frozen dataclasses of plain values, readable in a notebook and hashable.

One :class:`RunConfig` fully determines a run (data, student, teacher, views, loss, optimizer,
schedule, seed); its hash keys the results store, so two runs with equal configs are one run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kdlib.store import HASH_NEUTRAL

LOSSES = ("kl", "dist", "labels")
OPTIMIZERS = ("adam", "sgd", "shampoo")
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
    policy: str = "mix"  # one of kdlib.views.POLICIES
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
    init: str | None = None  # a stored model ("teachers/<name>") to start the student from
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


def validate(config: RunConfig) -> None:
    """Raises ValueError naming the first bad field of ``config`` and what is allowed."""
    from kdlib.views import POLICIES

    if config.loss not in LOSSES:
        raise ValueError(f"loss={config.loss!r} is not one of {LOSSES}")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={config.optimizer!r} is not one of {OPTIMIZERS}")
    if config.policy not in POLICIES:
        raise ValueError(f"policy={config.policy!r} is not one of {POLICIES}")
    if config.loss != "labels" and not config.teachers:
        raise ValueError(f"loss={config.loss!r} distills from a teacher: set teachers=(name, ...)")
    if config.loss == "labels" and config.policy.startswith("fix/"):
        raise ValueError(f"policy={config.policy!r} needs a teacher; loss='labels' has none")
    positive = {
        "temperature": config.temperature, "lr": config.lr, "batch_size": config.batch_size,
        "epochs": config.epochs, "steps_per_call": config.steps_per_call,
        "student_size": config.student_size,
    }
    for name, value in positive.items():
        if not value > 0:
            raise ValueError(f"{name}={value!r} must be > 0")
    if config.wd < 0:
        raise ValueError(f"wd={config.wd!r} must be >= 0")
    if isinstance(config.teacher_size, tuple | list):
        if len(config.teacher_size) != len(config.teachers):
            raise ValueError(
                f"teacher_size={config.teacher_size!r} gives {len(config.teacher_size)} sizes "
                f"for {len(config.teachers)} teachers {config.teachers!r}: one size per teacher"
            )
        bad = [s for s in config.teacher_size if not (isinstance(s, int) and s > 0)]
        if bad:
            raise ValueError(f"teacher_size={config.teacher_size!r}: sizes must be ints > 0")
    elif config.teacher_size is not None and not (
        isinstance(config.teacher_size, int) and config.teacher_size > 0
    ):
        raise ValueError(
            f"teacher_size={config.teacher_size!r} must be None, an int > 0 or one int per teacher"
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
            and config.policy.startswith("fix/")):
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


def teacher_sizes(config: RunConfig) -> tuple[int, ...]:
    """The input resolution of each of ``config.teachers`` (see ``RunConfig.teacher_size``)."""
    if isinstance(config.teacher_size, tuple | list):
        return tuple(config.teacher_size)
    return (config.teacher_size or config.student_size,) * len(config.teachers)


def teacher_view_size(config: RunConfig) -> int:
    """The resolution teacher views are cut at: the largest teacher size (each teacher gets
    the view resized to its own); the student's size without teachers."""
    return max(teacher_sizes(config), default=config.student_size)
