"""Hyper-parameter sweeps over frozen dataclass configs, cached run by run in the store.

A sweep is a grid of overrides applied to a base config; every point is trained at most once
(`run_or_load`), so an interrupted sweep resumes where it stopped. Model selection is by a
validation metric; the test metric of the selected run is what a notebook reports.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from kdlib import interrupts
from kdlib.provenance import provenance as make_provenance
from kdlib.store import (
    RunRecord,
    check_summary,
    config_hash,
    config_lock,
    earlier_wall,
    fresh_run,
    input_record,
    load_run,
    prepare_run,
    record_failure,
    run_dir,
    run_locks,
    run_or_load,
    save_run,
)

TrainFn = Callable[[Any, Path], Mapping[str, Any]]
BatchTrainFn = Callable[[list[Any], list[Path]], Sequence[Mapping[str, Any]]]

_MODES = ("max", "min")
_ON_ERROR = ("record", "raise")


# --------------------------------------------------------------------------- grids


def _plain_scalar(value: Any) -> Any:
    """numpy scalars (e.g. from np.logspace) as Python values; anything else unchanged."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and not value.shape:
        return value.item()
    return value


def grid(**axes: Iterable[Any]) -> list[dict[str, Any]]:
    """Cartesian product of the axes as a list of override dicts.

    Stable order: the first axis varies slowest, values in the order given. No axes gives
    one empty point (the base config). Axis names may be dotted ("optim.lr").
    """
    names, values = [], []
    for name, axis in axes.items():
        if isinstance(axis, (str, bytes, Mapping, set, frozenset)) or not isinstance(
            axis, Iterable
        ):
            raise ValueError(
                f"axis {name!r}={axis!r} must be a list or tuple of values (ordered, not a str)"
            )
        axis = [_plain_scalar(v) for v in axis]
        if not axis:
            raise ValueError(f"axis {name!r} is empty; give at least one value")
        names.append(name)
        values.append(axis)
    return [dict(zip(names, point, strict=True)) for point in itertools.product(*values)]


def _fields_of(node: Any) -> list[str]:
    """Names that can be overridden on a dataclass or a dict."""
    if isinstance(node, Mapping):
        return list(node)
    return [f.name for f in dataclasses.fields(node)]


def _override(node: Any, path: list[str], value: Any, full_key: str) -> Any:
    """Copy of `node` with the (possibly nested) field `path` set to `value`."""
    is_dataclass = dataclasses.is_dataclass(node) and not isinstance(node, type)
    if not is_dataclass and not isinstance(node, Mapping):
        done = full_key[: -len(".".join(path)) - 1]
        raise ValueError(
            f"cannot override {full_key!r}: {done!r} is a {type(node).__name__}, "
            "not a dataclass or dict"
        )
    head, rest = path[0], path[1:]
    allowed = _fields_of(node)
    if head not in allowed:
        kind = type(node).__name__
        raise ValueError(f"unknown config key {full_key!r}: {kind} fields are {allowed}")
    current = node[head] if isinstance(node, Mapping) else getattr(node, head)
    new = _override(current, rest, value, full_key) if rest else value
    if isinstance(node, Mapping):
        return {**node, head: new}
    return dataclasses.replace(node, **{head: new})


def apply_overrides(config: Any, overrides: Mapping[str, Any]) -> Any:
    """`config` with each override applied via dataclasses.replace; "a.b" reaches nested fields.

    Unknown keys raise ValueError naming the key and the allowed fields.
    """
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise ValueError(f"config must be a dataclass instance, got {type(config).__name__}")
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or "" in key.split("."):
            raise ValueError(f"override key {key!r} must be a field name like 'lr' or 'optim.lr'")
        config = _override(config, key.split("."), value, key)
    return config


def expand(base_config: Any, overrides_list: Iterable[Mapping[str, Any]]) -> list[Any]:
    """One config per overrides dict, each derived from `base_config`."""
    return [apply_overrides(base_config, overrides) for overrides in overrides_list]


# --------------------------------------------------------------------------- selection


def _metric_value(record: RunRecord, metric: str) -> float | None:
    """record.summary[metric] as a finite float, or None."""
    value = record.summary.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# Metric names where lower is better (a loss, a KL, an error rate): selecting one with
# mode="max" is a mistake, named instead of picking the worst run.
_LOWER_IS_BETTER = re.compile(r"(^|_)(loss|kl|err|error|nll|xent)(_|$)")


