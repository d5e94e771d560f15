"""Tests for kdlib.optim: schedules, kernel_mask, adam_bv and sgd_momentum (big_vision style)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402
from flax import nnx  # noqa: E402

from kdlib import optim  # noqa: E402


def values(schedule, steps):
    return np.asarray([float(schedule(s)) for s in steps])


# ---------------------------------------------------------------- schedules


def test_warmup_cosine_key_steps():
    sched = optim.warmup_cosine(2.0, total_steps=10, warmup_steps=2)
    got = values(sched, [0, 1, 2, 4, 6, 8, 10, 15])
    cos = lambda p: 2.0 * 0.5 * (1 + np.cos(np.pi * p))  # noqa: E731
    want = [0.0, 1.0, 2.0, cos(0.25), 1.0, cos(0.75), 0.0, 0.0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_warmup_cosine_without_warmup_starts_at_base_lr():
    np.testing.assert_allclose(values(optim.warmup_cosine(0.5, 4), [0, 2, 4]), [0.5, 0.25, 0.0])


def test_warmup_quadratic_decay_key_steps():
    sched = optim.warmup_quadratic_decay(2.0, total_steps=10, warmup_steps=2)
    got = values(sched, [0, 1, 2, 4, 6, 10, 11])
    want = [0.0, 1.0, 2.0, 2.0 * 0.75**2, 2.0 * 0.5**2, 0.0, 0.0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert optim.APPENDIX_D_WARMUP_STEPS == 1800


def test_warmup_constant_key_steps():
    got = values(optim.warmup_constant(3.0, warmup_steps=4), [0, 1, 4, 1000])
    np.testing.assert_allclose(got, [0.0, 0.75, 3.0, 3.0])


def test_schedules_are_jittable_on_step_arrays():
    sched = optim.warmup_cosine(1.0, 100, 10)
    got = jax.jit(jax.vmap(sched))(jnp.arange(0, 101, 25))
    np.testing.assert_allclose(np.asarray(got), values(sched, range(0, 101, 25)), rtol=1e-6)


@pytest.mark.parametrize(
    "args, match",
    [
        ((1.0, 10, 11), "warmup_steps must be <= total_steps"),
        ((0.0, 10, 1), "base_lr"),
        ((-1e-3, 10, 1), "base_lr"),
        ((float("inf"), 10, 1), "base_lr"),
        ((1.0, 0, 0), "total_steps"),
        ((1.0, 10.0, 1), "total_steps"),
        ((1.0, 10, -1), "warmup_steps"),
    ],
)
@pytest.mark.parametrize("make", [optim.warmup_cosine, optim.warmup_quadratic_decay])
def test_schedule_bad_arguments_raise(make, args, match):
    with pytest.raises(ValueError, match=match):
        make(*args)


def test_warmup_constant_bad_arguments_raise():
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.warmup_constant(1.0, warmup_steps=-2)
    with pytest.raises(ValueError, match="base_lr"):
        optim.warmup_constant(0.0)


# ---------------------------------------------------------------- kernel_mask


class TinyNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 4, kernel_size=(3, 3), rngs=rngs)
        self.norm = nnx.GroupNorm(4, num_groups=2, rngs=rngs)
        self.head = nnx.Linear(4, 3, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.norm(self.conv(x)))
        return self.head(x.mean(axis=(1, 2)))


def _flat_mask(mask):
    return {
        "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path): bool(v)
        for path, v in jax.tree_util.tree_flatten_with_path(mask)[0]
    }


def test_kernel_mask_on_nnx_state():
    state = nnx.state(TinyNet(nnx.Rngs(0)), nnx.Param)
    mask = optim.kernel_mask(state)
    assert jax.tree.structure(mask) == jax.tree.structure(state)
    assert _flat_mask(mask) == {
        "conv/bias/value": False,
        "conv/kernel/value": True,
        "head/bias/value": False,
        "head/kernel/value": True,
        "norm/bias/value": False,
        "norm/scale/value": False,
    }


def test_kernel_mask_on_nested_dicts_and_lists():
    params = {
        "block": [{"conv": {"kernel": 1.0, "bias": 2.0}}],
        "gn": {"scale": 1.0},
        "kernel": 3.0,
        "kernel_extra": {"w": 1.0},
    }
    mask = optim.kernel_mask(params)
    assert mask == {
        "block": [{"conv": {"kernel": True, "bias": False}}],
        "gn": {"scale": False},
        "kernel": True,
        "kernel_extra": {"w": False},
    }


# ---------------------------------------------------------------- adam_bv


def _np_adam_bv(params, grads_seq, lr, wd, mask, mults, clip, b1=0.9, b2=0.999, eps=1e-8):
    """Reference big_vision Adam in float64 numpy, on a flat dict of arrays."""
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(x) for k, x in params.items()}
    updates = []
    for t, grads in enumerate(grads_seq, start=1):
        norm = np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in grads.values()))
        scale = 1.0 if clip is None or norm < clip else clip / norm
        step = {}
        for k in params:
            g = np.asarray(grads[k], np.float64) * scale
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            u = (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
            step[k] = -mults[t - 1] * (lr * u + wd * mask[k] * params[k])
            params[k] = params[k] + step[k]
        updates.append(step)
    return updates


def _run(tx, params, grads_seq):
    state, out = tx.init(params), []
    update = jax.jit(tx.update)
    for g in grads_seq:
        u, state = update(g, state, params)
        params = optax.apply_updates(params, u)
        out.append(u)
    return out


def test_adam_bv_matches_hand_computation_for_three_steps():
    params = {"kernel": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "bias": jnp.array([0.5, -0.25])}
    grads_seq = [  # global norms about 5.5 (clipped), 0.27 and 1.9 (clipped)
        {"kernel": jnp.array([[3.0, -4.0], [1.0, 0.5]]), "bias": jnp.array([1.0, 0.0])},
        {"kernel": jnp.array([[0.1, 0.2], [-0.1, 0.0]]), "bias": jnp.array([0.1, -0.1])},
        {"kernel": jnp.array([[-1.0, 1.0], [0.5, 0.5]]), "bias": jnp.array([0.0, 1.2])},
    ]
    sched = optim.warmup_cosine(1.0, total_steps=4, warmup_steps=1)
    mults = [float(sched(t)) for t in range(3)]  # 0, 1, 0.5
    lr, wd = 0.1, 0.01
    tx = optim.adam_bv(lr, schedule=sched, weight_decay=wd, grad_clip_norm=1.0)
    got = _run(tx, params, grads_seq)
    want = _np_adam_bv(params, grads_seq, lr, wd, {"kernel": 1.0, "bias": 0.0}, mults, 1.0)
    for g, w in zip(got, want, strict=True):
        for k in w:
            np.testing.assert_allclose(np.asarray(g[k]), w[k], rtol=2e-5, atol=1e-7)
    # The first step has schedule multiplier 0 (warmup from 0): nothing moves.
    assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(got[0]))


def test_adam_bv_clipping_changes_the_result():
    params = {"kernel": jnp.zeros((2,))}
    grads_seq = [{"kernel": jnp.array([30.0, 40.0])}, {"kernel": jnp.array([0.3, -0.1])}]
    clipped = _run(optim.adam_bv(0.1, grad_clip_norm=1.0), params, grads_seq)[1]["kernel"]
    free = _run(optim.adam_bv(0.1, grad_clip_norm=None), params, grads_seq)[1]["kernel"]
    ones = [1.0, 1.0]
    want_c = _np_adam_bv(params, grads_seq, 0.1, 0.0, {"kernel": 0.0}, ones, 1.0)[1]["kernel"]
    want_f = _np_adam_bv(params, grads_seq, 0.1, 0.0, {"kernel": 0.0}, ones, None)[1]["kernel"]
    np.testing.assert_allclose(np.asarray(clipped), want_c, rtol=2e-5)
    np.testing.assert_allclose(np.asarray(free), want_f, rtol=2e-5)
    assert not np.allclose(want_c, want_f, rtol=1e-2)


@pytest.mark.parametrize("lr", [1e-3, 1.0])
def test_weight_decay_is_not_multiplied_by_lr_but_by_schedule(lr):
    params = {"kernel": jnp.full((2, 2), 4.0), "bias": jnp.full((2,), 4.0)}
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    tx = optim.adam_bv(lr, schedule=lambda t: 0.25, weight_decay=0.1)
    u, _ = tx.update(zero_grads, tx.init(params), params)
    np.testing.assert_allclose(np.asarray(u["kernel"]), -0.25 * 0.1 * 4.0, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(u["bias"]), 0.0)


def test_adam_bv_with_nnx_optimizer_decays_kernels_only():
    model = TinyNet(nnx.Rngs(0))
    before = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
    optimizer = nnx.Optimizer(model, optim.adam_bv(1e-3, weight_decay=0.5), wrt=nnx.Param)
    zero_grads = jax.tree.map(jnp.zeros_like, nnx.state(model, nnx.Param))
    nnx.jit(lambda opt, m, g: opt.update(m, g))(optimizer, model, zero_grads)
    after = nnx.state(model, nnx.Param)
    for name in ("conv", "head"):
        np.testing.assert_allclose(
            np.asarray(after[name]["kernel"].value),
            0.5 * np.asarray(before[name]["kernel"].value),
            rtol=1e-6,
        )
    for name, leaf in (("conv", "bias"), ("head", "bias"), ("norm", "scale"), ("norm", "bias")):
        np.testing.assert_array_equal(
            np.asarray(after[name][leaf].value), np.asarray(before[name][leaf].value)
        )


@pytest.mark.slow
def test_nnx_optimizer_and_plain_dict_give_the_same_update():
    model = TinyNet(nnx.Rngs(1))
    params = nnx.state(model, nnx.Param)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(0), len(leaves))
    grads = treedef.unflatten(
        [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    )
    tx = optim.adam_bv(1e-2, weight_decay=0.1, schedule=optim.warmup_cosine(1.0, 10))

    plain_params, plain_grads = params.to_pure_dict(), grads.to_pure_dict()
    u, _ = tx.update(plain_grads, tx.init(plain_params), plain_params)
    want = optax.apply_updates(plain_params, u)

    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    nnx.jit(lambda opt, m, g: opt.update(m, g))(optimizer, model, grads)
    got = nnx.state(model, nnx.Param).to_pure_dict()
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got, want)
    assert not np.allclose(got["head"]["kernel"], plain_params["head"]["kernel"])


# ---------------------------------------------------------------- sgd_momentum


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_hand_computation(nesterov):
    params = {"kernel": jnp.array([1.0, -1.0]), "bias": jnp.array([2.0])}
    grads_seq = [
        {"kernel": jnp.array([1.0, 2.0]), "bias": jnp.array([-1.0])},
        {"kernel": jnp.array([0.5, -1.0]), "bias": jnp.array([0.5])},
        {"kernel": jnp.array([0.0, 1.0]), "bias": jnp.array([1.0])},
    ]
    lr, mu, wd = 0.1, 0.9, 0.01
    mults = [1.0, 0.5, 0.25]
    tx = optim.sgd_momentum(
        lr, schedule=lambda t: 0.5**t, momentum=mu, nesterov=nesterov, weight_decay=wd
    )
    got = _run(tx, params, grads_seq)
    w = {k: np.asarray(v, np.float64) for k, v in params.items()}
    buf = {k: np.zeros_like(v) for k, v in w.items()}
    for t, grads in enumerate(grads_seq):
        for k in w:
            g = np.asarray(grads[k], np.float64)
            buf[k] = g + mu * buf[k]
            direction = g + mu * buf[k] if nesterov else buf[k]
            want = -mults[t] * (lr * direction + wd * (k == "kernel") * w[k])
            np.testing.assert_allclose(np.asarray(got[t][k]), want, rtol=1e-5, atol=1e-7)
            w[k] = w[k] + want


def test_sgd_momentum_clips_by_global_norm():
    params = {"kernel": jnp.zeros((2,))}
    tx = optim.sgd_momentum(0.1, momentum=0.0, grad_clip_norm=2.0)
    u = _run(tx, params, [{"kernel": jnp.array([3.0, 4.0])}])[0]["kernel"]
    np.testing.assert_allclose(np.asarray(u), -0.1 * 2.0 * np.array([0.6, 0.8]), rtol=1e-6)


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (optim.adam_bv, dict(b1=1.0), "b1"),
        (optim.adam_bv, dict(b2=-0.1), "b2"),
        (optim.adam_bv, dict(eps=-1.0), "eps"),
        (optim.adam_bv, dict(weight_decay=-0.1), "weight_decay"),
        (optim.adam_bv, dict(grad_clip_norm=-1.0), "grad_clip_norm"),
        (optim.adam_bv, dict(schedule="cosine"), "schedule"),
        (optim.sgd_momentum, dict(momentum=1.0), "momentum"),
        (optim.sgd_momentum, dict(weight_decay=float("nan")), "weight_decay"),
    ],
)
def test_optimizer_bad_arguments_raise(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(0.1, **kwargs)


@pytest.mark.parametrize("make", [optim.adam_bv, optim.sgd_momentum])
def test_optimizer_bad_lr_raises(make):
    with pytest.raises(ValueError, match="learning_rate"):
        make(0.0)
