"""Tests of kdlib.data: split semantics against tfds, the embedded datasets, subsets, class
filters, resizing, error messages, and the tfds path offline under tfds.testing.mock_data."""

from __future__ import annotations

import csv
import gzip
import time
import types
from pathlib import Path

import numpy as np
import pytest

import kdlib.data as kd
from kdlib.data import embedded
from kdlib.data.dataset import Dataset

PAPER_CSV = Path("/work/shared/paper/table5_splits.csv")

# --------------------------------------------------------------------------- split strings

SPECS = [
    "train", "test", "all", "train[:90%]", "train[90%:]", "train[:1000]", "train[1000:2000]",
    "train[-500:]", "train[:10%]+test", "train[33%:67%]", "train[:-5%]", "train[-10%:]",
    "train[12.5%:37.5%]", "train[:98%]", "train[98%:]", "train[99%:]", "train[:2%]",
    "train[:50%]", "train[50%:]", "train[1:]", "train[:-1]", "train[-1:]", "test[:1%]",
    "train[25%:75%]+test[:50%]", "train[:0.5%]", "train[-100%:]", "train[5:3]",
    "train[1_000:]", "train[:100%]", "train[-101%:]", "train[:1800]", "test + train[:3]",
]  # fmt: skip
SIZES = [1, 7, 99, 100, 101, 1000, 1797, 60000]


def _tfds_ranges(spec: str, sizes: dict[str, int]) -> list[tuple[str, int, int]] | None:
    """tfds's own resolution of ``spec`` as (split, from, to) triples; None if tfds rejects it."""
    tfds = pytest.importorskip("tensorflow_datasets")
    infos = {k: types.SimpleNamespace(num_examples=n) for k, n in sizes.items()}
    try:
        instructions = tfds.core.ReadInstruction.from_spec(spec).to_absolute(infos)
    except ValueError:
        return None
    return [
        (
            i.splitname,
            0 if i.from_ is None else i.from_,
            sizes[i.splitname] if i.to is None else i.to,
        )
        for i in instructions
    ]


@pytest.mark.parametrize("n", SIZES)
def test_split_ranges_equal_tfds(n: int) -> None:
    sizes = {"train": n, "test": max(1, n // 3)}
    for spec in SPECS:
        expected = _tfds_ranges(spec, sizes)
        if expected is None:
            with pytest.raises(ValueError):
                kd.resolve_split(spec, sizes, allow_empty=True)
            continue
        got = [(r.split, r.start, r.stop) for r in kd.resolve_split(spec, sizes, allow_empty=True)]
        assert got == expected, (spec, n)
        if any(stop <= start for _, start, stop in expected):
            with pytest.raises(ValueError, match="selects no example"):
                kd.resolve_split(spec, sizes)
        else:
            assert kd.resolve_split(spec, sizes) == kd.resolve_split(spec, sizes, allow_empty=True)


def test_percent_rounding_is_round_half_even() -> None:
    # 50% of 7 = 3.5 -> 4 and 10% of 5 = 0.5 -> 0 under Python's round (as in tfds).
    assert kd.resolve_split("train[:50%]", {"train": 7})[0].stop == 4
    assert kd.resolve_split("train[:10%]", {"train": 5}, allow_empty=True)[0].stop == 0
    assert kd.resolve_split("train[:30%]", {"train": 5})[0].stop == 2  # 1.5 -> 2
    assert kd.resolve_split("train[:50%]", {"train": 5})[0].stop == 2  # 2.5 -> 2


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("train[10%:50]", "mixes percent and index"),
        ("train[0shard:1shard]", "'shard' slices are not supported"),
        ("train[5]", "exactly one ':'"),
        ("train[1.5:]", "'1.5' is not an integer"),
        ("train[:]", "Malformed split 'train\\[:\\]'"),
        ("train[:101%]", "outside \\[-100%, 100%\\]"),
        ("all[:5]", "'all' cannot be sliced"),
        ("train+", "Malformed split ''"),
        ("", "non-empty string"),
    ],
)
def test_parse_split_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        kd.parse_split(spec)


