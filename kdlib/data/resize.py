"""Bilinear resizing of uint8 images on the host, in numpy.

The same arithmetic as ``jax.image.resize(..., method="linear", antialias=True)``: half-pixel
centres, a triangle kernel widened by the scale factor when downsampling (antialias), weights
normalised per output pixel. Written as two batched matrix products: resizing all of
Fashion-MNIST to 56 px takes about a second on one CPU core and needs no accelerator.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 4096  # images per matrix product: bounds the float32 working memory.


def _weight_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) interpolation weights of an antialiased bilinear resize."""
    scale = out_size / in_size
    inv_scale = 1.0 / scale
    kernel_scale = max(inv_scale, 1.0)
    centres = (np.arange(out_size, dtype=np.float64) + 0.5) * inv_scale - 0.5
    dist = np.abs(centres[:, None] - np.arange(in_size, dtype=np.float64)[None, :]) / kernel_scale
    weights = np.maximum(0.0, 1.0 - dist)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


def _as_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """Normalises ``size`` (an int for square output, or (height, width)) and validates it."""
    hw = (size, size) if isinstance(size, int | np.integer) else tuple(size)
    if len(hw) != 2 or any(
        isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1 for s in hw
    ):
        raise ValueError(f"size must be a positive int or (height, width) of ints; got {size!r}.")
    return int(hw[0]), int(hw[1])


def resize_images(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resizes uint8 images N x H x W x C to N x size x size x C (or size=(h, w)), bilinear.

    Antialiased when downsampling; values rounded to the nearest integer. Returns the input
    unchanged (not copied) when it already has the requested size.
    """
    out_h, out_w = _as_size(size)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        got = (
            f"{images.dtype} array of shape {images.shape}"
            if hasattr(images, "shape")
            else (type(images).__name__)
        )
        raise ValueError(f"images must be a uint8 array N x H x W x C; got {got}.")
    n, in_h, in_w, c = images.shape
    if (in_h, in_w) == (out_h, out_w):
        return images
    if min(in_h, in_w) < 1:
        raise ValueError(f"Cannot resize images of shape {images.shape}.")
    w_h = _weight_matrix(in_h, out_h)  # (out_h, in_h)
    w_w = _weight_matrix(in_w, out_w)  # (out_w, in_w)
    out = np.empty((n, out_h, out_w, c), dtype=np.uint8)
    for lo in range(0, n, _CHUNK):
        x = images[lo : lo + _CHUNK].astype(np.float32)
        b = x.shape[0]
        y = np.matmul(w_h, x.reshape(b, in_h, in_w * c))  # (b, out_h, in_w * c)
        y = np.matmul(w_w, y.reshape(b * out_h, in_w, c))  # (b * out_h, out_w, c)
        np.clip(np.rint(y, out=y), 0, 255, out=y)
        out[lo : lo + b] = y.reshape(b, out_h, out_w, c)
    return out


def resize_and_center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resizes one H x W x C uint8 image so its shorter side is ``size``, then crops the centre.

    Grayscale (H x W or C=1) images become 3 channels; an alpha channel is dropped. This is the
    storage format of the tfds datasets here: ``size`` x ``size`` x 3.
    """
    resized = _resize_small(_rgb(image), size)
    new_h, new_w = resized.shape[:2]
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])


def _rgb(image: np.ndarray) -> np.ndarray:
    """One uint8 image as H x W x 3: grayscale repeated, an alpha channel dropped."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 H x W x C image; got {image.dtype} {image.shape}.")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return image


def resize_full(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The whole image squashed to ``size`` x ``size`` x 3, and its original width / height.

    The big_vision pipeline's storage of a training image: crop boxes are drawn in relative
    coordinates with the true aspect (``augment.inception_crop_boxes(image_aspect=...)``), so
    a box cut from the squashed square and resized shows what the same box of the original
    shows (big_vision's ``inception_crop`` on the decoded image), off-centre content included.
    """
    image = _rgb(image)
    h, w = image.shape[:2]
    return resize_images(image[None], size)[0], float(w) / float(h)


def resize_small_central_crop(image: np.ndarray, size: int, fraction: float) -> np.ndarray:
    """big_vision's evaluation ``resize_small(round(size / fraction)) | central_crop(size)``.

    The shorter side is resized to ``round(size / fraction)`` (128 / 0.8 = 160 for the small
    datasets, 224 / 0.875 = 256 for ImageNet), then the central ``size`` x ``size`` is kept.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction={fraction!r} must lie in (0, 1] (crop side / resized side)")
    small = int(round(size / fraction))
    resized = _resize_small(_rgb(image), small)
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])


def _resize_small(image: np.ndarray, size: int) -> np.ndarray:
    """An H x W x C uint8 image resized so that its shorter side is ``size`` (aspect kept)."""
    h, w = image.shape[:2]
    if h <= w:
        new_h, new_w = size, max(size, int(round(w * size / h)))
    else:
        new_h, new_w = max(size, int(round(h * size / w))), size
    return resize_images(image[None], (new_h, new_w))[0]
