"""Image augmentation on device: crop boxes, crop-and-resize, flips, value range and mixup.

Everything is pure JAX, batched over NHWC images and jit-able (output sizes are static Python
ints). A crop is a box ``(y0, x0, h, w)`` in relative ``[0, 1]`` image coordinates, so one box
can be resized to two resolutions: the consistent teacher/student views of paper section 3.3.

Differences from the authors' TF pipeline (big_vision ``inception_crop``, which calls
``tf.image.sample_distorted_bounding_box``), all documented choices:

- Inception crop: area fraction uniform in ``area_range`` and aspect ratio log-uniform in
  ``aspect_range`` (torchvision's RandomResizedCrop sampling); TF samples the aspect ratio
  uniformly and then the crop height, and rounds boxes to whole pixels. Our boxes are
  continuous (sub-pixel), which only makes the set of views richer.
- Mild random crop: a box of fixed relative side ``fraction`` (default 0.875 = 224/256, the
  classic ``resize(256)|random_crop(224)``) at a uniform random position. The authors' small
  dataset sweeps use ``resize(160)|random_crop(128)``, i.e. ``fraction=0.8``.
- Mixup: one coefficient ``lam ~ U[0, 1]`` for the whole batch (the paper; big_vision's
  ``mixup(p=1.0, n=2)`` draws Dirichlet(1, 1), which is the same, then sorts so the own image
  weighs at least 0.5: ``dominant=True`` does that too). The partner is the batch rolled by
  one (as big_vision) or a random cyclic permutation: never the batch's reverse, which pairs
  the middle image with itself for odd batch sizes and creates duplicate pairs.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from kdlib.tracing import concrete_values

PARTNERS = ("roll", "permutation")


# ----------------------------------------------------------------------------- validation


def _check_size(size: int, name: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{name}={size!r} must be a positive Python int (a static output size)")
    return size


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n={n!r} must be a non-negative Python int (a static batch size)")
    return n


def _check_images(images: jax.Array | np.ndarray) -> None:
    if getattr(images, "ndim", None) != 4:
        raise ValueError(
            f"images must be a 4-d NHWC array, got shape {getattr(images, 'shape', None)}"
        )
    if images.shape[-1] > 4 and images.shape[1] <= 4:  # e.g. (N, 1, 28, 28): 28 "channels"
        raise ValueError(f"images of shape {tuple(images.shape)} look NCHW (channels first); "
                         "kdlib takes NHWC: transpose with images.transpose(0, 2, 3, 1)")


def _check_fraction(fraction: float) -> float:
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction={fraction!r} must lie in (0, 1]")
    return float(fraction)


def _check_range(rng_: tuple[float, float], name: str, lo: float, hi: float) -> tuple:
    try:
        a, b = (float(v) for v in rng_)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={rng_!r} must be a pair (min, max) of numbers") from None
    if not (lo < a <= b <= hi):
        raise ValueError(f"{name}={rng_!r} must satisfy {lo} < min <= max <= {hi}")
    return a, b


# ----------------------------------------------------------------------------- boxes
# Public functions validate their arguments eagerly (clear ValueErrors), then call a jitted
# core: fast when called eagerly (one compiled program, not one per jnp op) and inlined when
# called inside a jitted train step.


def full_boxes(n: int) -> jax.Array:
    """The whole image as ``n`` boxes ``(0, 0, 1, 1)``: plain resizing."""
    return jnp.asarray(np.tile(np.array([[0, 0, 1, 1]], np.float32), (_check_n(n), 1)))


def central_crop_boxes(n: int, fraction: float = 0.875) -> jax.Array:
    """``n`` central boxes whose sides are ``fraction`` of the image's (0.875 = 224/256)."""
    f = _check_fraction(fraction)
    off = (1.0 - f) / 2.0
    return jnp.asarray(np.tile(np.array([[off, off, f, f]], np.float32), (_check_n(n), 1)))


