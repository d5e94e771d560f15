"""tensorflow-datasets datasets through ``tfds.data_source`` (no TensorFlow needed).

Images are decoded on the host (tfds uses PIL or OpenCV), resized so that the shorter side is
``image_size`` and centre-cropped to ``image_size`` x ``image_size`` x 3 (the storage format;
crops and resizes for training happen later, on device). Small datasets are read whole into a
``Dataset``; ImageNet is a ``StreamingDataset`` that decodes only the examples asked for.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np

from kdlib.data.resize import resize_and_center_crop, resize_full, resize_small_central_crop

DEFAULT_IMAGE_SIZE = 160


def _tfds() -> Any:
    """Imports tensorflow_datasets lazily (an optional dependency: the 'tfds' extra)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(
            "Loading tfds datasets needs tensorflow-datasets: pip install 'kdlib[tfds]'."
        ) from e
    return tfds


def open_source(
    name: str, split: str, *, data_dir: str | None = None, download: bool = False
) -> Any:
    """``tfds.data_source(name, split=split)``; a dataset that is not prepared raises
    FileNotFoundError naming it and how to get it."""
    tfds = _tfds()
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=download)
    except (KeyError, FileNotFoundError, NotImplementedError) as e:
        where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
        raise FileNotFoundError(
            f"tfds dataset {name!r} (split {split!r}) is not prepared in array_record format "
            f"in {where}: pass download=True, or run `tfds build {name} "
            f"--file_format=array_record` (ImageNet needs its manual download) and set "
            f"data_dir or TFDS_DATA_DIR. tfds said: {e}"
        ) from e


def label_info(source: Any) -> tuple[int, tuple[str, ...]]:
    """(num_classes, class_names) of a tfds data source's ``label`` feature."""
    label = source.dataset_info.features["label"]
    return int(label.num_classes), tuple(label.names)


# How a decoded image is stored (see ``decode_example``).
LAYOUTS = ("square", "full", "central_crop")


