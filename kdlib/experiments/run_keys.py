"""What a stored run is, beyond its config hash: the same hyper-parameters over seeds
(:func:`seed_family`, :func:`config_key`), the (arm, length) point a grid and its replicates
share (:func:`point_hash`), the training it shares with other chapters (:func:`training_key`)
and the regime whose seed noise it shares (:func:`noise_regime`). Each reads a stored
``config.json`` dict or a RunConfig alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kdlib.config import RunConfig


def field_of(obj: Any, name: str) -> Any:
    """``name`` of a stored config (a dict) or of a RunConfig / DataConfig, else None."""
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def seed_family(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored config (``config.json``) without its seed: a run and its seed replicates
    (:func:`kdlib.experiments.arms.replicate`) share it. The subset seed a replicate pins is
    filled in for the run it replicates (whose subset follows its own seed)."""
    out = {k: v for k, v in config.items() if k != "seed"}
    data = dict(config.get("data", {}))
    if data.get("train_size") is not None and data.get("subset_seed") is None:
        data["subset_seed"] = config.get("seed", 0)
    out["data"] = data
    return out


def noise_regime(config: Mapping[str, Any] | RunConfig) -> str:
    """The regime whose seed noise a run shares, coarse level first: its training-set size
    (seed spread grows as the set shrinks), then its schedule length (short schedules spread
    more: 1000 images 1.6 pts per run at 100 epochs, 0.4 at 300, late on 2026-12-04), e.g.
    ``"1000 images, 300 epochs"`` (:func:`kdlib.seed_noise.pooled_noise_by_regime`), from a
    stored config (``config.json``) or a RunConfig."""
    from kdlib import evidence

    data = field_of(config, "data") or {}
    size, epochs = field_of(data, "train_size"), field_of(config, "epochs")
    regime = f"{size} images" if size is not None else "full split"
    source = _training_source(field_of(data, "name"), field_of(data, "eval_name"),
                              field_of(data, "classes"))
    regime += f" of {source}" if source else ""
    return regime if epochs is None else f"{regime}{evidence.REGIME_SEP}{float(epochs):g} epochs"


def _training_source(name: str | None, eval_name: str | None, classes: Any) -> str:
    """What a run trains on when it is not its evaluation dataset's own images (chapter 08's
    related, unrelated and noise images), else "": such runs pool their seed noise apart
    (since the session after 2026-12-05: digits students spread 6.8 pts per run at 300
    epochs, and pooled with the in-domain ones they had widened every 1000-image, 300-epoch
    check's noise from 0.7 to 1.7 pts)."""
    if eval_name and eval_name != name:
        return str(name)
    if classes:
        return f"{name} classes {','.join(str(c) for c in classes)}"
    return ""


# The hyper-parameters a sweep selects: a point (arm at a length) is its config without them.
SWEPT = ("lr", "wd", "temperature")


def point_hash(config: Mapping[str, Any] | RunConfig) -> str:
    """The (arm, schedule length) point a run belongs to: the hash of its config without the
    seed and the swept hyper-parameters (:data:`SWEPT`), from a stored config or a RunConfig
    (a base config, its grid's runs and their replicates share it)."""
    import hashlib
    import json

    from kdlib.config import config_to_dict

    family = seed_family(config_to_dict(config))
    for name in SWEPT:
        family.pop(name, None)
    return hashlib.sha256(json.dumps(family, sort_keys=True).encode()).hexdigest()[:12]


def training_key(config: Mapping[str, Any] | RunConfig) -> str:
    """What a point trains, whatever chapter files it: :func:`point_hash` without the
    ``section`` (it only names the folder). Points of two chapters with equal keys train the
    same configs, though each chapter grows its own grid (every arm of a comparison alike)."""
    from kdlib.config import config_to_dict

    return point_hash({k: v for k, v in config_to_dict(config).items() if k != "section"})


def config_key(config: Mapping[str, Any] | RunConfig) -> str:
    """A run's config without its seed and section (:func:`seed_family`, ``section`` dropped,
    as JSON): the same hyper-parameters trained for any chapter, any seed."""
    import json

    from kdlib.config import config_to_dict

    family = seed_family(config_to_dict(config))
    family.pop("section", None)
    return json.dumps(family, sort_keys=True)
