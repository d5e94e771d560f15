"""The run's optimizer, and the numbers of a run that enter the compiled step as arrays.

Runs that differ only in :data:`HPARAMS`, length or seed share one compiled program: a sweep
over them trains as one vectorized group (:func:`group_key`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from kdlib import optim
from kdlib.config import RunConfig, config_hash, warmup_steps


def make_optimizer(
    config: RunConfig, steps: Any, *, warmup: Any = None, lr: Any = None, wd: Any = None
) -> optax.GradientTransformation:
    """The run's optimizer with a linear warmup and a decay to zero at ``steps``.

    ``steps``, ``warmup``, ``lr`` and ``wd`` may be scalar JAX arrays (defaults: the config's),
    so that runs differing only in them share one compiled step (see :data:`HPARAMS`).
    """
    lr = config.lr if lr is None else lr
    wd = config.wd if wd is None else wd
    if warmup is None:
        warmup = warmup_steps(config, steps)
    if config.optimizer == "adam":
        schedule = optim.warmup_cosine(1.0, steps, warmup)
        mu_dtype = None if config.mu_dtype is None else jnp.dtype(config.mu_dtype)
        return optim.adam_bv(lr, schedule=schedule, weight_decay=wd,
                             grad_clip_norm=config.grad_clip, mu_dtype=mu_dtype)
    if config.optimizer == "sgd":
        schedule = optim.warmup_cosine(1.0, steps, warmup)
        return optim.sgd_momentum(
            lr, schedule=schedule, momentum=config.momentum, weight_decay=wd,
            grad_clip_norm=config.grad_clip,
        )
    schedule = optim.warmup_quadratic_decay(1.0, steps, warmup)
    return optim.shampoo(
        learning_rate=lr, schedule=schedule, weight_decay=wd,
        grad_clip_norm=config.grad_clip, **config.shampoo,
    )


# Config fields that may differ between the runs of one vectorized group: they enter the
# compiled step as arrays, so a sweep over them trains as one program (one compile, one
# teacher forward per batch, several students under vmap).
HPARAMS = ("lr", "wd", "temperature", "dist_beta", "dist_gamma")


def group_key(config: RunConfig) -> str:
    """Configs with equal keys differ only in :data:`HPARAMS` and can train as one group."""
    zeros: dict[str, Any] = {h: 0.0 for h in HPARAMS}
    neutral = dataclasses.replace(config, **zeros)
    return config_hash(neutral)


def hparams(configs: list[RunConfig]) -> dict[str, jax.Array]:
    """The :data:`HPARAMS` of a group as float32 arrays with one entry per run."""
    return {h: jnp.asarray([float(getattr(c, h)) for c in configs], jnp.float32)
            for h in HPARAMS}


def schedule_arrays(config: RunConfig, steps: int) -> dict[str, jax.Array]:
    """Total and warmup steps and the seed as arrays: runs differing in length or seed (seed
    replicates) share the compiled step."""
    warmup = warmup_steps(config, steps)
    return {"steps": jnp.asarray(steps, jnp.int32), "warmup": jnp.asarray(warmup, jnp.int32),
            "seed": jnp.asarray(config.seed, jnp.uint32)}
