"""``load(name, split)``: one entry point for the embedded and the tfds datasets."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from kdlib.data import embedded, tfds_source
from kdlib.data.dataset import Dataset, check_classes, filter_classes
from kdlib.data.resize import resize_images
from kdlib.data.splits import parse_split, resolve_split

EMBEDDED = ("fashion_mnist", "digits", "noise")
# Each embedded dataset's split sizes (split strings resolve against them without reading).
EMBEDDED_SIZES = {"fashion_mnist": embedded.FASHION_MNIST_SIZES,
                  "digits": embedded.DIGITS_SIZES, "noise": embedded.NOISE_SIZES}
IN_MEMORY_TFDS = ("oxford_flowers102", "oxford_iiit_pet", "food101", "sun397")
STREAMING_TFDS = ("imagenet2012",)
DATASETS = EMBEDDED + IN_MEMORY_TFDS + STREAMING_TFDS

# Split names of each tfds dataset: checked before tfds is asked, for a clear error.
TFDS_SPLITS = {
    "oxford_flowers102": ("train", "validation", "test"),
    "oxford_iiit_pet": ("train", "test"),
    "food101": ("train", "validation"),
    "sun397": ("train", "validation", "test"),
    "imagenet2012": ("train", "validation", "test"),
}


def _check_size(image_size: int | None) -> None:
    """image_size must be None or a positive int."""
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise ValueError(f"image_size must be a positive int or None; got {image_size!r}.")


def _gather(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenates (images, labels) parts; a single part stays a (read-only) view."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _load_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST from idx files ($KDLIB_DATA or Debian's package), else from tfds."""
    folder = embedded.fashion_mnist_dir()
    if folder is None:
        return _fashion_mnist_from_tfds(split)
    ranges = resolve_split(split, embedded.fashion_mnist_sizes(folder))
    parts = []
    for r in ranges:
        images, labels = embedded.fashion_mnist_split(folder, r.split)
        parts.append((images[r.start : r.stop], labels[r.start : r.stop]))
    return _gather(parts)


def _fashion_mnist_from_tfds(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The tfds fallback for Fashion-MNIST; one-sentence FileNotFoundError when it fails too."""
    files = ", ".join(f for pair in embedded.FASHION_MNIST_FILES.values() for f in pair)
    message = embedded.MISSING_FASHION_MNIST.format(files=files)
    resolve_split(split, embedded.FASHION_MNIST_SIZES)  # bad splits fail before tfds is tried
    try:
        images, labels, _, _ = tfds_source.read_all("fashion_mnist", split, image_size=None)
    except (ImportError, FileNotFoundError) as e:
        raise FileNotFoundError(message) from e
    return images, labels


def _load_split(split: str, sizes: dict[str, int], read) -> tuple[np.ndarray, np.ndarray]:
    """A tfds-syntax ``split`` of an embedded dataset whose full splits ``read`` returns."""
    parts = []
    for r in resolve_split(split, sizes):
        images, labels = read(r.split)
        parts.append((images[r.start : r.stop], labels[r.start : r.stop]))
    return _gather(parts)


def check_split(name: str, split: str) -> None:
    """A split string's syntax and split names for dataset ``name``, without reading it."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; allowed: {DATASETS}.")
    if name in TFDS_SPLITS:
        _check_tfds_split(name, split)
    else:
        parse_split(split)


def _check_tfds_split(name: str, split: str) -> None:
    """Validates a split string's syntax and split names for a tfds dataset before opening it."""
    allowed = TFDS_SPLITS[name]
    for term in parse_split(split):
        if term.split not in allowed and term.split != "all":
            raise ValueError(
                f"Unknown split {term.split!r} of {name} in {split!r}; allowed: {list(allowed)}."
            )


def load(
    name: str,
    split: str,
    *,
    classes: Sequence[int] | None = None,
    image_size: int | None = None,
    data_dir: str | None = None,
    download: bool = False,
    layout: str = "square",
    crop_fraction: float | None = None,
) -> Dataset | tfds_source.StreamingDataset:
    """Loads split ``split`` (tfds syntax, e.g. 'train[:90%]') of dataset ``name`` (see DATASETS).

    Embedded datasets keep their native size unless ``image_size`` is given (then resized,
    square, bilinear). tfds datasets are decoded and stored at ``image_size`` (default 160:
    shorter side resized, then centre-cropped, 3 channels). ``classes`` keeps only those class
    ids, with their original labels and num_classes. ``imagenet2012`` returns a
    ``StreamingDataset`` instead of reading the split into memory. ``data_dir`` and
    ``download`` are passed to tfds. ``layout`` / ``crop_fraction`` choose how tfds images
    are stored (``tfds_source.decode_example``: "full" keeps each image's aspect in
    ``Dataset.aspect``); embedded datasets accept only the default.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; allowed: {DATASETS}.")
    _check_size(image_size)
    tfds_source.check_layout(layout, crop_fraction)
    if layout != "square" and name not in IN_MEMORY_TFDS + STREAMING_TFDS:
        raise ValueError(f"layout={layout!r} applies to tfds datasets; {name!r} is embedded "
                         "(its images keep their native square shape): use layout='square'")
    if name in STREAMING_TFDS:
        if classes is not None:
            raise ValueError(f"classes is not supported for the streaming dataset {name!r}.")
        _check_tfds_split(name, split)
        return tfds_source.open_streaming(
            name,
            split,
            image_size=image_size or tfds_source.DEFAULT_IMAGE_SIZE,
            data_dir=data_dir,
            download=download,
            layout=layout,
            crop_fraction=crop_fraction,
        )
    aspect = None
    if name in IN_MEMORY_TFDS:
        _check_tfds_split(name, split)
        source = tfds_source.open_source(name, split, data_dir=data_dir, download=download)
        num_classes, names = tfds_source.label_info(source)
        if classes is not None:
            check_classes(classes, num_classes)  # fail before decoding the whole split
        images, labels, aspect = tfds_source.read_examples(
            source, range(len(source)), image_size or tfds_source.DEFAULT_IMAGE_SIZE,
            layout=layout, crop_fraction=crop_fraction, with_aspect=True,
        )
        aspect = aspect if layout == "full" else None
    elif name == "fashion_mnist":
        images, labels = _load_fashion_mnist(split)
        num_classes, names = 10, embedded.FASHION_MNIST_CLASSES
    elif name == "digits":  # our fixed train/test division (see kdlib.data.embedded)
        images, labels = _load_split(split, embedded.DIGITS_SIZES, embedded.digits_split)
        num_classes, names = 10, embedded.DIGITS_CLASSES
    else:
        images, labels = _load_split(split, embedded.NOISE_SIZES, embedded.noise_split)
        num_classes, names = len(embedded.NOISE_CLASSES), embedded.NOISE_CLASSES
    ds = Dataset(images, labels, num_classes, name, split, names, aspect=aspect)
    if classes is not None:
        ds = filter_classes(ds, classes)
    if image_size is not None and name in EMBEDDED:
        ds = dataclasses.replace(ds, images=resize_images(ds.images, image_size))
    return ds
