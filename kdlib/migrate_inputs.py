"""Adds the input hashes (:mod:`kdlib.inputs`) to stored runs that predate them, from git.

``python -m kdlib.migrate_inputs [--results results] [--dry-run]``

A run stored before input hashes were recorded would count as stale and be retrained. The
files it read can be recovered instead: a teacher's (or pretrained init's) weights are those
committed at the run's recorded commit (``git show <commit>:results/teachers/<name>/
weights.npz``); when that commit is ``-dirty``, unknown, absent from the history or lacks the
file, the weights at the first commit that holds the run as stored (the commit of its
current summary.json) are used: the run was committed with the teachers it was trained
from. Dataset files are not in git: their current hashes are recorded (Debian's
Fashion-MNIST and scikit-learn's digits do not change).
Each migrated provenance gets ``inputs`` and ``inputs_migrated`` (the commit and the rule
used); runs that already have ``inputs`` are left alone. Prints the counts per rule.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from kdlib import inputs
from kdlib.fileio import read_json, write_json_atomic
from kdlib.store import PROVENANCE_FILE, SUMMARY_FILE, find_repo_root

RECORDED = "recorded commit"
FIRST_HOLDING = "commit that stored the run"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)


def blob_sha256(repo: Path, commit: str, path: str, cache: dict[str, str]) -> str | None:
    """sha256 of the file ``path`` at ``commit`` (None when the commit lacks it)."""
    blob = _git(repo, "rev-parse", "--verify", "--quiet", f"{commit}:{path}")
    if blob.returncode != 0:
        return None
    oid = blob.stdout.decode().strip()
    if oid not in cache:
        data = _git(repo, "cat-file", "blob", oid)
        if data.returncode != 0:
            return None
        cache[oid] = hashlib.sha256(data.stdout).hexdigest()
    return cache[oid]


def first_commit_holding(repo: Path, run_path: Path) -> str | None:
    """The commit that stored the run's current summary.json, the first to hold this run as
    it is (a retrained run rewrites it); None when it was never committed."""
    rel = run_path.resolve().relative_to(repo.resolve()) / SUMMARY_FILE
    done = _git(repo, "log", "-1", "--format=%H", "--", str(rel))
    commits = done.stdout.decode().split()
    return commits[0] if commits else None


def migrate_run(repo: Path, run_path: Path, cache: dict[str, str], *, dry_run: bool = False
                ) -> tuple[str, str | None]:
    """Adds ``inputs`` to one run's provenance; returns (rule used, commit) or a skip reason."""
    prov_path = run_path / PROVENANCE_FILE
    prov = read_json(prov_path)
    if inputs.PROVENANCE_KEY in prov:
        return "already recorded", None
    config = read_json(run_path / "config.json")
    files = inputs.files(config)
    teacher_keys = [k for k in files if k.startswith("teachers/")]
    recorded = str(prov.get("commit") or "")
    commit, rule = recorded, RECORDED
    if teacher_keys:
        clean = recorded and not recorded.endswith("-dirty") and recorded != "unknown"
        found = clean and all(
            blob_sha256(repo, recorded, f"results/{k}", cache) for k in teacher_keys)
        if not found:
            why = ("dirty" if recorded.endswith("-dirty") else
                   "unknown" if not recorded or recorded == "unknown" else "lacks a teacher")
            holding = first_commit_holding(repo, run_path)
            if holding is None:
                return "skipped: run folder never committed", None
            commit, rule = holding, f"{FIRST_HOLDING} ({why})"
    record: dict[str, Any] = {}
    for key, path in sorted(files.items()):
        if key.startswith("teachers/"):
            record[key] = blob_sha256(repo, commit, f"results/{key}", cache)
            if record[key] is None:
                return f"skipped: {key} not at {commit[:7]}", None
        elif path is None:
            return f"skipped: {key} not found here", None
        else:
            record[key] = inputs.file_sha256(path)
    used: str | None = commit
    if not teacher_keys:
        rule, used = "no teacher (data files only)", None
    prov[inputs.PROVENANCE_KEY] = record
    prov["inputs_migrated"] = {"rule": rule, "commit": used}
    if not dry_run:
        write_json_atomic(prov_path, prov)
    return rule, used


def migrate(results: Path, *, dry_run: bool = False) -> collections.Counter:
    """Migrates every finished run under ``results/<preset>/<section>/``; counts per rule."""
    repo = find_repo_root(results)
    cache: dict[str, str] = {}
    counts: collections.Counter = collections.Counter()
    for summary in sorted(results.glob(f"*/*/*/{SUMMARY_FILE}")):
        rule, _ = migrate_run(repo, summary.parent, cache, dry_run=dry_run)
        counts[rule] += 1
    return counts


def parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    p = argparse.ArgumentParser(prog="python -m kdlib.migrate_inputs",
                                description=__doc__.splitlines()[0])
    p.add_argument("--results", default=None, help="the results folder (results/)")
    p.add_argument("--dry-run", action="store_true", help="count only; write nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command line: migrate, print the counts per rule; 1 when any run was skipped."""
    cli = parser()
    args = cli.parse_args(argv)
    results = Path(args.results) if args.results else find_repo_root() / "results"
    if not results.is_dir():  # else nothing is found, and "no run to migrate" reads as done
        cli.error(f"--results {results} is not a folder: give the results folder "
                  "(results/, holding <preset>/<section>/<run>)")
    counts = migrate(results, dry_run=args.dry_run)
    for rule, n in sorted(counts.items()):
        print(f"{n:5d}  {rule}")
    return 1 if any(rule.startswith("skipped") for rule in counts) else 0


if __name__ == "__main__":
    sys.exit(main())
