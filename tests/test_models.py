"""Tests of kdlib.models: BiT ResNet-v2, MobileNetV3, the big_transfer .npz layout."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

import kdlib.models as models
from kdlib.models import layers, ops
from kdlib.models.bit import ResidualUnit, block_sizes
from kdlib.models.mobilenet_v3 import make_divisible

TINY_BIT = dict(depth=[1, 1, 1, 1], width=1 / 16)  # 4 base channels, outputs 16 ... 128
# Most tests share one tiny BiT structure and one input shape, so the jitted forward compiles
# once for all of them (XLA compiles dominate this file's runtime on a small CPU). They use the
# plain "xla" ops, which compile 2x faster; the CPU-tuned ops are checked against them below
# (their gradients are tested op by op in test_cpu_ops.py).
X_TINY = (2, 32, 32, 3)


def tiny_bit(**kw) -> models.BiT:
    args = dict(TINY_BIT, num_classes=5, in_channels=3, stem="imagenet", impl="xla")
    args.update(kw)
    return models.create("bit", **args)


# LLVM optimization level 0 roughly halves XLA:CPU compile time of these tiny programs; it
# changes speed, not semantics.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def jit_fast(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Like ``nnx.jit(fn)`` for ``fn(model, *arrays)`` (state updates such as BatchNorm
    statistics are written back), compiled with :data:`FAST_COMPILE`."""

    @functools.partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
    def pure(graphdef, state, *args):
        model = nnx.merge(graphdef, state)
        return fn(model, *args), nnx.state(model)

    def wrapper(model: nnx.Module, *args):
        graphdef, state = nnx.split(model)
        out, new_state = pure(graphdef, state, *args)
        nnx.update(model, new_state)
        return out

    return wrapper


@jit_fast
def logits(model: nnx.Module, x: jax.Array) -> jax.Array:
    """Jitted forward: one compile per model structure, not one per eager op."""
    return model(x)


