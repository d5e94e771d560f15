"""Datasets for kdlib: uint8 NHWC images in memory (or streamed), split by tfds-style strings.

``load(name, split)`` gives a ``Dataset`` (or, for ImageNet, a ``StreamingDataset``);
``paper_splits(name)`` gives the paper's train/validation/test split strings;
``subset``, ``filter_classes`` and ``resize_images`` make the small-data, out-of-domain and
resolution variants of the experiments.
"""

from kdlib.data.dataset import Dataset, filter_classes, subset, subset_indices
from kdlib.data.loading import DATASETS, EMBEDDED, EMBEDDED_SIZES, check_split, load
from kdlib.data.resize import resize_and_center_crop, resize_images
from kdlib.data.splits import (
    PAPER_SPLITS,
    SliceSpec,
    SplitRange,
    overlap,
    paper_splits,
    parse_split,
    resolve_split,
)
from kdlib.data.tfds_source import DEFAULT_IMAGE_SIZE, StreamingDataset, to_memory

__all__ = [
    "DATASETS",
    "DEFAULT_IMAGE_SIZE",
    "EMBEDDED",
    "EMBEDDED_SIZES",
    "PAPER_SPLITS",
    "Dataset",
    "SliceSpec",
    "SplitRange",
    "StreamingDataset",
    "check_split",
    "filter_classes",
    "load",
    "overlap",
    "paper_splits",
    "parse_split",
    "resize_and_center_crop",
    "resize_images",
    "resolve_split",
    "subset",
    "subset_indices",
    "to_memory",
]