def test_resolve_split_errors_name_value_and_allowed() -> None:
    with pytest.raises(ValueError, match=r"Unknown split 'val'.*allowed: \['test', 'train'\]"):
        kd.resolve_split("val", {"train": 10, "test": 5})
    with pytest.raises(ValueError, match=r"\[70000:60000\].*has 60000 examples"):
        kd.resolve_split("train[70000:]", {"train": 60000})


def test_paper_splits_table() -> None:
    assert kd.paper_splits("oxford_iiit_pet") == {
        "train": "train[:90%]",
        "validation": "train[90%:]",
        "test": "test",
    }
    assert kd.paper_splits("fashion_mnist")["validation"] == "train[55000:]"
    assert set(kd.PAPER_SPLITS) == set(kd.DATASETS)
    for name in kd.DATASETS:
        for spec in kd.paper_splits(name).values():
            kd.parse_split(spec)
    with pytest.raises(ValueError, match=r"Unknown dataset 'mnist'.*allowed"):
        kd.paper_splits("mnist")


@pytest.mark.skipif(not PAPER_CSV.exists(), reason=f"{PAPER_CSV} not present")
def test_paper_splits_match_paper_csv() -> None:
    with PAPER_CSV.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    for row in rows:
        assert kd.paper_splits(row["tfds_name"]) == {
            "train": row["train_split"],
            "validation": row["validation_split"],
            "test": row["test_split"],
        }


def test_paper_splits_partition_embedded_train_sets() -> None:
    for name, sizes in (("fashion_mnist", {"train": 60000, "test": 10000}), ("digits", None)):
        sizes = sizes or embedded.DIGITS_SIZES
        splits = kd.paper_splits(name)
        (tr,) = kd.resolve_split(splits["train"], sizes)
        (va,) = kd.resolve_split(splits["validation"], sizes)
        assert (tr.start, tr.stop, va.start, va.stop) == (0, va.start, tr.stop, sizes["train"])


# --------------------------------------------------------------------------- idx files


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Writes a uint8 array in the idx format (magic 0x0000 08 ndim, big-endian dims), gzipped."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _tiny_fashion(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Writes the four Fashion-MNIST files with 7 train and 3 test 4x5 images."""
    rng = np.random.default_rng(1)
    data = {
        "train": (rng.integers(0, 256, (7, 4, 5), dtype=np.uint8), np.arange(7, dtype=np.uint8)),
        "test": (rng.integers(0, 256, (3, 4, 5), dtype=np.uint8), np.array([9, 0, 4], np.uint8)),
    }
    for split, (images_file, labels_file) in embedded.FASHION_MNIST_FILES.items():
        _write_idx(folder / images_file, data[split][0])
        _write_idx(folder / labels_file, data[split][1])
    return data


def test_kdlib_data_override_reads_idx_exactly(tmp_path, monkeypatch) -> None:
    data = _tiny_fashion(tmp_path)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    train = kd.load("fashion_mnist", "train")
    assert train.images.shape == (7, 4, 5, 1) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int32 and train.num_classes == 10
    np.testing.assert_array_equal(train.images[..., 0], data["train"][0])
    np.testing.assert_array_equal(train.labels, data["train"][1])
    assert train.class_names[9] == "Ankle boot"
    mixed = kd.load("fashion_mnist", "train[2:5]+test[-1:]")
    np.testing.assert_array_equal(mixed.labels, [2, 3, 4, 4])
    np.testing.assert_array_equal(mixed.images[3, ..., 0], data["test"][0][2])
    assert kd.load("fashion_mnist", "train[:50%]").labels.tolist() == [0, 1, 2, 3]  # 3.5 -> 4
    with pytest.raises(ValueError, match=r"train\[8:\].*has 7 examples"):
        kd.load("fashion_mnist", "train[8:]")


def test_cached_arrays_are_read_only(tmp_path, monkeypatch) -> None:
    _tiny_fashion(tmp_path)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    ds = kd.load("fashion_mnist", "train")
    with pytest.raises(ValueError, match="read-only"):
        ds.images[0, 0, 0, 0] = 1


