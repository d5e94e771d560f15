"""The book's command line: batch reruns with papermill, and the notebooks' Colab cells.

``python -m kdlib.book run --preset cpu [--only 00 01] [--toc]`` executes each notebook of
``notebooks/`` (with ``--toc``: those that ``_toc.yml`` puts in the book) at the preset;
stored results are reused, so only missing runs train. Executed
copies of the embedded default (cpu) go to ``book/`` (what the book renders), every other
preset's to ``_build/notebooks/<preset>/``, so a rerun at another scale never overwrites the
book. Each executed copy is normalized (:func:`normalize`: papermill's start and end times and
durations, the kernel's execution timestamps and the absolute paths are stripped; the
parameters cells are tagged ``remove-cell``) and written only when that normalized content
changed, so rebuilding with every run stored leaves ``git status`` clean. It ends with a table
of notebook, status and seconds and exits non-zero when any notebook failed; with
``--record-times`` it also records those timings in ``results/<preset>/notebook_times.json``
(what the provenance chapter shows as each notebook's last batch run; a plain rebuild leaves
that file alone).

``python -m kdlib.book normalize [--only 05]`` normalizes the executed copies in ``book/`` in
place (what ``run`` does to each copy it writes), executing nothing.

``python -m kdlib.book colab [--check]`` (re)writes the "Open in Colab" badge and set-up cells
at the top of every notebook from ``_config.yml``'s repository; ``--check`` only reports
notebooks that are out of date (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kdlib import colab, presets
from kdlib.store import (
    read_json,
    results_root,
    write_bytes_atomic,
    write_json_atomic,
)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
TIMES_FILE = "notebook_times.json"
PAPER_TABLES = REPO / "book" / "paper_tables"


def paper_table(stem: str) -> Path:
    """The CSV of the paper's table ``stem`` in book/paper_tables, whatever the working
    directory (a notebook run from the repository root, from notebooks/ or by papermill)."""
    path = PAPER_TABLES / f"{stem}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in PAPER_TABLES.glob("*.csv"))
        raise FileNotFoundError(f"no paper table {stem!r} in {PAPER_TABLES}; known: {known}")
    return path


def notebooks(only: list[str] | None = None, folder: str | os.PathLike | None = None
              ) -> list[Path]:
    """The source notebooks, in chapter order, optionally filtered by name prefixes."""
    folder = Path(folder) if folder is not None else REPO / "notebooks"
    if not folder.is_dir():
        raise ValueError(f"--dir {folder} is not a folder: give the folder of the source "
                         "notebooks (default: notebooks/)")
    found = sorted(folder.glob(NOTEBOOK_GLOB))
    if only:
        found = [p for p in found if any(p.stem.startswith(o) for o in check_prefixes(only))]
        if not found:
            raise ValueError(f"--only {only} matches no notebook in {folder}")
    return found


def check_prefixes(only: list[str]) -> list[str]:
    """``only`` when no prefix is blank: an empty one would match every notebook."""
    blank = [o for o in only if not o.strip()]
    if blank:
        raise ValueError(f"--only {only}: a blank prefix ({blank[0]!r}) matches every notebook; "
                         "give name prefixes such as 00 or 01_consistency")
    return only


def toc_stems(toc: str | os.PathLike | None = None) -> list[str]:
    """Stems of the files ``_toc.yml`` puts in the book (root, chapters, sections, parts);
    a one-line ValueError naming the file when it is missing or not such a table."""
    import yaml

    path = Path(toc) if toc is not None else REPO / "_toc.yml"
    needs = ("a toc is a YAML mapping with a 'root' file and lists of entries under "
             "'chapters' or 'parts', each a mapping like {file: book/01_consistency}, as in "
             "_toc.yml")
    if not path.is_file():
        raise ValueError(f"table of contents {path} is not a file: give the book's _toc.yml "
                         "or one like it")
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        raise ValueError(f"table of contents {path} is not valid YAML"
                         + (f" (line {where.line + 1})" if where else "") + f": {needs}"
                         ) from None
    if not isinstance(entries, dict) or not isinstance(entries.get("root"), str):
        raise ValueError(f"table of contents {path} names no 'root' file: {needs}")
    stems = [Path(entries["root"]).stem]

    def walk(items: object) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            raise ValueError(f"table of contents {path} holds {items!r} where a list "
                             f"belongs: {needs}")
        for item in items:
            if not isinstance(item, dict):
                raise ValueError(f"table of contents {path} holds the entry {item!r}: "
                                 f"{needs}")
            if "file" in item:
                stems.append(Path(str(item["file"])).stem)
            for key in ("chapters", "sections", "parts"):
                walk(item.get(key))

    walk(entries.get("chapters"))
    walk(entries.get("parts"))
    return stems


def output_dir(preset: str, out: str | os.PathLike | None = None) -> Path:
    """Where executed copies go: `out` if given, book/ for the cpu default, else _build/.

    Only the default preset may write into book/ (what the book renders), even with `out`.
    """
    presets.check(preset)
    if out is not None:
        out = Path(out)
        book_dir = (REPO / "book").resolve()
        inside = out.resolve() == book_dir or book_dir in out.resolve().parents
        if inside and preset != presets.DEFAULT_PRESET:
            raise ValueError(f"--out {out} is inside {book_dir}: only the "
                             f"{presets.DEFAULT_PRESET!r} preset's copies go into the book")
        return out
    if preset == presets.DEFAULT_PRESET:
        return REPO / "book"
    return REPO / "_build" / "notebooks" / preset


def batch_parameters(path: Path) -> dict:
    """``{"progress": False}`` for a notebook whose parameters cell has ``progress``: a batch
    run writes no progress bars into the executed copy (what the book renders)."""
    source = colab.parameters_source(read_json(path)) or ""
    return {"progress": False} if re.search(r"^progress\s*=", source, re.MULTILINE) else {}


# What differs between two executions of the same notebook on the same results: papermill's
# clock readings (notebook and cell metadata) and the kernel's execution timestamps.
VOLATILE_PAPERMILL_KEYS = ("start_time", "end_time", "duration")
VOLATILE_CELL_KEYS = ("execution",)
# Papermill's cell of overrides and the notebook's own parameters cell: not shown in the book
# (the chapter's first output says the preset).
PARAMETER_TAGS = ("parameters", "injected-parameters")
INJECTED_TAG = "injected-parameters"  # papermill gives this cell a random id on every run
REMOVE_TAG = "remove-cell"
# Python's default repr names an object's memory address (`<pandas...Styler at 0x7f4...>`):
# the text/plain twin of a rich output, never shown beside its HTML, but new on every run.
_ADDRESS = re.compile(r"(<[^<>\n]*?) at 0x[0-9a-fA-F]+>")


def _relative(path: str | None, where: Path | None) -> str | None:
    """`where` relative to the repository (``notebooks/x.ipynb``), else its name; None stays."""
    if path is None:
        return None
    target = Path(where) if where is not None else Path(path)
    try:
        return target.resolve().relative_to(REPO.resolve()).as_posix()
    except ValueError:
        return target.name


def coalesce_streams(outputs: list[dict]) -> list[dict]:
    """`outputs` with each run of adjacent stream outputs of one name (stdout, stderr) merged
    into one, its text re-split into lines: how the kernel splits a cell's prints into
    messages depends on flush timing, so the same cell can come back as 1 or 2 outputs."""
    merged: list[dict] = []
    for output in outputs:
        if output.get("output_type") != "stream":
            merged.append(output)
            continue
        text = output.get("text", "")
        text = "".join(text) if isinstance(text, list) else text
        last = merged[-1] if merged else None
        if (last is not None and last.get("output_type") == "stream"
                and last.get("name") == output.get("name")):
            text = "".join(last["text"]) + text
            merged[-1] = {**last, "text": text.splitlines(keepends=True)}
        else:
            merged.append({**output, "text": text.splitlines(keepends=True)})
    return merged


def normalize(nb: dict, source: str | os.PathLike | None = None,
              target: str | os.PathLike | None = None) -> dict:
    """A copy of executed notebook `nb` without what changes from one execution to the next.

    Strips papermill's start/end times and durations (notebook and cells) and the cells'
    ``execution`` timestamps; papermill's input and output paths become repository-relative
    (``source``/``target`` name them when the notebook was executed elsewhere); papermill's
    injected-parameters cell gets a fixed id instead of its random one; memory addresses in
    default object reprs (``<... at 0x7f...>``) are dropped; adjacent prints to one stream
    become one output (:func:`coalesce_streams`); the parameters and
    injected-parameters cells get the ``remove-cell`` tag. Normalizing twice changes nothing
    more.
    """
    out = copy.deepcopy(nb)
    meta = out.setdefault("metadata", {})
    pm = meta.get("papermill")
    if isinstance(pm, dict):
        for key in VOLATILE_PAPERMILL_KEYS:
            pm.pop(key, None)
        pm["input_path"] = _relative(pm.get("input_path"),
                                     Path(source) if source is not None else None)
        pm["output_path"] = _relative(pm.get("output_path"),
                                      Path(target) if target is not None else None)
    for cell in out.get("cells", []):
        cell_meta = cell.setdefault("metadata", {})
        for key in VOLATILE_CELL_KEYS:
            cell_meta.pop(key, None)
        if isinstance(cell_meta.get("papermill"), dict):
            for key in VOLATILE_PAPERMILL_KEYS:
                cell_meta["papermill"].pop(key, None)
        if "outputs" in cell:
            cell["outputs"] = coalesce_streams(cell["outputs"])
        for output in cell.get("outputs", []):
            plain = output.get("data", {}).get("text/plain")
            if isinstance(plain, list):
                output["data"]["text/plain"] = [_ADDRESS.sub(r"\1>", x) for x in plain]
            elif isinstance(plain, str):
                output["data"]["text/plain"] = _ADDRESS.sub(r"\1>", plain)
        tags = list(cell_meta.get("tags", []))
        if INJECTED_TAG in tags and "id" in cell:
            cell["id"] = INJECTED_TAG
        if any(t in tags for t in PARAMETER_TAGS) and REMOVE_TAG not in tags:
            cell_meta["tags"] = [*tags, REMOVE_TAG]
    return out


def write_notebook(path: str | os.PathLike, nb: dict) -> bool:
    """Write notebook `nb` to `path` as nbformat does, unless `path` already holds exactly
    that (atomic; nothing touched then). Returns whether the file changed."""
    path = Path(path)
    payload = colab.dumps(nb).encode("utf-8")
    if path.is_file() and path.read_bytes() == payload:
        return False
    write_bytes_atomic(path, payload)
    return True


@contextlib.contextmanager
def kernel_env(preset: str) -> Iterator[None]:
    """The environment a notebook's kernel starts with, restored afterwards: it imports the
    kdlib this process runs (an editable install may point at another clone, whose code would
    then train into this one's results), and its set-up cell, which runs before papermill's
    parameters, reports ``preset`` ($KDLIB_PRESET)."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "KDLIB_PRESET")}
    paths = [str(REPO), *filter(None, (saved["PYTHONPATH"] or "").split(os.pathsep))]
    os.environ.update(PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)), KDLIB_PRESET=preset)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute(path: Path, preset: str, out_dir: Path, parameters: dict | None = None) -> Path:
    """Runs one notebook with papermill at ``preset``; returns the executed copy's path.

    Papermill writes into a temporary folder; the copy in `out_dir` is replaced by the
    normalized result (:func:`normalize`) only when that differs from what it holds. A
    notebook that failed is written too (its error shown in the copy), then the error raised.
    """
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    # The kernel inherits this: OpenBLAS's own threads (jaxlib's eigh, in Shampoo) otherwise
    # fight XLA's for the cores, and a CPU step gets several times slower (make sets it too).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="kdbook-run-") as tmp, kernel_env(preset):
        scratch = Path(tmp) / path.name
        try:
            papermill.execute_notebook(
                str(path), str(scratch), parameters={"preset": preset, **(parameters or {})},
                cwd=str(path.parent), progress_bar=False, kernel_name="python3",
            )
        finally:
            if scratch.is_file():
                write_notebook(out, normalize(read_json(scratch), path, out))
    return out


