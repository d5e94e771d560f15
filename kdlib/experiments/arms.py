"""Running a chapter's arms, and the tables of what they gave.

An experiment is ``{arm: {epochs: (base_config, axes)}}`` (:data:`Arms`, built by the chapter
recipes on :mod:`kdlib.experiments.common`). :func:`run_arms` trains or loads every sweep with
the same budget per arm, grows a grid whose selected run sits at its edge (:data:`LADDERS`),
and adds seed replicates of each selected config (:data:`SEEDS`); :func:`results_table`,
:func:`throughput_table` and :func:`model_costs` turn the results into the chapters' tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kdlib import models, presets, profiling, sweep, teachers, train
from kdlib.config import RunConfig, teacher_sizes

Arms = dict[str, dict[float, tuple[RunConfig, dict[str, list[Any]]]]]


# Seeds per reported point (the selected config's seed replicates included); a verdict reads
# means over these. smoke trains 2 (the replicate path is tested, in seconds).
SEEDS = {"smoke": 2, "cpu": 3, "gpu": 3, "paper": 1}
# A point reads every stored seed of its selected config up to this many (the seeds a
# follow-up trained past SEEDS: kdlib.experiments.queue_plan.ITEM_SEEDS).
MAX_SEEDS = 8
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
LADDER_BEYOND: dict[tuple[str, int | None, float], dict[str, tuple[float, ...]]] = {
    ("01_consistency", 1000, 30.0): {"lr": (0.3,)},
    ("01_consistency", 250, 400.0): {"lr": (0.3,)},
}
# KL arms at schedules up to this length also sweep temperature 10 (Table 4 picks T=10 at the
# paper's short schedules); the small presets' base grid fixes T=1.
SHORT_EPOCHS = 100.0
SHORT_TEMPERATURES = [1.0, 10.0]


def train_extras_default(preset: str) -> bool:
    """Whether a notebook trains the evidence extras (grid growth, T=10, seed replicates).

    cpu: no: the book shows what is stored and the background queue (``python -m
    kdlib.experiments.queue``) trains them. smoke: no: notebooks under nbval stay fast (the
    extras' logic is unit-tested). gpu and paper: yes, in the notebook.
    """
    return presets.check(preset) not in ("smoke", "cpu")


def replicate(config: RunConfig, seed: int) -> RunConfig:
    """``config`` with another seed (init, data order, augmentation); the same images."""
    changes: dict[str, Any] = {"seed": seed}
    if config.data.train_size is not None and config.data.subset_seed is None:
        changes["data.subset_seed"] = config.seed
    return config.replace(**changes)


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
    key = (str(_field(config, "section")), _field(_field(config, "data"), "train_size"),
           float(_field(config, "epochs") or 0.0))
    beyond = LADDER_BEYOND.get(key, {})
    return {name: tuple(sorted(set(ladder) | set(beyond.get(name, ()))))
            for name, ladder in LADDERS.items()}


def _field(obj: Any, name: str) -> Any:
    """``name`` of a stored config (a dict) or of a RunConfig / DataConfig, else None."""
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


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


def widen(axes: Mapping[str, list[Any]], points: list[Mapping[str, Any] | None],
          ladders: Mapping[str, tuple[float, ...]] | None = None) -> dict[str, list[Any]]:
    """``axes`` grown by the next ladder value (of ``ladders``, default :data:`LADDERS`)
    beyond each edge any of ``points`` sits at."""
    ladders = LADDERS if ladders is None else ladders
    out = {k: list(v) for k, v in axes.items()}
    for point in points:
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


def _sweep(cfg: RunConfig, axes: Mapping[str, list[Any]], train_it: bool, progress: bool
           ) -> sweep.SweepResult | None:
    if train_it:
        return train.sweep(cfg, dict(axes), progress=progress)
    return sweep.load_sweep(cfg, dict(axes))


def run_arms(arms: Mapping[str, Mapping[float, tuple[RunConfig, dict[str, list[Any]]]]],
             *, progress: bool = True, extras: bool | None = None, seeds: int | None = None,
             ) -> dict[str, dict[float, sweep.SweepResult]]:
    """Trains (or loads) every sweep of every arm; ``{arm: {epochs: SweepResult}}``.

    The base grids are always trained when missing. Then the evidence extras: at each length,
    the short-schedule temperatures (:func:`extended_axes`) and, while some arm's selected run
    sits at a grid edge (:func:`at_edge`), the next value for every arm at that length alike;
    then ``seeds`` - 1 seed replicates of each selected config (default :data:`SEEDS`).
    ``extras`` False (default at cpu: :func:`train_extras_default`) only loads extras that are
    stored, a length's grown grid only when every arm's is, so budgets stay equal.
    """
    arms = {a: dict(by) for a, by in arms.items()}
    configs = [cfg for by in arms.values() for cfg, _ in by.values()]
    if not configs:
        raise ValueError("arms has no sweeps: give {arm: {epochs: (config, axes)}}")
    preset = configs[0].preset
    extras = train_extras_default(preset) if extras is None else extras
    seeds = SEEDS[preset] if seeds is None else seeds
    results = {arm: {ep: train.sweep(cfg, axes, progress=progress)
                     for ep, (cfg, axes) in by_epochs.items()}
               for arm, by_epochs in arms.items()}
    for ep in sorted({ep for by in arms.values() for ep in by}):
        names = [a for a in arms if ep in arms[a]]
        swept = {a: dict(arms[a][ep][1]) for a in names}  # the grids results[a][ep] holds
        axes = {a: extended_axes(arms[a][ep][0], swept[a]) for a in names}
        while True:
            found = {a: results[a][ep] if axes[a] == swept[a]
                     else _sweep(arms[a][ep][0], axes[a], extras, progress) for a in names}
            if any(r is None for r in found.values()):
                break  # not all stored (load-only): keep the last complete grid
            for a in names:
                results[a][ep] = found[a]
            swept = axes
            ladders = comparison_ladders([arms[a][ep][0] for a in names])
            axes = {a: widen(axes[a], [found[b].best_point for b in names], ladders)
                    for a in names}
            if axes == swept:
                break
    for arm, by_epochs in results.items():
        for ep, result in by_epochs.items():
            result.replicates = _replicates(arms[arm][ep][0], result, seeds, extras, progress)
    return results


def seed_family(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored config (``config.json``) without its seed: a run and its seed replicates
    (:func:`replicate`) share it. The subset seed a replicate pins is filled in for the run
    it replicates (whose subset follows its own seed)."""
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
    ``"1000 images, 300 epochs"`` (:func:`kdlib.evidence.pooled_noise_by_regime`), from a
    stored config (``config.json``) or a RunConfig."""
    from kdlib import evidence

    data = _field(config, "data") or {}
    size, epochs = _field(data, "train_size"), _field(config, "epochs")
    regime = f"{size} images" if size is not None else "full split"
    source = _training_source(_field(data, "name"), _field(data, "eval_name"),
                              _field(data, "classes"))
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
    text = (f"{len(groups)} points (an arm at a length, the same training config) are read by "
            f"more than one chapter; {len(groups) - len(differ)} read the same numbers "
            f"everywhere")
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


def _stored_seeds(preset: str, metric: str, root: Any = None
                  ) -> dict[str, tuple[str, dict[int, float]]]:
    """Each config stored at ``preset`` (:func:`config_key`: without seed and section, the
    chapters' runs of one config together) -> (its noise regime, ``metric`` of each finished
    seed by seed). A seed stored by several chapters counts once, as the run every chapter
    reads (:func:`kdlib.store.fresh_run`; the copies it shadows are left out). Reads config
    and summary files only."""
    import json

    from kdlib import store

    families: dict[str, tuple[str, dict[int, float]]] = {}
    finished = store.finished_configs(presets.check(preset), root)
    is_read = store.read_copy(preset, root, finished)
    for path, config in finished:
        stored = json.loads((path / store.SUMMARY_FILE).read_text())
        if stored.get("status") != "done" or metric not in stored or not is_read(path):
            continue
        by_seed = families.setdefault(config_key(config), (noise_regime(config), {}))[1]
        by_seed.setdefault(int(config.get("seed", 0)), float(stored[metric]))
    return families


def config_key(config: Mapping[str, Any] | RunConfig) -> str:
    """A run's config without its seed and section (:func:`seed_family`, ``section`` dropped,
    as JSON): the same hyper-parameters trained for any chapter, any seed."""
    import json

    from kdlib.config import config_to_dict

    family = seed_family(config_to_dict(config))
    family.pop("section", None)
    return json.dumps(family, sort_keys=True)


def store_means(preset: str, metric: str = "test_acc", root: Any = None) -> dict[str, float]:
    """:func:`config_key` -> the mean of ``metric`` over every finished seed stored at
    ``preset`` in any chapter: the best estimate of a config's accuracy the store holds (a
    config one chapter selected and replicated may be an unselected grid run in another)."""
    return {key: sum(by_seed.values()) / len(by_seed)
            for key, (_, by_seed) in _stored_seeds(preset, metric, root=root).items()}


def store_noise(preset: str, metric: str = "test_acc", root: Any = None) -> Any:
    """The pooled seed noise of ``metric`` over the replicated configs stored at ``preset``,
    per :func:`noise_regime` (:func:`kdlib.evidence.pooled_noise_by_regime`).

    Runs whose configs differ only in the seed (and the subset seed a replicate pins) are one
    config's seeds; every such set with 2 or more finished runs contributes. Reads config and
    summary files only.
    """
    from kdlib import evidence

    sets: dict[str, list[list[float]]] = {}  # regime -> each family's values
    for regime, by_seed in _stored_seeds(preset, metric, root=root).values():
        sets.setdefault(regime, []).append(list(by_seed.values()))
    return evidence.pooled_noise_by_regime(sets, metric)


def store_noise_table(preset: str, metric: str = "test_acc", root: Any = None) -> Any:
    """:func:`store_noise` as a table (:func:`kdlib.evidence.noise_pools`): one row per
    regime level with its pooled per-run spread (points of accuracy), degrees of freedom,
    replicated points, and the spread its points read and from which pool."""
    import pandas as pd

    from kdlib import evidence

    sets: dict[str, list[list[float]]] = {}
    for regime, by_seed in _stored_seeds(preset, metric, root=root).values():
        sets.setdefault(regime, []).append(list(by_seed.values()))
    scale = 100.0 if metric in evidence.ACCURACIES else 1.0
    rows = [{"regime": r["regime"], "pooled sd per run": scale * r["sd"],
             "degrees of freedom": r["dof"], "replicated points": r["points"],
             "its points read": scale * r["read_sd"], "from": r["reads"]}
            for r in evidence.noise_pools(sets, metric)]
    return pd.DataFrame(rows, columns=["regime", "pooled sd per run", "degrees of freedom",
                                       "replicated points", "its points read", "from"])


def selection_bias(preset: str, metric: str = "test_acc") -> Any:
    """How far the validation-selected run reads above its own seed replicates: one value per
    replicated config stored at ``preset`` (the run with the config's lowest seed, which the
    sweep selected, minus the mean of its 2 or more replicates), as an
    :class:`kdlib.evidence.Estimate`, or None when no config has 2 replicates. Its mean is
    the winner's curse: the selected run was the best of its grid on validation, and a lucky
    seed is lucky on test too. Reads config and summary files only."""
    from kdlib import evidence

    gaps = []
    for _, by_seed in _stored_seeds(preset, metric).values():
        if len(by_seed) >= 3:
            first = min(by_seed)
            rest = [v for seed, v in by_seed.items() if seed != first]
            gaps.append(by_seed[first] - sum(rest) / len(rest))
    return evidence.Estimate(tuple(gaps), "selected run minus its replicates") if gaps else None


def selection_bias_report(preset: str) -> str:
    """One markdown sentence on :func:`selection_bias` at ``preset``: how far the selected
    runs read above their replicates, with 2 standard errors, and what that means."""
    bias = selection_bias(preset)
    if bias is None:
        return (f"No config at the `{preset}` preset has 2 seed replicates yet, so the "
                "selected runs' optimism (the winner's curse) is not measured.")
    if bias.n < 2:
        return (f"One replicated config at the `{preset}` preset: its selected run reads "
                f"{100 * bias.mean:+.2f} pts against its replicates (too few to say more).")
    se = bias.sd / bias.n ** 0.5
    verdict = ("above them beyond 2 standard errors (the winner's curse), so a mean over 3 "
               "seeds that includes the selected run reads about a third of that too high"
               if bias.mean > 2 * se else "within 2 standard errors of them")
    return (f"Across the {bias.n} replicated configs at the `{preset}` preset, the "
            f"validation-selected run reads **{100 * bias.mean:+.2f} pts** "
            f"(±{200 * se:.2f} at 2 SE) against the mean of its own seed replicates: "
            f"{verdict}.")


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
    return (f"{len(items)} point{'s' if len(items) != 1 else ''} this chapter reads "
            f"{'are' if len(items) != 1 else 'is'} read by other chapters from another "
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


def edge_report(tables: Any, preset: str | None = None, queued: Any = None) -> str:
    """How many selected configs sit at a grid edge (see :func:`at_edge`), in one line.

    At the cpu preset (the one with a background queue) or with ``queued`` (a set of
    :func:`point_hash`, ``queue_plan.queued_points()``) it splits them: those at a point a
    queue item trains, which it grows for every arm of that length alike, and those at points
    no item trains further (kept as trained). Otherwise nothing is said about growing them.
    """
    import pandas as pd

    from kdlib.experiments.verdict_tables import frames

    if queued is None and preset == "cpu":
        from kdlib.experiments import queue_plan

        queued = queue_plan.queued_points()

    named = tables.items() if isinstance(tables, Mapping) else ((None, t) for t in frames(tables))
    rows = pd.concat([t.assign(table_name=name) for name, t in named])
    edge = rows[rows["at_edge"].fillna("").astype(bool)]
    end = (rows[rows["at_ladder_end"].fillna("").astype(bool)] if "at_ladder_end" in rows
           else rows.iloc[:0])
    probed = (end["beyond_probe"].fillna("") == "behind" if "beyond_probe" in end
              else pd.Series(False, index=end.index))
    bracketed, end = end[probed], end[~probed]
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


def _replicates(base: RunConfig, result: sweep.SweepResult, seeds: int, train_it: bool,
                progress: bool) -> list[Any]:
    """The seed replicates of ``result``'s selected config: ``seeds`` - 1 of them trained
    (``train_it``) or else those stored, and any stored beyond them up to :data:`MAX_SEEDS`."""
    from kdlib import store

    point = result.best_point
    if point is None or seeds <= 1:
        return []
    selected = base.replace(**point)
    configs = [replicate(selected, selected.seed + k) for k in range(1, max(seeds, MAX_SEEDS))]
    trained = [train.run(c, progress=progress) for c in configs[:seeds - 1]] if train_it else []
    return trained + [r for c in configs[len(trained):] if (r := store.fresh_run(c)) is not None]


def describe(arms: Arms) -> list[dict[str, Any]]:
    """One row per (arm, epochs): what is trained, for the notebook's setup table. The grid is
    the one each arm starts from; the evidence extras grow it where a selected run sits at its
    edge (the results table's ``grid`` column says what was read)."""
    rows = []
    for arm, by_epochs in arms.items():
        for ep, (cfg, axes) in by_epochs.items():
            n = 1
            for values in axes.values():
                n *= len(values)
            rows.append({"arm": arm, "epochs": ep, "train images": cfg.data.train_size,
                         "policy": cfg.policy, "loss": cfg.loss, "optimizer": cfg.optimizer,
                         "base grid": ", ".join(f"{k}={v}" for k, v in axes.items()),
                         "base runs": n})
    return rows


def selection_noise(result: sweep.SweepResult, val_noise: Any,
                    test_means: Mapping[str, float] | None = None) -> float:
    """:func:`kdlib.evidence.selection_sd` of ``result``'s selected point: its grid's finished
    runs re-selected under ``val_noise`` (a :class:`kdlib.evidence.Noise` of ``val_acc``, read
    at the point's regime); 0 for a one-run grid or no selection. Each run's test accuracy is
    its config's mean over every stored seed in any chapter where ``test_means``
    (:func:`store_means`) has it: a single run's test carries its seed's noise, and another
    chapter may have replicated the config this one passed over."""
    from kdlib import evidence

    best = result.best
    if best is None:
        return 0.0
    runs = [r for r in result.runs if r.status == "done"
            and all(isinstance(r.summary.get(m), int | float) for m in ("val_acc", "test_acc"))]
    val = [float(r.summary["val_acc"]) for r in runs]
    means = test_means or {}
    test = [float(means.get(config_key(r.config), r.summary["test_acc"])) for r in runs]
    selected = next(i for i, r in enumerate(runs) if r is best)
    return evidence.selection_sd(val, test, selected,
                                 val_noise.sd_for(noise_regime(best.config)))


def results_table(results: dict[str, dict[float, sweep.SweepResult]],
                  val_noise: Any | None = None,
                  test_means: Mapping[str, float] | None = None) -> Any:
    """Long table, one row per (arm, epochs), of the selected config over its seeds.

    ``test_acc`` and ``train_loss`` are means over the seeds (the selected run and its
    replicates), ``test_acc_sd`` their standard deviation (NaN below 2 seeds), ``n_seeds``
    their number and ``test_acc_seeds`` the values (the selected run's first), of which those
    from ``followup_from`` on are seeds a follow-up trained past :data:`SEEDS` (``n_seeds``
    when none: :attr:`kdlib.evidence.Estimate.followup_from`), ``regime`` whose seed noise
    applies (:func:`noise_regime`); ``test_acc_selected`` and ``val_acc`` are
    the validation-selected run's; ``grid`` the swept values and ``at_edge`` the axes whose
    selected value is the grid's edge (see :func:`at_edge`), ``at_ladder_end`` those at the
    ladder's end (:func:`at_ladder_end`), ``beyond_probe`` whether the stored probe one lr
    step past that end is "behind" or "ahead" on validation (""; none stored:
    :func:`kdlib.experiments.ladder_probe.beyond_reading`); ``select_sd`` how far the point
    moves when its grid
    is selected again under ``val_noise`` (:func:`selection_noise`; by default the seed noise
    of ``val_acc`` and the configs' mean test accuracies stored at the results' preset,
    :func:`store_noise` and :func:`store_means`).
    """
    import numpy as np
    import pandas as pd

    from kdlib import plots

    if val_noise is None:
        presets_seen = {r.best.config["preset"] for by_epochs in results.values()
                        for r in by_epochs.values() if r.best is not None}
        if len(presets_seen) > 1:
            raise ValueError(f"results of several presets {sorted(presets_seen)}: a table "
                             "reads one preset's noise")
        preset = presets_seen.pop() if presets_seen else "smoke"
        val_noise = store_noise(preset, "val_acc")
        test_means = store_means(preset) if test_means is None else test_means

    table = plots.arm_table(results, metric="test_acc")
    table = table.rename(columns={"test_acc": "test_acc_selected"})
    rows = []
    ladders_at = {ep: comparison_ladders([
        r.base_config if r.base_config is not None else r.best.config if r.best else None
        for by in results.values() for e, r in by.items() if e == ep])
        for ep in {e for by in results.values() for e in by}}
    for arm, by_epochs in results.items():
        for ep, result in by_epochs.items():
            accs = result.seed_values("test_acc")
            losses = result.seed_values("train_loss")
            first = (SEEDS.get(result.best.config.get("preset"), 1) if result.best else 1)
            followup_from = sum(k < first for k in result.seed_offsets("test_acc"))
            sd = float(np.std(accs, ddof=1)) if len(accs) > 1 else np.nan
            ladders = ladders_at[ep]
            axes: dict[str, list[Any]] = {}
            for point in result.points:
                for k, v in point.items():
                    axes.setdefault(k, [])
                    if v not in axes[k]:
                        axes[k].append(v)
            rows.append({
                "arm": arm, "epochs": ep,
                "test_acc": float(np.mean(accs)) if accs else np.nan,
                "test_acc_sd": sd, "yerr": 0.0 if np.isnan(sd) else sd,
                "n_seeds": len(accs), "test_acc_seeds": [round(a, 6) for a in accs],
                "followup_from": followup_from,
                "train_loss": float(np.mean(losses)) if losses else np.nan,
                "train_loss_seeds": [round(v, 6) for v in losses],
                "regime": noise_regime(result.best.config) if result.best else None,
                "point": (point_hash(result.base_config) if result.base_config is not None
                          else point_hash(result.best.config) if result.best else None),
                "grid": "; ".join(f"{k}={sorted(v)}" for k, v in axes.items()),
                "at_edge": ", ".join(at_edge({k: sorted(v) for k, v in axes.items()},
                                             result.best_point, ladders)),
                "at_ladder_end": (end := ", ".join(at_ladder_end(
                    {k: sorted(v) for k, v in axes.items()}, result.best_point, ladders))),
                "beyond_probe": _beyond_probe(result) if "lr" in end else "",
                "select_sd": selection_noise(result, val_noise, test_means),
            })
    return table.merge(pd.DataFrame(rows), on=["arm", "epochs"], how="left")


def _beyond_probe(result: sweep.SweepResult) -> str:
    """:func:`kdlib.experiments.ladder_probe.beyond_reading` of a point selected at the lr
    ladder's end: "behind" where the stored probe at the next lr brackets its optimum."""
    from kdlib.experiments import ladder_probe

    best = result.best
    if best is None or "val_acc" not in best.summary:
        return ""
    return ladder_probe.beyond_reading(dict(best.config), float(best.summary["val_acc"]))


def seed_columns(result: sweep.SweepResult) -> dict[str, Any]:
    """The selected point's test accuracy as a paper-shaped table shows it: the mean over the
    selected config's seeds (%, what the verdicts read), their sd and count, and the selected
    run's own (which reads optimistic: it won its grid on validation)."""
    import numpy as np

    accs = result.seed_values("test_acc")
    best = result.best
    if not accs or best is None:
        return {"test accuracy (%)": np.nan, "sd": np.nan, "seeds": 0,
                "selected run (%)": np.nan}
    return {"test accuracy (%)": round(100 * float(np.mean(accs)), 2),
            "sd": round(100 * float(np.std(accs, ddof=1)), 2) if len(accs) > 1 else np.nan,
            "seeds": len(accs), "selected run (%)": round(100 * best.summary["test_acc"], 2)}


def seed_cells(table: Any, arms: Sequence[str] | None = None) -> Any:
    """:func:`results_table` as an arm x schedule-length grid of text cells: the test
    accuracy's mean over the selected config's seeds (%), ± their standard deviation where
    there are 2 or more, and the number of seeds, e.g. ``85.52 ±0.14 (n=3)`` or
    ``69.38 (n=1)``, and how many of them a seed follow-up added (``(n=8, 5 follow-up)``);
    rows in ``arms`` order when given."""
    import pandas as pd

    def cell(row: Any) -> str:
        if pd.isna(row["test_acc"]):
            return ""
        sd = "" if pd.isna(row["test_acc_sd"]) else f" ±{100 * row['test_acc_sd']:.2f}"
        n, first = int(row["n_seeds"]), row.get("followup_from")
        new = n - int(first) if first is not None and pd.notna(first) else 0
        return f"{100 * row['test_acc']:.2f}{sd} (n={n}" + (f", {new} follow-up)" if new > 0
                                                           else ")")

    grid = table.assign(cell=table.apply(cell, axis=1)).pivot(
        index="arm", columns="epochs", values="cell").fillna("")
    grid.columns = [f"{ep:g} epochs" for ep in grid.columns]
    return grid.loc[list(arms)] if arms is not None else grid


def throughput_table(results: dict[str, dict[float, sweep.SweepResult]]) -> Any:
    """Measured speed of the selected run per (arm, epochs): img/s, training seconds, group,
    and the lowest and highest img/s of its seeds (``seed_img_per_s_*``, over ``n_seeds``).

    ``img_per_s`` counts batch images per second of the whole vectorized group (its runs
    share views and the teacher forward pass), so compare arms with equal group sizes. The
    seeds of one config train the same program at other times, so their range shows how
    much the machine's load, not the code, moves a run's own speed.
    """
    import pandas as pd

    rows = []
    for arm, by_epochs in results.items():
        for ep, result in by_epochs.items():
            best = result.best
            summary = best.summary if best is not None else {}
            seeds = [float(r.summary["img_per_s"]) for r in result.seed_runs("img_per_s")]
            rows.append({"arm": arm, "epochs": ep, "img_per_s": summary.get("img_per_s"),
                         "train_time_s": summary.get("train_time_s"),
                         "group_size": summary.get("group_size"),
                         "seed_img_per_s_min": min(seeds, default=None),
                         "seed_img_per_s_max": max(seeds, default=None),
                         "n_seeds": len(seeds)})
    return pd.DataFrame(rows, columns=list(THROUGHPUT_COLUMNS))


THROUGHPUT_COLUMNS = ("arm", "epochs", "img_per_s", "train_time_s", "group_size",
                      "seed_img_per_s_min", "seed_img_per_s_max", "n_seeds")


def model_costs(experiment: Arms, num_classes: int = 10, in_channels: int = 1
                ) -> list[dict[str, Any]]:
    """Per arm: resolutions, forward MFLOPs of student and teacher(s) per image, parameters,
    and the student's measured inference speed here (img/s, batches of 256).

    The teachers' FLOPs are counted when they are stored (``teachers.available``).
    """
    rows = []
    teacher_flops: dict[tuple[str, int], float] = {}  # arms share teachers: count each once

    def flops_of(name: str, size: int) -> float:
        if (name, size) not in teacher_flops:
            shape = (1, size, size, in_channels)
            teacher_flops[name, size] = profiling.forward_flops(teachers.load(name)[0], shape)
        return teacher_flops[name, size]

    for arm, by_epochs in experiment.items():
        cfg = next(iter(by_epochs.values()))[0]
        t_sizes = teacher_sizes(cfg)
        kwargs = train.student_kwargs(cfg, num_classes, in_channels)
        student = teachers.build(cfg.student.name, kwargs)
        s_shape = (1, cfg.student_size, cfg.student_size, in_channels)
        t_flops = None
        if all(n in teachers.available() for n in cfg.teachers):
            t_flops = sum(flops_of(n, size)
                          for n, size in zip(cfg.teachers, t_sizes, strict=True)) / 1e6
        t_px = t_sizes[0] if len(set(t_sizes)) == 1 else " + ".join(map(str, t_sizes))
        rows.append({"arm": arm, "teacher px": t_px, "student px": cfg.student_size,
                     "student MFLOPs": profiling.forward_flops(student, s_shape) / 1e6,
                     "student params": models.count_params(student),
                     "student img/s": profiling.forward_throughput(
                         student, (256, *s_shape[1:])),
                     "teacher MFLOPs": t_flops})
    return rows


def save_table(table: Any, preset: str, section: str, name: str) -> Any:
    """Writes ``table`` as results/<preset>/<section>/table_<name>.csv (atomically)."""
    from kdlib import store

    path = store.results_root() / presets.check(preset) / section / f"table_{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes_atomic(path, table.to_csv(index=False).encode())
    return path
