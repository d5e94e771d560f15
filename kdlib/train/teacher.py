"""The frozen teacher (or ensemble) as a pure function, and its targets computed once for the
fixed-teacher policies (``kdlib.policies.teacher_mode(policy) == "fixed"``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from kdlib import data, losses, teachers, views
from kdlib.config import RunConfig
from kdlib.train.batches import crop_kwargs
from kdlib.train.evaluate import EVAL_BATCH, predict


class Teacher:
    """A frozen teacher (or an ensemble) as a pure function of its state.

    ``sizes`` are the teachers' input resolutions (default: none, each takes the views as
    given): :meth:`apply` takes views at the largest and resizes them for the others, so
    every teacher sees the same crop (the paper's 224 px + 384 px ensemble). ``ensemble``
    (``config.TEACHER_ENSEMBLES``): "mean_logits" distills one teacher, the mean of their
    logits; "sum_losses" (big_vision) sums the loss over teachers: :meth:`targets` returns
    their logits stacked (teachers, batch, classes).
    """

    ensemble = "mean_logits"  # instances built without __init__ (benchmarks) keep the default

    def __init__(self, names: tuple[str, ...], sizes: tuple[int | None, ...] | None = None,
                 ensemble: str = "mean_logits"):
        self.ensemble = ensemble
        self.names = names
        loaded = [teachers.load(n) for n in names]
        self.cards = [card for _, card in loaded]
        self.graphdefs = []
        self.states = []
        for model, _ in loaded:
            gd, state = nnx.split(model)
            self.graphdefs.append(gd)
            self.states.append(state)
        self.image_size = self.cards[0]["image_size"] if self.cards else None
        if sizes is None:
            sizes = (None,) * len(names)
        if len(sizes) != len(names):
            raise ValueError(f"sizes={sizes!r}: one size per teacher of {names!r}")
        self.sizes = tuple(sizes)

    def apply(self, states: list, images: jax.Array) -> jax.Array:
        """Mean logits of the teachers on float NHWC views (each resized to its teacher's size
        when it differs from the views')."""
        return jax.lax.stop_gradient(losses.ensemble_logits(self.apply_each(states, images)))

    def apply_each(self, states: list, images: jax.Array) -> list[jax.Array]:
        """Each teacher's logits on float NHWC views (resized to its size where it differs)."""
        logits = []
        for gd, s, size in zip(self.graphdefs, states, self.sizes, strict=True):
            x = images
            if size is not None and size != images.shape[1]:
                x = jax.image.resize(images, (images.shape[0], size, size, images.shape[3]),
                                     "linear", antialias=True)
            logits.append(jax.lax.stop_gradient(nnx.merge(gd, s)(x)))
        return logits

    def targets(self, states: list, images: jax.Array) -> jax.Array:
        """What the loss compares the student with: (teachers, batch, classes) logits, one
        row per teacher for "sum_losses", a single row of mean logits for "mean_logits"."""
        if self.ensemble == "sum_losses":
            return jnp.stack(self.apply_each(states, images))
        return self.apply(states, images)[None]

    def predict(self, images: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
        """The ensemble's evaluation logits on uint8 images, each teacher at its own size
        (:meth:`eval_logits` of :func:`kdlib.train.evaluate.predict`)."""
        per_teacher = []
        for gd, s, size in zip(self.graphdefs, self.states, self.sizes, strict=True):
            if size is None:  # the evaluation views are cut at the teacher's size
                raise ValueError(f"Teacher.predict needs each teacher's input size; "
                                 f"sizes={self.sizes!r} (pass sizes= to Teacher)")
            per_teacher.append(predict(gd, (s,), images, size, batch))
        return self.eval_logits(per_teacher)

    def eval_logits(self, per_teacher: list[np.ndarray]) -> np.ndarray:
        """The ensemble's logits for evaluation metrics from each teacher's: the mean of the
        logits, or (for "sum_losses", as big_vision's ``teacher_ensemble_fwd``) the log of
        the mean probabilities."""
        if self.ensemble == "sum_losses" and len(per_teacher) > 1:
            probs = np.mean([np.asarray(jax.nn.softmax(jnp.asarray(x))) for x in per_teacher],
                            axis=0)
            return np.log(np.maximum(probs, 1e-30)).astype(np.float32)
        return np.mean(per_teacher, axis=0)


# Teacher forwards jitted for fixed targets, by (graphdefs, sizes): one program per
# teacher and view size in a process, whichever Teacher instance asks.
_JITTED_APPLY: dict = {}


def jit_fixed_targets(config: RunConfig) -> bool:
    """Whether :func:`fixed_targets` runs the teacher jitted. Jitted, a smoke chapter compiles
    one program instead of ~300 eager ones (one per op and shape), but its logits differ from
    the eager forward's by up to 1.6e-5 (measured on the cpu teacher, fix/rs, fix/cc and
    fix/ic_ens): the cpu preset, whose stored runs were trained on eager targets, stays eager
    so that they retrain to the bit."""
    return config.preset != "cpu"


def _jitted_apply(teacher: Teacher) -> Any:
    key = (tuple(teacher.graphdefs), teacher.sizes)
    if key not in _JITTED_APPLY:
        shell = Teacher.__new__(Teacher)  # the graphs and sizes only: no weights kept alive
        shell.graphdefs, shell.sizes = list(key[0]), key[1]
        _JITTED_APPLY[key] = jax.jit(shell.apply)
    return _JITTED_APPLY[key]


def fixed_targets(
    config: RunConfig, teacher: Teacher, train_data: Any, teacher_size: int
) -> np.ndarray:
    """The fixed teacher's logits of every training image, computed once (fix/* policies).

    A streamed split is read block by block; each image keeps its own crops (seeded by its
    index), so the targets equal those of the same images in memory. The teacher runs jitted
    where :func:`jit_fixed_targets` says so, else op by op.
    """
    fn = _jitted_apply(teacher) if jit_fixed_targets(config) else teacher.apply
    apply = lambda imgs: fn(teacher.states, imgs)
    kw: dict[str, Any] = dict(teacher_size=teacher_size, batch_size=EVAL_BATCH,
                              num_crops=config.fixed_num_crops, seed=config.seed,
                              **crop_kwargs(config))
    big_vision = config.data.pipeline == "big_vision"
    if not isinstance(train_data, data.StreamingDataset):
        aspect = train_data.aspect if big_vision else None
        return views.precompute_fixed_targets(config.policy, apply, train_data.images,
                                              aspect=aspect, **kw)
    block = 16 * EVAL_BATCH
    out = []
    for start in range(0, len(train_data), block):
        images, _, aspect = train_data.read(np.arange(start, min(start + block, len(train_data))))
        out.append(views.precompute_fixed_targets(config.policy, apply, images, first_index=start,
                                                  aspect=aspect if big_vision else None, **kw))
    return np.concatenate(out)
