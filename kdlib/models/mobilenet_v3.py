"""MobileNetV3 Large and Small (Howard et al. 2019, "Searching for MobileNetV3").

Block tables are Tables 1 and 2 of the paper. Inverted residual blocks: 1x1 expansion conv
(omitted when the expansion equals the input width) -> norm -> NL, depthwise kxk conv (stride)
-> norm -> NL, optional squeeze-excite (reduce to ``make_divisible(exp / 4)``, ReLU,
hard-sigmoid gate), 1x1 projection -> norm, and a residual when stride 1 and widths match.
Head: 1x1 conv to 960 (Large) / 576 (Small) -> norm -> hard-swish, global average pool,
dense to 1280 / 1024 + hard-swish (the paper's "conv2d 1x1, NBN" on a 1x1 map), optional
dropout (off by default), dense classifier. As in torchvision and the Keras reference, Small's
last 1x1 conv has no squeeze-excite (Table 2 marks one; neither reference implements it).

Normalization is ``norm="gn"`` (GroupNorm, 8 groups, eps 1e-5) or ``norm="bn"``
(``nnx.BatchNorm``, momentum ``bn_momentum`` = 0.99 by default, eps 1e-3; switch with
``model.train()`` / ``model.eval()``; a fresh model is in train mode, as NNX modules are).

Channel counts (block widths, expansions, SE widths, stem, last conv, the 1280/1024 layer) are
scaled by ``width`` and rounded by :func:`make_divisible` to multiples of 8, as in torchvision.
Convs use symmetric ``(k - 1) // 2`` padding (torchvision), He-normal (fan-out) init; the
dense layers use LeCun-normal init, the classifier zeros.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from kdlib.models import layers, ops

VARIANTS = ("large", "small")
NORMS = ("gn", "bn")
STEMS = ("imagenet", "small")
ACTIVATIONS = {"relu": jax.nn.relu, "hswish": jax.nn.hard_swish}


class BlockSpec(NamedTuple):
    """One row of the paper's tables: kernel, expansion size, out channels, SE, NL, stride."""

    kernel: int
    expansion: int
    out: int
    se: bool
    activation: str
    stride: int


_B = BlockSpec
# Table 1 of the paper (input 224^2: conv2d 3x3/2 to 16 with hard-swish, then these).
LARGE_BLOCKS = (
    _B(3, 16, 16, False, "relu", 1),
    _B(3, 64, 24, False, "relu", 2),
    _B(3, 72, 24, False, "relu", 1),
    _B(5, 72, 40, True, "relu", 2),
    _B(5, 120, 40, True, "relu", 1),
    _B(5, 120, 40, True, "relu", 1),
    _B(3, 240, 80, False, "hswish", 2),
    _B(3, 200, 80, False, "hswish", 1),
    _B(3, 184, 80, False, "hswish", 1),
    _B(3, 184, 80, False, "hswish", 1),
    _B(3, 480, 112, True, "hswish", 1),
    _B(3, 672, 112, True, "hswish", 1),
    _B(5, 672, 160, True, "hswish", 2),
    _B(5, 960, 160, True, "hswish", 1),
    _B(5, 960, 160, True, "hswish", 1),
)
# Table 2 of the paper.
SMALL_BLOCKS = (
    _B(3, 16, 16, True, "relu", 2),
    _B(3, 72, 24, False, "relu", 2),
    _B(3, 88, 24, False, "relu", 1),
    _B(5, 96, 40, True, "hswish", 2),
    _B(5, 240, 40, True, "hswish", 1),
    _B(5, 240, 40, True, "hswish", 1),
    _B(5, 120, 48, True, "hswish", 1),
    _B(5, 144, 48, True, "hswish", 1),
    _B(5, 288, 96, True, "hswish", 2),
    _B(5, 576, 96, True, "hswish", 1),
    _B(5, 576, 96, True, "hswish", 1),
)
BLOCKS = {"large": LARGE_BLOCKS, "small": SMALL_BLOCKS}


def first_of_each_width(blocks: tuple[BlockSpec, ...]) -> tuple[BlockSpec, ...]:
    """The blocks that change the width (one per stage): the ``shallow`` network's. Both
    kernel sizes, SE or not, ReLU and hard-swish and both strides survive; the repeated
    stride-1 blocks of a stage go (Large: 6 of 15 blocks, its first still residual; Small: 5
    of 11, none residual)."""
    kept, width = [], None
    for spec in blocks:
        if spec.out != width:
            kept.append(spec)
        width = spec.out
    return tuple(kept)