def best_by_validation(
    records: Sequence[RunRecord], select_metric: str = "val_acc", mode: str = "max"
) -> RunRecord | None:
    """The finished, non-diverged run with the best summary[select_metric].

    Ties go to the earliest record. None when no run is finished and non-diverged; a
    ValueError when such runs exist but none reports a finite `select_metric` (a typo).
    """
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r}; allowed: {_MODES}")
    if mode == "max" and _LOWER_IS_BETTER.search(select_metric):
        raise ValueError(f"select_metric={select_metric!r} reads like a loss or error, and "
                         "mode='max' would pick its worst run: pass mode='min'")
    eligible = [r for r in records if r.status == "done"]
    if not eligible:
        return None
    best, best_value = None, None
    for record in eligible:
        value = _metric_value(record, select_metric)
        if value is None:
            continue
        better = best_value is None or (value > best_value if mode == "max" else value < best_value)
        if better:
            best, best_value = record, value
    if best is None:
        keys = sorted({k for r in eligible for k in r.summary})
        raise ValueError(
            f"no finished run reports a finite {select_metric!r}; summary keys are {keys}"
        )
    return best


@dataclasses.dataclass
class SweepResult:
    """Runs of a sweep, in grid order, with validation-based selection."""

    points: list[dict[str, Any]]
    runs: list[RunRecord]
    select_metric: str = "val_acc"
    mode: str = "max"
    # Seed replicates of the selected run's config (other seeds, same hyper-parameters).
    replicates: list[RunRecord] = dataclasses.field(default_factory=list)
    # The config the grid expands (its section names the chapter that reads it, also where a
    # run is another chapter's identical config: kdlib.store.fresh_run); None if not given.
    base_config: Any = None

    @property
    def best_point(self) -> dict[str, Any] | None:
        """The grid point (overrides) of the selected run, or None."""
        best = self.best
        if best is None:
            return None
        return next(p for p, r in zip(self.points, self.runs, strict=True) if r is best)

    def seed_runs(self, metric: str = "test_acc") -> list[RunRecord]:
        """The selected run and each finished replicate that has ``metric``, in that order."""
        best = self.best
        if best is None:
            return []
        runs = [best] + [r for r in self.replicates if r.status == "done"]
        return [r for r in runs if metric in r.summary]

    def seed_values(self, metric: str = "test_acc") -> list[float]:
        """``metric`` of the selected run and of each finished replicate (one value per seed)."""
        return [float(r.summary[metric]) for r in self.seed_runs(metric)]

    def seed_offsets(self, metric: str = "test_acc") -> list[int]:
        """Each of :meth:`seed_values`' seeds less the selected run's (0 first; a replicate
        trained as ``seed + k`` reads k), so a reader can tell which seeds a follow-up added."""
        runs = self.seed_runs(metric)
        return [int(r.config["seed"]) - int(runs[0].config["seed"]) for r in runs]

    @property
    def best(self) -> RunRecord | None:
        """The run selected by the validation metric (see best_by_validation)."""
        return best_by_validation(self.runs, self.select_metric, self.mode)

    def best_test(self, metric: str = "test_acc") -> Any:
        """The test metric of the validation-selected run (None when there is no such run)."""
        best = self.best
        if best is None:
            return None
        if metric not in best.summary:
            raise ValueError(
                f"best run {best.hash} has no {metric!r}; summary keys are {sorted(best.summary)}"
            )
        return best.summary[metric]

    def table(self) -> list[dict[str, Any]]:
        """One row per point: swept values, status, hash, scalar summary values (no traceback)."""
        rows = []
        for point, run in zip(self.points, self.runs, strict=True):
            metrics = {
                k: v
                for k, v in run.summary.items()
                if k not in ("status", "traceback")
                and (v is None or isinstance(v, (bool, int, float, str)))
            }
            rows.append({**point, "status": run.status, "hash": run.hash, **metrics})
        return rows


# --------------------------------------------------------------------------- running


def _train_batch(
    configs: list[Any],
    batch_train_fn: BatchTrainFn,
    root: str | os.PathLike | None,
    on_error: str,
) -> None:
    """Train configs together with batch_train_fn and store each run's outcome.

    The runs are locked first (:func:`kdlib.store.run_locks`); any that another process
    finished meanwhile are left out.
    """
    with run_locks([config_lock(c, root) for c in configs]):
        configs = _missing(configs, root)
        if configs:
            _train_locked(configs, batch_train_fn, root, on_error)


