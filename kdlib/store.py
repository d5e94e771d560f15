"""Results store: one folder per run, addressed by a hash of its full config.

Layout: `<root>/<preset>/<section>/<config hash>/` holding
  config.json      written before training starts
  metrics.jsonl    appended by the engine while training (one JSON object per line)
  provenance.json  written after training
  summary.json     written LAST: a run is finished iff summary.json exists
  failed.json      written when train_fn raised (the run is not finished and is retried)
All JSON files are written atomically (temp file in the same folder, fsync, os.replace), so a
killed process leaves either the old file or the new one, never half of one
(:mod:`kdlib.fileio`, which also holds the metrics log). A config's hash is
:func:`kdlib.config.config_hash`. This module does the run store's job: run folders, the
commit protocol above, locking and listing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from kdlib.config import (  # noqa: F401  (re-exported: the store's names of old)
    HASH_LENGTH,
    HASH_NEUTRAL,
    canonical_json,
    check_folder_name,
    config_hash,
    config_to_dict,
)
from kdlib.fileio import (  # noqa: F401  (re-exported: the store's names of old)
    METRICS_FILE,
    MetricsLog,
    dumps_strict,
    json_ready,
    read_json,
    write_bytes_atomic,
    write_json_atomic,
)
from kdlib.provenance import provenance as make_provenance

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
PROVENANCE_FILE = "provenance.json"
FAILED_FILE = "failed.json"
LOCKS_DIR = ".locks"  # per-config training locks (config_lock), in each preset's folder
CHECKPOINT_DIR = "ckpt"  # resume checkpoints (kdlib.checkpoint), removed once the run is saved
# The input hashes an unfinished run started on (kdlib.inputs): it resumes only on the same
# files; removed once the run is saved (its provenance holds them then).
STARTED_INPUTS_FILE = "inputs.json"

FINISHED_STATUSES = ("done", "diverged")
STATUSES = ("done", "diverged", "failed", "running")
RESULTS_ENV = "KDLIB_RESULTS"


# --------------------------------------------------------------------------- paths


def find_repo_root(start: str | os.PathLike | None = None) -> Path:
    """Nearest folder at or above `start` (default CWD) holding pyproject.toml and kdlib/.

    Falls back to `start` itself when no such folder exists.
    """
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "kdlib").is_dir():
            return folder
    return here


def results_root(root: str | os.PathLike | None = None) -> Path:
    """The results root: `root` if given, else $KDLIB_RESULTS, else <repo root>/results."""
    if root is not None:
        return Path(root)
    from_env = os.environ.get(RESULTS_ENV)
    if from_env:
        if Path(from_env).exists() and not Path(from_env).is_dir():
            raise ValueError(f"{RESULTS_ENV}={from_env!r} is a file, not a folder: point it at "
                             "the folder results are stored in (or unset it for <repo>/results)")
        return Path(from_env)
    return find_repo_root() / "results"


def _path_part(config: Any, name: str) -> str:
    """Field `name` of the config, checked to be a safe single folder name."""
    if isinstance(config, Mapping):
        if name not in config:
            raise ValueError(f"config has no {name!r} key; a stored config needs preset+section")
        value = config[name]
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        if not hasattr(config, name):
            raise ValueError(
                f"config {type(config).__name__} has no field {name!r}; "
                "a stored config needs preset and section"
            )
        value = getattr(config, name)
    else:
        raise ValueError(f"config must be a dataclass or a mapping, got {type(config).__name__}")
    return check_folder_name(f"config.{name}", value)


def run_dir(config: Any, root: str | os.PathLike | None = None) -> Path:
    """Folder of a config's run: `<root>/<preset>/<section>/<config hash>`."""
    return (
        results_root(root)
        / _path_part(config, "preset")
        / _path_part(config, "section")
        / config_hash(config)
    )


# --------------------------------------------------------------------------- run records


