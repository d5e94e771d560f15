"""Does the learning-rate ladder's end bracket the optimum? A probe one step beyond it.

The written ladder (:data:`kdlib.experiments.grids.LADDERS`) ends at lr 0.1 and grids grow no
further there (except where a probe led: :data:`kdlib.experiments.grids.LADDER_BEYOND`), yet many
selected configs sit there (the summary counts the sub-checks that read them). Before
growing every such grid (every arm alike: hours of runs at long schedules), the probe trains
the next value (lr :data:`BEYOND`; one step further where a comparison's ladder already goes
past 0.1: :data:`STEPS`) for those selected configs, cheapest first (seed 0, as the
grid's own runs; Adam's first, every optimizer's since the session after 2026-12-05, when the
last points at the ladder's end were Shampoo's) and compares its validation accuracy with the
selected run's. Where lr 0.3 loses, the optimum lies inside the ladder at that point; where it
wins, the ladder is too short there, and that comparison's ladder goes one step further for
every arm alike
(:data:`kdlib.experiments.grids.LADDER_BEYOND`; the queue grows those grids, and the probe run
is then one of the grid's runs). Probe runs are stored like any run (under the selected run's
chapter folder); no chapter's grid selects among them unless its ladder grows, but a chapter's
table reads each one (column ``beyond_probe``, :func:`beyond_reading`): a point whose probe is
behind is bracketed, and the checks reading it are no longer flagged at the ladder's end (since
the session after 2026-12-05, when all 23 Adam probes were stored and every one was behind).

``python -m kdlib.experiments.ladder_probe --train N`` trains the N cheapest probes (stored ones
are loaded); ``--report`` prints the comparison table. A point the queue trains afresh gets its
probe before its seed replicates (:func:`kdlib.experiments.arms.run_arms`, since 2026-12-06):
where the probe leads, the replicates wait for the ladder to grow.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kdlib import presets, store
from kdlib.config import RunConfig, config_from_dict
from kdlib.experiments.verdict_tables import epochs_text

BEYOND = 0.3  # one step past the ladder's 0.1, on its 1-3-10 spacing
AT_END = 0.1  # the written ladder's last lr (grids.LADDERS["lr"][-1]), where probes start
# The probe of a config selected at each ladder end: the written ladder's (0.1), and, where a
# probe led and its comparison's ladder went one step further (grids.LADDER_BEYOND), that
# one's (since the session after 2026-12-05, so that extended ladders are probed too).
STEPS = {AT_END: BEYOND, BEYOND: 1.0, 1.0: 3.0}


def ladder_end_points(preset: str = "cpu", root: Any = None) -> list[dict[str, Any]]:
    """The selected runs at lr 0.1 that the chapters' stored tables read (one per
    config, whatever the chapters that read it), cheapest first (training images): each with
    the tables that read it (``chapter``, ``table``, ``arm``, ``epochs``) and its run folder."""
    import pandas as pd

    from kdlib import claims
    from kdlib.experiments import run_keys

    base = store.results_root(root) / presets.check(preset)
    found: dict[str, dict[str, Any]] = {}
    for section, paths in claims.chapter_tables(preset, root).items():
        for path in paths:
            frame = pd.read_csv(path)
            if not {"best_hash", "at_ladder_end"} <= set(frame.columns):
                continue
            for row in frame.itertuples():
                if "lr" not in str(row.at_ladder_end):
                    continue
                folders = sorted(base.glob(f"*/{row.best_hash}/{store.CONFIG_FILE}"))
                if not folders:
                    continue
                config = json.loads(folders[0].read_text())
                if config.get("lr") not in STEPS:
                    continue
                key = run_keys.config_key(config)
                point = found.setdefault(key, {
                    "run": folders[0].parent, "config": config, "read by": [],
                    "images": float(config["epochs"]) * (config["data"].get("train_size")
                                                         or 55_000)})
                point["read by"].append(f"{section} {path.stem.removeprefix('table_')}: "
                                        f"{row.arm} at {epochs_text(row.epochs)}")
    return sorted(found.values(), key=lambda p: (p["images"], str(p["run"])))


def probe_config(config: dict[str, Any]) -> RunConfig:
    """The selected config one ladder step beyond its end (:data:`STEPS`: lr 0.3 from 0.1,
    1.0 from an extended ladder's 0.3, ...), seed 0."""
    lr = config.get("lr")
    if lr not in STEPS:
        raise ValueError(f"lr={lr!r} is no ladder end a probe starts from; allowed: "
                         f"{sorted(STEPS)}")
    return config_from_dict(config).replace(lr=STEPS[lr])


def train_probes(preset: str = "cpu", limit: int | None = 6, progress: bool = False) -> int:
    """Trains (or loads) the probes of the ``limit`` cheapest :func:`ladder_end_points`
    (``None``: every one; the background queue's step); returns how many are stored."""
    from kdlib import train

    if limit is not None and limit < 0:  # [:-1] would train all but the last
        raise ValueError(f"limit={limit}: train 0 probes or more (None: every one)")
    points = ladder_end_points(preset)[:limit]
    for point in points:
        train.run(probe_config(point["config"]), progress=progress)
    return len(points)


def probe_ahead(probe: Any, val_acc: float) -> bool:
    """Whether a stored probe run leads a selected run of validation accuracy ``val_acc``:
    it finished (a diverged probe is behind) above it on validation, what selection reads."""
    return probe.status == "done" and float(probe.summary["val_acc"]) > val_acc


def beyond_reading(config: dict[str, Any], val_acc: float, root: Any = None) -> str:
    """How the stored probe one step beyond reads against a run selected at the ladder's
    end (an lr of :data:`STEPS`) whose validation accuracy is ``val_acc``: "behind" (lower
    on validation, or diverged: the grid with the probe brackets the optimum), "ahead" (the
    ladder ends short there), or "" (no probe stored, or not such a run)."""
    if config.get("lr") not in STEPS:
        return ""
    probe = store.fresh_run(probe_config(config), root)
    if probe is None:
        return ""
    return "ahead" if probe_ahead(probe, val_acc) else "behind"


def probe_rows(preset: str = "cpu", root: Any = None,
               points: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per ladder-end point (``points``, else :func:`ladder_end_points`) whose probe
    is stored: the selected run's lr (the ladder's end), its validation and test accuracy,
    the probe's one step beyond (a diverged probe reads as such), and whether the probe is
    ahead on validation (:func:`probe_ahead`)."""
    rows = []
    for point in ladder_end_points(preset, root) if points is None else points:
        probe = store.fresh_run(probe_config(point["config"]), root)
        if probe is None:
            continue
        selected = store.load_run(point["run"])
        if selected is None:
            raise ValueError(f"the selected run {point['run']} is not a finished run")
        val_end = float(selected.summary["val_acc"])
        diverged = probe.status != "done"
        val_beyond = None if diverged else float(probe.summary["val_acc"])
        rows.append({
            "read by": "; ".join(point["read by"]),
            "lr at end": float(point["config"]["lr"]),
            "val at end": round(100 * val_end, 2),
            "val beyond": "diverged" if val_beyond is None else round(100 * val_beyond, 2),
            "test at end": round(100 * float(selected.summary["test_acc"]), 2),
            "test beyond": None if diverged else round(
                100 * float(probe.summary["test_acc"]), 2),
            "ahead on val": probe_ahead(probe, val_end),
            "probe run": probe.hash})
    return rows


def report(preset: str = "cpu", root: Any = None) -> str:
    """One markdown sentence on :func:`probe_rows`: how many probes lead."""
    points = ladder_end_points(preset, root)
    rows = probe_rows(preset, root, points)
    total = len(points)
    if not rows:
        return (f"No probe beyond the ladder's end is stored at `{preset}` yet ({total} "
                "selected configs sit there).")
    ahead = [r for r in rows if r["ahead on val"]]
    diverged = sum(r["val beyond"] == "diverged" for r in rows)
    probed = (f"all {total} were" if len(rows) >= total else
              f"{len(rows)} (the cheapest) {'was' if len(rows) == 1 else 'were'}")
    extended = sum(p["config"]["lr"] != AT_END for p in points)
    steps = ", ".join(f"{STEPS[lr]:g} from {lr:g}"
                      for lr in sorted({p["config"]["lr"] for p in points}))
    where = ("at lr 0.1, the ladder's end" if not extended else
             f"at the ladder's end (lr 0.1; further for the {extended} in comparisons whose "
             "ladder a probe extended)")
    return (f"Of the {total} selected configs {where}, {probed} probed one step beyond (lr "
            f"{steps}): the probe is ahead on validation at "
            + (f"{len(ahead)} of them ({'; '.join(r['read by'] for r in ahead)})" if ahead
               else "none of them")
            + (f", and diverged at {diverged}" if diverged else "") + "." + beyond_text())


def beyond_text() -> str:
    """' Where a probe led, ...' on :data:`kdlib.experiments.grids.LADDER_BEYOND`, or ''."""
    from kdlib.experiments import grids

    if not grids.LADDER_BEYOND:
        return ""
    where = []
    for (section, size, epochs), extra in grids.LADDER_BEYOND.items():
        steps = ", ".join(f"{name} {', '.join(f'{v:g}' for v in values)}"
                          for name, values in extra.items())
        data = f"{size} images" if size else "full split"
        where.append(f"{section}'s {data} at {epochs_text(epochs)} ({steps})")
    return (" Where a probe led, the ladder of its comparison goes that step further for "
            f"every arm alike, and the queue grows those grids: {'; '.join(where)}; their "
            "configs selected there leave this count (lr 0.1 is no longer their grid's end; "
            "one selected at the new end is named in its claim's what would settle it).")


def _count(text: str) -> int:
    """``--train``'s N: a whole number, 0 or more (a negative one would slice off the last
    probes instead of training that many)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of probes: give 0 or more")
    return value


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m kdlib.experiments.ladder_probe``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default=presets.DEFAULT_PRESET, choices=presets.PRESETS)
    p.add_argument("--train", type=_count, default=0, metavar="N",
                   help="train the N cheapest probes (stored ones are loaded)")
    p.add_argument("--report", action="store_true", help="print the comparison table")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.train:
        train_probes(args.preset, args.train)
    if args.report or not args.train:
        import pandas as pd

        print(pd.DataFrame(probe_rows(args.preset)).to_string(index=False))
        print(report(args.preset))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
