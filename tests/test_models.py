"""Tests of kdlib.models: BiT ResNet-v2, MobileNetV3, the big_transfer .npz layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

import kdlib.models as models
from kdlib.models import layers, ops
from kdlib.models.bit import ResidualUnit
from kdlib.models.mobilenet_v3 import make_divisible

TINY_BIT = dict(depth=[1, 1, 1, 1], width=1 / 16)  # 4 base channels, outputs 16 ... 128


def tiny_bit(**kw) -> models.BiT:
    args = dict(TINY_BIT, num_classes=5, in_channels=3, stem="imagenet")
    args.update(kw)
    return models.create("bit", **args)


def images(shape, seed=0) -> jax.Array:
    return jax.random.uniform(jax.random.key(seed), shape, jnp.float32, -1.0, 1.0)


def randomize_params(model: nnx.Module, seed: int, scale: float = 0.1) -> None:
    """Adds noise to every nnx.Param so that no output is trivially zero or symmetric."""
    state = nnx.state(model, nnx.Param)
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    nnx.update(model, jax.tree.unflatten(treedef, noisy))


# ----------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        (dict(TINY_BIT, in_channels=1, stem="small"), (2, 28, 28, 1)),
        (dict(TINY_BIT, in_channels=3, stem="imagenet"), (2, 64, 64, 3)),
    ],
)
def test_bit_output_shape(kwargs, shape):
    model = models.create("bit", num_classes=7, rngs=nnx.Rngs(1), **kwargs)
    assert model(images(shape)).shape == (shape[0], 7)
    assert model.pre_logits(images(shape)).shape == (shape[0], 128)


@pytest.mark.parametrize("variant", ["large", "small"])
@pytest.mark.parametrize("norm", ["gn", "bn"])
def test_mobilenet_v3_output_shape(variant, norm):
    model = models.MobileNetV3(
        variant=variant, norm=norm, num_classes=3, width=0.35, in_channels=1, stem="small",
        rngs=nnx.Rngs(0))
    x = images((2, 28, 28, 1))
    assert model(x).shape == (2, 3)
    assert model.pre_logits(x).shape == (2, make_divisible(PRE_LOGITS[variant] * 0.35))


PRE_LOGITS = {"large": 1280, "small": 1024}


def test_bit_stem_and_stage_resolutions():
    model = tiny_bit()
    x = model.root_block(images((1, 64, 64, 3)))
    assert x.shape == (1, 16, 16, 4)  # 7x7/2 conv + 3x3/2 pool
    sizes = []
    for stage in model.stages():
        x = stage(x)
        sizes.append(x.shape[1:])
    assert sizes == [(16, 16, 16), (8, 8, 32), (4, 4, 64), (2, 2, 128)]
    small = tiny_bit(stem="small", in_channels=1)
    assert small.root_block(images((1, 28, 28, 1))).shape == (1, 28, 28, 4)


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
    np.testing.assert_allclose(unit(x), x, atol=1e-6)


def test_bit_width_rounding_and_depths():
    assert models.BiT(depth=26, width=1 / 16).depth == (2, 2, 2, 2)
    assert models.BiT(depth=[1, 2, 1, 1], width=0.01).root_block.conv_root.kernel.shape == (
        7, 7, 3, 1)  # round(0.64) -> 1 channel at least
    model = models.BiT(depth=[1, 1, 1, 1], width=0.1)  # round(6.4) = 6
    assert model.num_features == 6 * 8 * 4


def test_make_divisible():
    assert [make_divisible(v) for v in (16, 18, 30, 72 / 4, 240, 5.6, 448)] == [
        16, 24, 32, 24, 240, 8, 448]


def test_mobilenet_v3_structure():
    model = models.MobileNetV3(variant="large", num_classes=10)
    first = model.blocks[0]
    assert first.expand is None and first.use_residual  # expansion 16 == input 16
    assert model.blocks[3].se.reduce.kernel.shape == (72, 24)  # make_divisible(72 / 4) = 24
    assert model.blocks[3].depthwise.conv.kernel.shape == (5, 5, 1, 72)
    assert model.last_conv.conv.kernel.shape == (1, 1, 160, 960)
    assert model.pre_logits_dense.kernel.shape == (960, 1280)
    small = models.MobileNetV3(variant="small", num_classes=10)
    assert small.last_conv.conv.kernel.shape == (1, 1, 96, 576)
    assert small.pre_logits_dense.kernel.shape == (576, 1024)
    strides = [b.depthwise.conv.strides[0] for b in small.blocks]
    assert strides == [2, 2, 1, 2, 1, 1, 1, 1, 2, 1, 1]


# ----------------------------------------------------------------------- parameter counts

# Exact counts of our implementation; published: BiT-R50x1 25.5M, BiT-R152x2 236M (timm:
# 25.55M, 236.34M), MobileNetV3-Large 5.4M and -Small 2.5M (torchvision: 5,483,032 and
# 2,542,856, identical to ours). All with 1000 classes at 224 px.
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
    assert isinstance(nnx.state(model, nnx.Param)["head"]["kernel"][...], jax.ShapeDtypeStruct)
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


# ------------------------------------------------------------------------------- behaviour


def test_bit_zero_head_gives_zero_logits_at_init():
    model = tiny_bit()
    x = images((3, 32, 32, 3))
    np.testing.assert_array_equal(model(x), np.zeros((3, 5), np.float32))
    assert float(jnp.abs(model.pre_logits(x)).sum()) > 0


def test_weight_standardization_invariance():
    model = tiny_bit()
    randomize_params(model, seed=1)
    x = images((2, 32, 32, 3))
    before = model(x)
    assert float(jnp.abs(before).max()) > 1e-3
    for conv in (model.root_block.conv_root, model.block2.unit01.conv2,
                 model.block3.unit01.conv_proj):
        conv.kernel.set_value(conv.kernel[...] * 7.5)
    np.testing.assert_allclose(model(x), before, rtol=1e-4, atol=1e-5)
    # A change that is not a positive rescaling does change the output.
    k = model.block2.unit01.conv2.kernel
    k.set_value(k[...] + jax.random.normal(jax.random.key(5), k.shape))
    assert float(jnp.abs(model(x) - before).max()) > 1e-4


def test_group_norm_group_rule():
    assert ops.num_groups_for(64) == 32
    assert ops.num_groups_for(4) == 4
    assert ops.num_groups_for(48) == 24
    assert ops.num_groups_for(24, 8) == 8
    assert ops.num_groups_for(20, 8) == 5
    model = tiny_bit()
    for _, gn in nnx.iter_modules(model):
        if isinstance(gn, layers.GroupNorm):
            assert gn.num_groups == ops.num_groups_for(gn.num_features)
    assert model.block1.unit01.gn1.num_groups == 4  # 4 channels: fewer than 32 groups
    assert model.norm_pre_head.num_groups == 32
    mnet = models.MobileNetV3(variant="small", norm="gn", num_classes=2)
    groups = {m.num_groups for _, m in nnx.iter_modules(mnet) if isinstance(m, layers.GroupNorm)}
    assert groups == {8}


def test_group_norm_layer_matches_flax():
    x = images((2, 5, 5, 12))
    ours = layers.GroupNorm(12, num_groups=4, impl="xla")
    ref = nnx.GroupNorm(12, num_groups=4, epsilon=1e-5, rngs=nnx.Rngs(0))
    scale = jax.random.normal(jax.random.key(1), (12,))
    ours.scale.set_value(scale)
    ref.scale.set_value(scale)
    np.testing.assert_allclose(ours(x), ref(x), atol=1e-5)
    with pytest.raises(ValueError, match="num_groups=5"):
        layers.GroupNorm(12, num_groups=5)


def test_max_pool_padding_modes():
    x = -jnp.ones((1, 4, 4, 1))
    assert float(layers.max_pool(x, pad="zero")[0, 0, 0, 0]) == 0.0  # border window sees pad
    assert float(layers.max_pool(x, pad="neg_inf")[0, 0, 0, 0]) == -1.0
    with pytest.raises(ValueError, match="pad='same'"):
        layers.max_pool(x, pad="same")


def test_mobilenet_bn_train_eval_and_batch_stats():
    model = models.MobileNetV3(variant="small", norm="bn", num_classes=4, width=0.35,
                               in_channels=1, stem="small")
    randomize_params(model, seed=2)
    x = images((4, 28, 28, 1))
    bn = model.stem.norm
    mean0 = np.asarray(bn.mean[...])
    model.eval()
    eval_out = model(x)
    np.testing.assert_array_equal(bn.mean[...], mean0)  # eval mode: statistics frozen
    model.train()
    train_out = model(x)
    assert float(jnp.abs(train_out - eval_out).max()) > 1e-4
    mean1 = np.asarray(bn.mean[...])
    assert np.abs(mean1 - mean0).max() > 0
    # Momentum 0.99: running = 0.99 * running + 0.01 * batch mean.
    conv_out = model.stem.conv(x)
    np.testing.assert_allclose(mean1, 0.99 * mean0 + 0.01 * conv_out.mean((0, 1, 2)),
                               rtol=1e-4, atol=1e-6)


def test_jit_and_grad_match_eager_and_finite_differences():
    model = tiny_bit(stem="small", in_channels=1)
    randomize_params(model, seed=3)
    x = images((2, 12, 12, 1))

    def loss(m: models.BiT) -> jax.Array:
        return jnp.sum(jnp.tanh(m(x)))

    np.testing.assert_allclose(nnx.jit(lambda m: m(x))(model), model(x), rtol=1e-5, atol=1e-5)
    grads = nnx.jit(nnx.grad(loss))(model)
    g_head = grads["head"]["bias"][...]
    assert g_head.shape == (5,)
    # Finite differences (central) along the gradient of two parameters.
    for path in [("head", "kernel"), ("block2", "unit01", "gn2", "scale")]:
        param = model
        g = grads
        for p in path:
            param = getattr(param, p)
            g = g[p]
        g = g[...]
        direction = g / jnp.linalg.norm(g)
        orig = param[...]
        eps = 1e-2
        param.set_value(orig + eps * direction)
        up = loss(model)
        param.set_value(orig - eps * direction)
        down = loss(model)
        param.set_value(orig)
        np.testing.assert_allclose((up - down) / (2 * eps), jnp.vdot(g, direction), rtol=2e-2)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("bit", dict(TINY_BIT, stem="small")),
        ("mobilenet_v3", dict(variant="small", norm="gn", width=0.35, stem="small")),
        ("mobilenet_v3", dict(variant="large", norm="bn", width=0.35, stem="small")),
    ],
)
def test_cpu_impl_matches_xla_impl(name, kwargs):
    built = {
        impl: models.create(name, num_classes=4, in_channels=1, impl=impl, rngs=nnx.Rngs(0),
                            **kwargs)
        for impl in ("xla", "cpu")
    }
    for model in built.values():
        randomize_params(model, seed=4)
    x = images((2, 16, 16, 1))
    np.testing.assert_allclose(built["cpu"](x), built["xla"](x), rtol=1e-4, atol=1e-4)


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
    with pytest.raises(ValueError, match="variant='medium'"):
        models.create("mobilenet_v3", variant="medium")
    with pytest.raises(ValueError, match="norm='ln'"):
        models.create("mobilenet_v3", norm="ln")
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
    x = images((2, 32, 32, 3))
    assert float(jnp.abs(fresh(x) - model(x)).max()) > 1e-3
    assert models.load_bit_npz(fresh, path) is fresh
    np.testing.assert_array_equal(fresh(x), model(x))
    with np.load(path) as f:
        assert f["resnet/head/conv2d/kernel"].shape == (1, 1, 128, 5)
        assert f["resnet/block1/unit01/a/group_norm/gamma"].shape == (4,)


def _by_hand_checkpoint(num_classes: int, in_channels: int = 3, seed: int = 0) -> dict:
    """A checkpoint of BiT depth [1,1,1,1], base width 4, written key by key."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.normal(size=shape).astype(np.float32)
    d = {"resnet/root_block/standardized_conv2d/kernel": normal(7, 7, in_channels, 4)}
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


