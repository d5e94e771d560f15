"""The hyper-parameter grids a chapter's arms sweep: the ladders a grid grows through
(:data:`LADDERS`, one step further where a probe led: :data:`LADDER_BEYOND`), the short
schedules' temperatures, and where a selected config sits in its grid (:func:`at_edge`,
:func:`at_ladder_end`, :func:`edge_report`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kdlib.config import RunConfig
from kdlib.experiments.run_keys import field_of

# Values a grid grows through when a selected run sits at its edge (section 3.1's grid,
# extended by one step each way).
LADDERS: dict[str, tuple[float, ...]] = {
    "lr": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
    "wd": (3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3),
}


# Where a ladder probe (kdlib.experiments.ladder_probe: lr one step past the ladder's end, at
# a selected config there) led on validation, that comparison's ladder goes that step further,
# for every arm of it alike: keyed by (section, training-set size, epochs). Set in the session
# after 2026-12-05, after the probes' results (the step they were trained to decide): of 29
# configs selected at lr 0.1, lr 0.3 led on validation at 2, chapter 01's fix/rs at 30 epochs
# on 1k images (78.70 vs 78.35%) and at 400 on 250 images (68.35 vs 66.40%);
# tests/test_stored_results.py checks this list against the stored probes.
# In the session after that the probes reached every optimizer (4 more: Shampoo's and SGD's),
# and lr 0.3 led at 3 of them: chapter 05's Shampoo at 300 epochs (86.35 vs 86.15% on
# validation: the rule reads the lead, not its size) and chapter 03's label-only SGD and SGD +
# mixup at 1 epoch. Chapter 05's Adam arm is chapter 01's config (its section is 01's) and a
# comparison extends only where all its arms do (comparison_ladders), so chapter 01's
# 300-epoch comparison on 1k images extends with it (its 5 probes there were behind). The
# probes of the extended ends (lr 1.0 past 0.3) then led at one of 5: chapter 03's SGD + mixup
# at 1 epoch (69.55 vs 65.40% on validation), so that comparison goes to lr 1.0.
LADDER_BEYOND: dict[tuple[str, int | None, float], dict[str, tuple[float, ...]]] = {
    ("01_consistency", 1000, 30.0): {"lr": (0.3,)},
    ("01_consistency", 250, 400.0): {"lr": (0.3,)},
    ("05_shampoo", 1000, 300.0): {"lr": (0.3,)},
    ("01_consistency", 1000, 300.0): {"lr": (0.3,)},
    ("03_imagenet", None, 1.0): {"lr": (0.3, 1.0)},
}


# KL arms at schedules up to this length also sweep temperature 10 (Table 4 picks T=10 at the
# paper's short schedules); the small presets' base grid fixes T=1.
SHORT_EPOCHS = 100.0
SHORT_TEMPERATURES = [1.0, 10.0]


def extended_axes(config: RunConfig, axes: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """``axes`` plus the short-schedule temperatures for a KL arm at the base grid's T=1
    (cpu, smoke). An arm that fixes another temperature keeps it: it asks for that T."""
    out = {k: list(v) for k, v in axes.items()}
    if (config.loss == "kl" and "temperature" not in out and config.epochs <= SHORT_EPOCHS
            and config.preset in ("smoke", "cpu")
            and config.temperature == SHORT_TEMPERATURES[0]):
        out["temperature"] = list(SHORT_TEMPERATURES)
    return out


def ladders_for(config: RunConfig | Mapping[str, Any] | None) -> dict[str, tuple[float, ...]]:
    """The ladders a config's grid grows through: :data:`LADDERS`, one step further where its
    comparison (section, training-set size, epochs) is in :data:`LADDER_BEYOND`."""
    if config is None:
        return dict(LADDERS)
    key = (str(field_of(config, "section")), field_of(field_of(config, "data"), "train_size"),
           float(field_of(config, "epochs") or 0.0))
    beyond = LADDER_BEYOND.get(key, {})
    return {name: tuple(sorted(set(ladder) | set(beyond.get(name, ()))))
            for name, ladder in LADDERS.items()}


def comparison_ladders(configs: Sequence[RunConfig | Mapping[str, Any] | None]
                       ) -> dict[str, tuple[float, ...]]:
    """The ladders every arm of one comparison (its configs at one length) grows through
    alike: :func:`ladders_for`'s where every config has the same, else :data:`LADDERS`. Keyed
    by the config's section, an extension must not reach one arm alone: a chapter's
    function-matching arm is chapter 01's config (``regimes.fm_section``), its other arms are
    not."""
    found = [ladders_for(c) for c in configs]
    return found[0] if found and all(f == found[0] for f in found) else dict(LADDERS)


def _grid_edges(axes: Mapping[str, list[Any]], point: Mapping[str, Any] | None,
                *, ladder_end: bool, ladders: Mapping[str, tuple[float, ...]] | None = None
                ) -> list[str]:
    """The laddered axes whose selected value is the grid's lowest or highest, where the
    ladder goes further (``ladder_end`` False) or where it ends (True)."""
    if point is None:
        return []
    out = []
    for name, values in axes.items():
        ladder = (LADDERS if ladders is None else ladders).get(name)
        if ladder is None or len(values) < 2 or name not in point:
            continue
        v = point[name]
        low, high = v == min(values), v == max(values)
        ends = (low and v <= ladder[0]) or (high and v >= ladder[-1])
        grows = (low and ladder[0] < v) or (high and ladder[-1] > v)
        if ends if ladder_end else grows:
            out.append(name)
    return out


def at_edge(axes: Mapping[str, list[Any]], point: Mapping[str, Any] | None,
            ladders: Mapping[str, tuple[float, ...]] | None = None) -> list[str]:
    """The laddered axes (``ladders``, default :data:`LADDERS`; a config's own:
    :func:`ladders_for`) whose selected value is the grid's lowest or highest where the
    ladder goes further: the grid does not bracket the optimum there."""
    return _grid_edges(axes, point, ladder_end=False, ladders=ladders)


def at_ladder_end(axes: Mapping[str, list[Any]], point: Mapping[str, Any] | None,
                  ladders: Mapping[str, tuple[float, ...]] | None = None) -> list[str]:
    """The laddered axes whose selected value is the grid's edge and the ladder's end: the
    rule grows the grid no further, so the optimum may lie beyond it (reported, not hidden)."""
    return _grid_edges(axes, point, ladder_end=True, ladders=ladders)


def open_ends(at_ladder_end: str, beyond_probe: str) -> str:
    """The axes of ``at_ladder_end`` ("lr, wd") a stored probe leaves open: one lr step beyond
    the ladder's end that is "behind" on validation brackets lr (only lr: the probe varies
    nothing else; :func:`kdlib.experiments.ladder_probe.beyond_reading`)."""
    axes = [a.strip() for a in at_ladder_end.split(",") if a.strip()]
    return ", ".join(a for a in axes if not (a == "lr" and beyond_probe == "behind"))


def widen(axes: Mapping[str, list[Any]], points: list[Mapping[str, Any] | None],
          ladders: Mapping[str, tuple[float, ...]] | None = None) -> dict[str, list[Any]]:
    """``axes`` grown by the next ladder value (of ``ladders``, default :data:`LADDERS`)
    beyond each edge any of ``points`` sits at."""
    ladders = LADDERS if ladders is None else ladders
    out = {k: list(v) for k, v in axes.items()}
    for point in points:
        if point is None:  # no selected point: at no edge (at_edge gives [])
            continue
        for name in at_edge(axes, point, ladders):
            ladder, v = ladders[name], point[name]
            # the next ladder value strictly beyond v (v need not be on the ladder)
            beyond = ([x for x in ladder if x < v * (1 - 1e-9)] if v == min(axes[name])
                      else [x for x in ladder if x > v * (1 + 1e-9)])
            if not beyond:
                continue
            new = max(beyond) if v == min(axes[name]) else min(beyond)
            if new not in out[name]:
                out[name] = sorted(out[name] + [new])
    return out


def edge_report(tables: Any, preset: str | None = None, queued: Any = None,
                section: str | None = None) -> str:
    """How many selected configs sit at a grid edge (see :func:`at_edge`), in one line.

    At the cpu preset (the one with a background queue) or with ``queued`` (a set of
    :func:`~.run_keys.point_hash`, ``queue_plan.queued_points(section)``: the chapter's own
    items; another chapter's item grows its own comparison's grid, not this one's) it splits
    them: those at a point a queue item trains, which it grows for every arm of that length
    alike, and those at points no item trains further (kept as trained). Otherwise nothing is
    said about growing them.
    """
    import pandas as pd

    from kdlib.experiments.verdict_tables import frames

    if queued is None and preset == "cpu":
        from kdlib.experiments import queue_plan

        queued = queue_plan.queued_points(section)

    named = tables.items() if isinstance(tables, Mapping) else ((None, t) for t in frames(tables))
    rows = pd.concat([t.assign(table_name=name) for name, t in named])
    edge = rows[rows["at_edge"].fillna("").astype(bool)]
    end = (rows[rows["at_ladder_end"].fillna("").astype(bool)] if "at_ladder_end" in rows
           else rows.iloc[:0])
    if "beyond_probe" in end:  # a probe behind closes the lr end, not another axis's
        end = end.assign(at_ladder_end=[
            open_ends(e, p if isinstance(p, str) else "")
            for e, p in zip(end["at_ladder_end"], end["beyond_probe"], strict=True)])
    closed = (end["at_ladder_end"] == "" if "at_ladder_end" in end
              else pd.Series(False, index=end.index))
    bracketed, end = end[closed], end[~closed]
    also = (f"{len(bracketed)} of {len(rows)} selected configs sit at the ladder's end, but a "
            "probe one step beyond it is behind on validation, so the optimum lies inside "
            "their ladder (`kdlib.experiments.ladder_probe`)." if len(bracketed) else "")
    if edge.empty and end.empty:
        if not also:
            return f"Every one of the {len(rows)} selected configs lies inside its grid."
        return also + f" The other {len(rows) - len(bracketed)} lie inside their grid."
    parts = []
    if not edge.empty:
        head = (f"{len(edge)} of {len(rows)} selected configs sit at a grid edge "
                f"({', '.join(sorted(set(edge['at_edge'])))}): their grids do not bracket the "
                "optimum yet")
        if queued is None or "point" not in edge.columns:
            parts.append(head + ".")
        else:
            later = edge[edge["point"].isin(queued)]
            kept = edge[~edge["point"].isin(queued)]
            which = ", ".join(f"{r.arm} at {r.epochs:g}" + ("" if r.table_name is None
                                                            else f" ({r.table_name})")
                              for r in kept.itertuples())
            parts.append(head + (f"; the background queue grows {len(later)} of them (their "
                                 "points are queued) for every arm alike" if len(later) else "")
                         + (f"; no queue item trains "
                            f"{f'the other {len(kept)}' if len(later) else 'them'} further "
                            f"({which} epochs), so they stay as trained" if len(kept) else "")
                         + ".")
    if not end.empty:
        which = ", ".join(f"{r.arm} at {r.epochs:g} epochs"
                          + ("" if r.table_name is None else f" ({r.table_name})")
                          for r in end.itertuples())
        axes = sorted(set(end["at_ladder_end"]))
        ladders = "; ".join(f"{a}: {', '.join(f'{v:g}' for v in LADDERS[a])}" for a in axes
                            if a in LADDERS)
        parts.append(f"{len(end)} of {len(rows)} selected configs sit at the end of the "
                     f"written ladder, the values a grid may grow through ({ladders}; one "
                     "step further where a probe past its end led: LADDER_BEYOND): "
                     f"{which}; the rule grows their grid no further, so their optimum "
                     "may lie beyond it.")
    return " ".join([*parts, also]).strip()
