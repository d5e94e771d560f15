"""The CPU-tuned ops equal the plain XLA ops in values and gradients, and reject bad input."""

from __future__ import annotations

import itertools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from kdlib.models import cpu_ops, ops

RTOL = 2e-5  # relative to the largest magnitude of each compared array (float32 rounding)


def _rand(rng: np.random.Generator, shape, offset: float = 0.0, dtype=jnp.float32):
    return jnp.asarray(rng.normal(size=shape) + offset, dtype)


def _assert_same_values_and_grads(reference, candidate, args, seed: int = 0) -> None:
    """Outputs and the gradients of <output, r> (random r) w.r.t. every arg agree.

    Both functions run inside one jit (one compile: compiling dominates these tiny tests).
    """
    r = _rand(np.random.default_rng(seed), jax.eval_shape(reference, *args).shape)

    def value_and_grads(f, *a):
        y, vjp = jax.vjp(f, *a)
        return y, vjp(r)

    both = jax.jit(lambda *a: (value_and_grads(reference, *a), value_and_grads(candidate, *a)))
    (y_ref, g_ref), (y, g) = both(*args)
    assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
    for name, a, b in [("value", y_ref, y)] + [
        (f"grad[{i}]", gr, gc) for i, (gr, gc) in enumerate(zip(g_ref, g, strict=True))
    ]:
        assert a.shape == b.shape, name
        scale = float(jnp.max(jnp.abs(a))) + 1e-12
        err = float(jnp.max(jnp.abs(a - b))) / scale
        assert err < RTOL, f"{name}: relative error {err:.2e}"


# ------------------------------------------------------------------------------- conv2d

CONV_CASES = [
    # (spatial h, w), cin, cout, kernel, strides, padding
    ((9, 7), 1, 4, 3, (1, 1), "SAME"),
    ((8, 8), 2, 6, 3, (2, 2), "VALID"),
    ((11, 9), 4, 3, 5, (1, 1), "SAME"),
    ((11, 10), 5, 2, 5, (2, 1), [(2, 1), (0, 3)]),
    ((9, 9), 1, 16, 7, (2, 2), "SAME"),
    ((7, 12), 16, 8, 3, (1, 1), [(1, -1), (2, 0)]),
    ((5, 5), 6, 6, 1, (1, 1), "SAME"),
    ((7, 5), 3, 4, 1, (2, 2), "SAME"),
    ((6, 7), 4, 2, 1, (2, 1), [(1, 2), (0, 1)]),
]


@pytest.mark.parametrize("hw,cin,cout,k,strides,padding", CONV_CASES)
def test_conv2d_equals_xla(hw, cin, cout, k, strides, padding):
    rng = np.random.default_rng(cin * 100 + k)
    x = _rand(rng, (2, *hw, cin))
    w = _rand(rng, (k, k, cin, cout))
    _assert_same_values_and_grads(
        lambda x, w: ops.conv2d_xla(x, w, strides, padding),
        lambda x, w: cpu_ops.conv2d(x, w, strides, padding),
        (x, w),
    )


ALL_PLANS = list(
    itertools.product(cpu_ops.FWD_METHODS, cpu_ops.DX_METHODS, cpu_ops.DW_METHODS)
)


@pytest.mark.parametrize("plan", ALL_PLANS, ids=lambda p: "/".join(p))
@pytest.mark.parametrize(
    "hw,strides,padding", [((9, 10), (1, 1), "SAME"), ((9, 8), (2, 2), [(1, 0), (2, 1)])]
)
def test_every_conv_method_equals_xla(plan, hw, strides, padding):
    """Each forward / input-grad / kernel-grad method is right, whatever the dispatch picks."""
    rng = np.random.default_rng(7)
    x = _rand(rng, (2, *hw, 3))
    w = _rand(rng, (3, 3, 3, 4))
    _assert_same_values_and_grads(
        lambda x, w: ops.conv2d_xla(x, w, strides, padding),
        lambda x, w: cpu_ops.conv2d_with_plan(x, w, strides, padding, cpu_ops.ConvPlan(*plan)),
        (x, w),
    )


def test_conv2d_plan_picks_direct_for_few_channels_and_xla_for_many():
    few = cpu_ops.conv2d_plan((128, 28, 28, 4), (3, 3, 4, 4))
    many = cpu_ops.conv2d_plan((128, 14, 14, 64), (3, 3, 64, 64), (2, 2))
    assert few == cpu_ops.ConvPlan("direct", "direct", "xla")
    assert many == cpu_ops.ConvPlan("xla", "xla", "xla")
    assert cpu_ops.conv2d_plan((128, 28, 28, 1), (3, 3, 1, 16)).dx == "col2im"


