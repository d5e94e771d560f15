"""Does the current code still train the numbers a stored run recorded? Retrain and compare.

A stored run is reused by the book without retraining, so a change of the engine that moved
its numbers would go unseen. :func:`retrain_check` retrains a stored run's config in a scratch
results folder, alone, and compares its final metrics with the stored ones: exactly equal when
nothing that shapes the numbers differs (see :func:`same_machine`), else within a tolerance
(float reduction order differs with a run's vectorized group mates, jax versions and CPUs).

    python -m kdlib.retrain results/cpu/02_patience/d6d7985b9885
    python -m kdlib.retrain --families          # the shortest stored run of every family
    python -m kdlib.retrain --families --record results/cpu/store_check.json   # kept, resumable
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from kdlib import store
from kdlib.config import config_from_dict
from kdlib.fileio import read_json

# Runs shorter than this retrain in the test suite (a rolled chunk: seconds to compile); the
# families whose shortest stored run is longer are checked by ``--families`` (make verify-store).
CHEAP_STEPS = 100

# Within-machine float noise of a short run is far below this; a seed changes more.
TOLERANCE = {"test_acc": 0.02, "val_acc": 0.02, "train_loss": 0.01}
# A retrain that is not equal to the bit (another machine or group: another float order)
# diverges from the stored run like another seed does, most where runs spread most (short
# schedules): beyond TOLERANCE it is read against the seed noise measured for the run's regime,
# NOISE_K standard deviations of a difference of two runs (sqrt(2) per-run sds).
NOISE_K = 2.0


def noise_bounds(preset: str, config: dict[str, Any], noises: dict[Any, Any] | None = None,
                 root: str | Path | None = None) -> dict[str, float]:
    """Per metric of :data:`TOLERANCE`: ``NOISE_K`` standard deviations of the difference of
    two runs, from the seed noise stored at ``preset`` (under ``root``) for ``config``'s
    regime (:func:`kdlib.experiments.common.store_noise`), a training loss's from the configs
    of its own objective (loss and temperature: other objectives read on other scales).
    ``noises`` caches them across calls (filled as read)."""
    from kdlib import evidence
    from kdlib.experiments import run_keys, store_stats

    regime = run_keys.noise_regime(config)
    noises = {} if noises is None else noises
    bounds = {}
    for metric in TOLERANCE:
        loss = (None if metric in evidence.ACCURACIES
                else (config.get("loss"), config.get("temperature")))
        if (metric, loss) not in noises:
            noises[metric, loss] = store_stats.store_noise(preset, metric, root, loss=loss)
        bounds[metric] = NOISE_K * math.sqrt(2) * noises[metric, loss].sd_for(regime)
    return bounds


def stored_name(run_dir: str | Path) -> str:
    """A stored run's name in a store-check record: "<section>/<hash>"."""
    return f"{Path(run_dir).parent.name}/{Path(run_dir).name}"


def same_machine(provenance: dict[str, Any], as_trained: bool = False) -> bool:
    """Whether the run was trained on a machine like this one (the same processor model and
    flags, jax/jaxlib versions and XLA environment) and is retrained as it was trained (alone,
    or with ``as_trained`` in its own group): then a retrain may be bit-identical."""
    from kdlib import provenance as prov

    now, then = prov.machine(), provenance.get("machine", {})
    keys = ("machine", "cpu", "env")
    versions = ("jax", "jaxlib")
    alone = as_trained or provenance.get("batch_size", 1) == 1
    return (alone and all(then.get(k) == now.get(k) for k in keys)
            and all(then.get("versions", {}).get(v) == now["versions"].get(v) for v in versions))


def group_mates(record: store.RunRecord) -> tuple[list[store.RunRecord], str]:
    """The runs ``record`` was trained with as one vectorized group, in their group order, and
    how that is known: "recorded" (provenance["group"]), "reconstructed" (runs stored before
    groups were recorded: same folder, same start time and group key, as many as the recorded
    batch size, in hyper-parameter order, as the sweep's grid makes them) or "alone"."""
    from kdlib.train.optimizer import HPARAMS, group_key

    prov = record.provenance
    folder = record.path.parent
    if prov.get("group"):
        recorded = [store.load_run(folder / h) for h in prov["group"]]
        mates = [m for m in recorded if m is not None]
        if len(mates) == len(recorded):
            return mates, "recorded"
    size = int(prov.get("batch_size", 1))
    if size == 1:
        return [record], "alone"
    key = group_key(config_from_dict(record.config))
    section = store.list_runs(folder.parent.parent, folder.parent.name, folder.name)
    mates = [r for r in section if r.provenance.get("started_at") == prov.get("started_at")
             and group_key(config_from_dict(r.config)) == key]
    if len(mates) != size or record.hash not in {m.hash for m in mates}:
        raise ValueError(f"{record.path} was trained in a group of {size} that is not recorded "
                         f"and cannot be found ({len(mates)} runs share its start and key)")
    mates.sort(key=lambda r: tuple(float(r.config.get(h) or 0.0) for h in HPARAMS))
    return mates, "reconstructed"


