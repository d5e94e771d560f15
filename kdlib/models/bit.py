"""BiT ResNet-v2 (Kolesnikov et al. 2020), the teacher and student family of the paper.

Pre-activation bottleneck units (GN+ReLU -> 1x1 conv -> GN+ReLU -> 3x3 conv (stride) ->
GN+ReLU -> 1x1 conv to 4x), a projection shortcut (1x1 strided conv on the pre-activated
input) when the shape changes, GroupNorm with 32 groups (eps 1e-5), weight-standardized convs
without bias (eps 1e-10), a 7x7/2 stem conv + 3x3/2 max-pool without norm, and a final
GN + ReLU + global average pool + zero-initialized dense head.

Module names follow big_vision's ``bit_paper.py`` (``root_block.conv_root``,
``block1.unit01.gn1`` / ``conv1`` / ``conv_proj``, ``norm_pre_head``, ``head``) so that the
big_transfer ``.npz`` layout maps one to one (see :mod:`kdlib.models.bit_npz`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from kdlib.models import layers, ops

BIT_DEPTHS: dict[int, tuple[int, ...]] = {
    26: (2, 2, 2, 2),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
NUM_STAGES = 4
STEMS = ("imagenet", "small")
BASE_CHANNELS = 64


def block_sizes(depth: int | Sequence[int]) -> tuple[int, ...]:
    """Units per stage for a named depth (26/50/101/152) or an explicit list of 4 counts."""
    if isinstance(depth, int) and not isinstance(depth, bool):
        if depth not in BIT_DEPTHS:
            raise ValueError(
                f"depth={depth} is not one of {sorted(BIT_DEPTHS)} "
                f"(or give a list of {NUM_STAGES} units per stage, e.g. [1, 1, 1, 1])")
        return BIT_DEPTHS[depth]
    if isinstance(depth, Sequence) and not isinstance(depth, str):
        sizes = tuple(depth)
        if len(sizes) == NUM_STAGES and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            return sizes
    raise ValueError(
        f"depth={depth!r} must be one of {sorted(BIT_DEPTHS)} or a list of {NUM_STAGES} "
        "positive ints (units per stage)")


def base_width(width: float) -> int:
    """Channels of the stem and the first stage's bottleneck: ``round(64 * width)``, at least 1.

    Stage ``i`` (0-based) uses ``base_width * 2**i`` bottleneck channels and 4x that at its
    output, so ``width=1/16`` gives 4, 8, 16, 32 bottleneck and 16 ... 128 output channels.
    """
    if isinstance(width, bool) or not isinstance(width, int | float) or not width > 0:
        raise ValueError(f"width={width!r} must be a positive number (multiplier of 64)")
    return max(1, int(round(BASE_CHANNELS * width)))


def check_args(*, depth: int | Sequence[int] = 50, width: float = 1.0, num_classes: int = 1000,
               in_channels: int = 3, stem: str = "imagenet", pool_pad: str = "zero",
               impl: str | None = None) -> None:
    """Raises a one-line ValueError for a bad :class:`BiT` argument, before anything is
    built (a run's config is checked with it before its folder is made)."""
    block_sizes(depth)
    base_width(width)
    for name, v in [("num_classes", num_classes), ("in_channels", in_channels)]:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} must be a positive int")
    if stem not in STEMS:
        raise ValueError(f"stem={stem!r} is not one of {STEMS}")
    if pool_pad not in layers.POOL_PADDINGS:
        raise ValueError(f"pool_pad={pool_pad!r} is not one of {layers.POOL_PADDINGS}")
    ops.resolve_impl(impl)