def random_crop_boxes(rng: jax.Array, n: int, fraction: float = 0.875) -> jax.Array:
    """The paper's mild random crop: sides ``fraction`` of the image, uniform random position.

    Same as resizing to ``size / fraction`` and taking a random ``size`` crop, but continuous.
    """
    return _random_crop_boxes(rng, _check_n(n), _check_fraction(fraction))


@partial(jax.jit, static_argnums=(1, 2))
def _random_crop_boxes(rng: jax.Array, n: int, fraction: float) -> jax.Array:
    pos = jax.random.uniform(rng, (n, 2), jnp.float32) * (1.0 - fraction)
    return jnp.concatenate([pos, jnp.full((n, 2), fraction, jnp.float32)], axis=1)


def inception_crop_boxes(
    rng: jax.Array,
    n: int,
    area_range: tuple[float, float] = (0.05, 1.0),
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3),
    *,
    image_aspect: float = 1.0,
    max_tries: int = 10,
) -> jax.Array:
    """Inception-style random boxes (Szegedy et al.), as used by the paper for all training.

    Area fraction ~ U(area_range), aspect ratio (width / height in pixels) log-uniform in
    ``aspect_range``; a vectorized rejection over ``max_tries`` candidates keeps the first one
    that fits in the image, else the largest central box with the aspect clamped into range
    (the full image for square images). ``image_aspect`` is the images' W / H, so the aspect
    ratio holds in pixels for non-square images.
    """
    n = _check_n(n)
    area = _check_range(area_range, "area_range", 0.0, 1.0)
    aspect = _check_range(aspect_range, "aspect_range", 0.0, math.inf)
    if not float(image_aspect) > 0.0:
        raise ValueError(f"image_aspect={image_aspect!r} must be > 0 (image width / height)")
    _check_size(max_tries, "max_tries")
    return _inception_crop_boxes(rng, n, area, aspect, float(image_aspect), max_tries)


@partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _inception_crop_boxes(
    rng: jax.Array, n: int, area_range: tuple[float, float],
    aspect_range: tuple[float, float], image_aspect: float, max_tries: int,
) -> jax.Array:
    # one draw for everything (a single RNG kernel compiles fast): areas, aspects, position
    u = jax.random.uniform(rng, (n, 2 * max_tries + 2), jnp.float32)
    return inception_boxes_from_uniforms(u, area_range, aspect_range, image_aspect)


def inception_boxes_from_uniforms(
    u: jax.Array, area_range: tuple[float, float], aspect_range: tuple[float, float],
    image_aspect: float | jax.Array,
) -> jax.Array:
    """Inception boxes (N, 4) from uniforms u (N, 2 * tries + 2) in [0, 1) (trusted arguments).

    Columns: ``tries`` areas, ``tries`` log-aspects, then the y and x position. For callers
    that draw their own random numbers (e.g. one key per example). ``image_aspect`` is the
    images' width / height: one number, or one per image (N,).
    """
    max_tries = (u.shape[1] - 2) // 2
    (a_lo, a_hi), (r_lo, r_hi) = area_range, aspect_range
    area = a_lo + (a_hi - a_lo) * u[:, :max_tries]
    log_r = math.log(r_lo) + (math.log(r_hi) - math.log(r_lo)) * u[:, max_tries:-2]
    if not isinstance(image_aspect, float | int):  # one aspect per image (N,): a column
        return _boxes_per_image_aspect(u, area, log_r, (r_lo, r_hi),
                                       jnp.reshape(image_aspect, (-1, 1)).astype(jnp.float32))
    r = jnp.exp(log_r) / image_aspect  # aspect in relative coordinates
    h = jnp.sqrt(area / r)
    w = jnp.sqrt(area * r)
    fits = (h <= 1.0) & (w <= 1.0)
    first = jnp.argmax(fits, axis=1)  # index of the first fitting candidate (0 if none)
    any_fit = jnp.any(fits, axis=1)
    # Fallback: the largest central box whose aspect is clamped into range (the whole image
    # when its own aspect is in range).
    fallback_r = min(max(image_aspect, r_lo), r_hi) / image_aspect
    fallback_h, fallback_w = (1.0, fallback_r) if fallback_r <= 1.0 else (1.0 / fallback_r, 1.0)
    h = jnp.where(any_fit, jnp.take_along_axis(h, first[:, None], axis=1)[:, 0], fallback_h)
    w = jnp.where(any_fit, jnp.take_along_axis(w, first[:, None], axis=1)[:, 0], fallback_w)
    u = jnp.where(any_fit[:, None], u[:, -2:], 0.5)
    return jnp.stack([u[:, 0] * (1.0 - h), u[:, 1] * (1.0 - w), h, w], axis=1)


