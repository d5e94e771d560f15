"""Tests for kdlib.losses: KL, DIST, cross-entropy and the small metrics."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec
from jax.test_util import check_grads

from kdlib import losses


def _logits(n: int = 5, c: int = 4, seed: int = 0, scale: float = 2.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, c)) * scale).astype(np.float32)


def _np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _np_kl(s: np.ndarray, t: np.ndarray, temp: float) -> np.ndarray:
    p, q = _np_softmax(t.astype(np.float64) / temp), _np_softmax(s.astype(np.float64) / temp)
    return temp**2 * np.sum(p * np.log(p / q), axis=-1)


def _np_dist(s, t, temp=1.0, beta=1.0, gamma=1.0, eps=1e-8):
    """The authors' formula (hunto/DIST_KD ``DIST``) written out directly in numpy."""
    ys, yt = _np_softmax(s / temp), _np_softmax(t / temp)

    def pearson_rows(a, b):
        a = a - a.mean(1, keepdims=True)
        b = b - b.mean(1, keepdims=True)
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + eps)

    inter = 1 - pearson_rows(ys, yt).mean()
    intra = 1 - pearson_rows(ys.T, yt.T).mean()
    return temp**2 * (beta * inter + gamma * intra)


# ----------------------------------------------------------------------------- kl


def test_kl_matches_numpy_and_is_nonnegative():
    s, t = _logits(6, 5, 1), _logits(6, 5, 2)
    for temp in (0.5, 1.0, 4.0):
        got = losses.kl(s, t, temp)
        assert got.shape == (6,)
        np.testing.assert_allclose(got, _np_kl(s, t, temp), rtol=1e-4, atol=1e-6)
    many = losses.kl(_logits(200, 7, 3, 5.0), _logits(200, 7, 4, 5.0), 2.0)
    assert float(many.min()) >= -1e-6


def test_kl_zero_for_equal_logits_and_shift_invariant():
    s = _logits(4, 6, 5)
    np.testing.assert_allclose(losses.kl(s, s), 0.0, atol=1e-6)
    np.testing.assert_allclose(losses.kl(s, s + 3.0), 0.0, atol=1e-5)
    t = _logits(4, 6, 6)
    np.testing.assert_allclose(losses.kl(s + 7.0, t - 2.0), losses.kl(s, t), rtol=1e-4)


def test_kl_temperature_scaling_and_extreme_logits():
    s, t = _logits(3, 4, 7), _logits(3, 4, 8)
    np.testing.assert_allclose(
        losses.kl(s, t, 3.0), 9.0 * losses.kl(s / 3.0, t / 3.0, 1.0), rtol=1e-5
    )
    big = jnp.array([[1000.0, -1000.0, 0.0]])
    assert np.isfinite(np.asarray(losses.kl(big, -big))).all()
    # higher temperature pulls the distributions together, before the T**2 factor
    assert float(jnp.sum(losses.kl(s, t, 10.0))) / 100 < float(jnp.sum(losses.kl(s, t, 1.0)))


def test_kl_batched_leading_axes_and_traced_temperature():
    s, t = _logits(6, 3, 9).reshape(2, 3, 3), _logits(6, 3, 10).reshape(2, 3, 3)
    np.testing.assert_allclose(
        losses.kl(s, t).reshape(-1), losses.kl(s.reshape(6, 3), t.reshape(6, 3)), rtol=1e-6
    )
    temps = jnp.array([1.0, 2.0])
    per_t = jax.vmap(lambda temp: losses.kl(s[0], t[0], temp))(temps)
    np.testing.assert_allclose(per_t[1], losses.kl(s[0], t[0], 2.0), rtol=1e-5)