STEM_CHANNELS = 16
LAST_CONV_EXPANSION = 6  # 6 x 160 = 960 (Large), 6 x 96 = 576 (Small)
PRE_LOGITS = {"large": 1280, "small": 1024}


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Rounds ``value`` to the nearest multiple of ``divisor`` (at least ``min_value``, default
    ``divisor``), never going more than 10% below ``value`` (the MobileNet rounding rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def make_norm(features: int, norm: str, impl: str | None, rngs: nnx.Rngs) -> nnx.Module:
    """GroupNorm with ``num_groups_for(c, 8)`` groups, or BatchNorm (momentum 0.99, eps 1e-3).

    The model sets its own BatchNorm momentum afterwards (``MobileNetV3(bn_momentum=...)``).
    """
    if norm == "gn":
        return layers.GroupNorm(features, max_groups=8, eps=1e-5, impl=impl)
    if norm == "bn":
        return layers.BatchNorm(features, momentum=0.99, epsilon=1e-3, scale_init=layers.ones,
                             bias_init=layers.zeros, rngs=rngs)
    raise ValueError(f"norm={norm!r} is not one of {NORMS}")


_conv_init = layers.he_normal_fan_out


def _dense(in_features: int, out_features: int, rngs: nnx.Rngs) -> nnx.Linear:
    """Dense layer with LeCun-normal kernel and zero bias."""
    return nnx.Linear(in_features, out_features, kernel_init=layers.lecun_normal,
                      bias_init=layers.zeros, rngs=rngs)


class ConvNormAct(nnx.Module):
    """Conv (no bias) -> norm -> optional activation; ``depthwise`` for the kxk block conv."""

    def __init__(
        self, in_features: int, out_features: int, kernel_size: int, *, strides: int = 1,
        activation: str | None, norm: str, depthwise: bool = False, impl: str | None = None,
        rngs: nnx.Rngs,
    ):
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not one of {list(ACTIVATIONS)}")
        if depthwise:
            if in_features != out_features:
                raise ValueError(
                    f"a depthwise conv keeps the width: in_features={in_features} "
                    f"!= out_features={out_features}")
            self.conv: layers.Conv | layers.DepthwiseConv = layers.DepthwiseConv(
                in_features, kernel_size, strides=strides, kernel_init=_conv_init, impl=impl,
                rngs=rngs)
        else:
            self.conv = layers.Conv(
                in_features, out_features, kernel_size, strides=strides, kernel_init=_conv_init,
                impl=impl, rngs=rngs)
        self.norm = make_norm(out_features, norm, impl, rngs)
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.norm(self.conv(x))
        return x if self.activation is None else ACTIVATIONS[self.activation](x)


class SqueezeExcite(nnx.Module):
    """Squeeze-excite: global pool -> dense to ``squeeze`` + ReLU -> dense + hard-sigmoid gate."""

    def __init__(self, features: int, squeeze: int, *, rngs: nnx.Rngs):
        self.reduce = _dense(features, squeeze, rngs)
        self.expand = _dense(squeeze, features, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = jax.nn.hard_sigmoid(self.expand(jax.nn.relu(self.reduce(s))))
        return x * s


class InvertedResidual(nnx.Module):
    """MobileNetV3 bneck block (widths already scaled and rounded)."""

    def __init__(
        self, in_features: int, expansion: int, out_features: int, spec: BlockSpec, *,
        norm: str, impl: str | None = None, rngs: nnx.Rngs,
    ):
        act = spec.activation
        self.expand = (
            ConvNormAct(in_features, expansion, 1, activation=act, norm=norm, impl=impl,
                        rngs=rngs)
            if expansion != in_features else None
        )
        self.depthwise = ConvNormAct(
            expansion, expansion, spec.kernel, strides=spec.stride, activation=act, norm=norm,
            depthwise=True, impl=impl, rngs=rngs)
        self.se = (
            SqueezeExcite(expansion, make_divisible(expansion / 4), rngs=rngs)
            if spec.se else None
        )
        self.project = ConvNormAct(
            expansion, out_features, 1, activation=None, norm=norm, impl=impl, rngs=rngs)
        self.use_residual = spec.stride == 1 and in_features == out_features

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x if self.expand is None else self.expand(x)
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.use_residual else y


def check_args(*, variant: str = "large", num_classes: int = 1000, width: float = 1.0,
               norm: str = "gn", in_channels: int = 3, stem: str = "imagenet",
               dropout: float = 0.0, bn_momentum: float = 0.99, shallow: bool = False,
               impl: str | None = None) -> None:
    """Raises a one-line ValueError for a bad :class:`MobileNetV3` argument, before anything
    is built (a run's config is checked with it before its folder is made)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} is not one of {VARIANTS}")
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not one of {NORMS}")
    if stem not in STEMS:
        raise ValueError(f"stem={stem!r} is not one of {STEMS}")
    if isinstance(width, bool) or not isinstance(width, int | float) or not width > 0:
        raise ValueError(f"width={width!r} must be a positive number")
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not (
        0 <= dropout < 1
    ):
        raise ValueError(f"dropout={dropout!r} must be in [0, 1)")
    if isinstance(bn_momentum, bool) or not isinstance(bn_momentum, int | float) or not (
        0 <= bn_momentum < 1
    ):
        raise ValueError(f"bn_momentum={bn_momentum!r} must be in [0, 1)")
    if not isinstance(shallow, bool):
        raise ValueError(f"shallow={shallow!r} must be True or False")
    for name, v in [("num_classes", num_classes), ("in_channels", in_channels)]:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} must be a positive int")
    ops.resolve_impl(impl)


class MobileNetV3(nnx.Module):
    """MobileNetV3 classifier: float NHWC images in [-1, 1] -> logits (N, num_classes).

    Args:
      variant: "large" (Table 1) or "small" (Table 2).
      num_classes: classifier size.
      width: channel multiplier (channels rounded by :func:`make_divisible`).
      norm: "gn" (GroupNorm, 8 groups) or "bn" (BatchNorm; ``model.train()`` / ``eval()``).
      in_channels: channels of the input images.
      stem: "imagenet" (first conv stride 2) or "small" (stride 1, for 28-32 px inputs).
      dropout: dropout rate before the classifier (0: off, the default).
      bn_momentum: BatchNorm's running-statistics decay (norm="bn" only). 0.99 (Keras'
        default) averages over ~100 steps; short runs need less (see ``07_cross_family``).
      shallow: keep one block per stage (:func:`first_of_each_width`): a network with every
        kind of layer at ~2.5x less to compile (the smoke preset's; off: the paper's tables).
      impl: ops implementation ("xla", "cpu", or None: auto by backend).
      rngs: initialization (and dropout) randomness (default ``nnx.Rngs(0)``).
    """

    def __init__(
        self, *, variant: str = "large", num_classes: int = 1000, width: float = 1.0,
        norm: str = "gn", in_channels: int = 3, stem: str = "imagenet", dropout: float = 0.0,
        bn_momentum: float = 0.99, shallow: bool = False, impl: str | None = None,
        rngs: nnx.Rngs | None = None,
    ):
        check_args(variant=variant, num_classes=num_classes, width=width, norm=norm,
                   in_channels=in_channels, stem=stem, dropout=dropout,
                   bn_momentum=bn_momentum, shallow=shallow, impl=impl)
        rngs = nnx.Rngs(0) if rngs is None else rngs
        scale = lambda c: make_divisible(c * width)
        self.variant = variant
        self.norm = norm
        self.width = width
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.impl = impl

        features = scale(STEM_CHANNELS)
        self.stem = ConvNormAct(
            in_channels, features, 3, strides=2 if stem == "imagenet" else 1,
            activation="hswish", norm=norm, impl=impl, rngs=rngs)
        blocks = []
        specs = first_of_each_width(BLOCKS[variant]) if shallow else BLOCKS[variant]
        for spec in specs:
            out = scale(spec.out)
            blocks.append(InvertedResidual(
                features, scale(spec.expansion), out, spec, norm=norm, impl=impl, rngs=rngs))
            features = out
        self.blocks = nnx.List(blocks)
        last = LAST_CONV_EXPANSION * features
        self.last_conv = ConvNormAct(
            features, last, 1, activation="hswish", norm=norm, impl=impl, rngs=rngs)
        self.num_features = scale(PRE_LOGITS[variant])
        self.pre_logits_dense = _dense(last, self.num_features, rngs)
        # Without dropout no RNG stream is kept: a key in the model state would not survive
        # a checkpoint (PRNGKey arrays do not convert to numpy) and would change per step.
        self.dropout = nnx.Dropout(float(dropout), rngs=rngs if dropout > 0 else None)
        self.head = nnx.Linear(
            self.num_features, num_classes, kernel_init=layers.zeros,
            bias_init=layers.zeros, rngs=rngs)
        for _, module in nnx.iter_modules(self):
            if isinstance(module, nnx.BatchNorm):
                module.momentum = float(bn_momentum)

    def pre_logits(self, x: jax.Array) -> jax.Array:
        """Features (N, 1280 or 1024 scaled) after the hard-swish dense layer."""
        layers.check_images(x, self.in_channels, "MobileNetV3")
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        x = jnp.mean(self.last_conv(x), axis=(1, 2))
        return jax.nn.hard_swish(self.pre_logits_dense(x))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.dropout(self.pre_logits(x)))
