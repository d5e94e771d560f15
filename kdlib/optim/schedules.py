"""Learning-rate schedules: linear warmup from 0, then cosine / quadratic decay to 0, or constant.

All schedules follow big_vision's `create_learning_rate_schedule`: with `warmup_steps > 0` the
value at step 0 is 0 and rises linearly to `base_lr` at `step == warmup_steps`; the decay then
runs over the remaining `total_steps - warmup_steps` steps and reaches 0 at `total_steps`
(later steps stay at 0). Steps count optimizer updates starting at 0, like optax's counters.

`total_steps` and `warmup_steps` may be scalar JAX arrays, so runs that differ only in their
length share one compiled train step. Pass `base_lr=1.0` to get a multiplier in [0, 1] for
the `schedule=` argument of `adam_bv`, `sgd_momentum` and `shampoo`.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from kdlib.optim._checks import check_float, check_int, is_traced

# Appendix D of Beyer et al. (2022): Shampoo runs used "a linear warm-up up to 1800 steps
# followed by a quadratic decay towards zero".
APPENDIX_D_WARMUP_STEPS = 1800


def _check_common(base_lr: float, total_steps: int, warmup_steps: int) -> tuple[float, int, int]:
    base_lr = check_float("base_lr", base_lr, low=0.0, low_open=True)
    total_steps = check_int("total_steps", total_steps, minimum=1)
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
    if not (is_traced(total_steps) or is_traced(warmup_steps)) and warmup_steps > total_steps:
        raise ValueError(
            f"warmup_steps must be <= total_steps, got warmup_steps={warmup_steps} > "
            f"total_steps={total_steps}"
        )
    return base_lr, total_steps, warmup_steps


def _warmup_factor(step: jnp.ndarray, warmup_steps: int) -> jnp.ndarray:
    if is_traced(warmup_steps):
        ramp = jnp.minimum(1.0, step / jnp.maximum(warmup_steps, 1))
        return jnp.where(warmup_steps > 0, ramp, 1.0)
    if warmup_steps == 0:
        return jnp.ones_like(step)
    return jnp.minimum(1.0, step / warmup_steps)


def _decay_progress(step: jnp.ndarray, total_steps: int, warmup_steps: int) -> jnp.ndarray:
    decay_steps = jnp.maximum(total_steps - warmup_steps, 1)
    return jnp.clip((step - warmup_steps) / decay_steps, 0.0, 1.0)


def warmup_cosine(base_lr: float, total_steps: int, warmup_steps: int = 0) -> optax.Schedule:
    """Linear warmup 0 -> base_lr over `warmup_steps`, then cosine decay to 0 at `total_steps`.

    Same as big_vision's `decay_type="cosine"` with `warmup_steps` (the paper's Adam runs).
    """
    base_lr, total_steps, warmup_steps = _check_common(base_lr, total_steps, warmup_steps)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        progress = _decay_progress(step, total_steps, warmup_steps)
        cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        return base_lr * cosine * _warmup_factor(step, warmup_steps)

    return schedule


def warmup_quadratic_decay(
    base_lr: float, total_steps: int, warmup_steps: int = APPENDIX_D_WARMUP_STEPS
) -> optax.Schedule:
    """Linear warmup 0 -> base_lr, then `base_lr * (1 - progress)**2` down to 0 at `total_steps`.

    The schedule of the paper's Shampoo runs (appendix D: warmup 1800 steps, quadratic decay).
    """
    base_lr, total_steps, warmup_steps = _check_common(base_lr, total_steps, warmup_steps)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        progress = _decay_progress(step, total_steps, warmup_steps)
        return base_lr * (1.0 - progress) ** 2 * _warmup_factor(step, warmup_steps)

    return schedule


def warmup_constant(base_lr: float, warmup_steps: int = 0) -> optax.Schedule:
    """Linear warmup 0 -> base_lr over `warmup_steps`, then constant `base_lr` forever."""
    base_lr = check_float("base_lr", base_lr, low=0.0, low_open=True)
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        return base_lr * _warmup_factor(step, warmup_steps)

    return schedule