class RootBlock(nnx.Module):
    """Stem: 7x7/2 conv (padding 3) + 3x3/2 max-pool (padding 1), or a 3x3/1 conv for
    28-32 px images (``stem="small"``). No normalization."""

    def __init__(
        self, in_channels: int, features: int, *, stem: str = "imagenet",
        pool_pad: str = "zero", impl: str | None = None, rngs: nnx.Rngs,
    ):
        if stem not in STEMS:
            raise ValueError(f"stem={stem!r} is not one of {STEMS}")
        if pool_pad not in layers.POOL_PADDINGS:
            raise ValueError(f"pool_pad={pool_pad!r} is not one of {layers.POOL_PADDINGS}")
        self.stem = stem
        self.pool_pad = pool_pad
        kernel, strides = (7, 2) if stem == "imagenet" else (3, 1)
        self.conv_root = layers.StdConv(
            in_channels, features, kernel, strides=strides, impl=impl, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.conv_root(x)
        if self.stem == "imagenet":
            x = layers.max_pool(x, window=3, strides=2, padding=1, pad=self.pool_pad)
        return x


class ResidualUnit(nnx.Module):
    """Pre-activation bottleneck unit of ResNet-v2 with weight-standardized convs."""

    def __init__(
        self, in_features: int, mid_features: int, *, strides: int = 1,
        impl: str | None = None, rngs: nnx.Rngs,
    ):
        out_features = 4 * mid_features
        conv = lambda i, o, k, s=1: layers.StdConv(i, o, k, strides=s, impl=impl, rngs=rngs)
        self.gn1 = layers.GroupNorm(in_features, impl=impl)
        self.conv1 = conv(in_features, mid_features, 1)
        self.gn2 = layers.GroupNorm(mid_features, impl=impl)
        self.conv2 = conv(mid_features, mid_features, 3, strides)
        self.gn3 = layers.GroupNorm(mid_features, impl=impl)
        self.conv3 = conv(mid_features, out_features, 1)
        needs_projection = in_features != out_features or strides != 1
        self.conv_proj = conv(in_features, out_features, 1, strides) if needs_projection else None

    def __call__(self, x: jax.Array) -> jax.Array:
        residual = x
        x = jax.nn.relu(self.gn1(x))
        if self.conv_proj is not None:
            residual = self.conv_proj(x)
        x = self.conv1(x)
        x = self.conv2(jax.nn.relu(self.gn2(x)))
        x = self.conv3(jax.nn.relu(self.gn3(x)))
        return x + residual


class ResNetStage(nnx.Module):
    """A stage of ``num_units`` units (``unit01``, ``unit02``, ...); the first one strides."""

    def __init__(
        self, num_units: int, in_features: int, mid_features: int, *, first_stride: int,
        impl: str | None = None, rngs: nnx.Rngs,
    ):
        self.num_units = num_units
        for i in range(num_units):
            unit = ResidualUnit(
                in_features if i == 0 else 4 * mid_features, mid_features,
                strides=first_stride if i == 0 else 1, impl=impl, rngs=rngs)
            setattr(self, unit_name(i), unit)

    def units(self) -> list[ResidualUnit]:
        """The units in order."""
        return [getattr(self, unit_name(i)) for i in range(self.num_units)]

    def __call__(self, x: jax.Array) -> jax.Array:
        for unit in self.units():
            x = unit(x)
        return x


def unit_name(index: int) -> str:
    """Name of the 0-based ``index``-th unit of a stage, as in big_transfer: ``unit01``."""
    return f"unit{index + 1:02d}"


class BiT(nnx.Module):
    """BiT ResNet-v2 classifier: float NHWC images in [-1, 1] -> logits (N, num_classes).

    Args:
      depth: 26, 50, 101, 152, or a list of 4 units per stage (e.g. ``[1, 1, 1, 1]``).
      width: multiplier of the 64 base channels (floats allowed, see :func:`base_width`).
      num_classes: size of the zero-initialized dense head.
      in_channels: channels of the input images (3 for RGB, 1 for Fashion-MNIST).
      stem: "imagenet" (7x7/2 conv + 3x3/2 max-pool) or "small" (3x3/1 conv, no pool).
      pool_pad: padding of the stem max-pool: "zero" (big_transfer, whose ``.npz`` weights we
        load) or "neg_inf" (big_vision's flax ``max_pool``).
      impl: ops implementation ("xla", "cpu", or None: "cpu" on a CPU backend, else "xla").
      rngs: initialization randomness (default ``nnx.Rngs(0)``).
    """

    def __init__(
        self, *, depth: int | Sequence[int] = 50, width: float = 1.0, num_classes: int = 1000,
        in_channels: int = 3, stem: str = "imagenet", pool_pad: str = "zero",
        impl: str | None = None, rngs: nnx.Rngs | None = None,
    ):
        check_args(depth=depth, width=width, num_classes=num_classes,
                   in_channels=in_channels, stem=stem, pool_pad=pool_pad, impl=impl)
        sizes = block_sizes(depth)
        base = base_width(width)
        rngs = nnx.Rngs(0) if rngs is None else rngs
        self.depth = sizes
        self.width = width
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.impl = impl
        self.root_block = RootBlock(
            in_channels, base, stem=stem, pool_pad=pool_pad, impl=impl, rngs=rngs)
        features = base
        for i, num_units in enumerate(sizes):
            mid = base * 2**i
            stage = ResNetStage(
                num_units, features, mid, first_stride=1 if i == 0 else 2, impl=impl, rngs=rngs)
            setattr(self, f"block{i + 1}", stage)
            features = 4 * mid
        self.num_features = features
        self.norm_pre_head = layers.GroupNorm(features, impl=impl)
        self.head = nnx.Linear(
            features, num_classes, kernel_init=layers.zeros, bias_init=layers.zeros,
            rngs=rngs)

    def stages(self) -> list[ResNetStage]:
        """The four stages ``block1`` ... ``block4`` in order."""
        return [getattr(self, f"block{i + 1}") for i in range(len(self.depth))]

    def pre_logits(self, x: jax.Array) -> jax.Array:
        """Pooled features (N, num_features) before the head."""
        layers.check_images(x, self.in_channels, "BiT")
        x = self.root_block(x)
        for stage in self.stages():
            x = stage(x)
        x = jax.nn.relu(self.norm_pre_head(x))
        return jnp.mean(x, axis=(1, 2))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.pre_logits(x))