def test_conv1x1_is_a_matmul_without_convolution():
    x = jnp.ones((2, 5, 5, 3))
    w = jnp.ones((1, 1, 3, 4))
    grad = jax.grad(lambda x, w: jnp.sum(cpu_ops.conv2d(x, w, (2, 2))), argnums=(0, 1))
    jaxpr = str(jax.make_jaxpr(grad)(x, w))
    assert "conv_general_dilated" not in jaxpr
    assert "dot_general" in jaxpr


def test_ops_dispatch_reaches_cpu_ops():
    rng = np.random.default_rng(3)
    x, w = _rand(rng, (1, 6, 6, 2)), _rand(rng, (3, 3, 2, 3))
    y_cpu = jax.jit(partial(ops.conv2d, impl="cpu"))(x, w)
    np.testing.assert_allclose(y_cpu, ops.conv2d_xla(x, w), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------- depthwise

DEPTHWISE_CASES = [
    ((9, 7), 1, 3, (1, 1), "SAME"),
    ((9, 9), 4, 3, (2, 2), "SAME"),
    ((10, 8), 6, 5, (2, 2), "SAME"),
    ((7, 7), 8, 5, (1, 1), "VALID"),
    ((8, 11), 3, 3, (1, 2), [(0, 2), (1, 1)]),
    ((6, 7), 16, 3, (1, 1), "SAME"),
    ((5, 9), 2, 1, (2, 2), "SAME"),
]


@pytest.mark.parametrize("hw,c,k,strides,padding", DEPTHWISE_CASES)
def test_depthwise_equals_xla(hw, c, k, strides, padding):
    rng = np.random.default_rng(c * 10 + k)
    x = _rand(rng, (2, *hw, c))
    w = _rand(rng, (k, k, 1, c))
    _assert_same_values_and_grads(
        lambda x, w: ops.depthwise_conv2d_xla(x, w, strides, padding),
        lambda x, w: cpu_ops.depthwise_conv2d(x, w, strides, padding),
        (x, w),
    )


def test_depthwise_uses_no_grouped_convolution():
    x, w = jnp.ones((1, 6, 6, 4)), jnp.ones((3, 3, 1, 4))
    grad = jax.grad(lambda x, w: jnp.sum(cpu_ops.depthwise_conv2d(x, w, (2, 2))), (0, 1))
    assert "conv_general_dilated" not in str(jax.make_jaxpr(grad)(x, w))


def test_slice_sums_run_behind_a_loop_fence():
    """Without the loop XLA fuses (and recomputes) the slice sums inside every consumer."""
    x = jnp.ones((3, 9, 9, 2))
    direct = jax.make_jaxpr(lambda x, w: cpu_ops.conv2d(x, w))(x, jnp.ones((3, 3, 2, 2)))
    depthwise = jax.make_jaxpr(cpu_ops.depthwise_conv2d)(x, jnp.ones((3, 3, 1, 2)))
    assert cpu_ops.conv2d_plan(x.shape, (3, 3, 2, 2)).fwd == "direct"
    assert "scan[" in str(direct) and "scan[" in str(depthwise)  # lax.map is a scan


# ------------------------------------------------------------------------------- group norm

GN_CASES = [
    # (h, w), channels, groups, with scale, with bias, input offset
    ((5, 7), 4, 2, True, True, 0.0),
    ((7, 7), 6, 3, True, False, 0.0),
    ((4, 4), 8, 8, False, True, 0.0),
    ((3, 5), 5, 1, False, False, 0.0),
    ((6, 6), 16, 4, True, True, 50.0),  # large mean: the one-pass statistics must not cancel
    ((1, 1), 12, 4, True, True, 0.0),
]


@pytest.mark.parametrize("hw,c,groups,with_scale,with_bias,offset", GN_CASES)
def test_group_norm_equals_xla(hw, c, groups, with_scale, with_bias, offset):
    rng = np.random.default_rng(c + groups)
    x = _rand(rng, (3, *hw, c), offset)
    scale = _rand(rng, (c,)) if with_scale else None
    bias = _rand(rng, (c,)) if with_bias else None
    params = [p for p in (scale, bias) if p is not None]

    def call(fn):
        def f(x, *p):
            it = iter(p)
            s = next(it) if with_scale else None
            b = next(it) if with_bias else None
            return fn(x, groups, s, b, 1e-5)

        return f

    _assert_same_values_and_grads(call(ops.group_norm_xla), call(cpu_ops.group_norm), (x, *params))


def test_group_norm_output_is_normalized_per_group():
    x = _rand(np.random.default_rng(0), (2, 5, 5, 6), 3.0)
    y = jax.jit(cpu_ops.group_norm, static_argnums=1)(x, 3).reshape(2, 25, 3, 2)
    np.testing.assert_allclose(jnp.mean(y, axis=(1, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.var(y, axis=(1, 3)), 1.0, rtol=1e-3)


# ------------------------------------------------------------------------------- finite diffs


@pytest.mark.slow
def test_gradients_match_finite_differences_in_float64():
    """The custom VJPs against central differences (float64, so the check is tight).

    Covers the hand-written methods (direct forward and input gradient, col2im, the 1x1
    matmul, depthwise, GroupNorm); the "xla" methods are XLA's own transposes.
    """
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = _rand(rng, (2, 6, 5, 3), dtype=jnp.float64)
        w = _rand(rng, (3, 3, 3, 2), dtype=jnp.float64)
        wd = _rand(rng, (3, 3, 1, 3), dtype=jnp.float64)
        s, b = _rand(rng, (3,), dtype=jnp.float64), _rand(rng, (3,), dtype=jnp.float64)
        kw = dict(order=1, modes=("rev",), atol=1e-6, rtol=1e-6, eps=1e-4)
        for plan in [("direct", "direct", "xla"), ("xla", "col2im", "xla")]:
            f = partial(cpu_ops.conv2d_with_plan, strides=(2, 1), padding="SAME", plan=plan)
            check_grads(jax.jit(f), (x, w), **kw)
        check_grads(jax.jit(lambda x, w: cpu_ops.conv2d(x, w[:1, :1], (2, 2))), (x, w), **kw)
        check_grads(jax.jit(lambda x, w: cpu_ops.depthwise_conv2d(x, w, (2, 2))), (x, wd), **kw)
        check_grads(jax.jit(lambda x, s, b: cpu_ops.group_norm(x, 3, s, b)), (x, s, b), **kw)


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: cpu_ops.group_norm(jnp.ones((1, 2, 2, 6)), 4), "num_groups=4 .* 6"),
        (lambda: cpu_ops.group_norm(jnp.ones((1, 2, 2, 6)), 0), "num_groups=0"),
        (lambda: cpu_ops.group_norm(jnp.ones((2, 2, 6)), 3), "4-D"),
        (lambda: cpu_ops.group_norm(jnp.ones((1, 2, 2, 6)), 3, jnp.ones(5)), r"scale .*\(6,\)"),
        (lambda: cpu_ops.conv2d(jnp.ones((1, 5, 5, 3)), jnp.ones((3, 3, 4, 2))), "in-channels 4"),
        (lambda: cpu_ops.conv2d(jnp.ones((5, 5, 3)), jnp.ones((3, 3, 3, 2))), "x must be a 4-D"),
        (
            lambda: cpu_ops.conv2d(jnp.ones((1, 5, 5, 3)), jnp.ones((3, 3, 3, 2)), (1, 1), "FULL"),
            "padding='FULL'",
        ),
        (
            lambda: cpu_ops.conv2d(jnp.ones((1, 5, 5, 3)), jnp.ones((3, 3, 3, 2)), (0, 1)),
            r"strides=\(0, 1\)",
        ),
        (
            lambda: cpu_ops.conv2d(jnp.ones((1, 2, 2, 3)), jnp.ones((3, 3, 3, 2)), (1, 1), "VALID"),
            "smaller than the kernel size 3",
        ),
        (
            lambda: cpu_ops.conv2d(
                jnp.ones((1, 5, 5, 3)), jnp.ones((3, 3, 3, 2)), (1, 1), [(1, 1)]
            ),
            "padding=",
        ),
        (
            lambda: cpu_ops.depthwise_conv2d(jnp.ones((1, 5, 5, 3)), jnp.ones((3, 3, 1, 4))),
            r"\(kh, kw, 1, C\) with C=3",
        ),
        (
            lambda: cpu_ops.conv2d_with_plan(
                jnp.ones((1, 5, 5, 3)), jnp.ones((3, 3, 3, 2)), (1, 1), "SAME",
                cpu_ops.ConvPlan("fft", "xla", "xla"),
            ),
            "plan.fwd='fft'",
        ),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_ops_vectorize_over_runs_with_vmap():
    """A sweep vmaps whole models over runs: the custom VJPs must batch like the plain ops."""
    rng = np.random.default_rng(5)
    x = _rand(rng, (2, 2, 9, 9, 3))  # (runs, N, H, W, C)
    w = _rand(rng, (2, 3, 3, 3, 4))
    wd = _rand(rng, (2, 3, 3, 1, 4))
    s = _rand(rng, (2, 4))

    def block(conv, depthwise, norm):
        def f(x, w, wd, s):
            y = conv(x, w, (1, 1), "SAME")
            y = depthwise(y, wd, (2, 2), "SAME")
            return norm(y, 2, s, None, 1e-5)

        return jax.vmap(f)

    _assert_same_values_and_grads(
        block(ops.conv2d_xla, ops.depthwise_conv2d_xla, ops.group_norm_xla),
        block(cpu_ops.conv2d, cpu_ops.depthwise_conv2d, cpu_ops.group_norm),
        (x, w, wd, s),
    )