def abstract_outputs(model: nnx.Module, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Shapes of (logits, pre_logits) by abstract evaluation (no compile)."""
    return nnx.eval_shape(lambda m, x: (m(x), m.pre_logits(x)), model, x)


def images(shape, seed=0) -> jax.Array:
    """Uniform images in [-1, 1] (numpy: no per-shape compile)."""
    rng = np.random.default_rng(seed)
    return jax.device_put(rng.uniform(-1.0, 1.0, shape).astype(np.float32))


def randomize_params(model: nnx.Module, seed: int, scale: float = 0.1) -> None:
    """Adds noise to every nnx.Param so that no output is trivially zero or symmetric.

    The noise is drawn with numpy: compiling jax.random for dozens of shapes costs ~10 s.
    """
    rng = np.random.default_rng(seed)
    leaves, treedef = jax.tree.flatten(nnx.state(model, nnx.Param))
    noisy = [np.asarray(x) + scale * rng.standard_normal(x.shape).astype(np.float32)
             for x in leaves]
    nnx.update(model, jax.tree.unflatten(treedef, [jax.device_put(x) for x in noisy]))


# ----------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        (dict(in_channels=1, stem="small"), (2, 28, 28, 1)),
        (dict(in_channels=3, stem="imagenet"), X_TINY),
    ],
)
def test_bit_output_shape(kwargs, shape):
    # Abstract evaluation; both configs also run for real below (the small stem in the
    # gradient test, the ImageNet stem in most others).
    out, pre = abstract_outputs(tiny_bit(**kwargs), images(shape))
    assert out.shape == (shape[0], 5) and pre.shape == (shape[0], 128)


PRE_LOGITS = {"large": 1280, "small": 1024}


@pytest.mark.parametrize(
    "variant, norm, stem, size",
    [("large", "gn", "small", 28), ("large", "bn", "imagenet", 64),
     ("small", "gn", "imagenet", 64), ("small", "bn", "small", 28)],
)
def test_mobilenet_v3_output_shape(variant, norm, stem, size):
    model = models.MobileNetV3(
        variant=variant, norm=norm, num_classes=3, width=0.35, in_channels=1, stem=stem,
        impl="xla")
    model.eval()  # BN statistic updates are slow to trace (flax inspects tracer shardings)
    # Shapes only (abstract evaluation); real runs are in the BN and impl tests below.
    out, pre = abstract_outputs(model, images((2, size, size, 1)))
    assert out.shape == (2, 3)
    assert pre.shape == (2, make_divisible(PRE_LOGITS[variant] * 0.35))


def test_bit_stem_and_stage_resolutions():
    def activations(model: models.BiT, x: jax.Array) -> list[jax.Array]:
        out = [model.root_block(x)]
        for stage in model.stages():
            out.append(stage(out[-1]))
        return out

    def sizes(model: models.BiT, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        return [a.shape[1:] for a in nnx.eval_shape(activations, model, images(shape))]

    # 7x7/2 conv + 3x3/2 pool, then stages with strides 1, 2, 2, 2.
    assert sizes(tiny_bit(), (1, 64, 64, 3)) == [
        (16, 16, 4), (16, 16, 16), (8, 8, 32), (4, 4, 64), (2, 2, 128)]
    assert sizes(tiny_bit(stem="small", in_channels=1), (1, 28, 28, 1)) == [
        (28, 28, 4), (28, 28, 16), (14, 14, 32), (7, 7, 64), (4, 4, 128)]


def test_bit_projection_only_when_shape_changes():
    model = models.BiT(depth=[2, 2, 1, 1], width=1 / 16, num_classes=2)
    b1, b2 = model.block1, model.block2
    assert b1.unit01.conv_proj is not None and b1.unit02.conv_proj is None
    assert b2.unit01.conv_proj is not None and b2.unit01.conv_proj.strides == (2, 2)
    assert b2.unit01.conv2.strides == (2, 2) and b2.unit01.conv1.strides == (1, 1)
    assert b2.unit02.conv_proj is None
    # Stride-1 unit with unchanged width: identity shortcut, so zeroing the conv3 kernel
    # (standardization of an all-zero kernel gives zeros) returns the input.
    unit = ResidualUnit(16, 4, rngs=nnx.Rngs(0))
    assert unit.conv_proj is None
    unit.conv3.kernel.set_value(jnp.zeros_like(unit.conv3.kernel[...]))
    x = images((1, 5, 5, 16))
    np.testing.assert_allclose(nnx.jit(lambda u, x: u(x))(unit, x), x, atol=1e-6)


def test_bit_width_rounding_and_depths():
    assert models.BiT(depth=26, width=1 / 16).depth == (2, 2, 2, 2)
    assert block_sizes(152) == (3, 8, 36, 3) and block_sizes(50) == (3, 4, 6, 3)
    tiny = models.BiT(depth=[1, 2, 1, 1], width=0.01)  # round(0.64) -> at least 1 channel
    assert tiny.root_block.conv_root.kernel.shape == (7, 7, 3, 1)
    assert models.BiT(depth=[1, 1, 1, 1], width=0.1).num_features == 6 * 8 * 4  # round(6.4)
    assert models.BiT(depth=[1, 1, 1, 1], width=2).num_features == 128 * 8 * 4


def test_make_divisible():
    assert [make_divisible(v) for v in (16, 18, 30, 240, 5.6, 448, 1280 * 0.35)] == [
        16, 24, 32, 240, 8, 448, 448]


def test_mobilenet_v3_structure():
    model = nnx.eval_shape(lambda: models.MobileNetV3(variant="large", num_classes=10))
    first = model.blocks[0]
    assert first.expand is None and first.use_residual  # expansion 16 == input 16
    assert model.blocks[1].expand.conv.kernel.shape == (1, 1, 16, 64)
    assert model.blocks[3].se.reduce.kernel.shape == (72, 24)  # make_divisible(72 / 4) = 24
    assert model.blocks[3].depthwise.conv.kernel.shape == (5, 5, 1, 72)
    assert model.blocks[6].se is None and model.blocks[6].depthwise.activation == "hswish"
    assert model.last_conv.conv.kernel.shape == (1, 1, 160, 960)
    assert model.pre_logits_dense.kernel.shape == (960, 1280)
    strides = [b.depthwise.conv.strides[0] for b in model.blocks]
    assert strides == [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1]
    small = nnx.eval_shape(lambda: models.MobileNetV3(variant="small", num_classes=10))
    assert small.blocks[0].se.reduce.kernel.shape == (16, 8)
    assert small.last_conv.conv.kernel.shape == (1, 1, 96, 576)
    assert small.pre_logits_dense.kernel.shape == (576, 1024)
    strides = [b.depthwise.conv.strides[0] for b in small.blocks]
    assert strides == [2, 2, 1, 2, 1, 1, 1, 1, 2, 1, 1]


def test_shallow_mobilenet_v3_keeps_one_block_per_stage_and_every_kind():
    large = nnx.eval_shape(lambda: models.MobileNetV3(variant="large", num_classes=10,
                                                      shallow=True))
    strides = [b.depthwise.conv.strides[0] for b in large.blocks]
    assert strides == [1, 2, 2, 2, 1, 2]
    kernels = [b.depthwise.conv.kernel.shape[0] for b in large.blocks]
    assert kernels == [3, 3, 5, 3, 3, 5]
    assert [b.se is not None for b in large.blocks] == [False, False, True, False, True, True]
    assert [b.depthwise.activation for b in large.blocks] == ["relu"] * 3 + ["hswish"] * 3
    assert large.blocks[0].use_residual
    # The head is the full network's: same last conv and pre-logits.
    assert large.last_conv.conv.kernel.shape == (1, 1, 160, 960)
    small = nnx.eval_shape(lambda: models.MobileNetV3(variant="small", num_classes=10,
                                                      shallow=True))
    assert [b.depthwise.conv.strides[0] for b in small.blocks] == [2, 2, 2, 1, 2]
    assert small.last_conv.conv.kernel.shape == (1, 1, 96, 576)
    with pytest.raises(ValueError, match="shallow='yes' must be True or False"):
        models.MobileNetV3(shallow="yes")


# ----------------------------------------------------------------------- parameter counts

# Exact counts of our implementation, 1000 classes. Published: BiT-R50x1 25.5M, BiT-R152x2
# 236M (timm lists 25.55M and 236.34M), MobileNetV3-Large 5.4M and -Small 2.5M (torchvision
# lists 5,483,032 and 2,542,856: identical). BN counts only scale/bias, like GN.
PINNED_COUNTS = [
    ("bit", dict(depth=50, width=1), 25_549_352),
    ("bit", dict(depth=152, width=2), 236_335_208),
    ("mobilenet_v3", dict(variant="large", norm="gn"), 5_483_032),
    ("mobilenet_v3", dict(variant="large", norm="bn"), 5_483_032),
    ("mobilenet_v3", dict(variant="small", norm="gn"), 2_542_856),
    ("mobilenet_v3", dict(variant="small", norm="bn"), 2_542_856),
]


@pytest.mark.parametrize("name, kwargs, expected", PINNED_COUNTS)
def test_param_counts_of_published_configs(name, kwargs, expected):
    model = nnx.eval_shape(lambda: models.create(name, num_classes=1000, **kwargs))
    assert isinstance(model.head.kernel.get_value(), jax.ShapeDtypeStruct)  # nothing allocated
    assert models.count_params(model) == expected
    assert models.count_params(nnx.state(model)) == expected  # BatchStat / RNG state excluded


def test_count_params_small_model_by_hand():
    model = models.BiT(depth=[1, 1, 1, 1], width=1 / 64, num_classes=3, in_channels=1,
                       stem="small")  # base width 1: units (in, mid) = (1,1) (4,2) (8,4) (16,8)
    convs = 3 * 3 * 1 * 1
    gns = 0
    for cin, mid in [(1, 1), (4, 2), (8, 4), (16, 8)]:
        convs += cin * mid + 9 * mid * mid + mid * 4 * mid + cin * 4 * mid  # incl. projection
        gns += 2 * (cin + mid + mid)
    expected = convs + gns + 2 * 32 + 32 * 3 + 3
    assert models.count_params(model) == expected
    assert models.count_params(nnx.state(model, nnx.Param)) == expected


# ------------------------------------------------------------------------------- behaviour


def test_bit_zero_head_gives_zero_logits_at_init():
    model = tiny_bit()
    x = images(X_TINY)
    np.testing.assert_array_equal(logits(model, x), np.zeros((2, 5), np.float32))
    # Not trivially zero: with an all-ones head kernel the logits are the summed features.
    model.head.kernel.set_value(jax.device_put(np.ones((128, 5), np.float32)))
    assert float(jnp.abs(logits(model, x)).min()) > 1e-3


def test_weight_standardization_invariance():
    model = tiny_bit()
    randomize_params(model, seed=1)
    x = images(X_TINY)
    before = logits(model, x)
    assert float(jnp.abs(before).max()) > 1e-3
    for conv in (model.root_block.conv_root, model.block2.unit01.conv2,
                 model.block3.unit01.conv_proj):
        conv.kernel.set_value(conv.kernel[...] * 7.5)
    np.testing.assert_allclose(logits(model, x), before, rtol=1e-4, atol=1e-5)
    # A change that is not a positive rescaling does change the output.
    k = model.block2.unit01.conv2.kernel
    k.set_value(k[...] + images(k.shape, seed=5))
    assert float(jnp.abs(logits(model, x) - before).max()) > 1e-4


def test_group_norm_group_rule():
    assert ops.num_groups_for(64) == 32
    assert ops.num_groups_for(4) == 4
    assert ops.num_groups_for(48) == 24
    assert ops.num_groups_for(24, 8) == 8
    assert ops.num_groups_for(20, 8) == 5
    model = tiny_bit()
    norms = [m for _, m in nnx.iter_modules(model) if isinstance(m, layers.GroupNorm)]
    assert len(norms) == 4 * 3 + 1
    for gn in norms:
        assert gn.num_groups == ops.num_groups_for(gn.num_features)
    assert model.block1.unit01.gn1.num_groups == 4  # 4 channels: fewer than 32 groups
    assert model.norm_pre_head.num_groups == 32
    mnet = nnx.eval_shape(lambda: models.MobileNetV3(variant="small", norm="gn", num_classes=2))
    groups = {m.num_groups for _, m in nnx.iter_modules(mnet) if isinstance(m, layers.GroupNorm)}
    assert groups == {8}


def test_group_norm_layer_matches_flax():
    x = images((2, 5, 5, 12))
    ours = layers.GroupNorm(12, num_groups=4, impl="xla")
    ref = nnx.GroupNorm(12, num_groups=4, epsilon=1e-5, rngs=nnx.Rngs(0))
    scale = images((12,), seed=1) * 2
    ours.scale.set_value(scale)
    ref.scale.set_value(scale)
    apply = nnx.jit(lambda m, x: m(x))
    np.testing.assert_allclose(apply(ours, x), apply(ref, x), atol=1e-5)
    with pytest.raises(ValueError, match="num_groups=5"):
        layers.GroupNorm(12, num_groups=5)


def test_initializers_match_jax_statistics():
    key = jax.random.key(3)
    kernel = np.asarray(layers.lecun_normal(key, (3, 3, 64, 128)))
    assert np.abs(kernel).max() <= 2 / 0.87962566103423978 / np.sqrt(9 * 64) + 1e-6
    np.testing.assert_allclose(kernel.std(), 1 / np.sqrt(9 * 64), rtol=0.03)
    he = np.asarray(layers.he_normal_fan_out(key, (1, 1, 256, 512)))
    np.testing.assert_allclose(he.std(), np.sqrt(2 / 512), rtol=0.03)
    np.testing.assert_array_equal(kernel, layers.lecun_normal(key, (3, 3, 64, 128)))
    assert not np.array_equal(kernel, layers.lecun_normal(jax.random.key(4), (3, 3, 64, 128)))
    # Traced keys use jax's own initializer (abstract builds allocate nothing).
    assert jax.eval_shape(lambda k: layers.lecun_normal(k, (7, 3)), key).shape == (7, 3)


def test_max_pool_padding_modes():
    x = -jnp.ones((1, 4, 4, 1))
    assert float(layers.max_pool(x, pad="zero")[0, 0, 0, 0]) == 0.0  # border window sees pad
    assert float(layers.max_pool(x, pad="neg_inf")[0, 0, 0, 0]) == -1.0
    with pytest.raises(ValueError, match="pad='same'"):
        layers.max_pool(x, pad="same")


def test_mobilenet_bn_train_eval_and_batch_stats():
    model = models.MobileNetV3(variant="small", norm="bn", num_classes=3, width=0.35,
                               in_channels=1, stem="small", impl="xla")
    randomize_params(model, seed=2)
    x = images((2, 28, 28, 1))
    bn = model.stem.norm
    mean0 = np.asarray(bn.mean[...])
    model.eval()
    eval_out = logits(model, x)
    np.testing.assert_array_equal(bn.mean[...], mean0)  # eval mode: statistics frozen
    model.train()
    train_out = logits(model, x)
    assert float(jnp.abs(train_out - eval_out).max()) > 1e-4
    mean1 = np.asarray(bn.mean[...])
    assert np.abs(mean1 - mean0).max() > 0
    # Momentum 0.99: running = 0.99 * running + 0.01 * batch mean.
    batch_mean = np.asarray(model.stem.conv(x).mean((0, 1, 2)))
    np.testing.assert_allclose(mean1, 0.99 * mean0 + 0.01 * batch_mean, rtol=1e-4, atol=1e-6)


def test_mobilenet_bn_momentum_sets_every_batchnorm():
    kw = dict(variant="small", norm="bn", num_classes=3, width=0.35, in_channels=1,
              stem="small", impl="xla")
    model = models.MobileNetV3(bn_momentum=0.9, **kw)
    bns = [m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)]
    assert len(bns) > 10 and {bn.momentum for bn in bns} == {0.9}
    x = images((2, 28, 28, 1))
    mean0 = np.asarray(model.stem.norm.mean[...])
    model.train()
    logits(model, x)
    batch_mean = np.asarray(model.stem.conv(x).mean((0, 1, 2)))
    np.testing.assert_allclose(model.stem.norm.mean[...], 0.9 * mean0 + 0.1 * batch_mean,
                               rtol=1e-4, atol=1e-6)
    for bad in (1.0, -0.1, True):
        with pytest.raises(ValueError, match="bn_momentum="):
            models.MobileNetV3(bn_momentum=bad, **kw)


def test_jit_and_grad_match_finite_differences():
    model = tiny_bit(stem="small", in_channels=1)
    randomize_params(model, seed=3)
    x = images((2, 28, 28, 1))

    def loss(m: models.BiT) -> jax.Array:
        return jnp.sum(jnp.tanh(m(x)))

    value_and_grad = jit_fast(nnx.value_and_grad(loss))  # one compile for all evaluations
    value, grads = value_and_grad(model)
    assert np.isfinite(float(value)) and abs(float(value)) > 1e-3
    assert grads["head"]["bias"][...].shape == (5,)
    # Central finite differences along the gradient of three parameters.
    for path in [("head", "kernel"), ("block2", "unit01", "gn2", "scale"),
                 ("block3", "unit01", "conv2", "kernel")]:
        param, g = model, grads
        for p in path:
            param, g = getattr(param, p), g[p]
        g = np.asarray(g[...])
        assert np.linalg.norm(g) > 0
        direction = g / np.linalg.norm(g)
        orig = np.asarray(param[...])
        eps = 1e-2
        param.set_value(jax.device_put(orig + eps * direction))
        up = value_and_grad(model)[0]
        param.set_value(jax.device_put(orig - eps * direction))
        down = value_and_grad(model)[0]
        param.set_value(jax.device_put(orig))
        np.testing.assert_allclose((up - down) / (2 * eps), np.vdot(g, direction), rtol=3e-2)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda impl: tiny_bit(impl=impl), X_TINY),
        (lambda impl: models.MobileNetV3(variant="small", norm="gn", num_classes=3, width=0.35,
                                         in_channels=1, stem="small", impl=impl),
         (2, 28, 28, 1)),
    ],
    ids=["bit", "mobilenet_v3"],
)
@pytest.mark.slow
def test_cpu_impl_matches_xla_impl(make, shape):
    built = {impl: make(impl) for impl in ("xla", "cpu")}
    for model in built.values():
        randomize_params(model, seed=4)
    x = images(shape)
    out = {impl: logits(model, x) for impl, model in built.items()}
    assert np.isfinite(np.asarray(out["xla"])).all() and float(jnp.abs(out["xla"]).max()) > 0
    np.testing.assert_allclose(out["cpu"], out["xla"], rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------- errors


def test_create_errors():
    with pytest.raises(ValueError, match="allowed: \\['bit', 'mobilenet_v3'\\]"):
        models.create("resnet")
    with pytest.raises(ValueError, match="'widht'"):
        models.create("bit", widht=2)
    with pytest.raises(ValueError, match="'depth'"):
        models.create("mobilenet_v3", depth=50)
    with pytest.raises(ValueError, match="depth=34"):
        models.create("bit", depth=34)
    with pytest.raises(ValueError, match="depth=\\[1, 1\\]"):
        models.create("bit", depth=[1, 1])
    with pytest.raises(ValueError, match="width=0"):
        models.create("bit", width=0)
    with pytest.raises(ValueError, match="stem='tiny'"):
        models.create("bit", stem="tiny")
    with pytest.raises(ValueError, match="num_classes=0"):
        models.create("bit", num_classes=0)
    with pytest.raises(ValueError, match="variant='medium'"):
        models.create("mobilenet_v3", variant="medium")
    with pytest.raises(ValueError, match="norm='ln'"):
        models.create("mobilenet_v3", norm="ln")
    with pytest.raises(ValueError, match="dropout=1.5"):
        models.create("mobilenet_v3", dropout=1.5)
    with pytest.raises(ValueError, match="impl='gpu'"):
        models.create("bit", impl="gpu")
    with pytest.raises(ValueError, match="count_params expects"):
        models.count_params([1, 2])


def test_bad_inputs_raise_clear_errors():
    model = tiny_bit(stem="small", in_channels=1)
    with pytest.raises(ValueError, match="in_channels=1"):
        model(images((1, 28, 28, 3)))
    with pytest.raises(ValueError, match="rank 4"):
        model(images((28, 28, 1)))
    with pytest.raises(ValueError, match="dtype uint8"):
        model(jnp.zeros((1, 28, 28, 1), jnp.uint8))


# ---------------------------------------------------------------------------- npz layout


def test_npz_round_trip(tmp_path):
    model = tiny_bit()
    randomize_params(model, seed=6)
    path = tmp_path / "teacher.npz"
    assert models.save_bit_npz(model, path) == str(path)
    fresh = tiny_bit(rngs=nnx.Rngs(42))
    x = images(X_TINY)
    assert float(jnp.abs(logits(fresh, x) - logits(model, x)).max()) > 1e-3
    assert models.load_bit_npz(fresh, path) is fresh
    np.testing.assert_array_equal(logits(fresh, x), logits(model, x))
    with np.load(path) as f:
        assert len(f.files) == 1 + 4 * (3 * 3 + 1) + 2 + 2
        assert f["resnet/head/conv2d/kernel"].shape == (1, 1, 128, 5)
        assert f["resnet/block1/unit01/a/group_norm/gamma"].shape == (4,)
        assert f["resnet/block1/unit01/a/proj/standardized_conv2d/kernel"].shape == (1, 1, 4, 16)


def _by_hand_checkpoint(num_classes: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """A checkpoint of BiT depth [1,1,1,1], base width 4, RGB, written key by key."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.normal(size=shape).astype(np.float32)
    d = {"resnet/root_block/standardized_conv2d/kernel": normal(7, 7, 3, 4)}
    cin = 4
    for block, mid in [(1, 4), (2, 8), (3, 16), (4, 32)]:
        p = f"resnet/block{block}/unit01/"
        for group, c in [("a", cin), ("b", mid), ("c", mid)]:
            d[p + f"{group}/group_norm/gamma"] = 1 + 0.2 * normal(c)
            d[p + f"{group}/group_norm/beta"] = 0.2 * normal(c)
        d[p + "a/standardized_conv2d/kernel"] = normal(1, 1, cin, mid)
        d[p + "b/standardized_conv2d/kernel"] = normal(3, 3, mid, mid)
        d[p + "c/standardized_conv2d/kernel"] = normal(1, 1, mid, 4 * mid)
        d[p + "a/proj/standardized_conv2d/kernel"] = normal(1, 1, cin, 4 * mid)
        cin = 4 * mid
    d["resnet/group_norm/gamma"] = 1 + 0.2 * normal(128)
    d["resnet/group_norm/beta"] = 0.2 * normal(128)
    d["resnet/head/conv2d/kernel"] = 0.1 * normal(1, 1, 128, num_classes)
    d["resnet/head/conv2d/bias"] = normal(num_classes)
    return d


def _reference_bit_logits(d: dict, x: jax.Array) -> jax.Array:
    """BiT-v2 forward written directly from the checkpoint dict with plain lax ops."""

    def conv(x, w, stride, pad):
        w = (w - w.mean((0, 1, 2))) / jnp.sqrt(w.var((0, 1, 2)) + 1e-10)
        return lax.conv_general_dilated(x, w, (stride, stride), [(pad, pad)] * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def gn_relu(x, gamma, beta):
        n, h, w, c = x.shape
        g = min(32, c)  # all widths here are powers of two
        xg = x.reshape(n, h, w, g, c // g)
        xg = (xg - xg.mean((1, 2, 4), keepdims=True)) / jnp.sqrt(
            xg.var((1, 2, 4), keepdims=True) + 1e-5)
        return jax.nn.relu(xg.reshape(n, h, w, c) * gamma + beta)

    x = conv(x, d["resnet/root_block/standardized_conv2d/kernel"], 2, 3)
    x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "VALID")
    for block in range(1, 5):
        p = f"resnet/block{block}/unit01/"
        stride = 1 if block == 1 else 2
        pre = gn_relu(x, d[p + "a/group_norm/gamma"], d[p + "a/group_norm/beta"])
        shortcut = conv(pre, d[p + "a/proj/standardized_conv2d/kernel"], stride, 0)
        y = conv(pre, d[p + "a/standardized_conv2d/kernel"], 1, 0)
        y = gn_relu(y, d[p + "b/group_norm/gamma"], d[p + "b/group_norm/beta"])
        y = conv(y, d[p + "b/standardized_conv2d/kernel"], stride, 1)
        y = gn_relu(y, d[p + "c/group_norm/gamma"], d[p + "c/group_norm/beta"])
        x = conv(y, d[p + "c/standardized_conv2d/kernel"], 1, 0) + shortcut
    x = gn_relu(x, d["resnet/group_norm/gamma"], d["resnet/group_norm/beta"]).mean((1, 2))
    return x @ d["resnet/head/conv2d/kernel"][0, 0] + d["resnet/head/conv2d/bias"]


def test_load_hand_written_checkpoint_matches_reference_forward(tmp_path):
    d = _by_hand_checkpoint()
    path = tmp_path / "by_hand.npz"
    np.savez(path, **d)
    model = models.load_bit_npz(tiny_bit(), path)
    np.testing.assert_array_equal(model.block2.unit01.conv2.kernel[...],
                                  d["resnet/block2/unit01/b/standardized_conv2d/kernel"])
    np.testing.assert_array_equal(model.block3.unit01.gn1.scale[...],
                                  d["resnet/block3/unit01/a/group_norm/gamma"])
    np.testing.assert_array_equal(model.head.kernel[...], d["resnet/head/conv2d/kernel"][0, 0])
    x = images(X_TINY)
    reference = jax.jit(_reference_bit_logits, compiler_options=FAST_COMPILE)(d, x)
    np.testing.assert_allclose(logits(model, x), reference, rtol=1e-4, atol=1e-4)
    # Some released files number their convs: standardized_conv2d_3 reads the same.
    old = "block3/unit01/b/standardized_conv2d/"
    renamed = {k.replace(old, old[:-1] + "_3/"): v for k, v in d.items()}
    assert renamed != d
    again = models.load_bit_npz(tiny_bit(rngs=nnx.Rngs(9)), renamed)
    np.testing.assert_array_equal(logits(again, x), logits(model, x))


def test_load_reports_all_problems_at_once():
    d = _by_hand_checkpoint()
    d["resnet/block2/unit01/b/group_norm/gamma"] = np.ones((1, 1, 1, 8), np.float32)
    del d["resnet/block4/unit01/c/standardized_conv2d/kernel"]
    d["resnet/block5/unit01/a/group_norm/beta"] = np.zeros(3, np.float32)
    model = tiny_bit()
    before = np.asarray(model.block1.unit01.conv1.kernel[...])
    with pytest.raises(ValueError) as err:
        models.load_bit_npz(model, d)
    msg = str(err.value)
    assert "missing keys (1): resnet/block4/unit01/c/standardized_conv2d/kernel" in msg
    assert "unexpected keys (1): resnet/block5/unit01/a/group_norm/beta" in msg
    assert ("shape mismatch for resnet/block2/unit01/b/group_norm/gamma: "
            "expected (8,), found (1, 1, 1, 8)") in msg
    np.testing.assert_array_equal(model.block1.unit01.conv1.kernel[...], before)  # untouched


def test_head_skip_keeps_fresh_head_for_other_class_counts():
    d = _by_hand_checkpoint(num_classes=1000)
    with pytest.raises(ValueError, match=r"expected \(1, 1, 128, 5\), found \(1, 1, 128, 1000\)"):
        models.load_bit_npz(tiny_bit(), d)
    model = models.load_bit_npz(tiny_bit(), d, head="skip")
    np.testing.assert_array_equal(model.head.kernel[...], np.zeros((128, 5)))
    np.testing.assert_array_equal(model.norm_pre_head.scale[...], d["resnet/group_norm/gamma"])
    no_head = {k: v for k, v in d.items() if not k.startswith("resnet/head/")}
    models.load_bit_npz(tiny_bit(), no_head, head="skip")
    with pytest.raises(ValueError, match="missing keys \\(2\\): resnet/head/conv2d/bias"):
        models.load_bit_npz(tiny_bit(), no_head)
    with pytest.raises(ValueError, match="head='keep'"):
        models.load_bit_npz(tiny_bit(), d, head="keep")
    with pytest.raises(ValueError, match="expected a kdlib.models.BiT"):
        models.load_bit_npz(models.MobileNetV3(num_classes=2), d)


def test_batchnorm_is_flax_batchnorm_bit_for_bit_and_traces_fast():
    """kdlib's BatchNorm (statistics stored with ``set_value``) equals ``nnx.BatchNorm``
    exactly, in training (output and updated statistics, under jit and grad) and inference,
    and its trace does not walk the jaxpr for each statistic (what made flax's slow)."""
    from kdlib.models import layers

    x = images((4, 5, 5, 3))
    ours, flax_bn = (cls(3, momentum=0.9, epsilon=1e-3, rngs=nnx.Rngs(0))
                     for cls in (layers.BatchNorm, nnx.BatchNorm))
    for bn in (ours, flax_bn):
        bn.scale[...] = jnp.asarray([1.5, 0.5, 2.0])
        bn.bias[...] = jnp.asarray([0.1, -0.2, 0.3])

    def train_step(model, x):
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def loss(p):
            m = nnx.merge(graphdef, p, rest, copy=True)
            y = m(x, use_running_average=False)
            return jnp.sum(y ** 3), (y, nnx.state(m, nnx.BatchStat))

        (_, (y, stats)), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return y, stats, grads

    for a, b in zip(jax.tree.leaves(jax.jit(train_step)(ours, x)),
                    jax.tree.leaves(jax.jit(train_step)(flax_bn, x)), strict=True):
        np.testing.assert_array_equal(a, b)
    for model in (ours, flax_bn):  # eager training call: the statistics move
        model(x, use_running_average=False)
    np.testing.assert_array_equal(ours.mean[...], flax_bn.mean[...])
    assert np.abs(np.asarray(ours.mean[...])).max() > 0
    np.testing.assert_array_equal(ours(x, use_running_average=True),
                                  flax_bn(x, use_running_average=True))

    # A statistic written while tracing a long program: no "sharding" lookup on the tracer.
    from jax._src import core

    looked_up = []
    original = core.Tracer.sharding
    core.Tracer.sharding = property(lambda t: looked_up.append(1) or original.fget(t))
    try:
        jax.jit(train_step).trace(ours, x)
    finally:
        core.Tracer.sharding = original
    assert looked_up == []
