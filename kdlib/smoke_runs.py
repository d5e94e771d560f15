"""Smoke runs outlive a `make test` only while the code that trained them is unchanged.

Config hashes do not see code changes, so a smoke run stored by an older engine would let a
broken engine pass the notebooks. `make test` used to delete every smoke run first, which made a
rerun with nothing changed retrain all of them (261 of a warm run's 657 s). Now the
stored smoke runs carry a fingerprint of what trained them: every ``kdlib/**/*.py`` file's
bytes, the Python version and the numerical stack's versions. They are deleted only when
the fingerprint differs (``python -m kdlib.smoke_runs``). Not detected: smoke runs trained
outside `make test` by other code while the stamp stood (``rm -rf results/smoke`` clears them).
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import shutil
from pathlib import Path

from kdlib import provenance, store
from kdlib.fileio import write_bytes_atomic

STAMP = ".trained-by"  # under results/smoke/: the fingerprint of the code that trained them


def fingerprint(package: str | Path | None = None) -> str:
    """sha256 of the package's Python sources (paths and bytes), Python's version and the
    numerical stack's versions: what must be equal for a stored smoke run to stand."""
    root = Path(package) if package is not None else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    versions = sorted(provenance._package_versions().items(), key=lambda kv: kv[0])
    digest.update(repr((platform.python_version(), versions)).encode())
    return digest.hexdigest()


def clear_if_stale(root: str | Path | None = None, code: str | None = None) -> bool:
    """Deletes the smoke runs and smoke teachers under ``root`` unless they were trained by
    ``code`` (default: :func:`fingerprint` of this kdlib); stamps the fresh folder. Returns
    whether anything was deleted."""
    base = store.results_root(root)
    code = fingerprint() if code is None else code
    smoke = base / "smoke"
    stamp = smoke / STAMP
    if stamp.is_file() and stamp.read_text().strip() == code:
        return False
    teachers = sorted((base / "teachers").glob("smoke_*"))
    stale = smoke.exists() or bool(teachers)
    shutil.rmtree(smoke, ignore_errors=True)
    for folder in teachers:
        shutil.rmtree(folder, ignore_errors=True)
    smoke.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(stamp, (code + "\n").encode())
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="results root (default: the store's)")
    args = parser.parse_args(argv)
    if args.root is not None and not Path(args.root).is_dir():  # a typo would be created
        parser.error(f"--root {args.root} is not a folder: give an existing results root "
                     "(default: the store's, results/ or $KDLIB_RESULTS)")
    cleared = clear_if_stale(args.root)
    print("smoke runs: " + ("cleared (the code or its libraries changed since they were "
                            "trained)" if cleared else "kept (trained by this very code)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
