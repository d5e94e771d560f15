"""Reading a chapter's results table as the claim rules do: one row per (arm, schedule length),
its per-seed values as an :class:`kdlib.evidence.Estimate`, the pooled seed noise, and the best
arm or length picked on validation (never on test)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kdlib import evidence as ev
from kdlib import wording
from kdlib.experiments.grids import open_ends


def rows_of(table: pd.DataFrame, arm: str, epochs: float) -> pd.DataFrame:
    return table[(table["arm"] == arm) & (table["epochs"] == epochs)]


def row_of(table: pd.DataFrame, arm: str, epochs: float) -> pd.Series:
    rows = rows_of(table, arm, epochs)
    if rows.empty:
        raise ValueError(f"no row for arm={arm!r} at epochs={epochs} (arms: "
                         f"{sorted(table['arm'].unique())}, epochs: "
                         f"{sorted(set(table['epochs']))})")
    if len(rows) > 1:  # e.g. two chapters' tables concatenated: which one is meant?
        raise ValueError(f"{len(rows)} rows for arm={arm!r} at epochs={epochs:g}; a results "
                         "table has one row per (arm, epochs)")
    return rows.iloc[0]


def est(table: pd.DataFrame, arm: str, epochs: float, col: str = "test_acc") -> ev.Estimate:
    """The per-seed values of ``col`` for (arm, epochs): ``<col>_seeds`` when the table has
    them, else its single value."""
    if col not in table.columns:
        raise ValueError(f"col={col!r} is not a column of the results table; it has "
                         f"{sorted(map(str, table.columns))}")
    row = row_of(table, arm, epochs)
    values = _seed_list(row.get(f"{col}_seeds"), f"{col}_seeds of {arm!r} at {epochs:g} epochs")
    seeded = isinstance(values, list | tuple | np.ndarray) and len(values) > 0
    vals = tuple(float(v) for v in values) if seeded else (float(row[col]),)
    regime, edge, end = row.get("regime"), row.get("at_edge"), row.get("at_ladder_end")
    probe = row.get("beyond_probe")
    if isinstance(end, str):  # the lr end a stored probe beyond it brackets is closed
        end = open_ends(end, probe if isinstance(probe, str) else "")
    select_sd = row.get("select_sd")  # only test accuracy is selected among grid points
    select_sd = (float(select_sd) if col == "test_acc" and isinstance(select_sd, int | float)
                 and np.isfinite(select_sd) else 0.0)
    # Where a seed follow-up's values begin (a table written before the column: none).
    first = row.get("followup_from")
    followup_from = (int(first) if seeded and isinstance(first, int | float | np.number)
                     and np.isfinite(first) and int(first) < len(vals) else None)
    return ev.Estimate(vals, label=f"{arm} @{epochs:g}ep",
                       regime=regime if isinstance(regime, str) else None,
                       selected_first=seeded,  # results_table lists the selected run first
                       at_edge=isinstance(edge, str) and bool(edge),
                       at_ladder_end=isinstance(end, str) and bool(end),
                       select_sd=select_sd, followup_from=followup_from)


def has(table: pd.DataFrame, arm: str, epochs: float, col: str = "test_acc") -> bool:
    rows = rows_of(table, arm, epochs)
    return not rows.empty and bool(np.isfinite(rows.iloc[0][col]))


def finished_at(table: pd.DataFrame, arms: Iterable[str], epochs: float) -> list[str]:
    """The ``arms`` with a finished run at ``epochs``, in their order: a longer length may
    train only some arms (chapter 01's best policies, chapter 03's leading label arm)."""
    return [a for a in arms if has(table, a, epochs)]


def has_arm(table: pd.DataFrame, arm: str) -> bool:
    """Whether ``arm`` has a finished run at any length."""
    return any(has(table, arm, e) for e in set(table[table["arm"] == arm]["epochs"]))


def epochs_text(epochs: float) -> str:
    """``epochs`` as prose: "1 epoch", "2.5 epochs", "300 epochs"."""
    return wording.count(float(epochs), "epoch")


def lengths_of(table: pd.DataFrame, arm: str) -> list[float]:
    """The schedule lengths of ``arm`` with a finished run, shortest first."""
    eps = sorted(e for e in set(table[table["arm"] == arm]["epochs"]) if has(table, arm, e))
    if not eps:
        raise ValueError(f"no finished row for arm={arm!r} (arms: "
                         f"{sorted(table['arm'].unique())})")
    return eps


UNLABELLED = "rows without a regime"


def _seed_list(values: Any, what: str) -> Any:
    """A ``<col>_seeds`` cell as a list: a table read back from its CSV holds the list as
    JSON text; anything else (a list, or NaN where the row has none) as it is."""
    if not isinstance(values, str):
        return values
    try:
        return json.loads(values)
    except ValueError as err:
        raise ValueError(f"{what} is {values!r}, not a list of per-seed values") from err


def noise_of(tables: pd.DataFrame | Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame],
             col: str = "test_acc") -> ev.Noise:
    """The pooled seed noise of ``col`` over the replicated rows of ``tables``, per their
    ``regime`` column where they have one (:func:`kdlib.seed_noise.pooled_noise_by_regime`)."""
    groups: dict[str, list[list[float]]] = {}
    for frame in frames(tables):
        if f"{col}_seeds" not in frame:
            continue
        regimes = frame["regime"] if "regime" in frame else [None] * len(frame)
        for cell, regime in zip(frame[f"{col}_seeds"], regimes, strict=True):
            values = _seed_list(cell, f"a {col}_seeds cell")  # read as est() reads it
            if isinstance(values, list | tuple | np.ndarray):
                key = regime if isinstance(regime, str) else UNLABELLED
                groups.setdefault(key, []).append(list(values))
    if set(groups) <= {UNLABELLED}:
        return ev.pooled_noise(groups.get(UNLABELLED, []), col)
    return ev.pooled_noise_by_regime(groups, col)


def frames(tables: Any) -> list[pd.DataFrame]:
    """A table, a ``{name: table}`` dict or a list of tables, as a list of tables."""
    if isinstance(tables, pd.DataFrame):
        return [tables]
    if isinstance(tables, Mapping):
        return list(tables.values())
    return list(tables)


def seeds_of(table: pd.DataFrame, pairs: Iterable[tuple[str, float]]) -> list[int]:
    return [est(table, a, e).n for a, e in pairs]


def best_arm(table: pd.DataFrame, arms: Iterable[str], epochs: float) -> str:
    """The arm whose validation-selected run has the highest validation accuracy at
    ``epochs``: arms are picked as hyper-parameters are, never on the test set (until
    2026-12-05 this picked the highest mean test accuracy). Every arm named must have a
    finished run there: skipping one would pick the best of fewer arms than the check says
    (callers that read a subset filter with :func:`has` and say so, as C7 does)."""
    if "val_acc" not in table:
        raise ValueError("picking the best arm needs a val_acc column (the selected run's "
                         f"validation accuracy); the table has {sorted(table.columns)}")
    arms = list(arms)
    if not arms:
        raise ValueError(f"picking the best arm at {epochs:g} epochs needs at least one arm")
    vals = {a: float(row_of(table, a, epochs)["val_acc"]) for a in arms}
    missing = [a for a in arms if not np.isfinite(vals[a])]
    if missing:
        raise ValueError(f"the best of {arms} at {epochs:g} epochs: {missing} have no finished "
                         "run with a validation accuracy there; pass only the arms trained "
                         "there and say which were left out")
    return max(arms, key=vals.__getitem__)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def by_regime(tables: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {"": tables} if isinstance(tables, pd.DataFrame) else dict(tables)


def best_length(table: pd.DataFrame, arm: str, lengths: Sequence[float] | None = None
                 ) -> float:
    """The schedule length (of ``lengths``, default every finished one) at which ``arm`` reads
    its best validation accuracy: a tuned baseline's one number (Table 4 gives one per
    baseline, its best over the sweep), or where label-only training peaks (C7). A length
    without a validation accuracy is not a candidate (as in :func:`best_arm`)."""
    candidates = list(lengths_of(table, arm) if lengths is None else lengths)
    vals = {e: float(row_of(table, arm, e)["val_acc"]) for e in candidates}
    finite = [e for e in candidates if np.isfinite(vals[e])]
    if not finite:
        raise ValueError(f"arm={arm!r} has no length of {candidates} with a validation "
                         "accuracy")
    return max(finite, key=vals.__getitem__)
