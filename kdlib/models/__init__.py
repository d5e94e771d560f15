"""Image classifiers of the paper in Flax NNX: BiT ResNet-v2 and MobileNetV3.

``create(name, **kwargs)`` builds one by name; ``count_params`` counts ``nnx.Param`` entries
(also of a model built abstractly under ``nnx.eval_shape``); ``load_bit_npz`` /
``save_bit_npz`` read and write BiT weights in the big_transfer ``.npz`` layout.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping

from flax import nnx

from kdlib.models import bit, mobilenet_v3
from kdlib.models.bit import BiT
from kdlib.models.bit_npz import bit_npz_arrays, bit_npz_layout, load_bit_npz, save_bit_npz
from kdlib.models.mobilenet_v3 import MobileNetV3

MODELS: dict[str, type[nnx.Module]] = {"bit": BiT, "mobilenet_v3": MobileNetV3}
# Each model's argument check, which its constructor runs first: callable without building.
ARG_CHECKS: dict[str, Callable[..., None]] = {"bit": bit.check_args,
                                              "mobilenet_v3": mobilenet_v3.check_args}

__all__ = [
    "ARG_CHECKS", "MODELS", "BiT", "MobileNetV3", "bit_npz_arrays", "bit_npz_layout",
    "count_params", "create", "load_bit_npz", "save_bit_npz",
]


def create(name: str, **kwargs) -> nnx.Module:
    """Builds the model ``name`` ("bit" or "mobilenet_v3") with the class's keyword args."""
    if name not in MODELS:
        raise ValueError(f"unknown model name={name!r}; allowed: {sorted(MODELS)}")
    cls = MODELS[name]
    allowed = [
        p.name for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown keyword argument(s) {unknown} for model {name!r}; allowed: {allowed}")
    return cls(**kwargs)


def count_params(model_or_state: nnx.Module | nnx.State | Mapping) -> int:
    """Number of scalars in the ``nnx.Param`` variables (not BatchNorm statistics, not RNG
    state). Works on abstract models from ``nnx.eval_shape``. For a State or mapping, leaves
    that are Variables count only if they are Params; plain arrays all count."""
    if isinstance(model_or_state, nnx.Module):
        state: nnx.State | Mapping = nnx.state(model_or_state, nnx.Param)
    elif isinstance(model_or_state, nnx.State | Mapping):
        state = model_or_state
    else:
        raise ValueError(
            "count_params expects an nnx.Module, an nnx.State or a mapping, "
            f"got {type(model_or_state).__name__}")
    if not isinstance(state, nnx.State):
        state = nnx.State(state)
    total = 0
    for _, leaf in nnx.to_flat_state(state):
        if isinstance(leaf, nnx.Variable) and not isinstance(leaf, nnx.Param):
            continue
        total += math.prod(leaf.shape)
    return total
