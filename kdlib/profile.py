"""Cost of models: forward FLOPs from XLA's cost analysis, parameter counts."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


def forward_flops(model: nnx.Module, input_shape: tuple[int, ...]) -> float:
    """FLOPs of one forward pass on a float32 input of ``input_shape`` (per XLA)."""
    graphdef, state = nnx.split(model)

    def forward(state: Any, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, state)(x)

    x = jax.ShapeDtypeStruct(input_shape, jnp.float32)
    compiled = jax.jit(forward).lower(state, x).compile()
    cost = compiled.cost_analysis()
    if isinstance(cost, list):  # older jax returns one dict per device
        cost = cost[0]
    return float(cost.get("flops", 0.0))