def test_idx_parser_rejects_bad_files(tmp_path, monkeypatch) -> None:
    _tiny_fashion(tmp_path)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    with gzip.open(bad, "wb") as f:  # idx header of a 2-D int32 array
        f.write(bytes([0, 0, 0x0C, 2]) + (1).to_bytes(4, "big") * 2 + b"\0\0\0\0")
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz.*bad idx magic 00000c02"):
        kd.load("fashion_mnist", "train")
    with pytest.raises(ValueError, match=r"header says shape \(2, 3\) but holds 5 data bytes"):
        embedded.parse_idx(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + b"12345", ndim=2)


def test_kdlib_data_without_files_names_the_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="KDLIB_DATA=.*empty.*does not hold"):
        kd.load("fashion_mnist", "train")


def test_missing_fashion_mnist_gives_one_sentence(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("KDLIB_DATA", raising=False)
    monkeypatch.setattr(embedded, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "absent")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))  # tfds has nothing prepared
    with pytest.raises(FileNotFoundError) as info:
        kd.load("fashion_mnist", "test")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "KDLIB_DATA" in message
    assert message.count(". ") == 0 and message.endswith(".")


# --------------------------------------------------------------------------- real datasets


@pytest.fixture
def debian_fashion(monkeypatch):
    monkeypatch.delenv("KDLIB_DATA", raising=False)
    if not all(
        (embedded.DEBIAN_FASHION_MNIST_DIR / f).is_file()
        for pair in embedded.FASHION_MNIST_FILES.values()
        for f in pair
    ):
        pytest.skip("Fashion-MNIST idx files absent: apt-get install dataset-fashion-mnist")


def test_fashion_mnist_real_files(debian_fashion) -> None:
    train, test = kd.load("fashion_mnist", "train"), kd.load("fashion_mnist", "test")
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), [1000] * 10)
    assert train.images.max() == 255 and train.images.min() == 0
    start = time.perf_counter()
    val = kd.load("fashion_mnist", kd.paper_splits("fashion_mnist")["validation"])
    assert time.perf_counter() - start < 0.5  # cached: only slicing
    assert len(val) == 5000
    np.testing.assert_array_equal(val.images, train.images[55000:])


def test_digits_split_is_a_fixed_permutation() -> None:
    from sklearn.datasets import load_digits

    train, test = kd.load("digits", "train"), kd.load("digits", "test")
    assert train.images.shape == (1297, 8, 8, 1) and test.images.shape == (500, 8, 8, 1)
    assert train.images.dtype == np.uint8 and test.labels.dtype == np.int32
    bunch = load_digits()
    order = np.random.default_rng(0).permutation(1797)
    expected = np.rint(bunch.images[order] * 255 / 16).astype(np.uint8)
    np.testing.assert_array_equal(np.concatenate([train.images, test.images])[..., 0], expected)
    np.testing.assert_array_equal(np.concatenate([train.labels, test.labels]), bunch.target[order])
    assert train.images.max() == 255 and train.class_names[3] == "3"
    assert np.bincount(test.labels, minlength=10).min() >= 30  # every class is tested


def test_noise_is_fixed_uniform_noise_at_fashion_mnist_shape() -> None:
    train = kd.load("noise", "train")
    assert train.images.shape == (5000, 28, 28, 1) and train.images.dtype == np.uint8
    assert train.num_classes == 10 and train.labels.dtype == np.int32
    again = kd.load("noise", "train[:10]")
    np.testing.assert_array_equal(again.images, train.images[:10])  # fixed, not redrawn
    test = kd.load("noise", "test")
    assert test.images.shape == (1000, 28, 28, 1)
    assert not np.array_equal(test.images[:10], train.images[:10])  # splits differ
    hist = np.bincount(train.images.ravel(), minlength=256) / train.images.size
    np.testing.assert_allclose(hist, 1 / 256, rtol=0.05)  # uniform over 0..255
    assert np.bincount(train.labels, minlength=10).min() > 400  # balanced subsets work
    assert kd.load("noise", "train", image_size=16).images.shape == (5000, 16, 16, 1)
    with pytest.raises(ValueError, match=r"Unknown split 'val'.*allowed"):
        kd.load("noise", "val")