@dataclass(frozen=True)
class Outcome:
    """How one notebook's execution went: "ok" or "failed", its seconds, the error if any."""

    notebook: str
    status: str
    seconds: float
    error: str = ""


def summary_table(outcomes: list[Outcome]) -> str:
    """A plain-text table of notebook, status and seconds, with a total line."""
    width = max([len("notebook"), len("total")] + [len(o.notebook) for o in outcomes])
    lines = [f"{'notebook':<{width}}  {'status':<6}  {'seconds':>8}"]
    lines += [f"{o.notebook:<{width}}  {o.status:<6}  {o.seconds:>8.0f}" for o in outcomes]
    total = sum(o.seconds for o in outcomes)
    failed = sum(o.status != "ok" for o in outcomes)
    lines.append(f"{'total':<{width}}  {f'{failed} bad' if failed else 'ok':<6}  {total:>8.0f}")
    return "\n".join(lines)


def record_times(outcomes: list[Outcome], preset: str, root: str | os.PathLike | None = None
                 ) -> Path:
    """Merge this batch's timings into `<results>/<preset>/notebook_times.json`; return it.

    One entry per notebook stem (the latest run): seconds, status, finish date, commit and
    accelerator, so the book can tell how long each notebook takes at each preset.
    """
    from kdlib.provenance import git_commit, machine

    path = results_root(root) / presets.check(preset) / TIMES_FILE
    times = read_json(path) if path.is_file() else {}
    host, commit = machine(), git_commit()
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for o in outcomes:
        times[Path(o.notebook).stem] = {
            "seconds": round(o.seconds, 1), "status": o.status, "finished_at": now,
            "commit": commit, "backend": host.get("jax_backend"),
            "device_kinds": host.get("device_kinds"), "hostname": host.get("hostname"),
        }
    write_json_atomic(path, times)
    return path


