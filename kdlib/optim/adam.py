"""Adam in the big_vision convention used by the paper (clip, Adam, kernel-only decoupled decay)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optax

from kdlib.optim._checks import check_float
from kdlib.optim.weight_decay import MaskOrFn, decoupled_tail, kernel_mask, maybe_clip


def adam_bv(
    learning_rate: float,
    *,
    schedule: Callable[[Any], Any] | None = None,
    weight_decay: float = 0.0,
    decay_mask: MaskOrFn = kernel_mask,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    grad_clip_norm: float | None = 1.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adam as big_vision runs it: the paper's optimizer for all non-Shampoo runs.

    With `g` the gradient clipped to global L2 norm `grad_clip_norm` (None: no clipping),
    `adam(g)` optax's bias-corrected `m_hat / (sqrt(v_hat) + eps)`, and `mult(t) =
    schedule(t)` (1 when `schedule` is None), the update at step t (from 0) is

        update_t = -mult(t) * (learning_rate * adam(g)_t + weight_decay * mask * w_t)

    `mask` is `decay_mask(params)` (default: True on "kernel" leaves only). `schedule` is a
    multiplier in [0, 1], e.g. `warmup_cosine(1.0, total_steps, warmup_steps)`; the effective
    learning rate is `learning_rate * mult(t)`, the effective decay `weight_decay * mult(t)`.
    `update` needs `params` when `weight_decay > 0`.
    """
    b1 = check_float("b1", b1, low=0.0, high=1.0, high_open=True)
    b2 = check_float("b2", b2, low=0.0, high=1.0, high_open=True)
    eps = check_float("eps", eps, low=0.0)
    return optax.chain(
        *maybe_clip(grad_clip_norm),
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype),
        decoupled_tail(
            learning_rate, schedule=schedule, weight_decay=weight_decay, decay_mask=decay_mask
        ),
    )
