"""The paper's eight teacher/student view policies (section 3.1.1, Figure 2), on device.

| policy | teacher sees | student sees |
| --- | --- | --- |
| fix/rs | the resized image, once (precomputed) | the same resized image, no flip |
| fix/cc | a central crop, once (precomputed) | a mild random crop + flip |
| fix/ic_ens | mean logits of K inception crops + flips, once | an inception crop + flip |
| ind/rc | its own mild random crop + flip | an independent mild random crop + flip |
| ind/ic | its own inception crop + flip | an independent inception crop + flip |
| same/rc | the student's mild random crop and flip | mild random crop + flip |
| same/ic | the student's inception crop and flip | inception crop + flip |
| mix | the student's mixed-up inception crop | inception crop + flip, then mixup |

One crop box is resized separately to the student's and the teacher's resolution (section
3.3), so the "same" policies stay consistent across resolutions. The fixed policies never run
the teacher in the train step: ``precompute_fixed_targets`` computes its logits once per image.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kdlib import augment
from kdlib.policies import (  # noqa: F401  (the policies' names, re-exported)
    FIXED_POLICIES,
    POLICIES,
    check_policy,
    teacher_mode,
)

_ENSEMBLE_TRIES = 10  # rejection-sampling candidates per fix/ic_ens crop


class Views(NamedTuple):
    """One batch of views: float32 NHWC in [-1, 1], and the mixup used (identity if none).

    ``teacher`` is None for the fixed policies and when ``need_teacher=False``. Labels are
    mixed like the images with ``augment.mix_labels(y, mix_lam, mix_partner)``.
    """

    student: jax.Array
    teacher: jax.Array | None
    mix_lam: jax.Array  # scalar float32; 1.0 without mixup
    mix_partner: jax.Array  # (N,) int32; arange(N) without mixup


def _check_uint8(images: jax.Array | np.ndarray) -> None:
    augment._check_images(images)
    if images.dtype != jnp.uint8:
        raise ValueError(
            f"images must be uint8 NHWC in [0, 255] (the dataset's pixels), got {images.dtype}"
        )


def _boxes(kind: str, rng: jax.Array, images: jax.Array, crop_fraction: float,
           area_range: tuple[float, float], aspect_range: tuple[float, float],
           aspect: jax.Array | None = None) -> jax.Array:
    n, height, width, _ = images.shape
    if kind == "rs":
        return augment.full_boxes(n)
    if kind == "rc":
        return augment.random_crop_boxes(rng, n, crop_fraction)
    if aspect is not None:  # squashed images: each crop keeps its image's true pixel aspect
        u = jax.random.uniform(rng, (n, 2 * _ENSEMBLE_TRIES + 2), jnp.float32)
        return augment.inception_boxes_from_uniforms(u, area_range, aspect_range, aspect)
    return augment.inception_crop_boxes(
        rng, n, area_range, aspect_range, image_aspect=width / height
    )


def _view(images: jax.Array, boxes: jax.Array, flips: jax.Array | None, size: int) -> jax.Array:
    out = augment.crop_resize(images, boxes, size)
    if flips is not None:
        out = augment.apply_flip(out, flips)
    return augment.value_range(out)


def _check_key(rng: Any) -> None:
    """``rng`` is one JAX PRNG key: a typed key (``jax.random.key``) or a raw uint32 pair
    (``jax.random.PRNGKey``), traced or not."""
    dtype, shape = getattr(rng, "dtype", None), getattr(rng, "shape", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    if not ((typed and shape == ()) or (dtype == np.uint32 and shape == (2,))):
        shown = f"{rng!r}" if shape is None else "an array"  # an array's repr spans lines
        raise ValueError(f"rng={shown} must be one JAX PRNG key, e.g. jax.random.key(0) (got "
                         f"{type(rng).__name__} of dtype {dtype}, shape {shape})")


def make_views(
    policy: str,
    rng: jax.Array,
    images: jax.Array,
    *,
    student_size: int,
    teacher_size: int | None = None,
    need_teacher: bool = True,
    crop_fraction: float = 0.875,
    area_range: tuple[float, float] = (0.05, 1.0),
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3),
    mixup_partner: str = "roll",
    aspect: jax.Array | None = None,
) -> Views:
    """The student's (and teacher's) views of a uint8 NHWC batch under ``policy``.

    Jit-able with ``policy``, sizes and options static. ``teacher_size`` defaults to
    ``student_size``. With ``need_teacher=False`` (labels-only baselines) the teacher view is
    skipped; the student's view is the same as with it (same random draws). ``aspect`` (N,):
    each image's original width / height when stored squashed to a square (the big_vision
    pipeline), so that inception crops keep true pixel aspects; None: the images' own.
    """
    check_policy(policy)
    _check_key(rng)
    _check_uint8(images)
    augment._check_size(student_size, "student_size")
    teacher_size = student_size if teacher_size is None else teacher_size
    augment._check_size(teacher_size, "teacher_size")
    if mixup_partner not in augment.PARTNERS:
        raise ValueError(f"mixup_partner={mixup_partner!r} is not one of {augment.PARTNERS}")
    if policy == "mix" and images.shape[0] < 2:
        raise ValueError(f"policy='mix' needs a batch of at least 2 images, got {images.shape}")
    crops = dict(
        crop_fraction=augment._check_fraction(crop_fraction),
        area_range=augment._check_range(area_range, "area_range", 0.0, 1.0),
        aspect_range=augment._check_range(aspect_range, "aspect_range", 0.0, float("inf")),
    )
    if aspect is not None and getattr(aspect, "shape", None) != (images.shape[0],):
        raise ValueError(f"aspect must have shape ({images.shape[0]},) (one width / height per "
                         f"image), got {getattr(aspect, 'shape', None)}")
    return _make_views(
        policy, rng, images, student_size, teacher_size, bool(need_teacher),
        tuple(crops.items()), mixup_partner, aspect,
    )


@partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7))
def _make_views(
    policy: str, rng: jax.Array, images: jax.Array, student_size: int, teacher_size: int,
    need_teacher: bool, crop_items: tuple, mixup_partner: str, aspect: jax.Array | None,
) -> Views:
    crops = dict(crop_items, aspect=aspect)
    n = images.shape[0]
    k_box_s, k_flip_s, k_box_t, k_flip_t, k_mix = jax.random.split(rng, 5)
    no_mix = (jnp.ones((), jnp.float32), jnp.arange(n, dtype=jnp.int32))

    if teacher_mode(policy) == "fixed":
        kind = {"fix/rs": "rs", "fix/cc": "rc", "fix/ic_ens": "ic"}[policy]
        flips = None if kind == "rs" else augment.flip_mask(k_flip_s, n)
        student = _view(images, _boxes(kind, k_box_s, images, **crops), flips, student_size)
        return Views(student, None, *no_mix)

    kind = "ic" if policy in ("ind/ic", "same/ic", "mix") else "rc"
    boxes_s = _boxes(kind, k_box_s, images, **crops)
    flips_s = augment.flip_mask(k_flip_s, n)
    student = _view(images, boxes_s, flips_s, student_size)
    teacher = None
    if need_teacher:
        if teacher_mode(policy) == "independent":
            boxes_t = _boxes(kind, k_box_t, images, **crops)
            teacher = _view(images, boxes_t, augment.flip_mask(k_flip_t, n), teacher_size)
        elif teacher_size == student_size:
            teacher = student  # the same box and flip: bit-identical pixels by construction
        else:
            teacher = _view(images, boxes_s, flips_s, teacher_size)
    if policy != "mix":
        return Views(student, teacher, *no_mix)
    lam, partner = augment.mixup_params(k_mix, n, partner=mixup_partner)
    student = augment.apply_mixup(student, lam, partner)
    if teacher is not None:
        teacher = student if teacher_size == student_size else augment.apply_mixup(
            teacher, lam, partner
        )
    return Views(student, teacher, lam, partner)


def fixed_teacher_inputs(
    policy: str,
    images: jax.Array,
    *,
    teacher_size: int,
    rng: jax.Array | None = None,
    indices: jax.Array | None = None,
    num_crops: int = 8,
    crop_fraction: float = 0.875,
    area_range: tuple[float, float] = (0.05, 1.0),
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3),
) -> jax.Array:
    """The teacher's fixed inputs for a fixed policy, float32 in [-1, 1].

    fix/rs: the resized image (N, T, T, C); fix/cc: the central crop (N, T, T, C);
    fix/ic_ens: ``num_crops`` inception crops + random flips per image (K, N, T, T, C), crop k
    of an image drawn from ``fold_in(fold_in(rng, index), k)`` (``indices`` default
    ``arange(N)``), so an image's crops do not depend on its batch or on K.
    """
    check_policy(policy)
    if policy not in FIXED_POLICIES:
        raise ValueError(f"policy={policy!r} is not a fixed-teacher policy {FIXED_POLICIES}")
    _check_uint8(images)
    augment._check_size(teacher_size, "teacher_size")
    n, height, width, _ = images.shape
    if policy == "fix/rs":
        return _view(images, augment.full_boxes(n), None, teacher_size)
    if policy == "fix/cc":
        return _view(images, augment.central_crop_boxes(n, crop_fraction), None, teacher_size)
    augment._check_size(num_crops, "num_crops")
    if rng is None:
        raise ValueError("policy='fix/ic_ens' needs rng (its random inception crops)")
    indices = jnp.arange(n) if indices is None else jnp.asarray(indices)
    if indices.shape != (n,):
        raise ValueError(f"indices must have shape ({n},), got {indices.shape}")

    area_range = augment._check_range(area_range, "area_range", 0.0, 1.0)
    aspect_range = augment._check_range(aspect_range, "aspect_range", 0.0, float("inf"))
    crops = [
        _ensemble_crop(images, rng, indices, k, teacher_size, area_range, aspect_range)
        for k in range(num_crops)
    ]
    return jnp.stack(crops)


@partial(jax.jit, static_argnums=(4, 5, 6))
def _ensemble_crop(
    images: jax.Array, rng: jax.Array, indices: jax.Array, k: int | jax.Array, size: int,
    area_range: tuple[float, float], aspect_range: tuple[float, float],
    aspect: jax.Array | None = None,
) -> jax.Array:
    """Crop ``k`` of fix/ic_ens for each image: its key is ``fold_in(fold_in(rng, index), k)``.

    ``aspect``: the images' original widths / heights when stored squashed (else their own)."""
    _, height, width, _ = images.shape

    def draw(index: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.fold_in(rng, index), k)
        return jax.random.uniform(key, (2 * _ENSEMBLE_TRIES + 3,), jnp.float32)

    u = jax.vmap(draw)(indices)  # one RNG draw per image: box candidates, position, flip
    boxes = augment.inception_boxes_from_uniforms(
        u[:, :-1], area_range, aspect_range, width / height if aspect is None else aspect
    )
    return _view(images, boxes, u[:, -1] < 0.5, size)


