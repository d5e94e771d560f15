"""NNX modules wrapping the functional ops of :mod:`kdlib.models.ops`.

Every convolution and GroupNorm of the models goes through these modules, so one ``impl``
argument ("xla", "cpu", or None for auto) switches a whole model between the plain XLA ops
and the CPU-tuned ones. Kernels are HWIO, activations NHWC.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from kdlib.models import ops

Initializer = Callable[..., jax.Array]
POOL_PADDINGS = ("zero", "neg_inf")
DISTRIBUTIONS = ("truncated_normal", "normal")
FAN_MODES = ("fan_in", "fan_out")


# Initializers. Eagerly, every jax.random call compiles small XLA programs per parameter
# shape (measured: 32 s to build one MobileNetV3 on the busy 2-core CPU, 0.5 s with these).
# These draw the same distributions as jax.nn.initializers with numpy, seeded by the concrete
# key, and fall back to the jax initializer when the key is traced (nnx.eval_shape, nnx.jit),
# so an abstract build still allocates nothing. Both are deterministic in the seed, but an
# eager build and a traced build with the same seed get different values.


def _host_rng(key: jax.Array) -> np.random.Generator:
    """A numpy generator seeded by the bits of a concrete jax key."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key, np.uint32).ravel().tolist())


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """(fan_in, fan_out) of a (..., in, out) kernel, as jax.nn.initializers computes them."""
    if len(shape) < 2:
        raise ValueError(f"a variance-scaled kernel needs rank >= 2, got shape {shape}")
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    """``jax.nn.initializers.variance_scaling`` (truncated to +-2 std or plain normal), drawn
    on the host for concrete keys (no per-shape compile), by jax for traced keys."""
    if mode not in FAN_MODES:
        raise ValueError(f"mode={mode!r} is not one of {FAN_MODES}")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution={distribution!r} is not one of {DISTRIBUTIONS}")
    jax_init = jax.nn.initializers.variance_scaling(  # mode, distribution: checked above
        scale, cast(Literal["fan_in", "fan_out"], mode),
        cast(Literal["truncated_normal", "normal"], distribution))

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        if isinstance(key, jax.core.Tracer):
            return jax_init(key, shape, dtype)
        fan_in, fan_out = _fans(tuple(shape))
        std = math.sqrt(scale / max(1.0, fan_in if mode == "fan_in" else fan_out))
        rng = _host_rng(key)
        values = rng.standard_normal(shape)
        if distribution == "truncated_normal":
            outside = np.abs(values) > 2
            while outside.any():  # Rejection sampling: redraw values outside (-2, 2).
                values[outside] = rng.standard_normal(int(outside.sum()))
                outside = np.abs(values) > 2
            std /= 0.87962566103423978  # std of a standard normal truncated to (-2, 2)
        return jax.device_put((values * std).astype(np.dtype(dtype)))  # no compile

    return init


def constant(value: float) -> Initializer:
    """Initializer filling with ``value`` (host-side for concrete keys, jax for traced ones)."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        if isinstance(key, jax.core.Tracer):
            return jnp.full(shape, value, dtype)
        return jax.device_put(np.full(shape, value, np.dtype(dtype)))

    return init


lecun_normal = variance_scaling(1.0, "fan_in", "truncated_normal")
he_normal_fan_out = variance_scaling(2.0, "fan_out", "normal")
zeros = constant(0.0)
ones = constant(1.0)


def same_padding(kernel_size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Symmetric padding ``(k - 1) // 2`` on each side, as in BiT's and torchvision's convs."""
    p = (kernel_size - 1) // 2
    return ((p, p), (p, p))


def _static_padding(padding: ops.Padding | None, kernel_size: int) -> ops.Padding:
    """Padding as a hashable value (NNX keeps it as static module metadata)."""
    if padding is None:
        return same_padding(kernel_size)
    if isinstance(padding, str):
        return padding
    return tuple((int(lo), int(hi)) for lo, hi in padding)


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive int")


