"""Statistics over every run stored at a preset, whichever chapter trained it: the seed noise
the verdicts read (:func:`store_noise`, per :func:`kdlib.experiments.run_keys.noise_regime`),
each config's mean over its seeds (:func:`store_means`) and the winner's curse of the
validation-selected runs (:func:`selection_bias`). Reads config and summary files only."""

from __future__ import annotations

from typing import Any

from kdlib import presets
from kdlib.experiments.run_keys import config_key, noise_regime


def _stored_seeds(preset: str, metric: str, root: Any = None,
                  loss: tuple[str | None, float | None] | None = None
                  ) -> dict[str, tuple[str, dict[int, float]]]:
    """Each config stored at ``preset`` (:func:`config_key`: without seed and section, the
    chapters' runs of one config together) -> (its noise regime, ``metric`` of each finished
    seed by seed). A seed stored by several chapters counts once, as the run every chapter
    reads (:func:`kdlib.store.fresh_run`; the copies it shadows are left out). With ``loss``
    (a (loss, temperature) pair), only the configs trained on that objective. Reads config
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
        if loss is not None and (config.get("loss"), config.get("temperature")) != loss:
            continue
        by_seed = families.setdefault(config_key(config), (noise_regime(config), {}))[1]
        by_seed.setdefault(int(config.get("seed", 0)), float(stored[metric]))
    return families


def store_means(preset: str, metric: str = "test_acc", root: Any = None) -> dict[str, float]:
    """:func:`config_key` -> the mean of ``metric`` over every finished seed stored at
    ``preset`` in any chapter: the best estimate of a config's accuracy the store holds (a
    config one chapter selected and replicated may be an unselected grid run in another)."""
    return {key: sum(by_seed.values()) / len(by_seed)
            for key, (_, by_seed) in _stored_seeds(preset, metric, root=root).items()}


def store_noise(preset: str, metric: str = "test_acc", root: Any = None,
                loss: tuple[str | None, float | None] | None = None) -> Any:
    """The pooled seed noise of ``metric`` over the replicated configs stored at ``preset``,
    per :func:`noise_regime` (:func:`kdlib.seed_noise.pooled_noise_by_regime`).

    Runs whose configs differ only in the seed (and the subset seed a replicate pins) are one
    config's seeds; every such set with 2 or more finished runs contributes. A training loss
    is in its objective's units, so its noise pools the configs of one ``loss`` (a (loss,
    temperature) pair, e.g. ``("kl", 1.0)``) only: cross-entropy, DIST and KL at another
    temperature read on other scales. Reads config and summary files only.
    """
    from kdlib import evidence

    sets: dict[str, list[list[float]]] = {}  # regime -> each family's values
    for regime, by_seed in _stored_seeds(preset, metric, root=root, loss=loss).values():
        sets.setdefault(regime, []).append(list(by_seed.values()))
    return evidence.pooled_noise_by_regime(sets, metric)


def store_noise_table(preset: str, metric: str = "test_acc", root: Any = None) -> Any:
    """:func:`store_noise` as a table (:func:`kdlib.seed_noise.noise_pools`): one row per
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
