"""big_vision's update convention: which leaves decay, and the shared lr / decay / schedule tail.

big_vision (the authors' code) applies, for any base optimizer direction `u_t`,

    update_t = -sched_mult(t) * (learning_rate * u_t + weight_decay * mask * w_t)

so weight decay is decoupled, acts on kernels only, is NOT multiplied by the (base) learning
rate, but IS multiplied by the schedule's relative value `sched_mult(t)` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from kdlib.optim._checks import check_float, check_optional_callable, is_traced

MaskOrFn = Any | Callable[[Any], Any]


def _key_name(key: Any) -> str | None:
    """The name of one pytree path entry (dict key, attribute or sequence index)."""
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    return None


def leaf_name(path: tuple[Any, ...]) -> str:
    """Last name on a pytree path; skips the trailing `.value` attribute of nnx Variables."""
    keys = list(path)
    while (
        len(keys) > 1
        and isinstance(keys[-1], jax.tree_util.GetAttrKey)
        and keys[-1].name in ("value", "raw_value")
    ):
        keys.pop()
    name = _key_name(keys[-1]) if keys else None
    return name or ""


def kernel_mask(params: Any) -> Any:
    """Pytree of bools like `params`: True where the leaf's name is "kernel" (Flax conv/dense).

    Biases, GroupNorm/BatchNorm scales and anything else get False: big_vision decays kernels
    only. Works on nested dicts and on `nnx.State` (whose leaves sit under `Param.value`).
    """
    return jax.tree_util.tree_map_with_path(lambda path, _: leaf_name(path) == "kernel", params)


def decoupled_tail(
    learning_rate: float,
    *,
    schedule: Callable[[Any], Any] | None,
    weight_decay: float,
    decay_mask: MaskOrFn,
) -> optax.GradientTransformation:
    """Turn a direction `u` into `-sched_mult(t) * (learning_rate * u + wd * mask * w)`.

    `schedule` maps the step count (from 0) to the multiplier in [0, 1]; None means 1.
    Needs `params` in `update` when `weight_decay > 0`.
    """
    learning_rate = check_float("learning_rate", learning_rate, low=0.0, low_open=True)
    weight_decay = check_float("weight_decay", weight_decay, low=0.0)
    check_optional_callable("schedule", schedule)
    parts = [optax.scale(learning_rate)]
    if is_traced(weight_decay) or weight_decay > 0.0:
        parts.append(optax.add_decayed_weights(weight_decay, mask=decay_mask))
    if schedule is not None:
        parts.append(optax.scale_by_schedule(schedule))
    parts.append(optax.scale(-1.0))
    return optax.chain(*parts)


def maybe_clip(grad_clip_norm: float | None) -> list[optax.GradientTransformation]:
    """`[clip_by_global_norm(grad_clip_norm)]`, or `[]` when it is None."""
    if grad_clip_norm is None:
        return []
    grad_clip_norm = check_float("grad_clip_norm", grad_clip_norm, low=0.0, low_open=True)
    return [optax.clip_by_global_norm(grad_clip_norm)]