# --------------------------------------------------------------------------- subset / classes


def _toy(labels) -> Dataset:
    """A dataset whose image i holds the value i, so selections can be traced."""
    labels = np.asarray(labels, dtype=np.int32)
    images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1)
    return Dataset(images, labels, 4, "toy", "train")


def _round_robin_reference(labels: np.ndarray, n: int, seed: int) -> set[int]:
    """Plain-Python stratified pick: classes take turns in order of first appearance."""
    order = np.random.default_rng(seed).permutation(len(labels))
    queues: dict[int, list[int]] = {}
    for i in order:
        queues.setdefault(int(labels[i]), []).append(int(i))
    picked: list[int] = []
    while len(picked) < n:
        for queue in queues.values():
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return set(picked)


def test_subset_is_stratified_deterministic_and_matches_reference() -> None:
    labels = np.array([0] * 20 + [1] * 9 + [2] * 2 + [3] * 30)
    ds = _toy(labels)
    for n, seed in ((1, 0), (7, 1), (10, 2), (25, 3), (61, 4)):
        sub = kd.subset(ds, n, seed=seed)
        idx = sub.images[:, 0, 0, 0].astype(int)
        assert len(sub) == n and np.all(np.diff(idx) > 0)  # original order kept
        np.testing.assert_array_equal(sub.labels, labels[idx])
        assert set(idx.tolist()) == _round_robin_reference(labels, n, seed)
    counts = np.bincount(kd.subset(ds, 10, seed=0).labels, minlength=4)
    assert sorted(counts.tolist()) == [2, 2, 3, 3]
    counts = np.bincount(kd.subset(ds, 25, seed=0).labels, minlength=4)
    assert counts[2] == 2 and sorted(counts.tolist()) == [2, 7, 8, 8]  # class 2 ran out
    a, b = kd.subset(ds, 12, seed=5), kd.subset(ds, 12, seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(kd.subset(ds, 12, seed=6).images, a.images)
    np.testing.assert_array_equal(kd.subset(ds, len(ds), seed=3).images, ds.images)


def test_subset_unstratified_is_prefix_of_permutation() -> None:
    ds = _toy(np.arange(40) % 4)
    sub = kd.subset(ds, 9, seed=11, stratified=False)
    expected = np.sort(np.random.default_rng(11).permutation(40)[:9])
    np.testing.assert_array_equal(sub.images[:, 0, 0, 0], expected)
    for bad in (0, 41, 2.5):
        with pytest.raises(ValueError, match=rf"n={bad!r} must be an integer in \[1, 40\]"):
            kd.subset(ds, bad, seed=0)


def test_filter_classes_keeps_ids_or_relabels() -> None:
    ds = _toy([0, 1, 2, 3, 2, 1, 0, 3])
    kept = kd.filter_classes(ds, (3, 1))
    assert kept.num_classes == 4
    np.testing.assert_array_equal(kept.labels, [1, 3, 1, 3])
    np.testing.assert_array_equal(kept.images[:, 0, 0, 0], [1, 3, 5, 7])
    relabeled = kd.filter_classes(ds, (3, 1), relabel=True)
    assert relabeled.num_classes == 2
    np.testing.assert_array_equal(relabeled.labels, [1, 0, 1, 0])


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        ((10,), r"Bad class id 10.*integers in \[0, 10\)"),
        ((-1, 2), r"Bad class id -1"),
        ((1.5,), r"Bad class id 1.5"),
        ((), "at least one class"),
        ((1, 1), "repeats a class id"),
        ("01", "sequence of class ids"),
    ],
)
def test_bad_class_ids(classes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        kd.load("digits", "train", classes=classes)


def test_load_with_classes_and_image_size() -> None:
    full = kd.load("digits", "test")
    ds = kd.load("digits", "test", classes=(0, 3), image_size=28)
    assert ds.num_classes == 10 and set(ds.labels.tolist()) == {0, 3}
    assert len(ds) == int(np.sum((full.labels == 0) | (full.labels == 3)))
    assert ds.images.shape == (len(ds), 28, 28, 1)
    keep = np.isin(full.labels, (0, 3))
    np.testing.assert_array_equal(ds.images, kd.resize_images(full.images[keep], 28))


@pytest.mark.parametrize(
    ("name", "split", "kwargs", "match"),
    [
        ("mnist", "train", {}, r"Unknown dataset 'mnist'; allowed: \('fashion_mnist'"),
        ("digits", "validation", {}, r"Unknown split 'validation'.*\['test', 'train'\]"),
        ("digits", "train[", {}, r"Malformed split 'train\['"),
        ("digits", "train[1297:]", {}, r"selects no example"),
        ("digits", "train[-2000:]", {}, r"out of range; that split has 1297 examples"),
        ("digits", "train", {"image_size": 0}, r"image_size must be a positive int"),
        ("food101", "test", {}, r"Unknown split 'test' of food101.*\['train', 'validation'\]"),
        ("imagenet2012", "train", {"classes": (1,)}, r"classes is not supported"),
    ],
)
def test_load_errors(name: str, split: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        kd.load(name, split, **kwargs)


def test_dataset_validates_its_fields() -> None:
    images = np.zeros((2, 3, 3, 1), np.uint8)
    with pytest.raises(ValueError, match="labels must lie in \\[0, 4\\)"):
        Dataset(images, np.array([0, 4], np.int32), 4, "toy", "train")
    with pytest.raises(ValueError, match="uint8"):
        Dataset(images.astype(np.float32), np.array([0, 1], np.int32), 4, "toy", "train")
    with pytest.raises(ValueError, match="does not match 2 images"):
        Dataset(images, np.array([0], np.int32), 4, "toy", "train")


# --------------------------------------------------------------------------- resizing


@pytest.mark.parametrize(
    ("shape", "size"), [((28, 28), 56), ((28, 28), 14), ((8, 8), 28), ((9, 5), (4, 7))]
)
def test_resize_matches_jax_image_resize(shape, size) -> None:
    import jax
    import jax.numpy as jnp

    x = np.random.default_rng(0).integers(0, 256, (3, *shape, 2), dtype=np.uint8)
    out_hw = (size, size) if isinstance(size, int) else size
    got = kd.resize_images(x, size)
    assert got.shape == (3, *out_hw, 2) and got.dtype == np.uint8
    ref = jax.image.resize(jnp.asarray(x, jnp.float32), (3, *out_hw, 2), "linear", antialias=True)
    ref = np.clip(np.rint(np.asarray(ref)), 0, 255)
    diff = np.abs(got.astype(np.int32) - ref)
    assert diff.max() <= 1 and diff.mean() < 0.02  # float32 ties at .5 may round either way


def test_resize_properties_and_errors() -> None:
    const = np.full((2, 7, 9, 1), 77, np.uint8)
    np.testing.assert_array_equal(kd.resize_images(const, 20), 77)
    x = np.zeros((1, 4, 4, 3), np.uint8)
    assert kd.resize_images(x, 4) is x
    with pytest.raises(ValueError, match="uint8 array N x H x W x C; got float32"):
        kd.resize_images(x.astype(np.float32), 8)
    with pytest.raises(ValueError, match="size must be a positive int"):
        kd.resize_images(x, 0)


def test_resize_and_center_crop_takes_the_middle() -> None:
    image = np.tile(np.arange(30, dtype=np.uint8)[None, :, None], (10, 1, 3))  # 10 x 30
    np.testing.assert_array_equal(kd.resize_and_center_crop(image, 10), image[:, 10:20])
    # 40 x 20 gray ramp 2*row: shorter side 20 -> 10 halves it; rows 5..14 of the 20 are kept.
    tall_gray = np.tile((2 * np.arange(40, dtype=np.uint8))[:, None], (1, 20))
    out = kd.resize_and_center_crop(tall_gray, 10)
    assert out.shape == (10, 10, 3)
    # Output row r averages input rows around 2 * (r + 5) + 0.5, i.e. value 4 * r + 21.
    expected = np.broadcast_to((4 * np.arange(10) + 21)[:, None, None], (10, 10, 3))
    np.testing.assert_array_equal(out, expected)


# --------------------------------------------------------------------------- tfds (offline)


@pytest.fixture
def mock_tfds():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        yield tfds


def test_tfds_in_memory_under_mock(mock_tfds) -> None:
    ds = kd.load("oxford_flowers102", "train", image_size=16)
    assert isinstance(ds, Dataset)
    assert ds.images.shape == (12, 16, 16, 3) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int32 and ds.num_classes == 102 and len(ds.class_names) == 102
    assert ds.labels.min() >= 0 and ds.labels.max() < 102
    kept = int(ds.labels[0])
    sub = kd.load("oxford_flowers102", "train", image_size=16, classes=(kept,))
    assert sub.num_classes == 102 and set(sub.labels.tolist()) == {kept}
    pets = kd.load("oxford_iiit_pet", kd.paper_splits("oxford_iiit_pet")["train"], image_size=8)
    assert pets.num_classes == 37 and pets.images.shape[1:] == (8, 8, 3)


@pytest.mark.parametrize("name", ["oxford_flowers102", "oxford_iiit_pet", "food101", "sun397"])
def test_paper_splits_load_under_mock(mock_tfds, name: str) -> None:
    num_classes = {"oxford_flowers102": 102, "oxford_iiit_pet": 37, "food101": 101, "sun397": 397}
    for split in kd.paper_splits(name).values():
        ds = kd.load(name, split, image_size=8)
        assert ds.images.shape == (12, 8, 8, 3) and ds.num_classes == num_classes[name]
        assert ds.split == split and ds.name == name


def test_fashion_mnist_falls_back_to_tfds(mock_tfds, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("KDLIB_DATA", raising=False)
    monkeypatch.setattr(embedded, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "absent")
    ds = kd.load("fashion_mnist", "test", classes=(1, 2, 3, 4, 5, 6, 7, 8, 9, 0))
    assert ds.images.shape == (12, 28, 28, 1) and ds.labels.dtype == np.int32
    assert ds.num_classes == 10 and ds.class_names[0] == "T-shirt/top"


def test_tfds_streaming_imagenet_under_mock(mock_tfds) -> None:
    src = kd.load("imagenet2012", kd.paper_splits("imagenet2012")["train"], image_size=24)
    assert isinstance(src, kd.StreamingDataset)
    assert src.num_examples == 12 and src.num_classes == 1000 and len(src.class_names) == 1000
    images, labels = next(src.batches(4, seed=0))
    assert images.shape == (4, 24, 24, 3) and images.dtype == np.uint8
    assert labels.shape == (4,) and labels.dtype == np.int32
    epoch = np.concatenate([src.batch_indices(s, 4, seed=0) for s in range(3)])
    np.testing.assert_array_equal(np.sort(epoch), np.arange(12))  # one epoch = a permutation
    straddle = src.batch_indices(2, 5, seed=0)  # positions 10..14 cross into epoch 1
    np.testing.assert_array_equal(straddle[:2], epoch[10:12])
    assert not np.array_equal(src.batch_indices(0, 4, seed=1), epoch[:4])
    resumed = next(src.batches(4, seed=0, start_step=2))
    np.testing.assert_array_equal(resumed[1], src[epoch[8:12]][1])
    with pytest.raises(ValueError, match=r"Indices must lie in \[0, 12\)"):
        src[[0, 12]]


def test_tfds_not_prepared_raises_file_not_found(tmp_path) -> None:
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(
        FileNotFoundError, match=r"'oxford_flowers102'.*not prepared.*download=True"
    ):
        kd.load("oxford_flowers102", "train", data_dir=str(tmp_path))