class Conv(nnx.Module):
    """Square 2-D convolution (optional bias) through :func:`ops.conv2d`."""

    def __init__(
        self, in_features: int, out_features: int, kernel_size: int, *, strides: int = 1,
        padding: ops.Padding | None = None, use_bias: bool = False,
        kernel_init: Initializer = lecun_normal, impl: str | None = None,
        rngs: nnx.Rngs,
    ):
        for name, v in [("in_features", in_features), ("out_features", out_features),
                        ("kernel_size", kernel_size), ("strides", strides)]:
            _check_positive_int(name, v)
        ops.resolve_impl(impl)
        self.in_features = in_features
        self.out_features = out_features
        self.strides = (strides, strides)
        self.padding = _static_padding(padding, kernel_size)
        self.impl = impl
        shape = (kernel_size, kernel_size, in_features, out_features)
        self.kernel = nnx.Param(kernel_init(rngs.params(), shape, jnp.float32))
        self.bias = nnx.Param(zeros(None, (out_features,))) if use_bias else None

    def effective_kernel(self) -> jax.Array:
        """The kernel the convolution uses (hook for weight standardization)."""
        return self.kernel[...]

    def __call__(self, x: jax.Array) -> jax.Array:
        y = ops.conv2d(x, self.effective_kernel(), self.strides, self.padding, impl=self.impl)
        if self.bias is not None:
            y = y + self.bias[...]
        return y


class StdConv(Conv):
    """Weight-standardized convolution without bias (BiT): kernel -> zero mean, unit variance
    per output channel (eps 1e-10) before every use, so scaling the kernel changes nothing."""

    def __init__(
        self, in_features: int, out_features: int, kernel_size: int, *, strides: int = 1,
        padding: ops.Padding | None = None,
        kernel_init: Initializer = lecun_normal, eps: float = 1e-10,
        impl: str | None = None, rngs: nnx.Rngs,
    ):
        super().__init__(
            in_features, out_features, kernel_size, strides=strides, padding=padding,
            use_bias=False, kernel_init=kernel_init, impl=impl, rngs=rngs,
        )
        self.eps = eps

    def effective_kernel(self) -> jax.Array:
        """The standardized kernel."""
        return ops.standardize_weight(self.kernel[...], self.eps)


