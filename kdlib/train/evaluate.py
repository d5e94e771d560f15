"""Evaluation: a model's logits on whole images, and the metrics logged at every evaluation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from kdlib import augment, losses

EVAL_BATCH = 500
# The smoke preset's evaluation splits hold 256 images: padded to 500 they doubled the cost of
# every evaluation (chapter 01 at smoke, warm cache: 34 -> 28 s; issue 15). The other presets
# keep 500, the batch their stored runs were evaluated with.
SMOKE_EVAL_BATCH = 256


def eval_batch(preset: str) -> int:
    """The evaluation batch of a run at ``preset`` (see :data:`SMOKE_EVAL_BATCH`)."""
    return SMOKE_EVAL_BATCH if preset == "smoke" else EVAL_BATCH


def _eval_views(images: jax.Array, size: int) -> jax.Array:
    boxes = augment.full_boxes(images.shape[0])
    return augment.value_range(augment.crop_resize(images, boxes, size))


def predict(
    graphdef: Any, states: tuple, images: np.ndarray, size: int, batch: int = EVAL_BATCH
) -> np.ndarray:
    """Logits of a model (``nnx.merge(graphdef, *states)``) on uint8 images at ``size``."""
    fn = _predict_fn(graphdef, size)
    outs = []
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
        outs.append(np.asarray(fn(states, jnp.asarray(chunk)))[: batch - pad])
    return np.concatenate(outs)


_PREDICT_CACHE: dict = {}


def _predict_fn(graphdef: Any, size: int) -> Callable:
    key = (graphdef, size)
    if key not in _PREDICT_CACHE:

        @jax.jit
        def fn(states, images):
            return nnx.merge(graphdef, *states)(_eval_views(images, size))

        _PREDICT_CACHE[key] = fn
    return _PREDICT_CACHE[key]


def eval_metrics(
    student_logits: np.ndarray, labels: np.ndarray, teacher_logits: np.ndarray | None, prefix: str
) -> dict[str, float]:
    """Accuracy, and with a teacher its accuracy, top-1 agreement and KL (T=1) to the student."""
    out = {f"{prefix}_acc": float(np.mean(np.argmax(student_logits, -1) == labels))}
    if teacher_logits is not None:
        out[f"{prefix}_teacher_acc"] = float(np.mean(np.argmax(teacher_logits, -1) == labels))
        out[f"{prefix}_agreement"] = float(
            np.mean(np.argmax(student_logits, -1) == np.argmax(teacher_logits, -1))
        )
        kl = losses.kl(jnp.asarray(student_logits), jnp.asarray(teacher_logits), 1.0)
        out[f"{prefix}_kl"] = float(jnp.mean(kl))
    return out