def _boxes_per_image_aspect(u: jax.Array, area: jax.Array, log_r: jax.Array,
                            aspect_range: tuple[float, float], image_aspect: jax.Array
                            ) -> jax.Array:
    """:func:`inception_boxes_from_uniforms` with each image's own W / H (N, 1): images
    stored squashed to a square (``kdlib.data.resize.resize_full``) keep true pixel aspects."""
    r = jnp.exp(log_r) / image_aspect
    h, w = jnp.sqrt(area / r), jnp.sqrt(area * r)
    fits = (h <= 1.0) & (w <= 1.0)
    first = jnp.argmax(fits, axis=1)
    any_fit = jnp.any(fits, axis=1)
    fallback_r = (jnp.clip(image_aspect, *aspect_range) / image_aspect)[:, 0]
    fallback_h = jnp.where(fallback_r <= 1.0, 1.0, 1.0 / fallback_r)
    fallback_w = jnp.where(fallback_r <= 1.0, fallback_r, 1.0)
    h = jnp.where(any_fit, jnp.take_along_axis(h, first[:, None], axis=1)[:, 0], fallback_h)
    w = jnp.where(any_fit, jnp.take_along_axis(w, first[:, None], axis=1)[:, 0], fallback_w)
    pos = jnp.where(any_fit[:, None], u[:, -2:], 0.5)
    return jnp.stack([pos[:, 0] * (1.0 - h), pos[:, 1] * (1.0 - w), h, w], axis=1)


# ----------------------------------------------------------------------------- resampling


def _resample_weights(
    in_size: int, out_size: int, start: jax.Array, length: jax.Array, antialias: bool
) -> jax.Array:
    """Per-example linear-interpolation matrices (N, out_size, in_size) for one spatial axis.

    Same convention as ``jax.image.scale_and_translate`` (half-pixel centers, triangle kernel
    widened by the downscale factor when antialiasing, weights renormalized at the borders).
    """
    scale = out_size / (length * in_size)  # output pixels per input pixel, (N,)
    inv = 1.0 / scale
    centers = jnp.arange(out_size, dtype=jnp.float32) + 0.5
    sample = centers[None, :] * inv[:, None] + (start * in_size)[:, None] - 0.5  # (N, out)
    width = jnp.maximum(inv, 1.0) if antialias else jnp.ones_like(inv)
    dist = jnp.abs(sample[:, :, None] - jnp.arange(in_size, dtype=jnp.float32)[None, None, :])
    weights = jnp.maximum(0.0, 1.0 - dist / width[:, None, None])
    total = jnp.sum(weights, axis=2, keepdims=True)
    ok = total > 1000.0 * float(jnp.finfo(jnp.float32).eps)
    weights = jnp.where(ok, weights / jnp.where(ok, total, 1.0), 0.0)
    inside = (sample >= -0.5) & (sample <= in_size - 0.5)
    return jnp.where(inside[:, :, None], weights, 0.0)


