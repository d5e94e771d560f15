"""The engine's inputs: a run's splits in memory, and the batch of every step from (seed, step).

``load_data`` reads the splits a config names (class filter, balanced subsets, another domain's
evaluation splits, big_vision's stored layout); ``batch_indices`` is the on-device batch order
that makes a resumed run continue exactly; ``stream_chunk`` feeds a streamed split (ImageNet)
chunk by chunk in the same order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from kdlib import data
from kdlib.config import RunConfig, teacher_view_size
from kdlib.data.pipelines import crop_fraction


@dataclass
class RunData:
    """Arrays of one run, in memory: train/val/test images (uint8) and labels (a streamed
    training split stays a :class:`kdlib.data.StreamingDataset`: :func:`load_data`)."""

    train: data.Dataset | data.StreamingDataset
    val: data.Dataset
    test: data.Dataset


def stored_image_size(config: RunConfig) -> int | None:
    """Resolution tfds images are decoded at: enough for the views (None: embedded, native)."""
    if config.data.name in data.EMBEDDED and config.data.eval_dataset in data.EMBEDDED:
        return None
    return max(data.DEFAULT_IMAGE_SIZE, config.student_size, teacher_view_size(config))


def _eval_size(config: RunConfig) -> int:
    """Side of the stored evaluation images of the big_vision pipeline: the largest view."""
    return max(config.student_size, teacher_view_size(config))


def load_data(config: RunConfig) -> RunData:
    """Loads the run's splits, with the optional class filter and balanced subsets.

    Validation and test come from ``data.eval_name`` when set (distilling on another domain).
    With ``data.pipeline="big_vision"`` the training images are stored whole (squashed, with
    ``Dataset.aspect``) and the evaluation images as big_vision's central crops
    (``kdlib.data.pipelines``).

    A streamed training split (ImageNet) stays a :class:`kdlib.data.StreamingDataset` and is
    fed to the device chunk by chunk; its validation and test splits are read into memory.
    """
    d = config.data
    size = stored_image_size(config)
    train_kw: dict[str, Any] = {}
    eval_kw: dict[str, Any] = {}
    eval_size = size
    if d.pipeline == "big_vision":
        train_kw = {"layout": "full"}
        eval_kw = {"layout": "central_crop", "crop_fraction": crop_fraction(d.eval_dataset)}
        eval_size = _eval_size(config)
    train = data.load(d.name, d.train_split, classes=d.classes, image_size=size, **train_kw)
    if d.train_size is not None:
        if isinstance(train, data.StreamingDataset):
            raise ValueError(f"train_size={d.train_size} needs an in-memory dataset; "
                             f"{d.name!r} is streamed (use a split string such as 'train[:10%]')")
        seed = config.seed if d.subset_seed is None else d.subset_seed
        train = data.subset(train, d.train_size, seed=seed)
    val = data.to_memory(data.load(d.eval_dataset, d.val_split, image_size=eval_size, **eval_kw))
    test = data.to_memory(data.load(d.eval_dataset, d.test_split, image_size=eval_size,
                                    **eval_kw))
    if d.val_size is not None:
        val = data.subset(val, d.val_size, seed=0)
    if d.test_size is not None:
        test = data.subset(test, d.test_size, seed=0)
    return RunData(train, val, test)


def total_steps(config: RunConfig, num_train: int) -> int:
    """Number of optimizer steps of a run: ``epochs`` passes over the training images."""
    return max(1, math.ceil(config.epochs * num_train / config.batch_size))


def batch_indices(key: jax.Array, step: jax.Array, n: int, batch: int) -> jax.Array:
    """Example indices of ``step``: epoch-wise permutations of ``range(n)`` from (key, epoch)."""
    pos = step * batch + jnp.arange(batch)
    first_epoch = (step * batch) // n
    epoch = pos // n
    perm0 = jax.random.permutation(jax.random.fold_in(key, first_epoch), n)
    perm1 = jax.random.permutation(jax.random.fold_in(key, first_epoch + 1), n)
    return jnp.where(epoch == first_epoch, perm0[pos % n], perm1[pos % n])


def stream_chunk(
    config: RunConfig, source: data.StreamingDataset, start_step: int, num_steps: int,
    targets: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, fixed targets, aspects) of steps ``start_step..+num_steps`` of a
    streamed run.

    The batch order follows from (seed, step) as in memory (``source.batch_indices``), so a
    resumed streamed run reads the same batches; ``targets`` are the precomputed fixed
    teacher's logits of every training image, or None. ``aspects`` are the images' original
    widths / heights (used by the big_vision pipeline's crops; a placeholder otherwise).
    """
    idx = np.concatenate([source.batch_indices(s, config.batch_size, seed=config.seed)
                          for s in range(start_step, start_step + num_steps)])
    images, labels, aspects = source.read(idx)
    rows = targets[idx] if targets is not None else np.zeros((1, source.num_classes))
    if config.data.pipeline != "big_vision":
        aspects = np.ones((1,), np.float32)
    return images, labels, np.asarray(rows, np.float32), np.asarray(aspects, np.float32)


def train_aspects(config: RunConfig, ds: Any) -> np.ndarray:
    """The training images' original widths / heights for the big_vision pipeline's crops;
    a placeholder otherwise (the chunk does not read it)."""
    if config.data.pipeline == "big_vision":
        if ds.aspect is None:
            raise ValueError(f"data.pipeline='big_vision' needs the images' aspects; dataset "
                             f"{ds.name!r} was not stored with layout='full'")
        return ds.aspect
    return np.ones((1,), np.float32)


def crop_kwargs(config: RunConfig) -> dict[str, float]:
    """The mild random / central crop's fraction: big_vision's for its pipeline, else the
    views' default (224 / 256)."""
    if config.data.pipeline == "big_vision":
        return {"crop_fraction": crop_fraction(config.data.name)}
    return {}