class DepthwiseConv(nnx.Module):
    """Depthwise convolution (one ``k x k`` filter per channel, no bias), kernel (k, k, 1, C)."""

    def __init__(
        self, features: int, kernel_size: int, *, strides: int = 1,
        padding: ops.Padding | None = None,
        kernel_init: Initializer = lecun_normal, impl: str | None = None,
        rngs: nnx.Rngs,
    ):
        for name, v in [("features", features), ("kernel_size", kernel_size),
                        ("strides", strides)]:
            _check_positive_int(name, v)
        ops.resolve_impl(impl)
        self.features = features
        self.strides = (strides, strides)
        self.padding = _static_padding(padding, kernel_size)
        self.impl = impl
        shape = (kernel_size, kernel_size, 1, features)
        self.kernel = nnx.Param(kernel_init(rngs.params(), shape, jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        return ops.depthwise_conv2d(x, self.kernel[...], self.strides, self.padding,
                                    impl=self.impl)


class BatchNorm(nnx.BatchNorm):
    """``nnx.BatchNorm`` with the same Variables and arithmetic (flax's own helpers), whose
    training step stores the running statistics with ``set_value``.

    Why: flax writes them as ``var[...] = new``, which asks the traced value for its
    ``sharding``; a tracer's AttributeError text walks the whole jaxpr traced so far, so a
    MobileNetV3-BN train chunk spent 30 s of its 35 s trace building error messages nobody
    reads (46 layers x 2 statistics x 2 runs; issue 15). Bit-identical to ``nnx.BatchNorm``
    (tested).
    """

    def __call__(self, x: jax.Array, use_running_average: bool | None = None, *,
                 mask: jax.Array | None = None) -> jax.Array:
        from flax.nnx.nn import normalization as flax_norm

        running = (self.use_running_average if use_running_average is None
                   else use_running_average)
        if running is None or running:  # inference (or flax's own error): nothing is stored
            return super().__call__(x, use_running_average, mask=mask)
        feature_axes = flax_norm._canonicalize_axes(x.ndim, self.axis)
        reduction_axes = tuple(i for i in range(x.ndim) if i not in feature_axes)
        scale = self.scale[...] if self.scale is not None else None
        bias = self.bias[...] if self.bias is not None else None
        x, _, _, scale, bias = self.promote_dtype(
            (x, self.mean[...], self.var[...], scale, bias), dtype=self.dtype)
        mean, var = flax_norm._compute_stats(
            x, reduction_axes, dtype=self.dtype, axis_name=self.axis_name,
            axis_index_groups=self.axis_index_groups,
            use_fast_variance=self.use_fast_variance, mask=mask)
        updatable = self.mean._can_update or self.var._can_update
        stop_gradient = jax.lax.stop_gradient if updatable else (lambda v: v)
        self.mean.set_value(stop_gradient(
            self.momentum * self.mean[...] + (1 - self.momentum) * mean))
        self.var.set_value(stop_gradient(
            self.momentum * self.var[...] + (1 - self.momentum) * var))
        return flax_norm._normalize(x, mean, var, scale, bias, reduction_axes, feature_axes,
                                    self.dtype, self.epsilon)


class GroupNorm(nnx.Module):
    """GroupNorm with per-channel ``scale`` (ones) and ``bias`` (zeros), shapes (C,).

    ``num_groups=None`` uses :func:`ops.num_groups_for` with ``max_groups`` (32 for BiT), so
    narrow layers get fewer groups instead of an error.
    """

    def __init__(
        self, num_features: int, *, num_groups: int | None = None, max_groups: int = 32,
        eps: float = 1e-5, impl: str | None = None, rngs: nnx.Rngs | None = None,
    ):
        del rngs  # Deterministic init; accepted for a uniform layer signature.
        _check_positive_int("num_features", num_features)
        if num_groups is None:
            num_groups = ops.num_groups_for(num_features, max_groups)
        _check_positive_int("num_groups", num_groups)
        if num_features % num_groups:
            raise ValueError(
                f"num_groups={num_groups} must divide num_features={num_features}")
        ops.resolve_impl(impl)
        self.num_features = num_features
        self.num_groups = num_groups
        self.eps = eps
        self.impl = impl
        self.scale = nnx.Param(ones(None, (num_features,)))
        self.bias = nnx.Param(zeros(None, (num_features,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return ops.group_norm(x, self.num_groups, self.scale[...], self.bias[...], self.eps,
                              impl=self.impl)


def max_pool(
    x: jax.Array, window: int = 3, strides: int = 2, padding: int = 1, pad: str = "zero"
) -> jax.Array:
    """Max-pool NHWC with symmetric spatial padding.

    ``pad="zero"`` pads with zeros before pooling (the original big_transfer BiT code, whose
    ``.npz`` teachers we load); ``"neg_inf"`` ignores the border (flax/big_vision ``max_pool``).
    """
    if pad not in POOL_PADDINGS:
        raise ValueError(f"pad={pad!r} is not one of {POOL_PADDINGS}")
    pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    if pad == "zero":
        x = jnp.pad(x, pads)
        pads = ((0, 0),) * 4
    return lax.reduce_window(
        x, -jnp.inf, lax.max, (1, window, window, 1), (1, strides, strides, 1), pads)


def check_images(x: jax.Array, in_channels: int, model: str) -> None:
    """Raises a clear ValueError unless ``x`` is a float NHWC batch with ``in_channels``."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(
            f"{model} expects NHWC images of rank 4, got shape {getattr(x, 'shape', None)}")
    if x.shape[-1] != in_channels:
        raise ValueError(
            f"{model} was built for in_channels={in_channels}, got images of shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(
            f"{model} expects float images in [-1, 1], got dtype {x.dtype}")
