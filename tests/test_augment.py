"""Tests for kdlib.augment: crop boxes, crop-and-resize, flips, value range, mixup."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kdlib import augment


def _key(seed: int = 0) -> jax.Array:
    return jax.random.key(seed)


def _images(n: int = 4, h: int = 8, w: int = 8, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _reference_crop(image: jax.Array, box: jax.Array, size: int) -> jax.Array:
    """The same crop through jax.image.scale_and_translate (an independent implementation)."""
    h, w = image.shape[:2]
    sy, sx = size / (box[2] * h), size / (box[3] * w)
    return jax.image.scale_and_translate(
        image.astype(jnp.float32), (size, size, image.shape[2]), (0, 1),
        jnp.stack([sy, sx]), jnp.stack([-box[0] * h * sy, -box[1] * w * sx]),
        "linear", antialias=True,
    )


# ----------------------------------------------------------------------------- boxes


def test_inception_boxes_statistics():
    boxes = np.asarray(augment.inception_crop_boxes(_key(1), 10_000))
    y0, x0, h, w = boxes.T
    area, aspect = h * w, w / h
    eps = 1e-5
    assert boxes.shape == (10_000, 4) and boxes.dtype == np.float32
    assert area.min() >= 0.05 - eps and area.max() <= 1.0 + eps
    assert aspect.min() >= 3 / 4 - eps and aspect.max() <= 4 / 3 + eps
    assert y0.min() >= 0 and x0.min() >= 0
    assert (y0 + h).max() <= 1 + eps and (x0 + w).max() <= 1 + eps
    # Uniform on [0.05, 1] has mean 0.525; rejecting boxes that do not fit trims large areas.
    assert 0.45 < area.mean() < 0.54
    assert 0.42 < np.mean(area < 0.5) < 0.56
    # log-uniform aspect: symmetric in log around 0.
    assert abs(np.mean(np.log(aspect))) < 0.01
    # the positions spread over the whole free range
    assert np.mean(y0 / np.maximum(1 - h, 1e-6)) == pytest.approx(0.5, abs=0.03)


def test_inception_boxes_aspect_holds_in_pixels_for_non_square_images():
    boxes = np.asarray(augment.inception_crop_boxes(_key(2), 2000, image_aspect=2.0))
    y0, x0, h, w = boxes.T
    pixel_aspect = (w * 2.0) / h  # image twice as wide as high
    assert pixel_aspect.min() >= 3 / 4 - 1e-5 and pixel_aspect.max() <= 4 / 3 + 1e-5
    assert (x0 + w).max() <= 1 + 1e-5 and (y0 + h).max() <= 1 + 1e-5


def test_inception_boxes_exact_cases_and_fallback():
    full = augment.inception_crop_boxes(_key(3), 5, (1.0, 1.0), (1.0, 1.0))
    np.testing.assert_allclose(full, np.tile([0, 0, 1, 1], (5, 1)), atol=1e-6)
    quarter = np.asarray(augment.inception_crop_boxes(_key(3), 50, (0.25, 0.25), (1.0, 1.0)))
    np.testing.assert_allclose(quarter[:, 2:], 0.5, atol=1e-6)
    assert quarter[:, :2].min() >= 0 and quarter[:, :2].max() <= 0.5
    # a box of the whole area with aspect 2 never fits a square: falls back to the largest
    # central box of aspect 2 (full width, half height)
    never = augment.inception_crop_boxes(_key(3), 7, (1.0, 1.0), (2.0, 2.0))
    np.testing.assert_allclose(never, np.tile([0.25, 0, 0.5, 1], (7, 1)), atol=1e-7)


def test_random_central_and_full_boxes():
    boxes = np.asarray(augment.random_crop_boxes(_key(4), 5000, fraction=0.8))
    np.testing.assert_array_equal(boxes[:, 2:], np.float32(0.8))
    assert boxes[:, :2].min() >= 0 and boxes[:, :2].max() <= 0.2 + 1e-6
    assert boxes[:, :2].mean() == pytest.approx(0.1, abs=0.005)
    assert not np.array_equal(boxes, np.asarray(augment.random_crop_boxes(_key(5), 5000, 0.8)))
    np.testing.assert_allclose(
        augment.central_crop_boxes(2), [[0.0625, 0.0625, 0.875, 0.875]] * 2, atol=1e-7
    )
    np.testing.assert_array_equal(augment.full_boxes(3), [[0, 0, 1, 1]] * 3)
    assert augment.full_boxes(0).shape == (0, 4)


@pytest.mark.parametrize(
    "call",
    [
        lambda: augment.inception_crop_boxes(_key(), 4, area_range=(0.0, 1.0)),
        lambda: augment.inception_crop_boxes(_key(), 4, area_range=(0.5, 0.2)),
        lambda: augment.inception_crop_boxes(_key(), 4, area_range=(0.5, 1.5)),
        lambda: augment.inception_crop_boxes(_key(), 4, aspect_range=(-1.0, 1.0)),
        lambda: augment.inception_crop_boxes(_key(), 4, aspect_range=3.0),
        lambda: augment.inception_crop_boxes(_key(), 4, image_aspect=0.0),
        lambda: augment.inception_crop_boxes(_key(), 4.0),
        lambda: augment.random_crop_boxes(_key(), 4, fraction=0.0),
        lambda: augment.central_crop_boxes(4, fraction=1.5),
        lambda: augment.full_boxes(-1),
    ],
)
def test_box_errors(call):
    with pytest.raises(ValueError):
        call()


def test_pixel_boxes_and_out_of_batch_partners_are_named():
    """Boxes in pixels read a near-black corner and a partner index past the batch reads NaN:
    concrete ones are named; traced ones (inside the jitted views) are not checked."""
    images = jnp.zeros((2, 28, 28, 1), jnp.uint8)
    pixels = jnp.array([[0.0, 0.0, 28.0, 28.0]] * 2)
    with pytest.raises(ValueError, match=r"boxes are relative .* got values in \[0, 28\]"):
        augment.crop_resize(images, pixels, 8)
    with pytest.raises(ValueError, match=r"partner_idx must index the batch: values in "
                                         r"\[0, 2\), got \[0, 9\]"):
        augment.apply_mixup(jnp.ones((2, 3)), 0.5, jnp.array([0, 9]))
    full = augment.full_boxes(2)
    assert jax.jit(lambda b: augment.crop_resize(images, b, 8))(full).shape == (2, 8, 8, 1)


# ----------------------------------------------------------------------------- crop_resize


@pytest.mark.parametrize("dtype", [jnp.uint8, jnp.float32])
def test_crop_resize_full_box_same_size_is_identity(dtype):
    images = jnp.asarray(_images(3, 6, 9, 2), dtype)  # non-square
    square = jnp.asarray(_images(3, 7, 7, 1), dtype)
    out = augment.crop_resize(square, augment.full_boxes(3), 7)
    assert out.dtype == jnp.float32 and out.shape == (3, 7, 7, 1)
    np.testing.assert_allclose(out, square.astype(np.float32), atol=1e-4)
    # a non-square image resized to a square is a resample: only the row axis is identity
    wide = augment.crop_resize(images, augment.full_boxes(3), 6)
    assert wide.shape == (3, 6, 6, 2)


def test_crop_resize_pixel_aligned_box_is_a_slice():
    images = _images(2, 8, 8, 3)
    box = jnp.tile(jnp.array([[0.25, 0.5, 0.5, 0.25]]), (2, 1))  # rows 2..5, cols 4..5
    out = augment.crop_resize(images, box, 4)  # rows at scale 1, cols upsampled x2
    rows = images[:, 2:6].astype(np.float32)
    # the column sample positions of output j are 4 + (j + 0.5) / 2 - 0.5
    cols = 4 + (np.arange(4) + 0.5) / 2 - 0.5
    lo = np.clip(np.floor(cols).astype(int), 0, 7)
    hi = np.clip(lo + 1, 0, 7)
    frac = cols - np.floor(cols)
    expect = rows[:, :, lo] * (1 - frac)[None, None, :, None] + rows[:, :, hi] * frac[
        None, None, :, None
    ]
    np.testing.assert_allclose(out, expect, atol=1e-3)


def test_crop_resize_matches_scale_and_translate():
    images = _images(16, 12, 10, 3, seed=7)
    boxes = augment.inception_crop_boxes(_key(8), 16, image_aspect=10 / 12)
    for size in (5, 12, 23):  # down-, same- and up-sampling
        out = augment.crop_resize(images, boxes, size)
        ref = jax.jit(jax.vmap(_reference_crop, in_axes=(0, 0, None)), static_argnums=2)(
            images, boxes, size
        )
        np.testing.assert_allclose(out, ref, atol=2e-3)


def test_crop_resize_one_box_two_resolutions_see_the_same_region():
    """A linear ramp, cropped in the interior: both resolutions sample it exactly."""
    h = w = 32
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ramp = (3.0 * yy + 0.5 * xx).astype(np.float32)[None, :, :, None]
    box = np.array([[0.25, 0.3, 0.4, 0.35]], np.float32)  # 12.8 x 11.2 px, away from borders
    for size in (16, 40):  # both upsample, so no antialias widening
        out = np.asarray(augment.crop_resize(jnp.asarray(ramp), jnp.asarray(box), size))
        ys = (np.arange(size) + 0.5) * box[0, 2] * h / size + box[0, 0] * h - 0.5
        xs = (np.arange(size) + 0.5) * box[0, 3] * w / size + box[0, 1] * w - 0.5
        expect = 3.0 * ys[:, None] + 0.5 * xs[None, :]
        np.testing.assert_allclose(out[0, :, :, 0], expect, atol=1e-3)


def test_crop_resize_is_jittable_and_errors():
    images = _images(4)
    boxes = augment.inception_crop_boxes(_key(9), 4)
    jitted = jax.jit(augment.crop_resize, static_argnums=2)(images, boxes, 5)
    np.testing.assert_allclose(jitted, augment.crop_resize(images, boxes, 5), rtol=1e-6)
    with pytest.raises(ValueError, match="boxes"):
        augment.crop_resize(images, boxes[:3], 5)
    with pytest.raises(ValueError, match="size"):
        augment.crop_resize(images, boxes, 0)
    with pytest.raises(ValueError, match="size"):
        augment.crop_resize(images, boxes, 5.0)
    with pytest.raises(ValueError, match="NHWC"):
        augment.crop_resize(images[0], boxes, 5)


# ----------------------------------------------------------------------------- flips, range


def test_flips():
    images = _images(4, 3, 5, 2)
    mask = jnp.array([True, False, True, False])
    out = np.asarray(augment.apply_flip(images, mask))
    np.testing.assert_array_equal(out[0], np.asarray(images[0])[:, ::-1])
    np.testing.assert_array_equal(out[1], images[1])
    np.testing.assert_array_equal(augment.apply_flip(jnp.asarray(out), mask), images)
    flips = np.asarray(augment.flip_mask(_key(10), 4000))
    assert flips.dtype == bool and 0.46 < flips.mean() < 0.54
    many = _images(64, 2, 3, 1)
    flipped = np.asarray(augment.random_flip(_key(11), many))
    is_flipped = np.all(flipped == np.asarray(many)[:, :, ::-1], axis=(1, 2, 3))
    is_same = np.all(flipped == np.asarray(many), axis=(1, 2, 3))
    assert np.all(is_flipped | is_same) and 0 < is_flipped.sum() < 64
    with pytest.raises(ValueError, match="mask"):
        augment.apply_flip(images, mask[:3])


def test_value_range():
    x = jnp.array([0, 51, 127, 255], jnp.uint8)
    np.testing.assert_allclose(augment.value_range(x), [-1, -0.6, 127 / 127.5 - 1, 1], atol=1e-6)
    np.testing.assert_allclose(augment.value_range(x, 0, 1), np.array([0, 51, 127, 255]) / 255)
    np.testing.assert_allclose(augment.value_range(jnp.array([0.5]), 0, 10, 0, 1), [5.0])
    assert augment.value_range(x).dtype == jnp.float32
    with pytest.raises(ValueError, match="in_max"):
        augment.value_range(x, in_min=1, in_max=1)
    with pytest.raises(ValueError, match="hi"):
        augment.value_range(x, lo=1, hi=-1)


# ----------------------------------------------------------------------------- mixup


@pytest.mark.parametrize("partner", augment.PARTNERS)
@pytest.mark.parametrize("n", [2, 3, 5, 8, 33])
def test_mixup_never_pairs_an_example_with_itself(n, partner):
    for seed in range(3):
        lam, idx = augment.mixup_params(_key(seed), n, partner=partner)
        idx = np.asarray(idx)
        assert idx.shape == (n,) and idx.dtype == np.int32
        assert np.all(idx != np.arange(n))
        assert sorted(idx) == list(range(n))  # every example is someone's partner once
        assert 0.0 <= float(lam) <= 1.0
    if partner == "roll":
        np.testing.assert_array_equal(idx, (np.arange(n) - 1) % n)


def test_mixup_values_and_labels():
    images = _images(5, 2, 2, 1).astype(np.float32)
    mixed, lam, idx = augment.mixup(_key(12), images, partner="permutation")
    lam_v, idx_v = float(lam), np.asarray(idx)
    expect = lam_v * np.asarray(images) + (1 - lam_v) * np.asarray(images)[idx_v]
    np.testing.assert_allclose(mixed, expect, rtol=1e-6, atol=1e-4)
    labels = jax.nn.one_hot(jnp.array([0, 1, 2, 3, 4]), 6)
    mixed_labels = np.asarray(augment.mix_labels(labels, lam, idx))
    np.testing.assert_allclose(mixed_labels.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(mixed_labels[np.arange(5), np.arange(5)], lam_v, atol=1e-6)
    np.testing.assert_allclose(mixed_labels[np.arange(5), idx_v], 1 - lam_v, atol=1e-6)
    with pytest.raises(ValueError, match="labels_onehot"):
        augment.mix_labels(jnp.arange(5), lam, idx)


def test_mixup_coefficient_distribution():
    lams = np.array([float(augment.mixup_params(_key(s), 4)[0]) for s in range(300)])
    assert lams.min() >= 0 and lams.max() <= 1
    assert lams.mean() == pytest.approx(0.5, abs=0.06)
    assert 0.2 < np.mean(lams < 0.3) < 0.4  # uniform: P(lam < 0.3) = 0.3
    # dominant: the same draw folded onto [0.5, 1] (max(lam, 1 - lam)), the same partners
    for partner in augment.PARTNERS:
        for s in range(50):
            lam, idx = augment.mixup_params(_key(s), 4, partner=partner)
            dom, dom_idx = augment.mixup_params(_key(s), 4, partner=partner, dominant=True)
            assert float(dom) == pytest.approx(max(float(lam), 1 - float(lam)), abs=1e-7)
            np.testing.assert_array_equal(dom_idx, idx)
    doms = np.array([float(augment.mixup_params(_key(s), 4, dominant=True)[0])
                     for s in range(300)])
    assert 0.2 < np.mean(doms < 0.65) < 0.4  # U[0.5, 1]: P(< 0.65) = 0.3


def test_mixup_errors():
    with pytest.raises(ValueError, match="partner"):
        augment.mixup_params(_key(), 4, partner="reverse")
    with pytest.raises(ValueError, match="at least 2"):
        augment.mixup_params(_key(), 1)
    with pytest.raises(ValueError, match="partner_idx"):
        augment.apply_mixup(jnp.ones((4, 2)), 0.5, jnp.arange(3))


def test_inception_boxes_fallback_is_central_with_clamped_aspect():
    # area 1 never fits a 2:1 image with aspect <= 4/3: the fallback is central, aspect 4/3
    boxes = np.asarray(augment.inception_crop_boxes(_key(13), 3, (1.0, 1.0), image_aspect=2.0))
    np.testing.assert_allclose(boxes, np.tile([0.0, 1 / 6, 1.0, 2 / 3], (3, 1)), atol=1e-6)
