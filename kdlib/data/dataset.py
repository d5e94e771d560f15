"""The in-memory ``Dataset`` (uint8 NHWC images + int32 labels) and pure functions on it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Images (uint8, N x H x W x C; C=1 for grayscale) and labels (int32, N) of one split.

    ``split`` records how the examples were chosen (a split string, possibly followed by
    ``|classes=...`` or ``|subset(...)``); ``class_names`` is empty when unknown.
    ``aspect`` (float32, N) is each image's original width / height when the images were
    stored squashed to a square (the big_vision pipeline's training split); None otherwise.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str
    split: str
    class_names: tuple[str, ...] = ()
    aspect: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.images, np.ndarray) or self.images.dtype != np.uint8:
            raise ValueError(f"images must be a uint8 numpy array; got {_describe(self.images)}.")
        if self.images.ndim != 4:
            raise ValueError(f"images must be N x H x W x C; got shape {self.images.shape}.")
        if not isinstance(self.labels, np.ndarray) or self.labels.dtype != np.int32:
            raise ValueError(f"labels must be an int32 numpy array; got {_describe(self.labels)}.")
        if self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"labels shape {self.labels.shape} does not match {self.images.shape[0]} images."
            )
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1; got {self.num_classes}.")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}); got range "
                f"[{self.labels.min()}, {self.labels.max()}]."
            )
        if self.aspect is not None and (
            not isinstance(self.aspect, np.ndarray) or self.aspect.dtype != np.float32
            or self.aspect.shape != self.labels.shape or not np.all(self.aspect > 0)
        ):
            raise ValueError(
                f"aspect must be None or a float32 array of {len(self.labels)} widths / heights "
                f"> 0; got {_describe(self.aspect)} of shape {np.shape(self.aspect)}."
            )
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} entries for {self.num_classes} classes."
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


def _describe(x: object) -> str:
    """Short type/dtype description for error messages."""
    return f"{type(x).__name__} of dtype {x.dtype}" if hasattr(x, "dtype") else type(x).__name__


def check_classes(classes: Sequence[int], num_classes: int) -> tuple[int, ...]:
    """Validates class ids: a non-empty sequence of distinct ints in [0, num_classes)."""
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence | np.ndarray):
        raise ValueError(f"classes must be a sequence of class ids; got {classes!r}.")
    ids = tuple(classes)
    if not ids:
        raise ValueError("classes must name at least one class id; got an empty sequence.")
    for c in ids:
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or not 0 <= c < num_classes:
            raise ValueError(
                f"Bad class id {c!r} in classes={ids!r}; allowed: integers in [0, {num_classes})."
            )
    if len(set(ids)) != len(ids):
        raise ValueError(f"classes={ids!r} repeats a class id; list each class once.")
    return tuple(int(c) for c in ids)


def filter_classes(ds: Dataset, classes: Sequence[int], *, relabel: bool = False) -> Dataset:
    """Keeps only the examples of ``classes``.

    By default labels keep their original ids and ``num_classes`` is unchanged (so a model's
    logits still line up with the full label space); ``relabel=True`` maps ``classes[i]`` to
    ``i`` and sets ``num_classes = len(classes)``.
    """
    ids = check_classes(classes, ds.num_classes)
    keep = np.isin(ds.labels, np.asarray(ids, dtype=np.int32))
    if not keep.any():
        raise ValueError(f"No example of classes {ids} in {ds.name} split {ds.split!r}.")
    labels = ds.labels[keep]
    num_classes, names = ds.num_classes, ds.class_names
    if relabel:
        lookup = np.full(ds.num_classes, -1, dtype=np.int32)
        lookup[list(ids)] = np.arange(len(ids), dtype=np.int32)
        labels = lookup[labels]
        num_classes = len(ids)
        names = tuple(ds.class_names[c] for c in ids) if ds.class_names else ()
    return Dataset(
        images=ds.images[keep],
        labels=labels,
        num_classes=num_classes,
        name=ds.name,
        split=f"{ds.split}|classes={','.join(map(str, ids))}" + ("|relabel" if relabel else ""),
        class_names=names,
        aspect=None if ds.aspect is None else ds.aspect[keep],
    )


def subset_indices(labels: np.ndarray, n: int, *, seed: int, stratified: bool = True) -> np.ndarray:
    """Sorted indices of a deterministic size-``n`` subset of ``labels`` (see ``subset``)."""
    total = int(labels.shape[0])
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= total:
        raise ValueError(f"Subset size n={n!r} must be an integer in [1, {total}].")
    order = np.random.default_rng(seed).permutation(total)
    if not stratified:
        return np.sort(order[:n])
    permuted = labels[order]
    # Rank of each example within its class, in permuted order (0 = first seen).
    by_class = np.argsort(permuted, kind="stable")
    sorted_labels = permuted[by_class]
    group_start = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.empty(total, dtype=np.int64)
    rank[by_class] = np.arange(total) - group_start
    # Classes are visited round-robin in order of their first appearance in the permutation.
    _, first_seen = np.unique(permuted, return_index=True)
    class_ids = np.unique(permuted)
    visit = np.empty(int(class_ids.max()) + 1, dtype=np.int64)
    visit[class_ids] = np.argsort(np.argsort(first_seen))
    chosen = np.lexsort((visit[permuted], rank))[:n]
    return np.sort(order[chosen])


def subset(ds: Dataset, n: int, *, seed: int, stratified: bool = True) -> Dataset:
    """A deterministic subset of ``n`` examples drawn through a permutation seeded by ``seed``.

    Stratified (default): classes take turns (round-robin, each class's examples in permuted
    order), so per-class counts differ by at most one unless a class runs out. Otherwise the
    first ``n`` examples of the permutation. Examples keep their original order.
    """
    idx = subset_indices(ds.labels, n, seed=seed, stratified=stratified)
    tag = f"subset({n},seed={seed}" + (")" if stratified else ",stratified=False)")
    return Dataset(
        images=ds.images[idx],
        labels=ds.labels[idx],
        num_classes=ds.num_classes,
        name=ds.name,
        split=f"{ds.split}|{tag}",
        class_names=ds.class_names,
        aspect=None if ds.aspect is None else ds.aspect[idx],
    )
