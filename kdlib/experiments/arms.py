"""Running a chapter's arms, and the tables of what they gave.

An experiment is ``{arm: {epochs: (base_config, axes)}}`` (:data:`Arms`, built by the chapter
recipes on :mod:`kdlib.experiments.common`). :func:`run_arms` trains or loads every sweep with
the same budget per arm, grows a grid whose selected run sits at its edge
(:mod:`kdlib.experiments.grids`), and adds seed replicates of each selected config
(:data:`SEEDS`); :func:`results_table`, :func:`throughput_table` and :func:`model_costs` turn
the results into the chapters' tables. What identifies a run (:mod:`~.run_keys`), the
statistics over the whole store (:mod:`~.store_stats`) and the points several chapters read
(:mod:`~.shared_points`) live beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from kdlib import models, presets, profiling, sweep, teachers, train
from kdlib.config import RunConfig, teacher_sizes
from kdlib.experiments.grids import (
    at_edge,
    at_ladder_end,
    comparison_ladders,
    extended_axes,
    widen,
)
from kdlib.experiments.run_keys import config_key, noise_regime, point_hash
from kdlib.experiments.store_stats import store_means, store_noise

Arms = dict[str, dict[float, tuple[RunConfig, dict[str, list[Any]]]]]


# Seeds per reported point (the selected config's seed replicates included); a verdict reads
# means over these. smoke trains 2 (the replicate path is tested, in seconds).
SEEDS = {"smoke": 2, "cpu": 3, "gpu": 3, "paper": 1}
# A point reads every stored seed of its selected config up to this many (the seeds a
# follow-up trained past SEEDS: kdlib.experiments.queue_plan.ITEM_SEEDS).
MAX_SEEDS = 8


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


def _sweep(cfg: RunConfig, axes: Mapping[str, list[Any]], train_it: bool, progress: bool
           ) -> sweep.SweepResult | None:
    if train_it:
        return train.sweep(cfg, dict(axes), progress=progress)
    return sweep.load_sweep(cfg, dict(axes))


def run_arms(arms: Mapping[str, Mapping[float, tuple[RunConfig, dict[str, list[Any]]]]],
             *, progress: bool = True, extras: bool | None = None, seeds: int | None = None,
             train_singles: Callable[[Sequence[RunConfig]], None] | None = None,
             ) -> dict[str, dict[float, sweep.SweepResult]]:
    """Trains (or loads) every sweep of every arm; ``{arm: {epochs: SweepResult}}``.

    The base grids are always trained when missing. Then the evidence extras: at each length,
    the short-schedule temperatures (:func:`extended_axes`) and, while some arm's selected run
    sits at a grid edge (:func:`at_edge`), the next value for every arm at that length alike;
    then ``seeds`` - 1 seed replicates of each selected config (default :data:`SEEDS`), a
    config selected at the lr ladder's end only once its probe is behind (:func:`_probe_leads`).
    ``extras`` False (default at cpu: :func:`train_extras_default`) only loads extras that are
    stored, a length's grown grid only when every arm's is, so budgets stay equal.
    ``train_singles`` trains the probes, then the seed replicates, of every arm and length that
    are not stored yet, each as one batch (the queue's side-by-side workers,
    :mod:`kdlib.experiments.queue_workers`: replicates of different arms share a batch); by
    default one after another, here.
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
    grids_held: dict[tuple[str, float], tuple[dict[str, list[Any]], Any]] = {}
    for ep in sorted({ep for by in arms.values() for ep in by}):
        names = [a for a in arms if ep in arms[a]]
        swept = {a: dict(arms[a][ep][1]) for a in names}  # the grids results[a][ep] holds
        axes = {a: extended_axes(arms[a][ep][0], swept[a]) for a in names}
        ladders = comparison_ladders([arms[a][ep][0] for a in names])
        while True:
            found = {a: results[a][ep] if axes[a] == swept[a]
                     else _sweep(arms[a][ep][0], axes[a], extras, progress) for a in names}
            if any(r is None for r in found.values()):
                break  # not all stored (load-only): keep the last complete grid
            complete = cast(dict[str, sweep.SweepResult], found)  # none is None (above)
            for a in names:
                results[a][ep] = complete[a]
            swept = axes
            axes = {a: widen(axes[a], [complete[b].best_point for b in names], ladders)
                    for a in names}
            if axes == swept:
                break
        grids_held.update({(a, ep): (swept[a], ladders) for a in names})
    replicating = extras and seeds > 1
    points = [(arms[arm][ep][0], result, *grids_held[(arm, ep)])
              for arm, by_epochs in results.items() for ep, result in by_epochs.items()]
    if replicating and train_singles is not None:  # every probe, side by side
        _train_missing(train_singles, [c for point in points if (c := _probe(*point))])
    train_its = [replicating and not _probe_leads(*point, progress)  # probed only to replicate
                 for point in points]
    if train_singles is not None:  # every replicate of the item, side by side
        _train_missing(train_singles, [
            c for (base, result, *_), train_it in zip(points, train_its, strict=True)
            if train_it for c in _replicate_configs(base, result, seeds)[:seeds - 1]])
    for (base, result, *_), train_it in zip(points, train_its, strict=True):
        result.replicates = _replicates(base, result, seeds, train_it, progress)
    return results


