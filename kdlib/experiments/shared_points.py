"""The points (an arm at a length) that several chapters' stored tables read: which run each
selects (:func:`shared_points`), a summary of where they differ (:func:`shared_points_report`)
and, at a chapter's end, the others' selections of what it reads (:func:`elsewhere_report`)."""

from __future__ import annotations

from typing import Any

from kdlib import presets, wording
from kdlib.experiments.run_keys import SWEPT, training_key

SHARED_COLUMNS = ("key", "chapter", "table", "arm", "epochs", "grid", "selected", "test_acc",
                  "test_acc_sd", "n_seeds", "at_edge")


def shared_points(preset: str, root: Any = None) -> Any:
    """The points that several chapters' stored results tables read (equal
    :func:`training_key`), one row per (point, chapter table) (:data:`SHARED_COLUMNS`):
    its grid, the selected run's swept values and the mean test accuracy over its seeds. A
    point reads differently where its chapters' grids select different runs."""
    import json

    import pandas as pd

    from kdlib import claims, store

    base = store.results_root(root) / presets.check(preset)
    configs: dict[str, dict] = {}
    for path in base.glob(f"*/*/{store.CONFIG_FILE}"):
        configs.setdefault(path.parent.name, json.loads(path.read_text()))
    rows = []
    for section, paths in claims.chapter_tables(preset, root).items():
        for path in paths:
            frame = pd.read_csv(path)
            if "best_hash" not in frame:
                continue
            for _, row in frame.iterrows():
                config = configs.get(str(row["best_hash"]))
                if config is None:
                    continue
                edge = row.get("at_edge")
                rows.append({
                    "key": training_key(config), "chapter": section, "table": path.stem,
                    "arm": row["arm"], "epochs": float(row["epochs"]), "grid": row.get("grid"),
                    "selected": ", ".join(f"{k}={config[k]:g}" for k in SWEPT
                                          if isinstance(config.get(k), int | float)),
                    "test_acc": float(row["test_acc"]), "test_acc_sd": row.get("test_acc_sd"),
                    "n_seeds": int(row["n_seeds"]),
                    "at_edge": edge if isinstance(edge, str) else ""})
    frame = pd.DataFrame(rows, columns=list(SHARED_COLUMNS))
    counts = frame.groupby("key")["chapter"].transform("nunique")
    return frame[counts > 1].sort_values(["key", "chapter"]).reset_index(drop=True)


def shared_points_report(shared: Any) -> str:
    """One paragraph on :func:`shared_points`: how many points several chapters read, and
    which read differently (a different selected run), with the largest gap."""
    if shared.empty:
        return "No point is read by more than one chapter's stored tables."
    groups = list(shared.groupby("key", sort=False))
    differ = [g for _, g in groups if g["selected"].nunique() > 1
              or g["test_acc"].round(6).nunique() > 1]
    rerun = [g for g in differ if g["selected"].nunique() == 1]
    n = len(groups)
    text = (f"{wording.count(n, 'point')} (an arm at a length, the same training config) "
            f"{wording.is_are(n)} read by more than one chapter; {n - len(differ)} "
            "read the same numbers everywhere")
    if not differ:
        return text + "."
    if rerun:
        g = rerun[0]
        text += (f"; {len(rerun)} select the same hyper-parameters but read different runs of "
                 "them (different seeds of them, or copies no chapter reads any more: "
                 "`store.shadowed_runs`; e.g. "
                 + " vs ".join(f"{100 * a:.2f}%" for a in g["test_acc"].unique()[:2])
                 + f" for {g['arm'].iloc[0]} at {g['epochs'].iloc[0]:g} epochs)")
    selecting = [g for g in differ if g["selected"].nunique() > 1]
    if not selecting:
        return text + "."
    g = max(selecting, key=lambda g: g["test_acc"].max() - g["test_acc"].min())
    hi, lo = g.loc[g["test_acc"].idxmax()], g.loc[g["test_acc"].idxmin()]
    return (text + f"; {len(selecting)} select differently: each chapter grows its grid for "
            "the arms it compares, alike, so a chapter whose other arms have not grown yet reads "
            "a smaller grid (where its selected run then sits at the grid's edge, the checks "
            "reading it are provisional), and a grid grown from fewer values can stop at a "
            "lower optimum (a config is one run wherever it is read, so equal grids select "
            "alike). "
            f"The largest gap, at {lo['epochs']:g} epochs: {lo['chapter']}'s {lo['arm']} reads "
            f"{100 * lo['test_acc']:.1f}% (n={lo['n_seeds']}, {lo['selected']}), "
            f"{hi['chapter']}'s {hi['arm']} {100 * hi['test_acc']:.1f}% (n={hi['n_seeds']}, "
            f"{hi['selected']}).")


def elsewhere_report(shared: Any, section: str) -> str:
    """The points ``section`` reads that another chapter selects differently (from
    :func:`shared_points`), each with every selection's mean test accuracy, seeds, swept
    values and the chapters reading it, in one paragraph ("" if there is none). Each chapter
    selects on the grid its compared arms share, so the same training config can read
    differently in two chapters; a reader sees both numbers where either is quoted."""
    if shared.empty or section not in set(shared["chapter"]):
        return ""
    items = []
    mine = shared[shared["key"].isin(shared.loc[shared["chapter"] == section, "key"])]
    for _, g in sorted(mine.groupby("key", sort=False), key=lambda kg: kg[1]["epochs"].iloc[0]):
        here = g[g["chapter"] == section].iloc[0]
        readings = [f"here {_reading(here)}"]
        others = g[(g["chapter"] != section) & (g["selected"] != here["selected"])]
        if others.empty:  # only this chapter's own tables differ: not another chapter's
            continue
        for _, other in others.groupby("selected", sort=False):
            readings.append(f"{_reading(other.iloc[0])} in "
                            + ", ".join(sorted(set(other["chapter"]))))
        items.append(f"{here['arm']} at {here['epochs']:g} epochs: " + "; ".join(readings))
    if not items:
        return ""
    return (f"{wording.count(len(items), 'point')} this chapter reads "
            f"{wording.is_are(len(items))} read by other chapters from another "
            "selection (the same training config; each chapter selects on the grid its "
            "compared arms share, so this chapter's checks read its own value): "
            + ". ".join(items) + ".")


def _reading(row: Any) -> str:
    """'80.0% ±0.8 (n=3; lr=0.03, ..., grid edge lr)' for one row of :func:`shared_points`."""
    sd = row["test_acc_sd"]
    pts = 100 * float(sd) if sd is not None and sd == sd else None
    spread = "" if pts is None else f" ±{pts:.1f}" if pts >= 0.1 else f" ±{pts:.2f}"
    edge = f", grid edge {row['at_edge']}" if row["at_edge"] else ""
    return (f"{100 * row['test_acc']:.1f}%{spread} (n={int(row['n_seeds'])}; "
            f"{row['selected']}{edge})")
