"""The small datasets that ship with the environment: Fashion-MNIST (idx files), sklearn digits,
and uniform noise images (chapter 08's floor: distilling from images with no content).

Full splits are parsed once per process (``functools.lru_cache``) and returned as read-only
arrays, so repeated loads cost only the slicing.

Digits has no official split: we draw a fixed permutation of the 1797 images with
``numpy.random.default_rng(0)`` and call its first 1297 images ``train`` and its last 500
``test`` (``DIGITS_SEED``, ``DIGITS_TRAIN_SIZE``).

Noise is drawn from ``numpy.random.default_rng((NOISE_SEED, split index))``: every pixel
uniform in 0..255, at Fashion-MNIST's shape, with uniformly random labels (so that the
class-balanced subsets of ``DataConfig.train_size`` work; no label means anything).
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path

import numpy as np

KDLIB_DATA_ENV = "KDLIB_DATA"
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_SIZES = {"train": 60000, "test": 10000}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
MISSING_FASHION_MNIST = (
    "Fashion-MNIST not found: install Debian's dataset-fashion-mnist "
    "(apt-get install dataset-fashion-mnist) or set KDLIB_DATA to a folder with the four .gz "
    "files ({files})."
)

DIGITS_SEED = 0
DIGITS_TRAIN_SIZE = 1297
DIGITS_SIZES = {"train": 1297, "test": 500}
DIGITS_CLASSES = tuple(str(d) for d in range(10))

NOISE_SEED = 0
NOISE_SIZES = {"train": 5000, "test": 1000}
NOISE_SHAPE = (28, 28, 1)  # Fashion-MNIST's
NOISE_CLASSES = tuple(str(d) for d in range(10))

_IDX_UBYTE = 0x08


def parse_idx(data: bytes, *, ndim: int, source: str = "idx data") -> np.ndarray:
    """Parses uncompressed idx bytes of unsigned bytes (magic 0x0000 08 <ndim>) to uint8 array."""
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{source}: {len(data)} bytes is too short for an idx header.")
    zero, dtype_code, got_ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or dtype_code != _IDX_UBYTE or got_ndim != ndim:
        raise ValueError(
            f"{source}: bad idx magic {data[:4].hex()}; expected 0000{_IDX_UBYTE:02x}{ndim:02x} "
            f"(unsigned bytes, {ndim} dimensions)."
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    payload = len(data) - 4 - 4 * ndim
    if payload != int(np.prod(dims, dtype=np.int64)):
        raise ValueError(f"{source}: header says shape {dims} but holds {payload} data bytes.")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist_dir() -> Path | None:
    """The folder holding the four Fashion-MNIST .gz files, or None if there is none.

    ``$KDLIB_DATA`` (or its ``fashion-mnist`` subfolder) when the variable is set (missing files
    there raise FileNotFoundError rather than silently reading other data), else Debian's
    /usr/share/datasets/fashion-mnist.
    """
    needed = [f for pair in FASHION_MNIST_FILES.values() for f in pair]
    override = os.environ.get(KDLIB_DATA_ENV)
    if override:
        for folder in (Path(override), Path(override) / "fashion-mnist"):
            if all((folder / f).is_file() for f in needed):
                return folder
        raise FileNotFoundError(
            f"{KDLIB_DATA_ENV}={override!r} does not hold the Fashion-MNIST files "
            f"{needed} (directly or in a 'fashion-mnist' subfolder)."
        )
    if all((DEBIAN_FASHION_MNIST_DIR / f).is_file() for f in needed):
        return DEBIAN_FASHION_MNIST_DIR
    return None


def _gunzip(path: str | Path, size: int = -1) -> bytes:
    """The decompressed bytes of a .gz file (``size``: at most that many); a corrupt or
    truncated file is a one-line ValueError naming it."""
    try:
        with gzip.open(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(
            f"{path} is not a readable .gz file ({type(err).__name__}: {err}): reinstall "
            f"dataset-fashion-mnist or point {KDLIB_DATA_ENV} at intact copies") from None


def _file_stamp(folder: Path, split: str) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of a split's files: the cache key, so changed files are re-read."""
    stamps = []
    for f in FASHION_MNIST_FILES[split]:
        st = (folder / f).stat()
        stamps.append((str(folder / f), st.st_size, st.st_mtime_ns))
    return tuple(stamps)


@functools.lru_cache(maxsize=8)
def _read_fashion_mnist(stamp: tuple[tuple[str, int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Reads (images N x 28 x 28 x 1 uint8, labels N int32) of one split; cached, read-only."""
    (images_path, _, _), (labels_path, _, _) = stamp
    images = parse_idx(_gunzip(images_path), ndim=3, source=images_path)
    labels = parse_idx(_gunzip(labels_path), ndim=1, source=labels_path)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels."
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"{labels_path}: label {labels.max()} is not a Fashion-MNIST class.")
    images = images[..., None]
    labels = labels.astype(np.int32)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def fashion_mnist_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Full ``train`` or ``test`` split of Fashion-MNIST from ``folder`` (cached, read-only)."""
    if split not in FASHION_MNIST_FILES:
        raise ValueError(
            f"Unknown Fashion-MNIST split {split!r}; allowed: {list(FASHION_MNIST_FILES)}."
        )
    return _read_fashion_mnist(_file_stamp(folder, split))


def fashion_mnist_sizes(folder: Path) -> dict[str, int]:
    """Number of examples per split, read from the label files' idx headers."""
    sizes = {}
    for split, (_, labels_file) in FASHION_MNIST_FILES.items():
        header = _gunzip(folder / labels_file, 8)
        if len(header) < 8:
            raise ValueError(f"{folder / labels_file}: too short for an idx header.")
        sizes[split] = int.from_bytes(header[4:8], "big")
    return sizes


@functools.lru_cache(maxsize=1)
def _digits_all() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits, permuted with DIGITS_SEED, as uint8 (0..16 scaled to 0..255) and int32."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    values = np.asarray(bunch.images, dtype=np.float64)  # (1797, 8, 8), integers 0..16
    images = np.rint(values * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = np.asarray(bunch.target, dtype=np.int32)
    order = np.random.default_rng(DIGITS_SEED).permutation(labels.shape[0])
    images, labels = images[order], labels[order]
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Full ``train`` (first 1297 of the permutation) or ``test`` (last 500) split of digits."""
    images, labels = _digits_all()
    if split == "train":
        return images[:DIGITS_TRAIN_SIZE], labels[:DIGITS_TRAIN_SIZE]
    if split == "test":
        return images[DIGITS_TRAIN_SIZE:], labels[DIGITS_TRAIN_SIZE:]
    raise ValueError(f"Unknown digits split {split!r}; allowed: {list(DIGITS_SIZES)}.")


@functools.lru_cache(maxsize=len(NOISE_SIZES))
def noise_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``train`` or ``test`` split of uniform noise images (read-only uint8, int32 labels)."""
    if split not in NOISE_SIZES:
        raise ValueError(f"Unknown noise split {split!r}; allowed: {list(NOISE_SIZES)}.")
    rng = np.random.default_rng((NOISE_SEED, list(NOISE_SIZES).index(split)))
    n = NOISE_SIZES[split]
    images = rng.integers(0, 256, size=(n, *NOISE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, len(NOISE_CLASSES), size=n).astype(np.int32)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels
