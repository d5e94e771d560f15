"""SGD with (Nesterov) momentum in the big_vision convention (the paper's SGDM baseline)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optax

from kdlib.optim._checks import check_float
from kdlib.optim.weight_decay import MaskOrFn, decoupled_tail, kernel_mask, maybe_clip


def sgd_momentum(
    learning_rate: float,
    *,
    schedule: Callable[[Any], Any] | None = None,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    decay_mask: MaskOrFn = kernel_mask,
    grad_clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """SGD with heavy-ball or Nesterov momentum and kernel-only decoupled weight decay.

    With `g` the (optionally clipped) gradient, the momentum buffer is `m_t = g_t +
    momentum * m_{t-1}` (optax.trace, m_{-1} = 0) and the direction is `u_t = m_t`, or
    `g_t + momentum * m_t` with `nesterov=True`. The update is, as for `adam_bv`,

        update_t = -mult(t) * (learning_rate * u_t + weight_decay * mask * w_t)

    with `mult = schedule` (a multiplier in [0, 1], None means 1).
    """
    momentum = check_float("momentum", momentum, low=0.0, high=1.0, high_open=True)
    direction = optax.trace(decay=momentum, nesterov=bool(nesterov)) if momentum > 0 else None
    return optax.chain(
        *maybe_clip(grad_clip_norm),
        *([direction] if direction is not None else []),
        decoupled_tail(
            learning_rate, schedule=schedule, weight_decay=weight_decay, decay_mask=decay_mask
        ),
    )
