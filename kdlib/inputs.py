"""Content hashes of the files a run reads: its identity beyond the names in its config.

A config names its teachers, its pretrained init and its dataset; the files behind those
names can change (a retrained teacher, another copy of Fashion-MNIST) while the config hash
stays the same. So each finished run records the sha256 of every input file in
``provenance.json`` under ``"inputs"`` (keys below), and the store reuses a stored run only
when those hashes equal the current files' (:func:`stale`); a stale run is retrained.

| key | file |
| --- | --- |
| ``teachers/<name>/weights.npz`` | each of ``config.teachers`` and ``config.init`` |
| ``fashion_mnist/<file>.gz`` | the four idx files, when a split of Fashion-MNIST is read |
| ``digits/digits.csv.gz`` | scikit-learn's copy of the digits |

The noise images are generated (nothing to hash); tfds datasets are versioned by tfds itself
and not hashed. A stored run without the record (written before it existed) is stale unless
``python -m kdlib.migrate_inputs`` has added it. An input that cannot be found here (no data
package, a teacher not yet trained) cannot be compared: its key maps to None and does not
make a stored run stale. Hashes are cached per process by (path, size, mtime).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("kdlib")

PROVENANCE_KEY = "inputs"
_CHUNK = 1 << 20
_CACHE: dict[tuple[str, int, int], str] = {}
_LOGGED: set[str] = set()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes; computed once per process while the file is unchanged."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(_CHUNK):
                digest.update(block)
        _CACHE[key] = digest.hexdigest()
    return _CACHE[key]


def _field(config: Any, dotted: str) -> Any:
    """``config.a.b`` of a dataclass or the same keys of a mapping (None when absent)."""
    node = config
    for part in dotted.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif dataclasses.is_dataclass(node):
            node = getattr(node, part, None)
        else:
            return None
    return node


def _is_run_config(config: Any) -> bool:
    """Whether ``config`` is a :class:`kdlib.config.RunConfig` or its stored dict."""
    from kdlib.config import RunConfig

    if isinstance(config, RunConfig):
        return True
    return isinstance(config, Mapping) and {"teachers", "data", "student"} <= set(config)


def teacher_weights_key(name: str) -> str:
    """The inputs key of a stored model's weights (a teacher or a pretrained init)."""
    return f"teachers/{name}/weights.npz"


def _dataset_files(name: str | None) -> dict[str, Path | None]:
    """Key -> file of an embedded dataset (None where the file cannot be found here)."""
    from kdlib.data import embedded

    if name == "fashion_mnist":
        try:
            folder = embedded.fashion_mnist_dir()
        except FileNotFoundError:
            folder = None
        files = [f for pair in embedded.FASHION_MNIST_FILES.values() for f in pair]
        return {f"fashion_mnist/{f}": (folder / f if folder else None) for f in files}
    if name == "digits":
        return {"digits/digits.csv.gz": digits_file()}
    return {}


def digits_file() -> Path | None:
    """scikit-learn's digits data file (what ``load_digits`` reads), or None."""
    try:
        import sklearn.datasets
    except ImportError:
        return None
    path = Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def files(config: Any) -> dict[str, Path | None]:
    """Key -> file of every input of a run config ({} for configs that are not RunConfigs)."""
    if not _is_run_config(config):
        return {}
    from kdlib.store import results_root

    teachers_dir = results_root() / "teachers"
    out: dict[str, Path | None] = {}
    names = list(_field(config, "teachers") or [])
    if _field(config, "init"):
        names.append(_field(config, "init"))
    for name in names:
        path = teachers_dir / name / "weights.npz"
        out[teacher_weights_key(name)] = path if path.is_file() else None
    for dataset in (_field(config, "data.name"), _field(config, "data.eval_name")):
        out.update(_dataset_files(dataset))
    return out


def of(config: Any) -> dict[str, str | None]:
    """Key -> sha256 of each input file of ``config`` (None for a file not found here)."""
    return {key: (file_sha256(path) if path is not None else None)
            for key, path in sorted(files(config).items())}


def stale(recorded: Mapping[str, Any] | None, current: Mapping[str, str | None]) -> list[str]:
    """Why a stored run whose provenance holds ``recorded`` inputs is stale ([]: it is not).

    Stale: an input's current hash differs from the recorded one, or the run has no record
    of an input it reads (an old run that was not migrated). Inputs missing here are skipped.
    """
    reasons = []
    for key, now in current.items():
        if now is None:
            continue
        if recorded is None:
            return [f"it records no input hashes (stored before they existed; {key} is an input)"]
        was = recorded.get(key)
        if was is None:
            reasons.append(f"{key} is not in its record")
        elif was != now:
            reasons.append(f"{key} changed (sha256 {str(was)[:12]} when trained, {now[:12]} now)")
    return reasons


def check_fresh(path: Path, provenance: Mapping[str, Any], config: Any) -> bool:
    """True when the run stored at ``path`` saw today's inputs; else logs why and is False."""
    current = of(config)
    if not current:
        return True
    recorded = provenance.get(PROVENANCE_KEY)
    reasons = stale(recorded if isinstance(recorded, Mapping) else None, current)
    if reasons:
        line = (f"kdlib: stored run {path} is stale, not read (the run is trained again, in "
                f"the folder of the chapter asking for it): {'; '.join(reasons)}")
        if line not in _LOGGED:  # a sweep asks twice (before and under the lock): say it once
            _LOGGED.add(line)
            log.warning(line)
        return False
    return True