def _compare(stored: dict[str, Any], summary: dict[str, Any], tolerance: dict[str, float]
             ) -> dict[str, Any]:
    """Final metrics stored vs retrained, their differences and whether they are exact/within."""
    metrics = {k: (float(stored[k]), float(summary[k])) for k in tolerance
               if k in stored and k in summary}
    diff = {k: abs(a - b) for k, (a, b) in metrics.items()}
    return {"metrics": metrics, "max_diff": diff, "exact": all(d == 0 for d in diff.values()),
            "within": all(diff[k] <= tolerance[k] for k in diff)}


def check_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path when it is a finished run's folder (config.json and summary.json),
    else a one-line ValueError naming it and what is missing: checked before any training."""
    run_dir = Path(run_dir)
    why = ("no such folder" if not run_dir.exists() else
           "a file, not a folder" if not run_dir.is_dir() else
           f"{store.CONFIG_FILE} missing: not a run folder"
           if not (run_dir / store.CONFIG_FILE).is_file() else
           f"{store.SUMMARY_FILE} missing: the run has not finished"
           if not (run_dir / store.SUMMARY_FILE).is_file() else None)
    if why is not None:
        raise ValueError(f"{run_dir} holds no finished run ({why}): give a stored run folder "
                         "such as results/cpu/<chapter>/<hash>")
    return run_dir


def retrain_check(run_dir: str | Path, tolerance: dict[str, float] | None = None,
                  with_group: bool = False) -> dict[str, Any]:
    """Retrains the stored run in ``run_dir`` (alone, or ``with_group``: with the runs it was
    trained with, as one group again) and compares its final metrics.

    Returns ``{"hash", "metrics": {name: (stored, retrained)}, "max_diff": {name: |diff|},
    "exact": bool, "within": bool, "same_machine": bool}``; ``with_group`` adds "group" (the
    hashes), "group_source" (:func:`group_mates`) and "mates": each mate's own comparison.
    """
    from kdlib import train

    tolerance = dict(TOLERANCE if tolerance is None else tolerance)
    run_dir = check_run_dir(run_dir)
    stored = store.load_run(run_dir)
    if stored is None:  # check_run_dir saw both files: only a race gets here
        raise ValueError(f"{run_dir} holds no finished run: give a stored run folder such as "
                         "results/cpu/<chapter>/<hash>")
    mates, source = group_mates(stored) if with_group else ([stored], "alone")
    configs = [config_from_dict(m.config) for m in mates]
    for mate, config in zip(mates, configs, strict=True):
        if store.config_hash(config) != mate.hash:
            raise ValueError(f"{mate.path}/config.json does not hash to {mate.hash}")
    with tempfile.TemporaryDirectory() as scratch:
        summaries = train.train_group(configs, [Path(scratch) / m.hash for m in mates],
                                      progress=False)
    by_hash = {m.hash: _compare(m.summary, s, tolerance)
               for m, s in zip(mates, summaries, strict=True)}
    result = {"hash": stored.hash, **by_hash[stored.hash],
              "same_machine": same_machine(stored.provenance, as_trained=with_group)}
    if with_group:
        result.update(group=[m.hash for m in mates], group_source=source,
                      mates={h: c for h, c in by_hash.items() if h != stored.hash})
    return result


def family(record: store.RunRecord) -> tuple[Any, ...]:
    """What selects a distinct path through the engine: the student's architecture, the loss,
    the optimizer, a pretrained init or not, the teachers (names: their architecture and view
    size), the training data, and where the teacher's views come from (the policy's mode)."""
    from kdlib.policies import teacher_mode

    c = record.config
    return (c["student"]["name"], c["loss"], c["optimizer"], c.get("init") is not None,
            tuple(c.get("teachers") or ()), c["data"]["name"], teacher_mode(c["policy"]))


def family_representatives(preset: str = "cpu", root: str | Path | None = None
                           ) -> dict[tuple[Any, ...], store.RunRecord]:
    """The shortest finished run (fewest steps, then hash) of every :func:`family` stored at
    ``preset``: what a retrain check covers at the least compute."""
    def shortness(record: store.RunRecord) -> tuple[int, str]:
        return int(record.summary.get("steps", 0)), record.hash

    best: dict[tuple[Any, ...], store.RunRecord] = {}
    for record in store.list_runs(root, preset):
        key = family(record)
        if record.status == "done" and (key not in best
                                        or shortness(record) < shortness(best[key])):
            best[key] = record
    return dict(sorted(best.items(), key=lambda kv: shortness(kv[1])))


def load_record(path: str | Path, with_group: bool = False) -> dict[str, Any]:
    """A store-check record written by ``--record``, or an empty one for the current commit
    (a record of another commit, or of the other retrain mode, is started over)."""
    from kdlib import provenance as prov

    path = Path(path)
    commit = prov.git_commit()
    if path.exists():
        record = _read_record(path)
        if record.get("commit") == commit and record.get("with_group", False) == with_group:
            return record
    return {"commit": commit, "machine": prov.machine(), "tolerance": TOLERANCE,
            "with_group": with_group, "checks": {}}


def _read_record(path: Path) -> dict[str, Any]:
    """The store-check record in ``path``; a one-line ValueError naming it when it is a folder
    or not such a record (a JSON object with a "checks" object), which a retrain would
    otherwise overwrite."""
    if not path.is_file():
        raise ValueError(f"{path} is not a file: give the JSON file of the store check (a new "
                         "file's path starts one)")
    record = read_json(path)  # a ValueError naming the file when it is not valid JSON
    if not isinstance(record, dict) or not isinstance(record.get("checks"), dict):
        raise ValueError(f"{path} is not a store-check record (a JSON object with a \"checks\" "
                         "object): give one that --record wrote, or a new file's path")
    return record


def describe_family(key: tuple[Any, ...]) -> str:
    """A :func:`family` key in words, e.g. "bit, kl, adam, random init, fmnist_bit_t28, ..."."""
    student, loss, optimizer, pretrained, teacher_names, data_name, mode = key
    return ", ".join([student, loss, optimizer, "pretrained init" if pretrained else "random init",
                      " + ".join(teacher_names) or "no teacher", data_name, f"teacher {mode}"])


def check_rows(preset: str = "cpu", root: str | Path | None = None,
               record_path: str | Path | None = None) -> tuple[dict[str, Any] | None, list[dict]]:
    """The store check as a table: one row per stored family, with the check kept for any run of
    that family in ``record_path`` (default ``<results>/<preset>/store_check.json``), or
    "not checked". Returns (the record's commit and tolerance, or None; the rows)."""
    record_path = Path(record_path) if record_path is not None else (
        store.results_root(root) / preset / "store_check.json")
    record = json.loads(record_path.read_text()) if record_path.exists() else None
    checks_by_family: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
    for name, check in (record or {}).get("checks", {}).items():
        stored = store.load_run(store.results_root(root) / preset / name)
        if stored is not None:
            checks_by_family.setdefault(family(stored), (name, check))
    rows = []
    noises: dict[Any, Any] = {}  # each metric's (and objective's) stored seed noise, once
    for key, representative in family_representatives(preset, root).items():
        name, check = checks_by_family.get(key, (stored_name(representative.path), None))
        row: dict[str, Any] = {"family": describe_family(key), "run": name}
        if check is None:
            row["verdict"] = "not checked"
        else:
            stored_test, retrained_test = check["metrics"].get("test_acc", (None, None))
            loaded = store.load_run(store.results_root(root) / preset / name)
            if loaded is None:  # read above, where its check was kept for its family
                raise ValueError(f"run {name} of the store check is no longer stored at "
                                 f"{preset!r}")
            config = loaded.config
            bounds = noise_bounds(preset, config, noises, root)
            in_noise = all((check["max_diff"].get(k) or 0.0) <= bounds[k] for k in TOLERANCE)
            row.update({
                "test acc stored": stored_test, "test acc retrained": retrained_test,
                **{f"|diff| {k}": check["max_diff"].get(k) for k in TOLERANCE},
                "seed-noise bound test_acc": round(bounds["test_acc"], 4),
                "verdict": ("equal to the bit" if check["exact"] else
                            "within tolerance" if check["within"] else
                            "within seed noise" if in_noise else "outside seed noise"),
            })
        rows.append(row)
    meta = None if record is None else {k: record.get(k) for k in ("commit", "tolerance")}
    return meta, rows


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m kdlib.retrain``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dirs", nargs="*", type=Path, help="stored run folders")
    p.add_argument("--families", action="store_true",
                   help="retrain the shortest stored cpu run of every family")
    p.add_argument("--with-group", action="store_true",
                   help="retrain each run with its group mates as one group again (as it was "
                        "trained: bit-identical on a machine like the one that trained it)")
    p.add_argument("--record", type=Path, default=None,
                   help="JSON file that keeps every check with the commit and machine, written "
                        "after each run; checks already in it at this commit are skipped")
    return p


def main(argv: list[str] | None = None) -> int:
    from kdlib import fileio
    from kdlib import provenance as prov

    parser_ = parser()
    args = parser_.parse_args(argv)
    run_dirs = list(args.run_dirs)
    if args.families:
        run_dirs += [record.path for record in family_representatives().values()]
    if not run_dirs:
        parser_.error("give stored run folders, or --families")
    try:  # bad input: one line, before anything trains
        kept = load_record(args.record, args.with_group) if args.record else None
    except ValueError as err:
        parser_.error(f"--record {err}")
    try:
        for run_dir in run_dirs:
            if kept is None or stored_name(run_dir) not in kept["checks"]:
                check_run_dir(run_dir)
    except ValueError as err:
        parser_.error(str(err))
    worst = 0
    for run_dir in run_dirs:
        name = stored_name(run_dir)
        if kept is not None and name in kept["checks"]:
            result = kept["checks"][name]
        else:
            started = time.time()
            result = retrain_check(run_dir, with_group=args.with_group)
            result["wall_s"] = round(time.time() - started, 1)
            result["checked_at"] = prov.iso_utc(started)
            if kept is not None:
                kept["checks"][name] = result
                fileio.write_json_atomic(args.record, kept)
        print(json.dumps(result))
        worst = max(worst, 0 if result["within"] else 1)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
