"""Cost of models: forward FLOPs from XLA's cost analysis, parameter counts."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import SingleDeviceSharding


def forward_flops(model: nnx.Module, input_shape: tuple[int, ...]) -> float:
    """FLOPs of one forward pass on a float32 input of ``input_shape`` (per XLA)."""
    graphdef, state = nnx.split(model)

    def forward(state: Any, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, state)(x)

    # Counted by XLA:CPU on every backend: on GPU the compiled convolutions are cuDNN calls
    # that XLA's cost analysis does not count (an H200 reported 146 of ~2,700 MFLOPs for
    # R50x1 at 128 px), and the lowered module's analysis is empty there.
    try:
        cpu = jax.devices("cpu")[0]
    except RuntimeError as err:  # JAX_PLATFORMS without cpu: the count would be wrong
        raise RuntimeError("forward_flops counts FLOPs on XLA:CPU, which this process does not "
                           f"have (JAX_PLATFORMS={os.environ.get('JAX_PLATFORMS')!r}): add "
                           "'cpu' to JAX_PLATFORMS, e.g. JAX_PLATFORMS=cuda,cpu") from err
    x = jax.ShapeDtypeStruct(input_shape, jnp.float32, sharding=SingleDeviceSharding(cpu))
    compiled = jax.jit(forward).lower(jax.device_put(state, cpu), x).compile()
    cost = compiled.cost_analysis()
    if isinstance(cost, list):  # older jax returns one dict per device
        cost = cost[0]
    if cost is None:
        raise ValueError("XLA:CPU returned no cost analysis for the forward pass")
    return float(cost.get("flops", 0.0))


def forward_throughput(model: nnx.Module, input_shape: tuple[int, ...], *, repeats: int = 5
                       ) -> float:
    """Measured images per second of a jitted forward pass on a batch of ``input_shape``.

    The median of ``repeats`` timed calls after one untimed (compiling) call: the inference
    cost of a model on this machine, beside its FLOPs.
    """
    import statistics
    import time

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r}; must be an integer >= 1")
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    x = jnp.zeros(input_shape, jnp.float32)
    forward(state, x).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward(state, x).block_until_ready()
        times.append(time.perf_counter() - t0)
    return input_shape[0] / statistics.median(times)