@dataclasses.dataclass
class RunRecord:
    """One stored run: its config, summary, metrics history, provenance and status."""

    config: dict[str, Any]
    summary: dict[str, Any]
    history: list[dict[str, Any]]
    provenance: dict[str, Any]
    status: str
    path: Path

    @property
    def hash(self) -> str:
        """The config hash (the run folder's name)."""
        return self.path.name

    @property
    def finished(self) -> bool:
        """True for done and diverged runs (those with a summary.json)."""
        return self.status in FINISHED_STATUSES

    def get(self, key: str, default: Any = None) -> Any:
        """Look up `key` in the summary, then the config; dotted keys reach into nested dicts.

        Prefix with "config.", "summary." or "provenance." to pick the source explicitly.
        """
        sources = {"config": self.config, "summary": self.summary, "provenance": self.provenance}
        head, _, rest = key.partition(".")
        if head in sources and rest:
            return _dotted(sources[head], rest, default)
        missing = object()
        for source in (self.summary, self.config):
            value = _dotted(source, key, missing)
            if value is not missing:
                return value
        return default


def _dotted(tree: Mapping[str, Any], key: str, default: Any) -> Any:
    """tree["a"]["b"] for key "a.b", or `default` when any part is absent."""
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def save_run(
    path: str | os.PathLike,
    config: Any,
    summary: Mapping[str, Any],
    provenance: Mapping[str, Any],
    status: str,
) -> RunRecord:
    """Store a run's outcome in folder `path` and return its record.

    For "done"/"diverged": writes config.json, provenance.json, then summary.json LAST (the
    finished marker; its "status" key holds the status), removes a stale failed.json, then the
    run's resume checkpoints (``ckpt/``).
    For "failed": writes failed.json (summary holds the error); the run stays unfinished.
    """
    if status not in ("done", "diverged", "failed"):
        raise ValueError(f"status={status!r} cannot be saved; allowed: done, diverged, failed")
    if not isinstance(summary, Mapping):
        raise ValueError(f"summary must be a mapping, got {type(summary).__name__}")
    path = Path(path)
    config_dict = config_to_dict(config)
    write_json_atomic(path / CONFIG_FILE, config_dict)
    summary_dict = {**summary, "status": status}
    if status == "failed":
        write_json_atomic(
            path / FAILED_FILE, {"summary": summary_dict, "provenance": dict(provenance)}
        )
    else:
        write_json_atomic(path / PROVENANCE_FILE, dict(provenance))
        write_json_atomic(path / SUMMARY_FILE, summary_dict)
        (path / FAILED_FILE).unlink(missing_ok=True)
        # Resume checkpoints go only now that the result is durable.
        shutil.rmtree(path / CHECKPOINT_DIR, ignore_errors=True)
        (path / STARTED_INPUTS_FILE).unlink(missing_ok=True)
    return RunRecord(
        config=config_dict,
        summary=summary_dict,
        history=MetricsLog.in_run(path).read(),
        provenance=dict(provenance),
        status=status,
        path=path,
    )


def load_run(path: str | os.PathLike, *, finished_only: bool = True) -> RunRecord | None:
    """The record stored in folder `path`; None when absent or (by default) not finished.

    With finished_only=False an unfinished folder gives status "failed" (failed.json) or
    "running" (only config.json: training, or interrupted and resumable).
    """
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        return None
    history = MetricsLog.in_run(path).read
    if (path / SUMMARY_FILE).is_file():
        history = functools.partial(history, finished=True)
        summary = read_json(path / SUMMARY_FILE)
        if not isinstance(summary, dict):
            raise ValueError(f"{path / SUMMARY_FILE} holds a {type(summary).__name__}, not the "
                             "run's summary object: restore it (git checkout) or delete the "
                             "folder to retrain")
        status = summary.get("status", "done")
        if status not in FINISHED_STATUSES:
            raise ValueError(
                f"{path / SUMMARY_FILE} has status {status!r}; allowed: {FINISHED_STATUSES}"
            )
        prov_path = path / PROVENANCE_FILE
        prov = read_json(prov_path) if prov_path.is_file() else {}
        return RunRecord(read_json(path / CONFIG_FILE), summary, history(), prov, status, path)
    if finished_only:
        return None
    if (path / FAILED_FILE).is_file():
        failed = read_json(path / FAILED_FILE)
        return RunRecord(
            read_json(path / CONFIG_FILE),
            failed.get("summary", {}),
            history(),
            failed.get("provenance", {}),
            "failed",
            path,
        )
    return RunRecord(read_json(path / CONFIG_FILE), {}, history(), {}, "running", path)