def failure_text(exc: BaseException) -> str:
    """One line naming why a notebook failed: the cell's exception (papermill's ename and
    evalue: its message starts with a blank line) or the error's own first line."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{type(exc).__name__}: {ename}: {str(evalue or '').strip()}"
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0].strip() if lines else ''}"


def run(paths: list[Path], preset: str, out_dir: Path) -> list[Outcome]:
    """Execute each notebook in turn, printing progress; a failure does not stop the batch."""
    outcomes = []
    for path in paths:
        t0 = time.time()
        print(f"[{preset}] {path.name} ...", flush=True)
        try:
            execute(path, preset, out_dir, batch_parameters(path))
            outcomes.append(Outcome(path.name, "ok", time.time() - t0))
            print(f"[{preset}] {path.name} done in {time.time() - t0:.0f} s", flush=True)
        except Exception as exc:  # report and go on with the other notebooks
            outcomes.append(Outcome(path.name, "failed", time.time() - t0, failure_text(exc)))
            print(f"[{preset}] {path.name} FAILED after {time.time() - t0:.0f} s: "
                  f"{outcomes[-1].error} (the executed copy: {out_dir / path.name})",
                  flush=True)
    return outcomes


# How often `run` executes again the chapters whose claims read an older seed-noise pool.
STALE_ROUNDS = 2
# Notebooks that read every chapter's claims: executed again whenever a chapter is.
READS_CLAIMS = ("90_summary",)


def shared_points_state(preset: str) -> str:
    """The points several chapters read, with each chapter's selection (CSV text of
    :func:`kdlib.experiments.common.shared_points`): every chapter's last cell names the
    others' selections, so a table written later in a run leaves earlier chapters stale."""
    from kdlib.experiments import common

    return common.shared_points(preset).to_csv(index=False)