def test_kl_gradients():
    with jax.enable_x64(True):
        s = jnp.asarray(_logits(3, 4, 11), jnp.float64)
        t = jnp.asarray(_logits(3, 4, 12), jnp.float64)
        check_grads(lambda a, b: losses.kl(a, b, 2.0), (s, t), order=2, modes=["rev", "fwd"])
        # d/ds of KL at T is T * (softmax(s/T) - softmax(t/T))
        g = jax.grad(lambda a: jnp.sum(losses.kl(a, t, 2.0)))(s)
        expect = 2.0 * (_np_softmax(np.asarray(s) / 2.0) - _np_softmax(np.asarray(t) / 2.0))
        np.testing.assert_allclose(g, expect, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- dist


def test_dist_matches_authors_formula():
    s, t = _logits(8, 5, 13), _logits(8, 5, 14)
    for temp, beta, gamma in ((1.0, 1.0, 1.0), (4.0, 2.0, 0.5), (0.5, 0.0, 1.0)):
        got = losses.dist(s, t, temp, beta, gamma)
        assert got.shape == ()
        np.testing.assert_allclose(got, _np_dist(s, t, temp, beta, gamma), rtol=1e-4, atol=1e-6)


def test_dist_properties():
    s, t = _logits(8, 5, 15), _logits(8, 5, 16)
    np.testing.assert_allclose(losses.dist(s, s), 0.0, atol=1e-5)
    both = losses.dist(s, t, 2.0, 1.5, 0.7)
    parts = losses.dist(s, t, 2.0, 1.5, 0.0) + losses.dist(s, t, 2.0, 0.0, 0.7)
    np.testing.assert_allclose(both, parts, rtol=1e-5)
    assert 0.0 <= float(losses.dist(s, t)) <= 4.0  # each term is 1 - correlation in [0, 2]


def test_dist_gradients_and_single_example_batch():
    with jax.enable_x64(True):
        s = jnp.asarray(_logits(4, 3, 17), jnp.float64)
        t = jnp.asarray(_logits(4, 3, 18), jnp.float64)
        check_grads(
            lambda a, b: losses.dist(a, b, 2.0), (s, t), order=1, modes=["rev", "fwd"],
            rtol=1e-5,
        )
    # one example: every class column is constant over the batch; gradients stay finite
    g = jax.grad(lambda a: losses.dist(a, _logits(1, 4, 19)))(_logits(1, 4, 20))
    assert np.isfinite(np.asarray(g)).all()


def test_dist_sharded_batch_equals_global_batch_under_vmap():
    s, t = _logits(12, 5, 21), _logits(12, 5, 22)
    full = losses.dist(s, t, 2.0, 1.0, 3.0)
    for shards in (2, 3, 4):
        sharded = jax.vmap(
            lambda a, b: losses.dist(a, b, 2.0, 1.0, 3.0, axis_name="data"), axis_name="data"
        )(s.reshape(shards, -1, 5), t.reshape(shards, -1, 5))
        np.testing.assert_allclose(sharded, np.full(shards, full), rtol=1e-5)
        # without axis_name, each shard's intra term would only see its own examples
        local = jax.vmap(lambda a, b: losses.dist(a, b, 2.0, 1.0, 3.0))(
            s.reshape(shards, -1, 5), t.reshape(shards, -1, 5)
        )
        assert not np.allclose(local, full, rtol=1e-3)


def test_dist_under_shard_map_and_sharded_jit():
    devices = np.array(jax.devices())
    mesh = Mesh(devices, ("data",))
    n = 4 * len(devices)
    s, t = _logits(n, 5, 23), _logits(n, 5, 24)
    full = losses.dist(s, t)
    spec = PartitionSpec("data")

    @partial(jax.shard_map, mesh=mesh, in_specs=(spec, spec), out_specs=PartitionSpec())
    def sharded(a, b):
        return losses.dist(a, b, axis_name="data")

    np.testing.assert_allclose(sharded(s, t), full, rtol=1e-5)
    sharding = jax.sharding.NamedSharding(mesh, spec)
    s_dev, t_dev = jax.device_put(s, sharding), jax.device_put(t, sharding)
    np.testing.assert_allclose(jax.jit(losses.dist)(s_dev, t_dev), full, rtol=1e-5)


# ----------------------------------------------------------------------------- xent & co


def test_softmax_xent_int_and_soft_labels():
    z = _logits(4, 5, 25)
    labels = np.array([0, 4, 2, 2])
    expect = -np.log(_np_softmax(z.astype(np.float64))[np.arange(4), labels])
    np.testing.assert_allclose(losses.softmax_xent(z, labels), expect, rtol=1e-5)
    np.testing.assert_allclose(
        losses.softmax_xent(z, losses.onehot(labels, 5)), expect, rtol=1e-5
    )
    soft = _np_softmax(_logits(4, 5, 26))
    expect_soft = -np.sum(soft * np.log(_np_softmax(z.astype(np.float64))), axis=1)
    np.testing.assert_allclose(losses.softmax_xent(z, soft), expect_soft, rtol=1e-5)
    # soft-label xent = KL to the labels + their entropy
    entropy = -np.sum(soft * np.log(soft), axis=1)
    np.testing.assert_allclose(
        losses.softmax_xent(z, soft), losses.kl(z, np.log(soft)) + entropy, rtol=1e-4
    )


def test_softmax_xent_gradients():
    with jax.enable_x64(True):
        z = jnp.asarray(_logits(3, 4, 27), jnp.float64)
        soft = jnp.asarray(_np_softmax(_logits(3, 4, 28)), jnp.float64)
        check_grads(lambda a: losses.softmax_xent(a, soft), (z,), order=2, modes=["rev", "fwd"])
        check_grads(
            lambda a: losses.softmax_xent(a, jnp.array([1, 0, 3])), (z,), order=1, modes=["rev"]
        )


def test_onehot_ensemble_agreement():
    np.testing.assert_array_equal(losses.onehot(jnp.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert losses.onehot(jnp.array([1]), 2).dtype == jnp.float32
    a, b = _logits(3, 4, 29), _logits(3, 4, 30)
    np.testing.assert_allclose(losses.ensemble_logits([a, b]), (a + b) / 2, rtol=1e-6)
    np.testing.assert_allclose(losses.ensemble_logits((a,)), a)
    x = jnp.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    y = jnp.array([[3.0, 0.0], [1.0, 0.0], [5.0, 1.0], [0.0, 1.0]])
    assert float(losses.agreement(x, y)) == 0.75
    assert float(losses.agreement(x, x)) == 1.0


def test_loss_errors():
    s, t = _logits(4, 3), _logits(4, 3, 1)
    per_example = jnp.array([[1.0], [0.0], [2.0], [1.0]])  # broadcasts; one entry is 0
    for bad_t in (0.0, -1.0, np.float32(0.0), jnp.array(-2.0), float("nan"), per_example):
        with pytest.raises(ValueError, match="temperature"):
            losses.kl(s, t, bad_t)
        with pytest.raises(ValueError, match="temperature"):
            losses.dist(s, t, bad_t)
    with pytest.raises(ValueError, match="same shape"):
        losses.kl(s, t[:, :2])
    with pytest.raises(ValueError, match="same shape"):
        losses.dist(s, t[:3])
    with pytest.raises(ValueError, match="2-d"):
        losses.dist(s[0], t[0])
    with pytest.raises(ValueError, match="class axis"):
        losses.kl(jnp.float32(1.0), jnp.float32(1.0))
    with pytest.raises(ValueError, match="int labels"):
        losses.softmax_xent(s, jnp.array([0, 1]))
    with pytest.raises(ValueError, match="soft labels"):
        losses.softmax_xent(s, jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="num_classes"):
        losses.onehot(jnp.array([0]), 0)
    with pytest.raises(ValueError, match="int class ids"):
        losses.onehot(jnp.array([0.5]), 3)
    with pytest.raises(ValueError, match="must be a number > 0 \\(got dtype"):
        losses.kl(s, t, np.array("2"))
    with pytest.raises(ValueError, match="it holds 0.0"):
        losses.kl(s, t, jnp.array([[1.0], [0.0], [2.0], [1.0]]))
    # per-example temperatures would broadcast against the classes or square the batch
    for shape in ((4, 1), (2,), (4,)):
        with pytest.raises(ValueError, match=rf"temperature of shape \({shape[0]},"):
            losses.kl(s, t, jnp.ones(shape))
    for bad_t in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match=rf"temperature={bad_t!r} must be a finite number"):
            losses.kl(s, t, bad_t)
    for name in ("beta", "gamma"):
        for bad in (-1.0, float("nan")):
            with pytest.raises(ValueError, match=rf"{name}={bad!r} must be a finite number >= 0"):
                losses.dist(s, t, **{name: bad})
        with pytest.raises(ValueError, match=rf"{name}='x' must be a number >= 0"):
            losses.dist(s, t, **{name: "x"})
    with pytest.raises(ValueError, match=r"needs 1 or more examples; got logits of shape"):
        losses.dist(s[:0], t[:0])  # an empty batch (a single example is defined, tested)
    with pytest.raises(ValueError, match=r"axis_name=3 must be None or the name"):
        losses.dist(s, t, axis_name=3)
    for bad_t in ("2", None, True):
        with pytest.raises(ValueError, match=rf"temperature={bad_t!r} must be a number > 0"):
            losses.kl(s, t, bad_t)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\); got \[-1, 3\]"):
        losses.softmax_xent(s, jnp.array([0, 3, -1, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\); got \[10\]"):
        losses.onehot(jnp.array([10, 2]), 10)
    # traced labels (inside a jitted step) are not checked, and valid ones pass
    assert jax.jit(lambda y: losses.onehot(y, 3))(jnp.array([0, 2])).shape == (2, 3)
    with pytest.raises(ValueError, match="at least one"):
        losses.ensemble_logits([])
    with pytest.raises(ValueError, match="same shape"):
        losses.ensemble_logits([s, t[:2]])
    with pytest.raises(ValueError, match="same shape"):
        losses.agreement(s, t[:2])