def precompute_fixed_targets(
    policy: str,
    teacher_apply_fn: Callable[[jax.Array], jax.Array],
    images: np.ndarray | jax.Array,
    *,
    teacher_size: int,
    batch_size: int,
    num_crops: int = 8,
    seed: int = 0,
    first_index: int = 0,
    crop_fraction: float = 0.875,
    area_range: tuple[float, float] = (0.05, 1.0),
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3),
    aspect: np.ndarray | None = None,
) -> np.ndarray:
    """The fixed teacher's logits for every image, float32 (N, num_classes), computed once.

    ``teacher_apply_fn`` maps float32 images (B, T, T, C) in [-1, 1] to logits (B, classes);
    pass a jitted function: it is always called with ``B = batch_size`` (the last batch is
    padded), so it compiles once. fix/ic_ens averages the logits (not the probabilities) of
    ``num_crops`` inception crops, like an ensemble. Deterministic given ``seed`` and
    independent of ``batch_size``; the train step gathers the rows by example index.
    ``first_index`` is the dataset index of ``images[0]`` (a block of a streamed split).
    ``aspect`` (N,): original widths / heights of images stored squashed (see ``make_views``).
    """
    check_policy(policy)
    if policy not in FIXED_POLICIES:
        raise ValueError(f"policy={policy!r} is not a fixed-teacher policy {FIXED_POLICIES}")
    augment._check_size(batch_size, "batch_size")
    images = np.asarray(images)
    _check_uint8(images)
    n = images.shape[0]
    rng = jax.random.key(seed)

    ranges = (
        augment._check_range(area_range, "area_range", 0.0, 1.0),
        augment._check_range(aspect_range, "aspect_range", 0.0, float("inf")),
    )
    num_views = num_crops if policy == "fix/ic_ens" else 1
    augment._check_size(num_views, "num_crops")

    if aspect is not None:
        aspect = np.asarray(aspect, np.float32)
        if aspect.shape != (n,):
            raise ValueError(f"aspect must have shape ({n},), got {aspect.shape}")

    def inputs(batch: jax.Array, idx: jax.Array, k: int, asp: jax.Array | None) -> jax.Array:
        if policy == "fix/ic_ens":  # one crop at a time: memory O(batch), not O(K * batch)
            return _ensemble_crop(
                batch, rng, idx, k, teacher_size, ranges[0], ranges[1], asp
            )
        return fixed_teacher_inputs(
            policy, batch, teacher_size=teacher_size, crop_fraction=crop_fraction
        )

    out = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        batch = images[start:stop]
        idx = np.arange(start, stop) + first_index
        asp = None if aspect is None else aspect[start:stop]
        pad = batch_size - (stop - start)
        if pad:
            batch = np.concatenate([batch, np.repeat(batch[-1:], pad, axis=0)])
            idx = np.concatenate([idx, np.repeat(idx[-1:], pad)])
            asp = None if asp is None else np.concatenate([asp, np.repeat(asp[-1:], pad)])
        batch_j, idx_j = jnp.asarray(batch), jnp.asarray(idx)
        asp_j = None if asp is None else jnp.asarray(asp)
        total = None
        for k in range(num_views):
            logits = jnp.asarray(teacher_apply_fn(inputs(batch_j, idx_j, k, asp_j)), jnp.float32)
            if logits.ndim != 2 or logits.shape[0] != batch_size:
                raise ValueError(
                    f"teacher_apply_fn must return logits ({batch_size}, num_classes), "
                    f"got shape {logits.shape}"
                )
            total = logits if total is None else total + logits
        if total is None:
            raise ValueError(f"num_views={num_views}: no view to average (checked >= 1 above)")
        out.append(np.asarray(total / num_views, np.float32)[: stop - start])
    if not out:
        raise ValueError("images is empty: no targets to compute")
    return np.concatenate(out)
