"""What the longer schedules changed in each verdict (issue 14): a chapter's own claim rules
read again on only the schedule lengths it showed before the long runs, beside the verdict on
every length it shows now. Same rules, same seed noise, same stored runs: only the lengths
differ, so a difference between the two verdicts is the longer schedules' doing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from kdlib.claims import Claim, outcome_counts, provisional, why_provisional
from kdlib.experiments.run_keys import noise_regime
from kdlib.seed_noise import parent_regime

# The longest schedule each chapter showed at the cpu preset when issue 14 asked for longer
# ones (its text: 02 to 300 epochs on 1k images, 400 on 250 and 30 on 4k; 03 to 4 epochs; 05,
# 07 and 09 to 100; 06 showed chapter 02's 1k lengths, to 300; 01 to 300 on 1k and 400 on 250),
# per training-set size (a row's `regime` text before its length) or one length for every size.
Limit = float | Mapping[str, float]
SHORTER: dict[str, dict[str, Limit]] = {"cpu": {
    "01_consistency": {"1000 images": 300.0, "250 images": 400.0},
    "02_patience": {"250 images": 400.0, "1000 images": 300.0, "4000 images": 30.0},
    "03_imagenet": 4.0, "05_shampoo": 100.0, "06_init": 300.0, "07_cross_family": 100.0,
    "09_dist": 100.0}}
SAME = "the same lengths: no longer schedule is shown yet"


def _up_to_frame(table: pd.DataFrame, limit: Limit) -> pd.DataFrame:
    if not isinstance(limit, Mapping):
        return table[table["epochs"] <= float(limit)]
    if "regime" not in table.columns:
        raise ValueError("a limit per training-set size needs the table's 'regime' column; "
                         f"it has {sorted(map(str, table.columns))}")
    sizes = table["regime"].map(lambda r: parent_regime(r) or r)  # '1000 images'
    unknown = sorted(set(sizes) - set(limit))
    if unknown:
        raise ValueError(f"limit={dict(limit)!r} names no length for the training-set sizes "
                         f"{unknown}; give one for each of {sorted(set(sizes))}")
    return table[table["epochs"] <= sizes.map(lambda s: float(limit[s]))]


def up_to(tables: Any, limit: Limit) -> Any:
    """``tables`` (one results table, or a mapping of them) without the rows longer than
    ``limit``: one length for every row, or one per training-set size."""
    if isinstance(tables, pd.DataFrame):
        return _up_to_frame(tables, limit)
    if isinstance(tables, Mapping):
        return {name: _up_to_frame(t, limit) for name, t in tables.items()}
    raise ValueError(f"tables must be a results DataFrame or a mapping of them, got "
                     f"{type(tables).__name__}")


def _limit_text(limit: Limit) -> str:
    if not isinstance(limit, Mapping):
        return f"up to {limit:g} epochs"
    return "up to " + ", ".join(f"{v:g} epochs on {k}" for k, v in limit.items())


def _frames(tables: Any) -> list[pd.DataFrame]:
    return [tables] if isinstance(tables, pd.DataFrame) else list(tables.values())


def with_shorter(judge: Callable[[Any], list[Claim]], tables: Any, section: str,
                 preset: str) -> list[Claim]:
    """``judge(tables)``, each claim's ``at_shorter`` set to the verdict ``judge`` gives on
    the lengths :data:`SHORTER` names for ``section`` at ``preset`` (unset where it names
    none). A rule that cannot read the shorter tables (ValueError) is said so, not hidden."""
    found = judge(tables)
    limit = SHORTER.get(preset, {}).get(section)
    if limit is None:
        return found
    shorter = up_to(tables, limit)
    if all(len(a) == len(b) for a, b in zip(_frames(shorter), _frames(tables), strict=True)):
        return [dataclasses.replace(c, at_shorter=SAME) for c in found]
    where = _limit_text(limit)
    try:
        before = {c.id: c for c in judge(shorter)}
    except ValueError as err:
        return [dataclasses.replace(c, at_shorter=f"not readable {where}: {err}")
                for c in found]
    out = []
    for c in found:
        b = before.get(c.id)
        if b is None:
            text = f"not judged {where}"
        else:
            notes = [outcome_counts(b)] if b.checks else []
            notes += [f"{k['outcome']}: {k['name']}" for k in b.checks
                      if k["outcome"] != "holds"]  # what kept it from reproduced
            notes += [f"provisional: {why_provisional(b)}"] if provisional(b) else []
            text = f"{b.verdict} {where}" + (f" ({'; '.join(notes)})" if notes else "")
        out.append(dataclasses.replace(c, at_shorter=text))
    return out


def change_text(found: list[Claim]) -> str:
    """One sentence per claim: its verdict at the shorter lengths and now (markdown)."""
    parts = []
    for c in found:
        if not c.at_shorter:
            continue
        if c.at_shorter == SAME:
            parts.append(f"**{c.id}**: {SAME}")
            continue
        now = f"{c.verdict} on every length shown ({outcome_counts(c)})" if c.checks else (
            f"{c.verdict} on every length shown")
        moved = "unchanged" if c.at_shorter.startswith(f"{c.verdict} up to ") else "changed"
        parts.append(f"**{c.id}** ({moved}): {c.at_shorter}; {now}")
    if not parts:
        return ""
    return ("What the longer schedules changed in each verdict (the same rules, noise and runs "
            "read on the lengths shown before them: `kdlib.experiments.schedule_effect`): "
            + "; ".join(parts) + ".")


def is_longer(config: Mapping[str, Any], section: str, preset: str) -> bool:
    """Whether a stored run's ``config`` (as in config.json) trains a schedule longer than
    :data:`SHORTER` names for the chapter folder ``section`` at ``preset``: one of the
    lengths issue 14 added. False where no limit applies (a chapter that gained no length, a
    training-set size its limit does not name)."""
    limit = SHORTER.get(preset, {}).get(section)
    epochs = config.get("epochs")
    if limit is None or not isinstance(epochs, (int, float)):
        return False
    if isinstance(limit, Mapping):  # keyed as the tables' regimes are: '1000 images'
        limit = limit.get(parent_regime(noise_regime(config)) or "")
        if limit is None:
            return False
    return float(epochs) > float(limit)


def longer_totals(records: list[Any], preset: str) -> list[dict]:
    """Per chapter folder, the stored runs of the longer schedules (:func:`is_longer`): how
    many, their hours of wall time and run-images per second
    (:func:`kdlib.provenance_tables.section_totals`), and the lengths they train: what issue
    14's lengths cost, beside what they changed (:func:`change_text`)."""
    from kdlib import provenance_tables
    from kdlib.experiments.chapters import lengths_text

    longer = [r for r in records if r.status != "running"
              and is_longer(r.config, r.path.parent.name, preset)]
    lengths: dict[str, dict[Any, set[float]]] = {}
    for r in longer:
        size = (r.config.get("data") or {}).get("train_size")
        lengths.setdefault(r.path.parent.name, {}).setdefault(size, set()).add(
            float(r.config["epochs"]))
    rows = provenance_tables.section_totals(provenance_tables.run_rows(longer))
    for row in rows:
        row["lengths"] = lengths_text(lengths[row["section"]], joiner="; ")
    return rows
