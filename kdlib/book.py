"""Batch execution of the notebooks with papermill: ``python -m kdlib.book run --preset cpu``.

Each notebook in ``notebooks/`` runs at the given preset; the executed copy goes to
``book/`` (for the book) and stored results are reused, so only missing runs train.
Prints per-notebook timings and a failure summary; exits non-zero when any notebook failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kdlib import presets

REPO = Path(__file__).resolve().parent.parent


def notebooks(only: list[str] | None = None) -> list[Path]:
    """The source notebooks, in chapter order, optionally filtered by name prefixes."""
    found = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(p.stem.startswith(o) for o in only)]
        if not found:
            raise ValueError(f"--only {only} matches no notebook in {REPO / 'notebooks'}")
    return found


def execute(path: Path, preset: str, out_dir: Path, parameters: dict | None = None) -> Path:
    """Runs one notebook with papermill at ``preset``; returns the executed copy's path."""
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    papermill.execute_notebook(
        str(path), str(out), parameters={"preset": preset, **(parameters or {})},
        cwd=str(path.parent), progress_bar=False, kernel_name="python3",
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib.book", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks with papermill")
    run.add_argument("--preset", default=presets.DEFAULT_PRESET, choices=presets.PRESETS)
    run.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00 01_consistency")
    run.add_argument("--out", default=None, help="folder for executed copies (default: book/, "
                     "or _build/notebooks/<preset> for presets other than cpu)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out) if args.out else (
        REPO / "book" if args.preset == presets.DEFAULT_PRESET
        else REPO / "_build" / "notebooks" / args.preset)
    failures = []
    for path in notebooks(args.only):
        t0 = time.time()
        print(f"[{args.preset}] {path.name} ...", flush=True)
        try:
            execute(path, args.preset, out_dir)
            print(f"[{args.preset}] {path.name} done in {time.time() - t0:.0f} s", flush=True)
        except Exception as exc:  # report and go on with the other notebooks
            failures.append((path.name, exc))
            print(f"[{args.preset}] {path.name} FAILED after {time.time() - t0:.0f} s: "
                  f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                  flush=True)
    if failures:
        print(f"{len(failures)} notebook(s) failed: {', '.join(n for n, _ in failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
