"""The store-aware entry points: train what the results store lacks, load what it has.

They call the loop through its module (``loop.train``), so a test that replaces
``kdlib.train.loop.train_group`` stops every training path.
"""

from __future__ import annotations

from typing import Any

from kdlib import checks, store
from kdlib import sweep as sweeps
from kdlib.config import RunConfig
from kdlib.train import loop
from kdlib.train.optimizer import group_key


def run(
    config: RunConfig, *, retrain: bool = False, progress: bool = True, save_model: bool = False
) -> store.RunRecord:
    """Trains ``config`` unless its result is stored; returns the stored record.

    The config and the files it names are checked first (:func:`kdlib.checks.check_run`):
    a bad one is a one-line error and leaves no run folder.
    """
    checks.check_run(config)

    def train_fn(c: RunConfig, d: Any) -> Any:
        return loop.train(c, d, progress=progress, save_model=save_model)

    record = store.run_or_load(config, train_fn, retrain=retrain)
    if save_model and record.path != store.run_dir(config):
        # another chapter's run of the config (store.fresh_run), stored without the weights
        # this caller wants next to its own run: train it in its own folder
        record = store.run_or_load(config, train_fn, retrain=True)
    return record


def sweep(
    base: RunConfig, axes: dict[str, Any], *, progress: bool = True, **kwargs: Any
) -> Any:
    """:func:`kdlib.sweep.sweep` of ``base`` over ``axes``, trained as vectorized groups.

    Points that differ only in :data:`HPARAMS` (lr, wd, temperature, ...) train together as
    one program; each group's runs are stored as soon as the group finishes, and stored runs
    are loaded, never retrained.
    """
    for config in sweeps.expand(base, sweeps.grid(**axes)):  # before any folder is made
        checks.check_run(config)
    return sweeps.sweep(
        base, axes, None, group_by=group_key,
        batch_train_fn=lambda cs, ds: loop.train_many(cs, ds, progress=progress), **kwargs,
    )
