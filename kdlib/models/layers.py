"""NNX modules wrapping the functional ops of :mod:`kdlib.models.ops`.

Every convolution and GroupNorm of the models goes through these modules, so one ``impl``
argument ("xla", "cpu", or None for auto) switches a whole model between the plain XLA ops
and the CPU-tuned ones. Kernels are HWIO, activations NHWC.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from kdlib.models import ops

Initializer = Callable[..., jax.Array]
POOL_PADDINGS = ("zero", "neg_inf")


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
        kernel_init: Initializer = nnx.initializers.lecun_normal(), impl: str | None = None,
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
        self.bias = nnx.Param(jnp.zeros((out_features,), jnp.float32)) if use_bias else None

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
        kernel_init: Initializer = nnx.initializers.lecun_normal(), eps: float = 1e-10,
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
        kernel_init: Initializer = nnx.initializers.lecun_normal(), impl: str | None = None,
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
        self.scale = nnx.Param(jnp.ones((num_features,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((num_features,), jnp.float32))

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