def list_runs(
    root: str | os.PathLike | None = None,
    preset: str | None = None,
    section: str | None = None,
    *,
    include_unfinished: bool = False,
) -> list[RunRecord]:
    """All runs stored under `root` (optionally of one preset/section), sorted by path; a
    preset with no folder that is not a preset either, or a section with no folder under
    any preset searched, names the allowed ones (a typo would otherwise read no runs)."""
    from kdlib import presets as known

    base = results_root(root)
    if preset is not None and not (base / preset).is_dir():
        known.check(preset)
    # Only preset folders hold runs (results/teachers holds teacher cards, not runs).
    presets = ([base / preset] if preset is not None
               else [p for p in _subdirs(base) if p.name in known.PRESETS])
    searched = [p for p in presets if p.is_dir()]  # a preset with no runs yet reads none
    if section is not None and searched and not any((p / section).is_dir() for p in searched):
        stored = sorted({s.name for p in searched for s in _subdirs(p)})
        raise ValueError(f"section={section!r} has no folder under {base}"
                         + (f"/{preset}" if preset is not None else "")
                         + f"; the sections stored there: {stored}")
    records = []
    for preset_dir in presets:
        sections = [preset_dir / section] if section is not None else _subdirs(preset_dir)
        for section_dir in sections:
            for folder in _subdirs(section_dir):
                record = load_run(folder, finished_only=not include_unfinished)
                if record is not None:
                    records.append(record)
    return records


