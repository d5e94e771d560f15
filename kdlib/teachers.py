"""Stored models (the embedded teachers, pretrained students): weights + a card, by name.

A stored model lives in ``<results>/teachers/<name>/``: ``weights.npz`` (the flat nnx state,
keys joined with "/") and ``card.json`` (architecture, input size, data, accuracies,
provenance). Loading rebuilds the architecture from the card, so a card is self-describing.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from kdlib import models
from kdlib.fileio import read_json, write_bytes_atomic, write_json_atomic
from kdlib.store import results_root

CARD_KEYS = ("model", "model_kwargs", "image_size")


def teachers_dir(root: str | Path | None = None) -> Path:
    """The folder that holds the stored teachers."""
    return Path(results_root() if root is None else root) / "teachers"


def available(root: str | Path | None = None) -> list[str]:
    """Names of the stored models that have a card and weights."""
    base = teachers_dir(root)
    if not base.is_dir():
        return []
    return sorted(
        p.name for p in base.iterdir()
        if (p / "card.json").exists() and (p / "weights.npz").exists()
    )


def _keyed_leaves(state: nnx.State) -> dict[str, Any]:
    """The state's leaves by their "/"-joined path (the keys of a weights file)."""
    return {"/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(state.to_pure_dict())[0]}


def _flatten_state(state: nnx.State) -> dict[str, np.ndarray]:
    return {key: np.asarray(leaf) for key, leaf in _keyed_leaves(state).items()}


def _state_shapes(state: nnx.State) -> dict[str, tuple[int, ...]]:
    """Each leaf's shape by its key; works on abstract states (nnx.eval_shape)."""
    return {key: tuple(np.shape(leaf)) for key, leaf in _keyed_leaves(state).items()}


def _unflatten_into(state: nnx.State, flat: dict[str, np.ndarray], where: str) -> None:
    expected = _state_shapes(state)
    missing = sorted(set(expected) - set(flat))
    unexpected = sorted(set(flat) - set(expected))
    bad_shapes = [
        f"{k}: stored {flat[k].shape}, model {expected[k]}"
        for k in sorted(set(expected) & set(flat))
        if flat[k].shape != expected[k]
    ]
    if missing or unexpected or bad_shapes:
        raise ValueError(
            f"weights in {where} do not fit the model: missing={missing[:5]} "
            f"unexpected={unexpected[:5]} shape mismatches={bad_shapes[:5]}"
        )
    pure = state.to_pure_dict()

    def fill(tree: Any, prefix: str) -> Any:
        if isinstance(tree, dict):
            return {k: fill(v, f"{prefix}{k}/") for k, v in tree.items()}
        return jnp.asarray(flat[prefix[:-1]])

    nnx.replace_by_pure_dict(state, fill(pure, ""))


def save_weights(model: nnx.Module, path: str | Path) -> None:
    """Writes the model's full nnx state to ``path`` (.npz, keys joined by "/"), atomically."""
    buffer = io.BytesIO()
    # numpy's stub matches **arrays against its allow_pickle: bool parameter.
    np.savez_compressed(buffer, **_flatten_state(nnx.state(model)))  # type: ignore[arg-type]
    write_bytes_atomic(path, buffer.getvalue())


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a weights ``.npz``; a missing or corrupt file is a one-line error naming
    it (never numpy's hint to allow pickles: weights are plain arrays, never unpickled)."""
    path = Path(path)
    fix = (f"restore it (git checkout -- {path}) or retrain the model "
           "(notebooks/00_teachers.ipynb)")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {fix}")
    try:
        stored = np.load(path, allow_pickle=False)
        if not isinstance(stored, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with stored:
            return {k: stored[k] for k in stored.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as err:
        why = str(err).splitlines()[0] if "pickle" not in str(err) else "not an .npz archive"
        raise ValueError(f"{path} is not a readable weights file ({why}): {fix}") from None


def load_weights(model: nnx.Module, path: str | Path) -> nnx.Module:
    """Loads weights written by :func:`save_weights` into ``model`` (in place); returns it."""
    flat = read_npz(path)
    state = nnx.state(model)
    _unflatten_into(state, flat, str(path))
    nnx.update(model, state)
    return model


def build(model_name: str, model_kwargs: dict[str, Any], seed: int = 0) -> nnx.Module:
    """Builds an architecture from its registry name and kwargs (as stored on a card)."""
    return models.create(model_name, rngs=nnx.Rngs(seed), **model_kwargs)


def save(
    name: str, model: nnx.Module, card: dict[str, Any], root: str | Path | None = None
) -> Path:
    """Stores ``model`` with ``card`` (must hold ``model`` and ``model_kwargs``); atomic."""
    for key in CARD_KEYS:
        if key not in card:
            raise ValueError(f"a teacher card needs the key {key!r}; got keys {sorted(card)}")
    folder = teachers_dir(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, folder / "weights.npz")
    write_json_atomic(folder / "card.json", card)
    return folder


def load_card(name: str, root: str | Path | None = None) -> dict[str, Any]:
    """The card of a stored model; a clear error lists the stored names when it is missing."""
    path = teachers_dir(root) / name / "card.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no stored teacher {name!r} in {teachers_dir(root)}; available: {available(root)}. "
            "Run notebooks/00_teachers.ipynb to train the embedded teachers."
        )
    card = read_json(path)
    missing = [k for k in CARD_KEYS if not isinstance(card, dict) or k not in card]
    if missing:
        raise ValueError(f"{path} lacks the key(s) {missing} of a teacher card: restore it "
                         f"(git checkout -- {path}) or retrain the teacher")
    return card


def check_stored(name: str, root: str | Path | None = None) -> None:
    """A stored model ``name`` has a readable card and weights (read, not built): the
    boundary check of a run's teachers and init (:mod:`kdlib.checks`)."""
    load_card(name, root)
    read_npz(teachers_dir(root) / name / "weights.npz")


def load(name: str, root: str | Path | None = None) -> tuple[nnx.Module, dict[str, Any]]:
    """Rebuilds a stored model from its card and weights, in eval mode; returns (model, card)."""
    card = load_card(name, root)
    # Built abstractly: every leaf is replaced by the stored weights, so a random init (eager:
    # one small XLA program per op and shape, ~150 for a BiT) would be thrown away.
    model = nnx.eval_shape(lambda: build(card["model"], card["model_kwargs"]))
    load_weights(model, teachers_dir(root) / name / "weights.npz")
    model.eval()
    return model, card


def import_bit_npz(
    name: str, path: str | Path, *, depth: int | list[int], width: float, num_classes: int,
    image_size: int, dataset: str, in_channels: int = 3, root: str | Path | None = None,
    **extra: Any,
) -> Path:
    """Stores a big_transfer ``.npz`` (e.g. BiT-M-R152x2 fine-tuned on ``dataset``) as ``name``.

    This is how the ``paper`` preset gets its teachers: the checkpoint is loaded into the
    matching :class:`kdlib.models.BiT` (a mismatch lists every wrong key and shape) and stored
    with a card like the embedded teachers'. ``extra`` goes onto the card (e.g. test_acc).
    """
    kwargs = {"depth": depth, "width": width, "num_classes": num_classes,
              "in_channels": in_channels}
    # Built abstractly, as in load(): the file sets every leaf (the layout covers BiT's whole
    # state), so an eager random init of an R152x2 would be thrown away.
    model = nnx.eval_shape(lambda: build("bit", kwargs))
    models.load_bit_npz(cast(models.BiT, model), path)  # build("bit", ...) builds a BiT
    unset = [key for key, leaf in _keyed_leaves(nnx.state(model)).items()
             if isinstance(leaf, jax.ShapeDtypeStruct)]
    if unset:
        raise ValueError(f"{path} left {len(unset)} leaves of the model unset: {unset[:5]}")
    card = {"name": name, "model": "bit", "model_kwargs": kwargs, "image_size": image_size,
            "dataset": dataset, "source": str(path), **extra}
    return save(name, model, card, root)