def _train_locked(
    configs: list[Any],
    batch_train_fn: BatchTrainFn,
    root: str | os.PathLike | None,
    on_error: str,
) -> None:
    """:func:`_train_batch`'s body, with the runs' locks held."""
    paths = [prepare_run(c, root) for c in configs]
    started_at = time.time()
    seen = [input_record(c) for c in configs]  # hashed before training: what each run reads
    try:
        summaries = list(batch_train_fn(list(configs), list(paths)))
        if len(summaries) != len(configs):
            raise ValueError(
                f"batch_train_fn returned {len(summaries)} summaries for {len(configs)} configs"
            )
        statuses = [check_summary(s) for s in summaries]
    except Exception as err:
        for config, path in zip(configs, paths, strict=True):
            record_failure(config, path, err, started_at)
        if on_error == "raise":
            raise
        return
    wall = time.time() - started_at
    batch = [p.name for p in paths]
    with interrupts.uninterrupted():  # a stop waits until every run of the group is stored
        for config, path, summary, status, inputs in zip(
            configs, paths, summaries, statuses, seen, strict=True
        ):
            # Group mates: the runs it was trained with (a vectorized group shares float order).
            summary = dict(summary)
            group = summary.pop("group", None) or batch
            prov = make_provenance(
                config,
                wall_time_s=wall + earlier_wall(summary),
                started_at=started_at,
                extra={"config_hash": path.name, "batch_size": len(configs), "group": group,
                       **inputs},
            )
            save_run(path, config, summary, prov, status)


def _groups(configs: list[Any], group_by: Callable[[Any], Any] | None) -> list[list[Any]]:
    """``configs`` split by ``group_by`` (first-seen key order); one group without it."""
    if group_by is None:
        return [configs] if configs else []
    groups: dict[Any, list[Any]] = {}
    for config in configs:
        groups.setdefault(group_by(config), []).append(config)
    return list(groups.values())


def _missing(configs: list[Any], root: str | os.PathLike | None) -> list[Any]:
    """Configs with no finished run that saw today's inputs (:func:`kdlib.store.fresh_run`),
    each once (identical configs share one run)."""
    missing, seen = [], set()
    for config in configs:
        key = config_hash(config)
        if key not in seen and fresh_run(config, root) is None:
            missing.append(config)
        seen.add(key)
    return missing


def load_sweep(
    base_config: Any, axes: Mapping[str, Iterable[Any]], *,
    root: str | os.PathLike | None = None, select_metric: str = "val_acc", mode: str = "max",
) -> SweepResult | None:
    """The sweep of `axes` over `base_config` from the store alone; None unless every point
    has a finished run (nothing is trained)."""
    points = grid(**axes)
    runs = [fresh_run(c, root) for c in expand(base_config, points)]  # stale: not stored
    if any(r is None for r in runs):
        return None
    return SweepResult(points, cast(list[RunRecord], runs), select_metric, mode,
                       base_config=base_config)


def sweep(
    base_config: Any,
    axes: Mapping[str, Iterable[Any]],
    train_fn: TrainFn | None,
    *,
    root: str | os.PathLike | None = None,
    select_metric: str = "val_acc",
    mode: str = "max",
    on_error: str = "record",
    batch_train_fn: BatchTrainFn | None = None,
    batch_size: int | None = None,
    group_by: Callable[[Any], Any] | None = None,
) -> SweepResult:
    """Train (or load) every grid point of `axes` applied to `base_config`, in grid order.

    Each run is stored as soon as it finishes, so an interrupted sweep loses no finished run.
    on_error="record" stores a failing run as "failed" and continues; "raise" re-raises.
    batch_train_fn(configs, run_dirs) -> summaries, if given, trains the missing configs
    together (in chunks of batch_size, default all at once); stored runs are never retrained.
    Batched runs share one provenance wall time (that of their chunk, with its batch_size).
    group_by(config) -> key splits the missing configs into batches of equal keys (each
    stored the moment it finishes: a kill loses only the batch in progress).
    """
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r}; allowed: {_MODES}")
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error={on_error!r}; allowed: {_ON_ERROR}")
    if train_fn is None and batch_train_fn is None:
        raise ValueError("give train_fn or batch_train_fn (both are None)")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size={batch_size!r} must be a positive int or None")
    points = grid(**axes)
    configs = expand(base_config, points)
    paths = [run_dir(c, root) for c in configs]  # bad preset/section fails before any training

    if batch_train_fn is not None:
        for group in _groups(_missing(configs, root), group_by):
            chunk = batch_size or len(group)
            for start in range(0, len(group), chunk):
                _train_batch(group[start : start + chunk], batch_train_fn, root, on_error)
        # Every config has a stored run by now: found fresh, trained, or recorded as failed.
        stored = [fresh_run(c, root) or load_run(p, finished_only=False)
                  for c, p in zip(configs, paths, strict=True)]
        return SweepResult(points, cast(list[RunRecord], stored), select_metric, mode,
                           base_config=base_config)

    if train_fn is None:  # not reached: batch_train_fn is None here (checked above)
        raise ValueError("give train_fn or batch_train_fn (both are None)")
    runs: list[RunRecord] = []
    for config, path in zip(configs, paths, strict=True):
        try:
            runs.append(run_or_load(config, train_fn, root=root))
        except Exception:
            failed = load_run(path, finished_only=False)
            if on_error == "raise" or failed is None or failed.status != "failed":
                raise
            runs.append(failed)
    return SweepResult(points, runs, select_metric, mode, base_config=base_config)