def _subdirs(folder: Path) -> list[Path]:
    """Sorted visible subfolders of `folder` ([] when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


# --------------------------------------------------------------------------- training


def check_summary(summary: Any) -> str:
    """Validate a train_fn summary and return its status ("done" unless it says "diverged")."""
    if not isinstance(summary, Mapping):
        raise ValueError(f"train_fn must return a dict summary, got {type(summary).__name__}")
    status = summary.get("status", "done")
    if status not in FINISHED_STATUSES:
        raise ValueError(
            f"train_fn summary has status={status!r}; allowed: {', '.join(FINISHED_STATUSES)}"
        )
    return status


def prepare_run(
    config: Any, root: str | os.PathLike | None = None, *, retrain: bool = False
) -> Path:
    """Create a run's folder and write config.json before training; retrain empties it first,
    and so does a finished (stale) run found there.

    Raises ValueError when the folder holds a different config (a hash collision).
    """
    path = run_dir(config, root)
    # A finished run is only prepared again when it is retrained or stale: start it afresh.
    if path.exists() and (retrain or (path / SUMMARY_FILE).is_file()):
        shutil.rmtree(path)
    for tmp in path.glob(".*.tmp"):  # left by a writer killed mid-write (the lock is held)
        tmp.unlink(missing_ok=True)
    stored = path / CONFIG_FILE
    if stored.is_file() and config_hash(read_json(stored)) != path.name:
        raise ValueError(f"{stored} holds a config whose hash is not {path.name}")
    path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(stored, config_to_dict(config))
    _restart_on_other_inputs(path, config)
    return path


def _restart_on_other_inputs(path: Path, config: Any) -> None:
    """An unfinished run resumes only on the input files it started on: where one changed (a
    retrained teacher, another copy of the data), its checkpoints and metrics log go and it
    trains from step 0, as a stale finished run is retrained. Records the inputs it starts
    or resumes on (:data:`STARTED_INPUTS_FILE`)."""
    from kdlib import inputs

    current = inputs.of(config)
    record = path / STARTED_INPUTS_FILE
    started = read_json(record) if record.is_file() else None
    if isinstance(started, dict) and (why := inputs.stale(started, current)):
        shutil.rmtree(path / CHECKPOINT_DIR, ignore_errors=True)
        (path / METRICS_FILE).unlink(missing_ok=True)
        inputs.log.warning("kdlib: unfinished run %s restarts from step 0: %s since it "
                           "started", path, "; ".join(why))
    write_json_atomic(record, current)


def earlier_wall(summary: dict[str, Any]) -> float:
    """Wall seconds a resumed run spent in processes before the one that finished it (the
    training loop's ``earlier_wall_time_s``; 0 for a run trained in one go)."""
    earlier = summary.get("earlier_wall_time_s")
    return float(earlier) if isinstance(earlier, (int, float)) else 0.0


def record_failure(config: Any, path: Path, error: BaseException, started_at: float) -> RunRecord:
    """Store failed.json for a run whose training raised `error`; return its record."""
    summary = {
        "error": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    }
    prov = make_provenance(
        config,
        wall_time_s=time.time() - started_at,
        started_at=started_at,
        extra={"config_hash": path.name},
    )
    return save_run(path, config, summary, prov, "failed")


@contextlib.contextmanager
def run_locks(paths: Iterable[str | os.PathLike]) -> Iterator[None]:
    """Holds an exclusive lock on each run folder (``.<hash>.lock`` beside it).

    Two processes that need the same run (notebooks run in parallel, sharing a chapter's
    runs) train it once: the second waits, then finds it stored. Locks are taken in sorted
    order, so processes locking overlapping groups cannot deadlock.
    """
    import fcntl

    files: list[IO[str]] = []
    try:
        for path in sorted({Path(p) for p in paths}):
            path.parent.mkdir(parents=True, exist_ok=True)
            handle: IO[str] = open(path.parent / f".{path.name}.lock", "w")  # noqa: SIM115
            files.append(handle)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        for handle in reversed(files):
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def config_lock(config: Any, root: str | os.PathLike | None = None) -> Path:
    """What :func:`run_locks` locks to train ``config``: one name per config whatever its
    section (``.locks/.<hash without section>.lock`` in the preset folder, a hidden folder no
    section is named like), so two chapters asking for copies of one config train it once
    (:func:`fresh_run`)."""
    own = run_dir(config, root)
    key = config_hash({**config_to_dict(config), "section": ""})
    return own.parent.parent / LOCKS_DIR / key


def twin_dirs(config: Any, root: str | os.PathLike | None = None) -> list[Path]:
    """Where a run of ``config`` may be stored: its folder in every section of its preset
    that holds runs, in section (chapter) order, its own section's included. The configs
    differ in ``section`` only, so they train the same numbers: one config, one run."""
    own = run_dir(config, root)
    base = own.parent.parent
    as_dict = config_to_dict(config)
    sections = sorted({e.name for e in os.scandir(base)
                       if e.is_dir() and not e.name.startswith(".")} | {own.parent.name}
                      ) if base.is_dir() else [own.parent.name]
    return [own if s == own.parent.name else base / s / config_hash({**as_dict, "section": s})
            for s in sections]


def fresh_run(config: Any, root: str | os.PathLike | None = None) -> RunRecord | None:
    """The finished stored run of ``config`` that saw today's input files, or None.

    One config, one run: a config that another chapter stored already (equal but for its
    ``section``) reads that run rather than training a copy; where several chapters hold one
    (trained before this rule), every chapter reads the first fresh one in section order
    (:func:`twin_dirs`), a choice that does not look at their numbers. Its config hash is
    checked; a run whose recorded input hashes differ from the current files' (a retrained
    teacher, another dataset file: :mod:`kdlib.inputs`) is stale and skipped, with a log line
    saying why.
    """
    from kdlib import inputs

    for path in twin_dirs(config, root):
        stored = load_run(path)
        if stored is None:
            continue
        if config_hash(stored.config) != stored.hash:
            raise ValueError(f"{stored.path} holds a config whose hash is not {stored.hash}")
        if inputs.check_fresh(stored.path, stored.provenance, config):
            return stored
    return None


def finished_configs(preset: str, root: str | os.PathLike | None = None
                     ) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, config) of every finished run stored at ``preset``, in section order: one
    scan that :func:`shadowed_runs` and :func:`read_copy` can share with their caller's."""
    base = results_root(root) / check_folder_name("preset", preset)
    return [(summary.parent, read_json(summary.parent / CONFIG_FILE))
            for summary in sorted(base.glob(f"*/*/{SUMMARY_FILE}"))]


