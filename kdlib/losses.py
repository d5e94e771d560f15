"""Distillation and supervised losses on logits, plus small metrics (agreement, ensembles).

- ``kl``: the paper's distance, ``T**2 * KL(softmax(teacher / T) || softmax(student / T))`` per
  example (big_vision ``distance='kl'``); average it over the batch yourself.
- ``dist``: DIST (Huang et al. 2022), Pearson-correlation relations between the softmax
  outputs: inter-class per example plus intra-class per class over the whole batch.
- ``softmax_xent``: cross-entropy against int labels or soft / mixed-up label distributions.

Under ``jax.jit`` with the batch sharded by a ``NamedSharding`` these are ordinary ``jnp`` ops on
the global array, so the batch statistics of ``dist`` are global with no extra code. Inside
``shard_map``/``vmap``/``pmap`` over a named batch axis pass ``axis_name`` to ``dist``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from kdlib.tracing import concrete_values

DIST_EPS = 1e-8  # added to the denominator of the Pearson correlation (authors' value)


def _check_temperature(temperature: float | jax.Array) -> None:
    """Rejects a concrete temperature that is not one finite number > 0 (an array of them
    would broadcast against the classes, or square the batch: a wrong loss, not an error);
    traced ones (a vmapped sweep over temperatures) pass unchecked."""
    _check_positive("temperature", temperature, strict=True)
    values = concrete_values(temperature)
    if values is not None and values.ndim:
        raise ValueError(f"temperature of shape {values.shape} must be one number: per-example "
                         "temperatures are not supported (a sweep over temperatures vmaps "
                         "over the call, as kdlib.train does)")


def _check_positive(name: str, value: float | jax.Array, strict: bool) -> None:
    """A concrete ``value`` is a finite number > 0 (``strict``) or >= 0; traced ones pass."""
    bound = "> 0" if strict else ">= 0"
    if value is None or isinstance(value, str | bytes | bool):
        raise ValueError(f"{name}={value!r} must be a number {bound}")
    values = concrete_values(value)
    if values is None:
        return
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{name}={value!r} must be a number {bound} (got dtype "
                         f"{values.dtype})")
    ok = np.isfinite(values) & ((values > 0) if strict else (values >= 0))
    if not np.all(ok):
        if values.ndim:  # per-example values: name the offending one, not the array
            worst = values[~ok].flat[0]
            raise ValueError(f"{name} must be finite and {bound} everywhere; it holds "
                             f"{float(worst)!r}")
        raise ValueError(f"{name}={value!r} must be a finite number {bound}")


def _check_pair(student_logits: jax.Array, teacher_logits: jax.Array, ndim: int | None) -> None:
    s, t = jnp.shape(student_logits), jnp.shape(teacher_logits)
    if s != t:
        raise ValueError(f"student logits {s} and teacher logits {t} must have the same shape")
    if ndim is not None and len(s) != ndim:
        raise ValueError(f"logits must be {ndim}-d (batch, num_classes), got shape {s}")
    if len(s) < 1 or s[-1] < 1:
        raise ValueError(f"logits need a class axis of size >= 1, got shape {s}")


def kl(
    student_logits: jax.Array, teacher_logits: jax.Array, temperature: float = 1.0
) -> jax.Array:
    """Per-example ``T**2 * KL(softmax(teacher / T) || softmax(student / T))``, shape (...,).

    Computed from log-softmaxes (stable for any logit scale); classes on the last axis.
    """
    _check_pair(student_logits, teacher_logits, None)
    _check_temperature(temperature)
    return _kl(student_logits, teacher_logits, temperature)


@jax.jit
def _kl(student_logits: jax.Array, teacher_logits: jax.Array, temperature: jax.Array) -> jax.Array:
    log_p_t = jax.nn.log_softmax(teacher_logits / temperature, axis=-1)
    log_p_s = jax.nn.log_softmax(student_logits / temperature, axis=-1)
    return temperature**2 * jnp.sum(jnp.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)


def _safe_sqrt(x: jax.Array) -> jax.Array:
    """sqrt with a zero (not NaN) gradient at 0: constant rows/columns stay differentiable."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _pearson_rows(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (over the last axis)."""
    a = a - jnp.mean(a, axis=-1, keepdims=True)
    b = b - jnp.mean(b, axis=-1, keepdims=True)
    dot = jnp.sum(a * b, axis=-1)
    norms = _safe_sqrt(jnp.sum(a * a, axis=-1)) * _safe_sqrt(jnp.sum(b * b, axis=-1))
    return dot / (norms + DIST_EPS)


def _pearson_columns(a: jax.Array, b: jax.Array, axis_name: str | None) -> jax.Array:
    """Pearson correlation per column over the batch, across all shards of ``axis_name``."""
    if axis_name is None:
        return _pearson_rows(a.T, b.T)
    mean_a = jax.lax.pmean(jnp.mean(a, axis=0), axis_name)
    mean_b = jax.lax.pmean(jnp.mean(b, axis=0), axis_name)
    a, b = a - mean_a, b - mean_b
    dot, ssa, ssb = jax.lax.psum(
        (jnp.sum(a * b, axis=0), jnp.sum(a * a, axis=0), jnp.sum(b * b, axis=0)), axis_name
    )
    return dot / (_safe_sqrt(ssa) * _safe_sqrt(ssb) + DIST_EPS)


