"""The paper's Tables 2 and 5 beside ours: the literature comparison and the dataset splits.

Table 5 lists the paper's train, validation and test splits (tfds notation); :func:`our_splits`
lists the splits every chapter's runs use at a preset, read from their configs (so they cannot
drift from what was trained). Table 2 compares the paper's best ResNet-50 students with the
literature's; :func:`table2` puts beside each row our analog at the preset, read from the
chapters' stored tables (``results/<preset>/<chapter>/table_*.csv``), or says that there is no
meaningful analog at this scale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kdlib.store import results_root

NO_ANALOG = "no analog at this scale"


def _train_images(data: Any) -> str:
    """'1,000 (class-balanced subset)' or 'all' for a DataConfig's training images."""
    if data.train_size:
        return f"{data.train_size:,} (class-balanced subset)"
    return "all of the split"


def our_splits(preset: str) -> list[dict[str, Any]]:
    """One row per distinct data set-up the book's runs use at ``preset`` (teachers and every
    chapter), with the chapters that use it."""
    from kdlib import presets
    from kdlib.experiments import chapters
    from kdlib.experiments import teachers as teachers_chapter

    presets.check(preset)
    configs: list[tuple[str, Any]] = [("00_teachers", c) for c in
                                      teachers_chapter.teacher_configs(preset).values()]
    for section in chapters.SECTIONS:
        for arms in chapters.experiments(section, preset):
            for by_epochs in arms.values():
                configs += [(section, cfg) for cfg, _ in by_epochs.values()]
    rows: dict[tuple, dict[str, Any]] = {}
    for section, cfg in configs:
        d = cfg.data
        classes = ", ".join(map(str, d.classes)) if d.classes else "all"
        key = (d.name, d.train_split, d.train_size, classes, d.eval_dataset, d.val_split,
               d.val_size, d.test_split, d.test_size)
        row = rows.setdefault(key, {
            "dataset": d.name, "train split": d.train_split, "train images": _train_images(d),
            "classes": classes, "evaluated on": d.eval_dataset, "validation split": d.val_split,
            "validation images": f"{d.val_size:,}" if d.val_size else "all of the split",
            "test split": d.test_split,
            "test images": f"{d.test_size:,}" if d.test_size else "all of the split",
            "chapters": []})
        if section not in row["chapters"]:
            row["chapters"].append(section)
    out = list(rows.values())
    for row in out:
        row["chapters"] = ", ".join(row["chapters"])
    return out


@dataclass(frozen=True)
class Analog:
    """Where our analog of a Table 2 row is stored, and what it is."""

    chapter: str
    table: str  # the chapter's stored table, ``table_<name>.csv``
    arms: tuple[str, ...]  # the arm(s) to read; several: the best of them
    what: str  # what the analog is, in words


# The paper's Table 2 rows (by their `model` and `resolution`) and our analogs at the cpu scale.
TABLE2_ANALOGS: dict[tuple[str, int], Analog | None] = {
    ("Revisiting ResNet", 160): None,  # a better label-training recipe: nothing of ours tests it
    ("FunMatch (T224)", 160): Analog(
        "04_resolution", "arms", ("low-res student",),
        "function-matching student at a lower resolution than its teacher (T28 -> S20), "
        "1,000 images"),
    ("Original ResNet", 224): Analog(
        "03_imagenet", "arms",
        ("labels: Adam", "labels: Adam + mixup", "labels: SGD", "labels: SGD + mixup"),
        "the student trained from labels on all 55,000 images"),
    ("BiT-M-R50", 224): Analog(
        "02_patience", "1k_arms", ("transfer",),
        "the student pretrained on another domain (digits), fine-tuned on 1,000 images"),
    ("Meal-v2", 224): None,  # another distillation recipe from the literature: not run here
    ("FunMatch (T384+224)", 224): Analog(
        "07_cross_family", "arms", ("BiT student, 2 teachers",),
        "function-matching student of the two-teacher ensemble (the mean logits of the 28 px "
        "and the 48 px teachers, as T224 + T384), 1,000 images"),
    ("Revisiting ResNet", 224): None,
}


def _read_analog(path: Any, arms: tuple[str, ...]) -> tuple[float, str, str] | None:
    """(accuracy %, '±sd over n seeds' or '', '<epochs> epochs') of the best of ``arms``
    on validation at the longest schedule in a stored chapter table (one row per arm and
    length, as :func:`kdlib.experiments.common.results_table` writes it), or None. Where
    ``arms`` are several, the length names the arm picked and which of them reach it."""
    import pandas as pd

    frame = pd.read_csv(path)
    missing = {"arm", "epochs", "test_acc", "val_acc"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks the columns {sorted(missing)}: Table 2's analog is "
                         "read from a chapter's long results table (one row per arm and "
                         "length, with val_acc to pick the best arm on)")
    rows = frame[frame["arm"].isin(arms)]
    if rows.empty:
        return None
    longest = rows["epochs"].max()
    rows = rows[rows["epochs"] == longest]
    best = rows.loc[rows["val_acc"].idxmax()]  # several arms: picked on validation, never test
    spread = ""
    if "test_acc_sd" in rows.columns and pd.notna(best.get("test_acc_sd")):
        spread = f"±{100 * best['test_acc_sd']:.1f} sd over {int(best['n_seeds'])} seeds"
    length = f"{longest:g} epochs"
    if len(arms) > 1:
        there = list(dict.fromkeys(rows["arm"]))
        among = (f"the best on validation of {', '.join(there)}" if len(there) > 1 else
                 f"the only one of the {len(arms)} arms ({', '.join(arms)}) trained there")
        length += f" ({best['arm']}: {among})"
    return 100 * float(best["test_acc"]), spread, length


def table2(paper_rows: list[dict[str, Any]], preset: str,
           root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The paper's Table 2 rows with our analog beside each: what it is, its test accuracy
    (%, best of the analog's arms at the longest stored schedule, with the seed spread when
    replicated) and where it is from; ``NO_ANALOG`` where none is meaningful or stored."""
    base = results_root(root) / preset
    out = []
    for row in paper_rows:
        analog = TABLE2_ANALOGS.get((str(row["model"]), int(row["resolution"])))
        found = None
        if analog is not None:
            path = base / analog.chapter / f"table_{analog.table}.csv"
            found = _read_analog(path, analog.arms) if path.is_file() else None
        if analog is None or found is None:  # found is only read for an analog
            extra = {"our analog": NO_ANALOG if analog is None else
                     f"{analog.what} (not stored at the {preset} preset yet)",
                     "ours (%)": "", "from": analog.chapter if analog else ""}
        else:
            acc, spread, length = found
            extra = {"our analog": f"{analog.what}, {length}",
                     "ours (%)": f"{acc:.2f}" + (f" ({spread})" if spread else ""),
                     "from": analog.chapter}
        out.append({**row, **extra})
    return out
