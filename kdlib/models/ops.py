"""Functional building blocks of the models (NHWC activations, HWIO kernels).

Each op has a plain XLA implementation ("xla") and, where it wins, a CPU-tuned one ("cpu")
that computes the same values and gradients. ``impl=None`` picks "cpu" on a CPU backend and
"xla" elsewhere (GPU/TPU convolutions are fastest as plain ``lax`` ops).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

IMPLS = ("xla", "cpu")
Padding = str | Sequence[tuple[int, int]]


def resolve_impl(impl: str | None) -> str:
    """Returns the implementation to use: ``impl`` if given, else by the default backend."""
    if impl is None or impl == "auto":
        return "cpu" if jax.default_backend() == "cpu" else "xla"
    if impl not in IMPLS:
        raise ValueError(f"impl={impl!r} is not one of {IMPLS + ('auto', None)}")
    return impl


def standardize_weight(kernel: jax.Array, eps: float = 1e-10) -> jax.Array:
    """BiT weight standardization: zero mean, unit variance per output channel (over H, W, I)."""
    mean = jnp.mean(kernel, axis=(0, 1, 2), keepdims=True)
    var = jnp.var(kernel, axis=(0, 1, 2), keepdims=True)
    return (kernel - mean) / jnp.sqrt(var + eps)


def conv2d_xla(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1), padding: Padding = "SAME"
) -> jax.Array:
    """Plain ``lax.conv_general_dilated`` in NHWC/HWIO."""
    return lax.conv_general_dilated(
        x, kernel, window_strides=strides, padding=padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def group_norm_xla(
    x: jax.Array, num_groups: int, scale: jax.Array | None, bias: jax.Array | None,
    eps: float = 1e-5,
) -> jax.Array:
    """Plain GroupNorm over (H, W, C/groups) per example and group, as flax.nnx.GroupNorm."""
    n, h, w, c = x.shape
    if c % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide the channel count {c}")
    xg = x.reshape(n, h, w, num_groups, c // num_groups)
    mean = jnp.mean(xg, axis=(1, 2, 4), keepdims=True)
    var = jnp.mean(jnp.square(xg - mean), axis=(1, 2, 4), keepdims=True)
    y = ((xg - mean) * lax.rsqrt(var + eps)).reshape(n, h, w, c)
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y


def depthwise_conv2d_xla(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1), padding: Padding = "SAME"
) -> jax.Array:
    """Plain depthwise conv: kernel (kh, kw, 1, C), ``feature_group_count=C``."""
    c = x.shape[-1]
    return lax.conv_general_dilated(
        x, kernel, window_strides=strides, padding=padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c,
    )


def conv2d(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1), padding: Padding = "SAME",
    impl: str | None = None,
) -> jax.Array:
    """2-D convolution, NHWC x HWIO -> NHWC."""
    if resolve_impl(impl) == "cpu":
        from kdlib.models import cpu_ops

        return cpu_ops.conv2d(x, kernel, strides, padding)
    return conv2d_xla(x, kernel, strides, padding)


def group_norm(
    x: jax.Array, num_groups: int, scale: jax.Array | None = None, bias: jax.Array | None = None,
    eps: float = 1e-5, impl: str | None = None,
) -> jax.Array:
    """GroupNorm of NHWC activations with optional per-channel scale and bias."""
    if resolve_impl(impl) == "cpu":
        from kdlib.models import cpu_ops

        return cpu_ops.group_norm(x, num_groups, scale, bias, eps)
    return group_norm_xla(x, num_groups, scale, bias, eps)


def depthwise_conv2d(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1), padding: Padding = "SAME",
    impl: str | None = None,
) -> jax.Array:
    """Depthwise convolution; kernel (kh, kw, 1, C)."""
    if resolve_impl(impl) == "cpu":
        from kdlib.models import cpu_ops

        return cpu_ops.depthwise_conv2d(x, kernel, strides, padding)
    return depthwise_conv2d_xla(x, kernel, strides, padding)


def num_groups_for(channels: int, max_groups: int = 32) -> int:
    """Largest group count <= ``max_groups`` that divides ``channels`` (BiT uses 32)."""
    if channels < 1:
        raise ValueError(f"channels={channels} must be >= 1")
    g = min(max_groups, channels)
    while channels % g:
        g -= 1
    return g