def crop_resize(
    images: jax.Array, boxes: jax.Array, size: int, *, antialias: bool = True
) -> jax.Array:
    """Bilinear crop-and-resize of each image's box to ``size`` x ``size``: float32 NHWC.

    ``images`` is uint8 or float (N, H, W, C), ``boxes`` (N, 4) = (y0, x0, h, w) relative.
    Separable: two small matmuls per image; antialiased (widened kernel) when downsampling.
    The full box at the image's own size returns the image.
    """
    _check_images(images)
    size = _check_size(size)
    n = images.shape[0]
    if getattr(boxes, "shape", None) != (n, 4):
        raise ValueError(
            f"boxes must have shape ({n}, 4) = (y0, x0, h, w) per image, "
            f"got {getattr(boxes, 'shape', None)}"
        )
    values = concrete_values(boxes)
    if values is not None and values.size and (
            values[:, :2].min() < -1e-6 or values[:, 2:].min() <= 0
            or (values[:, :2] + values[:, 2:]).max() > 1 + 1e-6):
        raise ValueError(f"boxes are relative (y0, x0, h, w) with 0 <= y0, x0 and y0 + h, "
                         f"x0 + w <= 1 (pixels divided by the image's size); got values in "
                         f"[{values.min():g}, {values.max():g}]")
    return _crop_resize(images, boxes, size, bool(antialias))


@partial(jax.jit, static_argnums=(2, 3))
def _crop_resize(images: jax.Array, boxes: jax.Array, size: int, antialias: bool) -> jax.Array:
    _, height, width, _ = images.shape
    x = images.astype(jnp.float32)
    boxes = boxes.astype(jnp.float32)
    wy = _resample_weights(height, size, boxes[:, 0], boxes[:, 2], antialias)  # (N, S, H)
    wx = _resample_weights(width, size, boxes[:, 1], boxes[:, 3], antialias)  # (N, S, W)
    hi = lax.Precision.HIGHEST  # no TF32/bf16 passes on accelerators: exact identity crops
    rows = jnp.einsum("nsh,nhwc->nswc", wy, x, precision=hi)
    return jnp.einsum("ntw,nswc->nstc", wx, rows, precision=hi)


# ----------------------------------------------------------------------------- flips, range


def flip_mask(rng: jax.Array, n: int) -> jax.Array:
    """Per-example left-right flip decisions, bool (n,), each True with probability 1/2."""
    return _flip_mask(rng, _check_n(n))


@partial(jax.jit, static_argnums=1)
def _flip_mask(rng: jax.Array, n: int) -> jax.Array:
    return jax.random.bernoulli(rng, 0.5, (n,))


def apply_flip(images: jax.Array, mask: jax.Array) -> jax.Array:
    """Flips left-right the images whose ``mask`` entry is True (share a mask across views)."""
    _check_images(images)
    if getattr(mask, "shape", None) != (images.shape[0],):
        raise ValueError(
            f"mask must have shape ({images.shape[0]},), got {getattr(mask, 'shape', None)}"
        )
    return _apply_flip(images, mask)


@jax.jit
def _apply_flip(images: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask[:, None, None, None], images[:, :, ::-1, :], images)


def random_flip(rng: jax.Array, images: jax.Array) -> jax.Array:
    """Flips each image left-right with probability 1/2."""
    _check_images(images)
    return apply_flip(images, flip_mask(rng, images.shape[0]))


def value_range(
    images: jax.Array,
    lo: float = -1.0,
    hi: float = 1.0,
    in_min: float = 0.0,
    in_max: float = 255.0,
) -> jax.Array:
    """Maps values linearly from ``[in_min, in_max]`` to ``[lo, hi]``, as float32."""
    if not float(in_max) > float(in_min):
        raise ValueError(f"in_max={in_max!r} must be greater than in_min={in_min!r}")
    if not float(hi) > float(lo):
        raise ValueError(f"hi={hi!r} must be greater than lo={lo!r}")
    scale = (float(hi) - float(lo)) / (float(in_max) - float(in_min))
    return _value_range(jnp.asarray(images), float(in_min), scale, float(lo))


@partial(jax.jit, static_argnums=(1, 2, 3))
def _value_range(x: jax.Array, in_min: float, scale: float, lo: float) -> jax.Array:
    return (x.astype(jnp.float32) - in_min) * scale + lo


# ----------------------------------------------------------------------------- mixup