def dist(
    student_logits: jax.Array,
    teacher_logits: jax.Array,
    temperature: float = 1.0,
    beta: float = 1.0,
    gamma: float = 1.0,
    axis_name: str | None = None,
) -> jax.Array:
    """DIST loss (scalar): ``T**2 * (beta * inter + gamma * intra)`` on softmax(logits / T).

    inter = mean over examples of 1 - Pearson over classes; intra = mean over classes of
    1 - Pearson over the batch (the transposed matrix), as in the authors' ``DIST`` module.
    ``axis_name``: the named axis the batch is split over (vmap/shard_map/pmap); the intra
    statistics are then psum'd over it, so every shard returns the global-batch loss. Shards
    must be of equal size. Not needed under plain jit with sharded arrays.
    """
    _check_pair(student_logits, teacher_logits, 2)
    _check_temperature(temperature)
    _check_positive("beta", beta, strict=False)
    _check_positive("gamma", gamma, strict=False)
    if jnp.shape(student_logits)[0] < 1:  # one example is defined: its columns are constant
        raise ValueError(f"DIST averages over the batch, so it needs 1 or more examples; got "
                         f"logits of shape {jnp.shape(student_logits)}")
    if axis_name is not None and not isinstance(axis_name, str):
        raise ValueError(f"axis_name={axis_name!r} must be None or the name (str) of the "
                         "vmap/shard_map axis the batch is split over")
    return _dist(student_logits, teacher_logits, temperature, beta, gamma, axis_name)


@partial(jax.jit, static_argnums=5)
def _dist(
    student_logits: jax.Array, teacher_logits: jax.Array, temperature: jax.Array,
    beta: jax.Array, gamma: jax.Array, axis_name: str | None,
) -> jax.Array:
    y_s = jax.nn.softmax(student_logits / temperature, axis=-1)
    y_t = jax.nn.softmax(teacher_logits / temperature, axis=-1)
    inter = 1.0 - jnp.mean(_pearson_rows(y_s, y_t))
    if axis_name is not None:
        inter = jax.lax.pmean(inter, axis_name)
    intra = 1.0 - jnp.mean(_pearson_columns(y_s, y_t, axis_name))
    return temperature**2 * (beta * inter + gamma * intra)


def _check_label_range(labels: jax.Array, num_classes: int) -> None:
    """Rejects concrete class ids outside [0, num_classes) (a NaN loss, or a silently wrong
    class); traced ids (inside a jitted step) pass unchecked."""
    values = concrete_values(labels)
    if values is None:
        return
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        bad = sorted({int(v) for v in values.ravel() if not 0 <= v < num_classes})[:5]
        raise ValueError(f"labels must lie in [0, {num_classes}); got {bad}")


def onehot(labels: jax.Array, num_classes: int) -> jax.Array:
    """Int class ids (...,) as float32 one-hot vectors (..., num_classes)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be a positive Python int")
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be int class ids, got dtype {labels.dtype}")
    _check_label_range(labels, num_classes)
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def softmax_xent(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example cross-entropy, shape (...,): int labels (...,) or soft labels (..., C).

    Soft labels (one-hot, mixed-up, or teacher probabilities) give ``-sum(y * log_softmax)``.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim < 1:
        raise ValueError(f"logits need a class axis, got shape {logits.shape}")
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"int labels must have shape {logits.shape[:-1]} for logits {logits.shape}, "
                f"got {labels.shape}"
            )
        _check_label_range(labels, logits.shape[-1])
        return _xent_int(logits, labels)
    if labels.shape != logits.shape:
        raise ValueError(
            f"soft labels must have the logits' shape {logits.shape}, got {labels.shape}"
        )
    return _xent_soft(logits, labels)


@jax.jit
def _xent_int(logits: jax.Array, labels: jax.Array) -> jax.Array:
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]


@jax.jit
def _xent_soft(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return -jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def ensemble_logits(logits: Sequence[jax.Array]) -> jax.Array:
    """Mean of several models' logits: the paper's ensemble teacher (section 3.4)."""
    logits = list(logits)
    if not logits:
        raise ValueError("ensemble_logits needs at least one array of logits")
    shapes = {tuple(jnp.shape(x)) for x in logits}
    if len(shapes) != 1:
        raise ValueError(f"all logits must have the same shape, got {sorted(shapes)}")
    return jnp.mean(jnp.stack(logits), axis=0)


def agreement(a_logits: jax.Array, b_logits: jax.Array) -> jax.Array:
    """Fraction of examples whose top-1 class is the same under both logits (scalar)."""
    _check_pair(a_logits, b_logits, None)
    same = jnp.argmax(a_logits, axis=-1) == jnp.argmax(b_logits, axis=-1)
    return jnp.mean(same.astype(jnp.float32))