def shadowed_runs(preset: str, root: str | os.PathLike | None = None,
                  finished: Iterable[tuple[Path, Mapping[str, Any]]] | None = None
                  ) -> dict[Path, Path]:
    """Finished runs no chapter reads because a copy of their config (equal but for its
    section) is the one :func:`fresh_run` gives every chapter: each such folder -> the folder
    read instead (copies whose inputs are all stale are left out: none is read).
    ``finished``: :func:`finished_configs`, when the caller has scanned the store already."""
    copies: dict[str, list[tuple[Path, Mapping[str, Any]]]] = {}
    for path, config in finished_configs(preset, root) if finished is None else finished:
        copies.setdefault(config_hash({**config, "section": ""}), []).append((Path(path), config))
    out: dict[Path, Path] = {}
    for group in copies.values():
        read = fresh_run(group[0][1], root) if len(group) > 1 else None
        if read is not None:
            out.update({p: read.path for p, _ in group if p != read.path})
    return out


def read_copy(preset: str, root: str | os.PathLike | None = None,
              finished: Iterable[tuple[Path, Mapping[str, Any]]] | None = None
              ) -> Callable[[Path], bool]:
    """Whether a finished run's folder is the one chapters read (:func:`fresh_run`), not a
    copy another section's run shadows (:func:`shadowed_runs`); for scans of the store."""
    shadowed = shadowed_runs(preset, root, finished)
    return lambda path: Path(path) not in shadowed


_stored = fresh_run


def input_record(config: Any) -> dict[str, Any]:
    """Provenance field ``inputs``: sha256 of each input file the run reads (kdlib.inputs)."""
    from kdlib import inputs

    current = inputs.of(config)
    return {inputs.PROVENANCE_KEY: current} if current else {}


def run_or_load(
    config: Any,
    train_fn: Callable[[Any, Path], Mapping[str, Any]],
    *,
    root: str | os.PathLike | None = None,
    retrain: bool = False,
) -> RunRecord:
    """Return the stored finished run of `config`, or train it with train_fn and store it.

    A stored run is reused only while its input files are unchanged (:func:`fresh_run`); a
    stale one is retrained in place. The input hashes go into its provenance (``inputs``).

    train_fn(config, run_dir) -> summary dict (status "diverged" if it diverged). An exception
    in train_fn is recorded in failed.json and re-raised; the folder stays for resuming.
    KeyboardInterrupt leaves the folder as "running". retrain=True empties the folder first.
    Another process training the same config, for any chapter, is waited for
    (:func:`run_locks` on :func:`config_lock`).
    """
    if not retrain and (stored := _stored(config, root)) is not None:
        return stored
    with run_locks([config_lock(config, root)]):
        if not retrain and (stored := _stored(config, root)) is not None:
            return stored  # finished by another process while this one waited
        path = prepare_run(config, root, retrain=retrain)
        started_at = time.time()
        seen = input_record(config)  # hashed before training: what the run reads
        try:
            summary = train_fn(config, path)
            status = check_summary(summary)
        except Exception as err:
            record_failure(config, path, err, started_at)
            raise
        summary = dict(summary)
        prov = make_provenance(
            config,
            wall_time_s=time.time() - started_at + earlier_wall(summary),
            started_at=started_at,
            extra={"config_hash": path.name, "group": summary.pop("group", None) or [path.name],
                   **seen},
        )
        return save_run(path, config, summary, prov, status)


# --------------------------------------------------------------------------- tables


def summaries_table(records: Iterable[RunRecord], keys: Sequence[str]) -> list[dict[str, Any]]:
    """One row per record: hash, status, and each key (summary first, then config; dotted ok).

    Missing values are None. Feed the rows to pandas.DataFrame in a notebook.
    """
    if isinstance(keys, str):
        raise ValueError(f"keys must be a list of names, got the string {keys!r}")
    return [
        {"hash": r.hash, "status": r.status, **{key: r.get(key) for key in keys}} for r in records
    ]