def check_layout(layout: str, crop_fraction: float | None) -> None:
    """Raises ValueError unless ``layout`` is one of LAYOUTS (central_crop needs a fraction)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is not one of {LAYOUTS}")
    if layout == "central_crop" and not (crop_fraction is not None and 0 < crop_fraction <= 1):
        raise ValueError(f"layout='central_crop' needs crop_fraction in (0, 1]; got "
                         f"{crop_fraction!r}")


def decode_example(
    example: dict[str, Any], image_size: int | None, *, layout: str = "square",
    crop_fraction: float | None = None,
) -> tuple[np.ndarray, int, float]:
    """(uint8 image, int label, original width / height) of one decoded tfds example.

    ``layout`` (with ``image_size``; None keeps the decoded image): "square" resizes the
    shorter side and crops the centre square (kdlib's default storage); "full" squashes the
    whole image to a square (big_vision's training input: crops see all of it); "central_crop"
    is big_vision's evaluation ``resize_small(size / crop_fraction) | central_crop(size)``.
    """
    image = np.asarray(example["image"])
    aspect = float(image.shape[1]) / float(image.shape[0])
    if image_size is not None:
        if layout == "full":
            image, aspect = resize_full(image, image_size)
        elif layout == "central_crop":
            if crop_fraction is None:
                raise ValueError("layout='central_crop' needs a crop_fraction; got None")
            image = resize_small_central_crop(image, image_size, crop_fraction)
        else:
            image = resize_and_center_crop(image, image_size)
    return image, int(example["label"]), aspect


def read_examples(
    source: Any, indices: Sequence[int] | np.ndarray, image_size: int | None, *,
    num_workers: int = 8,
    layout: str = "square", crop_fraction: float | None = None, with_aspect: bool = False,
) -> tuple[np.ndarray, ...]:
    """Decodes (and resizes) ``source[i]`` for each index in threads: stacked images, labels
    (and, ``with_aspect``, float32 original widths / heights); see ``decode_example``."""
    check_layout(layout, crop_fraction)

    def one(i: int) -> tuple[np.ndarray, int, float]:
        return decode_example(source[int(i)], image_size, layout=layout,
                              crop_fraction=crop_fraction)

    if num_workers > 1 and len(indices) > 1:
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            pairs = list(pool.map(one, indices))
    else:
        pairs = [one(i) for i in indices]
    if not pairs:
        raise ValueError("No examples to read.")
    shapes = {p[0].shape for p in pairs}
    if len(shapes) != 1:
        raise ValueError(
            f"Images have different shapes {sorted(shapes)[:3]}...; pass image_size to resize."
        )
    images = np.stack([p[0] for p in pairs])
    labels = np.asarray([p[1] for p in pairs], dtype=np.int32)
    if with_aspect:
        return images, labels, np.asarray([p[2] for p in pairs], dtype=np.float32)
    return images, labels


def read_all(
    name: str,
    split: str,
    *,
    image_size: int | None,
    data_dir: str | None = None,
    download: bool = False,
) -> tuple[np.ndarray, np.ndarray, int, tuple[str, ...]]:
    """All examples of a tfds split in memory: (images, labels, num_classes, class_names)."""
    source = open_source(name, split, data_dir=data_dir, download=download)
    images, labels = read_examples(source, range(len(source)), image_size)
    num_classes, names = label_info(source)
    return images, labels, num_classes, names


@dataclasses.dataclass(frozen=True, eq=False)
class StreamingDataset:
    """A split too large for memory (ImageNet): random access that decodes on the host.

    ``ds[indices]`` returns (images uint8 B x S x S x 3, labels int32 B); ``batches`` walks
    seeded per-epoch permutations, resumable from any step.
    """

    name: str
    split: str
    num_examples: int
    num_classes: int
    image_size: int
    class_names: tuple[str, ...]
    source: Any = dataclasses.field(repr=False)
    num_workers: int = 8
    layout: str = "square"  # see decode_example
    crop_fraction: float | None = None

    def __len__(self) -> int:
        return self.num_examples

    def __getitem__(
        self, index: int | slice | Sequence[int] | np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decoded, resized examples at ``index`` (an int gives a batch of one)."""
        if isinstance(index, slice):
            indices = np.arange(self.num_examples)[index]
        else:
            indices = np.atleast_1d(np.asarray(index))
        if indices.dtype.kind not in "iu" or indices.ndim != 1:
            raise ValueError(f"Index must be an int, slice or 1-D int sequence; got {index!r}.")
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_examples):
            raise ValueError(
                f"Indices must lie in [0, {self.num_examples}); got range "
                f"[{indices.min()}, {indices.max()}]."
            )
        return self.read(indices)[:2]

    def read(
        self, indices: Sequence[int] | np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images, labels, float32 original widths / heights) of the examples at ``indices``."""
        # with_aspect=True: three arrays.
        return cast(tuple[np.ndarray, np.ndarray, np.ndarray], read_examples(
            self.source, indices, self.image_size, num_workers=self.num_workers,
            layout=self.layout, crop_fraction=self.crop_fraction, with_aspect=True))

    def batch_indices(self, step: int, batch_size: int, *, seed: int) -> np.ndarray:
        """Example indices of batch ``step``: positions step*B.. of the concatenated epochs,
        each epoch a permutation drawn from (seed, epoch)."""
        if batch_size < 1 or step < 0:
            raise ValueError(f"Need batch_size >= 1 and step >= 0; got {batch_size}, {step}.")
        n = self.num_examples
        positions = np.arange(step * batch_size, (step + 1) * batch_size, dtype=np.int64)
        epochs, offsets = np.divmod(positions, n)
        out = np.empty(batch_size, dtype=np.int64)
        for epoch in np.unique(epochs):
            mask = epochs == epoch
            out[mask] = _epoch_permutation(n, seed, int(epoch))[offsets[mask]]
        return out

    def batches(
        self, batch_size: int, *, seed: int, start_step: int = 0, num_steps: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yields (images, labels) for steps start_step, start_step+1, ... (endless if
        ``num_steps`` is None); the same seed and step always give the same batch."""
        step = start_step
        while num_steps is None or step < start_step + num_steps:
            yield self[self.batch_indices(step, batch_size, seed=seed)]
            step += 1


def to_memory(ds: Any) -> Any:
    """An in-memory ``Dataset`` of a ``StreamingDataset`` (all examples decoded); a
    ``Dataset`` is returned as it is. For evaluation splits of streamed datasets."""
    if not isinstance(ds, StreamingDataset):
        return ds
    from kdlib.data.dataset import Dataset

    images, labels, aspect = ds.read(np.arange(ds.num_examples))
    return Dataset(images, labels.astype(np.int32), ds.num_classes, ds.name, ds.split,
                   ds.class_names, aspect=aspect if ds.layout == "full" else None)


@functools.lru_cache(maxsize=2)
def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of ``n`` examples for one epoch (cached: consecutive batches share it)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def open_streaming(
    name: str,
    split: str,
    *,
    image_size: int = DEFAULT_IMAGE_SIZE,
    data_dir: str | None = None,
    download: bool = False,
    num_workers: int = 8,
    layout: str = "square",
    crop_fraction: float | None = None,
) -> StreamingDataset:
    """A ``StreamingDataset`` over a tfds split (nothing is decoded until indexed)."""
    check_layout(layout, crop_fraction)
    source = open_source(name, split, data_dir=data_dir, download=download)
    num_classes, names = label_info(source)
    return StreamingDataset(
        name=name,
        split=split,
        num_examples=len(source),
        num_classes=num_classes,
        image_size=image_size,
        class_names=names,
        source=source,
        num_workers=num_workers,
        layout=layout,
        crop_fraction=crop_fraction,
    )
