"""Read and write BiT weights in the big_transfer ``.npz`` key layout.

The layout (google-research/big_transfer, ``bit_jax/tf2jax.py``; big_vision
``bit_paper.maybe_convert_big_transfer_format``), for a model's parameters:

=========================================================  ==================  =============
key                                                        model parameter     file shape
=========================================================  ==================  =============
``resnet/root_block/standardized_conv2d/kernel``           root conv           (k, k, I, O)
``resnet/blockB/unitUU/{a,b,c}/group_norm/{gamma,beta}``   gn1, gn2, gn3       (C,)
``resnet/blockB/unitUU/{a,b,c}/standardized_conv2d/kernel``  conv1, 2, 3       HWIO
``resnet/blockB/unitUU/a/proj/standardized_conv2d/kernel``  conv_proj          (1, 1, I, O)
``resnet/group_norm/{gamma,beta}``                         final GroupNorm     (C,)
``resnet/head/conv2d/{kernel,bias}``                       dense head          (1, 1, C, K), (K,)
=========================================================  ==================  =============

Group ``a`` of a unit is its first pre-activation GN plus the first 1x1 conv; the GN
parameters are stored flat (C,) (big_transfer's JAX code adds the leading 1, 1, 1 on load).
Some released files name convs ``standardized_conv2d_N``; those names are read as
``standardized_conv2d``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from kdlib.models.bit import BiT

HEAD_MODES = ("load", "skip")
HEAD_PREFIX = "resnet/head/"
_NUMBERED_CONV = re.compile(r"/standardized_conv2d_\d+/")


def bit_npz_layout(model: BiT) -> dict[str, tuple[nnx.Param, tuple[int, ...]]]:
    """Maps each ``.npz`` key of ``model`` to (its parameter, the shape stored in the file)."""
    if not isinstance(model, BiT):
        raise ValueError(f"expected a kdlib.models.BiT model, got {type(model).__name__}")
    layout: dict[str, tuple[nnx.Param, tuple[int, ...]]] = {}

    def add(key: str, param: nnx.Param, file_shape: tuple[int, ...] | None = None) -> None:
        layout[key] = (param, tuple(param.shape) if file_shape is None else file_shape)

    add("resnet/root_block/standardized_conv2d/kernel", model.root_block.conv_root.kernel)
    for b, stage in enumerate(model.stages(), start=1):
        for u, unit in enumerate(stage.units(), start=1):
            prefix = f"resnet/block{b}/unit{u:02d}"
            for group, gn, conv in [
                ("a", unit.gn1, unit.conv1), ("b", unit.gn2, unit.conv2),
                ("c", unit.gn3, unit.conv3),
            ]:
                add(f"{prefix}/{group}/group_norm/gamma", gn.scale)
                add(f"{prefix}/{group}/group_norm/beta", gn.bias)
                add(f"{prefix}/{group}/standardized_conv2d/kernel", conv.kernel)
            if unit.conv_proj is not None:
                add(f"{prefix}/a/proj/standardized_conv2d/kernel", unit.conv_proj.kernel)
    add("resnet/group_norm/gamma", model.norm_pre_head.scale)
    add("resnet/group_norm/beta", model.norm_pre_head.bias)
    kernel = model.head.kernel
    add(HEAD_PREFIX + "conv2d/kernel", kernel, (1, 1, *kernel.shape))
    if model.head.bias is None:
        raise ValueError("the BiT head has no bias; the big_transfer layout stores one")
    add(HEAD_PREFIX + "conv2d/bias", model.head.bias)
    return layout


def _read_arrays(path_or_dict: str | os.PathLike | Mapping[str, object]) -> dict[str, np.ndarray]:
    """Flat dict of numpy arrays from an ``.npz`` path or a mapping, conv names normalized."""
    if isinstance(path_or_dict, Mapping):
        raw = {str(k): np.asarray(v) for k, v in path_or_dict.items()}
    elif isinstance(path_or_dict, str | os.PathLike):
        with np.load(path_or_dict, allow_pickle=False) as f:
            raw = {k: f[k] for k in f.files}
    else:
        raise ValueError(
            f"path_or_dict must be an .npz path or a mapping of key -> array, "
            f"got {type(path_or_dict).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for key, value in raw.items():
        name = _NUMBERED_CONV.sub("/standardized_conv2d/", key)
        if name in arrays:
            raise ValueError(f"key {key!r} duplicates {name!r} after name normalization")
        arrays[name] = value
    return arrays


def load_bit_npz(
    model: BiT, path_or_dict: str | os.PathLike | Mapping[str, object], *, head: str = "load"
) -> BiT:
    """Loads big_transfer-layout weights into ``model`` in place and returns it.

    ``head="skip"`` keeps the model's own (fresh) head and ignores the file's head, e.g. to
    fine-tune on a task with a different number of classes. All missing keys, unexpected keys
    and shape mismatches are reported together in one ValueError; nothing is changed then.
    """
    if head not in HEAD_MODES:
        raise ValueError(f"head={head!r} is not one of {HEAD_MODES}")
    layout = bit_npz_layout(model)
    arrays = _read_arrays(path_or_dict)
    if head == "skip":
        layout = {k: v for k, v in layout.items() if not k.startswith(HEAD_PREFIX)}
        arrays = {k: v for k, v in arrays.items() if not k.startswith(HEAD_PREFIX)}
    problems = []
    missing = sorted(set(layout) - set(arrays))
    unexpected = sorted(set(arrays) - set(layout))
    if missing:
        problems.append(f"missing keys ({len(missing)}): " + ", ".join(missing))
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(unexpected))
    for key in sorted(set(layout) & set(arrays)):
        expected, found = layout[key][1], tuple(arrays[key].shape)
        if expected != found:
            problems.append(f"shape mismatch for {key}: expected {expected}, found {found}")
        elif not np.issubdtype(arrays[key].dtype, np.floating):
            problems.append(f"dtype of {key} is {arrays[key].dtype}, expected a float type")
    if problems:
        raise ValueError(
            "checkpoint does not match the BiT model "
            f"(depth={list(model.depth)}, width={model.width}, "
            f"num_classes={model.num_classes}, in_channels={model.in_channels}):\n  "
            + "\n  ".join(problems))
    for key, (param, _) in layout.items():
        value = jnp.asarray(arrays[key], dtype=param.dtype).reshape(param.shape)
        param.set_value(value)
    return model


def bit_npz_arrays(model: BiT) -> dict[str, np.ndarray]:
    """The model's parameters as a flat dict in the big_transfer ``.npz`` layout."""
    return {
        key: np.asarray(param[...]).reshape(file_shape)
        for key, (param, file_shape) in bit_npz_layout(model).items()
    }


def save_bit_npz(model: BiT, path: str | os.PathLike) -> str:
    """Writes ``model`` to ``path`` (exactly that name) in the big_transfer layout."""
    arrays = bit_npz_arrays(model)
    with open(path, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy stub: **kwds read as allow_pickle
    return os.fspath(path)