def chapters_reading_shared_points() -> tuple[str, ...]:
    """The chapters whose last cell names the points other chapters select differently."""
    from kdlib.experiments import chapters

    return tuple(chapters.SECTIONS)


def stale_notebooks(paths: list[Path], preset: str) -> list[Path]:
    """The notebooks of ``paths`` whose stored claims read a seed-noise pool other than the
    store's now (a replicate finished while the book ran), with those that read every
    chapter's claims (:data:`READS_CLAIMS`); empty when every chapter is current."""
    from kdlib import claims
    from kdlib.experiments import common

    stored = claims.load(preset)
    if not stored:
        return []
    now = common.store_noise(preset).source
    stale = {c.chapter for c in stored if c.noise and c.noise != now}
    if not stale:
        return []
    return [p for p in paths if p.stem in stale or p.stem in READS_CLAIMS]


def _run_command(args: argparse.Namespace) -> int:
    """`run`: execute, print the summary table, record timings; 1 when any notebook failed."""
    out_dir = output_dir(args.preset, args.out)
    paths = notebooks(args.only, args.dir)
    if args.toc:  # the book's chapters only: a notebook whose runs are not stored yet stays out
        toc = args.toc_file or REPO / "_toc.yml"
        in_book = set(toc_stems(toc))
        paths = [p for p in paths if p.stem in in_book]
        if not paths:  # as without --toc: an empty selection is an error, not "total ok 0"
            folder = args.dir or REPO / "notebooks"
            if args.only:
                raise ValueError(f"--only {args.only} matches no notebook in {folder} that "
                                 f"{toc} puts in the book")
            raise ValueError(f"--toc: {toc} puts no notebook of {folder} in the book")
    shared_before = shared_points_state(args.preset)
    outcomes = run(paths, args.preset, out_dir)
    again = [p for p in paths if p.stem in chapters_reading_shared_points()]
    if again and shared_points_state(args.preset) != shared_before:
        print(f"[{args.preset}] a chapter's table changed the points several chapters read: "
              f"executing {', '.join(p.name for p in again)} again, so each names the others' "
              "selections as stored now", flush=True)
        redone = {o.notebook: o for o in run(again, args.preset, out_dir)}
        outcomes = [redone.get(o.notebook, o) for o in outcomes]
    for _ in range(STALE_ROUNDS):  # replicates that landed mid-run change the seed-noise pool
        again = stale_notebooks(paths, args.preset)
        if not again:
            break
        print(f"[{args.preset}] runs finished while the book ran, so chapters read different "
              f"seed-noise pools: executing {', '.join(p.name for p in again)} again", flush=True)
        redone = {o.notebook: o for o in run(again, args.preset, out_dir)}
        outcomes = [redone.get(o.notebook, o) for o in outcomes]
    print(summary_table(outcomes), flush=True)
    if outcomes and args.record_times:
        print(f"timings recorded in {record_times(outcomes, args.preset)}")
    failures = [o for o in outcomes if o.status != "ok"]
    if failures:
        print(f"{len(failures)} notebook(s) failed: {', '.join(o.notebook for o in failures)}")
        return 1
    return 0