def mixup_params(
    rng: jax.Array, n: int, *, partner: str = "roll", dominant: bool = False
) -> tuple[jax.Array, jax.Array]:
    """One mixing coefficient for the batch and each example's partner index.

    ``lam ~ U[0, 1]`` (``dominant=True``: ``max(lam, 1 - lam)``, as big_vision's sorted
    Dirichlet). ``partner="roll"``: example i mixes with i - 1 (mod n); ``"permutation"``:
    with its successor on a random cycle through the batch. No example is its own partner.
    """
    n = _check_n(n)
    if partner not in PARTNERS:
        raise ValueError(f"partner={partner!r} is not one of {PARTNERS}")
    if n < 2:
        raise ValueError(f"mixup needs a batch of at least 2 examples, got n={n}")
    return _mixup_params(rng, n, partner, bool(dominant))


@partial(jax.jit, static_argnums=(1, 2, 3))
def _mixup_params(
    rng: jax.Array, n: int, partner: str, dominant: bool
) -> tuple[jax.Array, jax.Array]:
    k_lam, k_perm = jax.random.split(rng)
    lam = jax.random.uniform(k_lam, (), jnp.float32)
    if dominant:
        lam = jnp.maximum(lam, 1.0 - lam)
    idx = jnp.arange(n, dtype=jnp.int32)
    if partner == "roll":
        return lam, (idx - 1) % n
    order = jax.random.permutation(k_perm, idx)  # a random cycle order[0] -> order[1] -> ...
    return lam, jnp.zeros(n, jnp.int32).at[order].set(jnp.roll(order, -1))


def apply_mixup(x: jax.Array, lam: jax.Array, partner_idx: jax.Array) -> jax.Array:
    """``lam * x + (1 - lam) * x[partner_idx]`` over the leading (batch) axis, float32."""
    x = jnp.asarray(x)
    if x.ndim < 1 or getattr(partner_idx, "shape", None) != (x.shape[0],):
        raise ValueError(
            f"partner_idx must have shape (batch,) = ({x.shape[0] if x.ndim else '?'},), "
            f"got {getattr(partner_idx, 'shape', None)}"
        )
    values = concrete_values(partner_idx)
    if values is not None and values.size and not (
            0 <= values.min() and values.max() < x.shape[0]):
        raise ValueError(f"partner_idx must index the batch: values in [0, {x.shape[0]}), got "
                         f"[{values.min()}, {values.max()}]")
    return _apply_mixup(x, jnp.asarray(lam, jnp.float32), partner_idx)


@jax.jit
def _apply_mixup(x: jax.Array, lam: jax.Array, partner_idx: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    return lam * x + (1.0 - lam) * jnp.take(x, partner_idx, axis=0)


def mixup(
    rng: jax.Array, images: jax.Array, *, partner: str = "roll", dominant: bool = False
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mixes each image with its partner: returns ``(mixed, lam, partner_idx)``.

    Use ``apply_mixup`` with the returned ``lam, partner_idx`` to mix a second view (the
    teacher's) or ``mix_labels`` for the labels identically.
    """
    images = jnp.asarray(images)
    if images.ndim < 1:
        raise ValueError(f"images need a batch axis, got shape {images.shape}")
    lam, partner_idx = mixup_params(rng, images.shape[0], partner=partner, dominant=dominant)
    return apply_mixup(images, lam, partner_idx), lam, partner_idx


def mix_labels(labels_onehot: jax.Array, lam: jax.Array, partner_idx: jax.Array) -> jax.Array:
    """Mixes (N, C) one-hot or soft labels like their images: ``lam * y + (1 - lam) * y[p]``."""
    if getattr(labels_onehot, "ndim", None) != 2:
        raise ValueError(
            "labels_onehot must be a 2-d (N, num_classes) array, got shape "
            f"{getattr(labels_onehot, 'shape', None)}; convert int labels with losses.onehot"
        )
    return apply_mixup(labels_onehot, lam, partner_idx)