def _train_missing(train_singles: Callable[[Sequence[RunConfig]], None],
                   configs: Sequence[RunConfig]) -> None:
    """``train_singles`` over the ``configs`` the store does not hold yet (a stored one would
    only hold a batch's slot to be loaded), in their order."""
    from kdlib import store

    if missing := [c for c in configs if store.fresh_run(c) is None]:
        train_singles(missing)


def _probe(base: RunConfig, result: sweep.SweepResult, axes: Mapping[str, list[Any]],
           ladders: Mapping[str, tuple[float, ...]]) -> RunConfig | None:
    """The probe :func:`_probe_leads` reads for ``result``'s selected config: one lr step past
    the ladder's end where it was selected there (seed 0), else None."""
    from kdlib.config import config_to_dict
    from kdlib.experiments import ladder_probe

    point = result.best_point
    if point is None or "lr" not in at_ladder_end(axes, point, ladders):
        return None
    selected = base.replace(**point)
    if selected.lr not in ladder_probe.STEPS:
        return None
    return ladder_probe.probe_config(config_to_dict(selected))


def _probe_leads(base: RunConfig, result: sweep.SweepResult, axes: Mapping[str, list[Any]],
                 ladders: Mapping[str, tuple[float, ...]], progress: bool) -> bool:
    """For a run selected at the lr ladder's end, trains (or loads) the probe one step beyond
    (:func:`kdlib.experiments.ladder_probe.probe_config`, seed 0) before any seed replicate,
    and says whether it leads on validation: then the ladder is too short there, and the
    replicates wait until the comparison's ladder grows (grids.LADDER_BEYOND), instead of
    replicating a point the grown grid may no longer select (since 2026-12-06)."""
    from kdlib.experiments import ladder_probe

    config = _probe(base, result, axes, ladders)
    if config is None:
        return False
    selected = base.replace(**cast(dict[str, Any], result.best_point))
    probe = train.run(config, progress=progress)
    best = result.best
    if best is None:  # not reached: best_point is not None
        raise ValueError("the sweep has a selected point but no selected run")
    val_acc = float(best.summary["val_acc"])
    if not ladder_probe.probe_ahead(probe, val_acc):
        return False
    print(f"{selected.section} {selected.policy} at {selected.epochs:g} epochs: lr "
          f"{probe.config['lr']:g} leads lr {selected.lr:g} on validation "
          f"({float(probe.summary['val_acc']):.4f} vs {val_acc:.4f}); its seed replicates wait "
          "until this comparison's ladder grows (kdlib.experiments.grids.LADDER_BEYOND)",
          flush=True)
    return True


def _replicate_configs(base: RunConfig, result: sweep.SweepResult, seeds: int
                       ) -> list[RunConfig]:
    """The configs of ``result``'s selected config's seed replicates, up to
    max(``seeds``, :data:`MAX_SEEDS`) seeds in all ([] without a selection or for 1 seed)."""
    point = result.best_point
    if point is None or seeds <= 1:
        return []
    selected = base.replace(**point)
    return [replicate(selected, selected.seed + k) for k in range(1, max(seeds, MAX_SEEDS))]


def _replicates(base: RunConfig, result: sweep.SweepResult, seeds: int, train_it: bool,
                progress: bool) -> list[Any]:
    """The seed replicates of ``result``'s selected config: ``seeds`` - 1 of them trained
    (``train_it``; loaded where the queue's workers stored them already) or else those
    stored, and any stored beyond them up to :data:`MAX_SEEDS`."""
    from kdlib import store

    configs = _replicate_configs(base, result, seeds)
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
    runs re-selected under ``val_noise`` (a :class:`kdlib.seed_noise.Noise` of ``val_acc``, read
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
            first = (SEEDS.get(result.best.config.get("preset", ""), 1) if result.best else 1)
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
    ``69.38 (n=1)``, how many of them a seed follow-up added (``(n=8, 5 follow-up)``), and
    ``grid edge`` where the selection sits at a grid edge the ladder goes beyond (its grid
    may not hold the optimum, as :meth:`kdlib.evidence.Estimate.text` marks it); rows in
    ``arms`` order when given."""
    import pandas as pd

    def cell(row: Any) -> str:
        if pd.isna(row["test_acc"]):
            return ""
        sd = "" if pd.isna(row["test_acc_sd"]) else f" ±{100 * row['test_acc_sd']:.2f}"
        n, first = int(row["n_seeds"]), row.get("followup_from")
        new = n - int(first) if first is not None and pd.notna(first) else 0
        edge = row.get("at_edge")
        notes = [f"n={n}", *([f"{new} follow-up"] if new > 0 else []),
                 *(["grid edge"] if isinstance(edge, str) and edge else [])]
        return f"{100 * row['test_acc']:.2f}{sd} ({', '.join(notes)})"

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