def _reference_bit_logits(d: dict, x: np.ndarray) -> np.ndarray:
    """BiT-v2 forward written directly from the checkpoint dict with plain lax ops."""

    def conv(x, w, stride, pad):
        w = (w - w.mean((0, 1, 2))) / np.sqrt(w.var((0, 1, 2)) + 1e-10)
        return lax.conv_general_dilated(x, w, (stride, stride), [(pad, pad)] * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def gn_relu(x, gamma, beta):
        n, h, w, c = x.shape
        g = min(32, c)
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
    d = _by_hand_checkpoint(num_classes=6)
    path = tmp_path / "by_hand.npz"
    np.savez(path, **d)
    model = models.load_bit_npz(tiny_bit(num_classes=6), path)
    np.testing.assert_array_equal(model.block2.unit01.conv2.kernel[...],
                                  d["resnet/block2/unit01/b/standardized_conv2d/kernel"])
    np.testing.assert_array_equal(model.head.kernel[...], d["resnet/head/conv2d/kernel"][0, 0])
    x = images((2, 40, 40, 3))
    np.testing.assert_allclose(model(x), _reference_bit_logits(d, x), rtol=1e-4, atol=1e-4)
    # Some released files number their convs: standardized_conv2d_3 reads the same.
    renamed = {k.replace("block3/unit01/b/standardized_conv2d/", "block3/unit01/b/"
                         "standardized_conv2d_3/"): v for k, v in d.items()}
    again = models.load_bit_npz(tiny_bit(num_classes=6, rngs=nnx.Rngs(9)), renamed)
    np.testing.assert_array_equal(again(x), model(x))


def test_load_reports_all_problems_at_once():
    d = _by_hand_checkpoint(num_classes=5)
    d["resnet/block2/unit01/b/group_norm/gamma"] = np.ones((1, 1, 1, 8), np.float32)
    del d["resnet/block4/unit01/c/standardized_conv2d/kernel"]
    d["resnet/block5/unit01/a/group_norm/beta"] = np.zeros(3, np.float32)
    model = tiny_bit()
    before = model.block1.unit01.conv1.kernel[...]
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
    with pytest.raises(ValueError, match="head='keep'"):
        models.load_bit_npz(tiny_bit(), d, head="keep")
    with pytest.raises(ValueError, match="expected a kdlib.models.BiT"):
        models.load_bit_npz(models.MobileNetV3(num_classes=2), d)