def _normalize_command(args: argparse.Namespace) -> int:
    """`normalize`: normalize executed copies in place (what `run` writes), no execution."""
    folder = Path(args.dir) if args.dir else REPO / "book"
    if not folder.is_dir():
        raise ValueError(f"--dir {folder} is not a folder: give the folder of the executed "
                         "copies (default: book/)")
    paths = sorted(folder.glob(NOTEBOOK_GLOB))
    if args.only:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in check_prefixes(args.only))]
        if not paths:
            raise ValueError(f"--only {args.only} matches no executed notebook in {folder}")
    changed = [p for p in paths if write_notebook(p, normalize(read_json(p), target=p))]
    for path in changed:
        print(f"normalized: {path}")
    print(f"{len(paths) - len(changed)} of {len(paths)} executed notebook(s) were already "
          "normalized")
    return 0


def _colab_command(args: argparse.Namespace) -> int:
    """`colab`: sync (or with --check, only list) the notebooks' badge and set-up cells."""
    url, branch = colab.repository(args.config)
    if url is None:
        print(f"note: {colab.UNSET}; the badge cells say so until it is set")
    paths = notebooks(args.only, args.dir)
    stale = colab.sync(paths, url, branch, check=args.check)
    for path in paths:
        nb = read_json(path)
        if not colab.has_parameters_cell(nb):
            print(f"warning: {path.name} has no cell tagged 'parameters' (papermill needs one)")
    verb = "out of date" if args.check else "updated"
    for path in stale:
        print(f"{verb}: {path}")
    if args.check and stale:
        print("run `python -m kdlib.book colab` to rewrite their Colab cells")
        return 1
    print(f"{len(paths) - len(stale)} of {len(paths)} notebook(s) were up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m kdlib.book", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute notebooks with papermill")
    run_p.add_argument("--preset", default=presets.DEFAULT_PRESET, choices=presets.PRESETS)
    run_p.add_argument("--out", default=None, help="folder for executed copies (default: book/ "
                       "for cpu, _build/notebooks/<preset> for the other presets)")
    run_p.add_argument("--toc", action="store_true",
                       help="only the notebooks that _toc.yml puts in the book")
    run_p.add_argument("--toc-file", default=None, help="the table of contents (_toc.yml)")
    run_p.add_argument("--record-times", action="store_true",
                       help=f"record each notebook's seconds in results/<preset>/{TIMES_FILE} "
                       "(a plain run leaves it alone, so a rebuild changes no file)")
    colab_p = sub.add_parser("colab", help="write the Colab badge and set-up cells")
    colab_p.add_argument("--check", action="store_true",
                         help="write nothing; exit 1 when a notebook is out of date")
    colab_p.add_argument("--config", default=str(REPO / "_config.yml"),
                         help="the Jupyter Book config holding repository.url and .branch")
    norm_p = sub.add_parser("normalize", help="strip volatile metadata from executed copies "
                            "in place (book/), as `run` does; executes nothing")
    for p in (run_p, colab_p, norm_p):
        p.add_argument("--only", nargs="+", metavar="PREFIX",
                       help="notebook name prefixes, e.g. 00 01_consistency (at least one)")
        p.add_argument("--dir", default=None, help="folder of source notebooks (notebooks/; "
                       "for normalize: of executed copies, book/)")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run_command(args)
        if args.command == "normalize":
            return _normalize_command(args)
        return _colab_command(args)
    except (ValueError, FileNotFoundError) as err:  # bad input: one line, no traceback
        parser.error(str(err))


if __name__ == "__main__":
    sys.exit(main())
