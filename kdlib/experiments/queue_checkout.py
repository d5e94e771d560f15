"""The queue's side of a git checkout: commit finished run folders, park unfinished ones at
their complete checkpoints, and report how far each unfinished run is.

Checkpoints are gitignored and a session's checkout is laid anew, so :func:`park` commits the
complete checkpoints of every unfinished run (``make queue-park``); the next queue
resumes them. :func:`commit_finished` commits only run folders with a ``summary.json``, so a
half-written run never lands.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kdlib import interrupts, store
from kdlib.experiments.queue_plan import PRESET
from kdlib.fileio import METRICS_FILE, MetricsLog

# The command line of a running queue (make queue); park refuses to run beside one.
QUEUE_COMMAND = ("kdlib.experiments.queue", "--commit")


def running_queues(repo: Path) -> list[int]:
    """The pids of the queue processes committing to ``repo`` (their command line holds
    :data:`QUEUE_COMMAND` and ``repo``), this process left out: read from /proc (Linux;
    [] elsewhere)."""
    import os

    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = [w.decode(errors="replace") for w in cmdline.read_bytes().split(b"\0")]
        except OSError:  # the process ended while we looked
            continue
        if not all(w in words for w in QUEUE_COMMAND) or int(cmdline.parent.name) == os.getpid():
            continue
        target = words[words.index("--commit") + 1:][:1]
        if target and Path(target[0]).resolve() == Path(repo).resolve():
            pids.append(int(cmdline.parent.name))
    return sorted(pids)


def _git(repo: Path, *args: str, tries: int = 30) -> subprocess.CompletedProcess[str]:
    """``git -C repo args``, retried while another git process holds the index lock (the
    committer thread, the user's own git); uninterrupted, so a stop does not kill it halfway
    and leave ``.git/index.lock`` behind. Any other failure is returned as it is."""
    for attempt in range(tries):
        with interrupts.uninterrupted():
            done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                                  text=True)
        if done.returncode == 0 or "index.lock" not in done.stderr:
            return done
        time.sleep(min(2 + attempt, 10))
    return done


def _finished_uncommitted(repo: Path) -> list[str]:
    """Run folders under results/<PRESET>/ holding a summary.json whose files git does not
    hold as they are: new (untracked), rewritten in place (a stale run retrained under its
    hash) or with files gone (a parked run's checkpoint, removed when the run finished)."""
    out = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "-uall", "--",
                          f"results/{PRESET}"], capture_output=True, text=True,
                         check=True).stdout
    dirs = set()
    for line in out.splitlines():
        path = Path(line[3:])
        if len(path.parts) >= 4:
            run = Path(*path.parts[:4])
            if (repo / run / store.SUMMARY_FILE).is_file():
                dirs.add(str(run))
    return sorted(dirs)


CKPT_DIR = "ckpt"
# The file orbax writes last into a checkpoint step folder: the step is complete.
CKPT_COMPLETE = "commit_success.txt"


def _finished_elsewhere(run: Path, repo: Path) -> bool:
    """Whether another chapter's folder holds a finished run of ``run``'s config (the run
    every chapter reads then: store.fresh_run)."""
    config = store.read_json(run / store.CONFIG_FILE)
    if not (isinstance(config, dict) and config.get("preset") and config.get("section")):
        return False
    found = store.fresh_run(config, repo / "results")
    return found is not None and found.path != run


def parkable_runs(repo: Path) -> list[tuple[str, int]]:
    """(run folder relative to ``repo``, step) of every unfinished run under
    results/<PRESET>/ (a config, no summary; a failed run keeps its checkpoint to resume from)
    with a complete checkpoint: the latest step it holds. A run whose config another chapter
    has finished meanwhile is left out: every chapter reads that one (store.fresh_run)."""
    out = []
    for config in sorted((repo / "results" / PRESET).glob(f"*/*/{store.CONFIG_FILE}")):
        run = config.parent
        if (run / store.SUMMARY_FILE).exists() or _finished_elsewhere(run, repo):
            continue
        if steps := complete_steps(run):
            out.append((str(run.relative_to(repo)), steps[-1]))
    return out


def complete_steps(run: Path) -> list[int]:
    """The steps of ``run``'s complete checkpoints (orbax wrote their last file), oldest
    first: a group's runs resume from the newest step they all hold (checkpoint.group_start),
    so a park keeps every one of them, not only the latest."""
    return sorted(int(p.name) for p in (run / CKPT_DIR).glob("*")
                  if p.name.isdigit() and (p / CKPT_COMPLETE).is_file())


PROGRESS_COLUMNS = ("run", "what", "step", "of", "done", "hours so far", "hours left")


def progress_rows(repo: Path) -> list[dict[str, Any]]:
    """One row per unfinished run under ``repo``'s results/<PRESET>/ with a metrics log
    (:data:`PROGRESS_COLUMNS`; step 0 until its first record): its steps against the
    schedule's, and its hours so far and
    left at the pace its log shows (its logged times cover every process that trained it,
    a resumed run's included). Reads the metrics logs; trains nothing."""
    rows = []
    for config_path in sorted((repo / "results" / PRESET).glob(f"*/*/{store.CONFIG_FILE}")):
        run = config_path.parent
        log = run / METRICS_FILE
        if (run / store.SUMMARY_FILE).exists() or not log.is_file():
            continue
        records = MetricsLog.in_run(run).read()  # a torn last line (a live writer): left out
        last = next((r for r in reversed(records)
                     if r.get("step") and r.get("epoch") and "wall_time_s" in r), None)
        config = json.loads(config_path.read_text())
        what = (f"{config.get('policy')} {config.get('loss')} lr {config.get('lr'):g} "
                f"seed {config.get('seed')} at {config['epochs']:g} epochs")
        name = str(run.relative_to(repo / "results" / PRESET))
        if last is None:  # started: its first record comes at a tenth of the run, or later
            rows.append(dict(zip(PROGRESS_COLUMNS, (name, what, 0, "?", "0%", "?", "?"),
                                 strict=True)))
            continue
        total = round(config["epochs"] * last["step"] / last["epoch"])
        per_step = last["wall_time_s"] / last["step"]
        rows.append(dict(zip(PROGRESS_COLUMNS, (
            name, what, last["step"], total,
            f"{100 * last['step'] / total:.0f}%", round(last["wall_time_s"] / 3600, 2),
            round(max(0, total - last["step"]) * per_step / 3600, 2)), strict=True)))
    return rows


def park(repo: Path) -> int:
    """Commits each :func:`parkable_runs` folder's config, metrics log and complete
    checkpoints (checkpoints are gitignored: added by force), and the removal of the older
    steps a previous park committed. Refuses while a queue runs (its checkpoint being written
    is not complete; its commits would race this one). Runs that finished since the queue's
    last commit are committed first. Returns the number of runs parked (0 when nothing
    changed since the last park)."""
    if pids := running_queues(repo):
        raise RuntimeError(f"a queue is still running (pid {', '.join(map(str, pids))}): stop "
                           "it first (make queue-park sends SIGTERM and waits for it), then "
                           "park again")
    commit_finished(repo, "finished before the queue was parked")
    runs = parkable_runs(repo)
    if not runs:
        return 0

    def git(*args: str, ok: tuple[int, ...] = (0,)) -> int:
        done = _git(repo, *args)
        if done.returncode not in ok:
            raise RuntimeError(f"git {' '.join(args[:2])} failed in {repo}: "
                               f"{done.stderr.strip()}")
        return done.returncode

    paths = []
    for run, _ in runs:
        git("add", "-u", "--", run)  # older parked steps that orbax has since deleted
        files = [f"{run}/{store.CONFIG_FILE}",
                 *(f"{run}/{CKPT_DIR}/{step}" for step in complete_steps(repo / run))]
        files += [f"{run}/{name}" for name in (METRICS_FILE, store.STARTED_INPUTS_FILE)
                  if (repo / run / name).is_file()]
        git("add", "-f", "--", *files)
        paths.append(run)
    if git("diff", "--cached", "--quiet", "--", *paths, ok=(0, 1)) == 0:
        return 0  # parked as they are already
    steps = ", ".join(f"{Path(run).name} at step {step}" for run, step in runs)
    git("commit", "-q", "-m", f"queue: parked {len(runs)} unfinished runs at their latest "
        f"checkpoints, resumed by the next `make queue` ({steps})", "--", *paths)
    return len(runs)


def describe_runs(repo: Path, dirs: list[str]) -> str:
    """What run folders hold, by chapter and schedule length (read from each config), e.g.
    "07_cross_family: 3 at 30 epochs, 1 at 100": a commit names what it stores, not the item
    the queue is on (a run resumed from a parked checkpoint finishes under a later item)."""
    counts: dict[str, Counter] = {}
    for run in dirs:
        path = repo / run
        try:
            epochs = json.loads((path / store.CONFIG_FILE).read_text()).get("epochs")
        except (OSError, ValueError, AttributeError):  # a message must not stop the commit
            epochs = None
        counts.setdefault(path.parent.name, Counter())[epochs] += 1

    def lengths(c: Counter) -> str:
        known = sorted((e, n) for e, n in c.items() if isinstance(e, int | float))
        text = [f"{n} at {e:g}" + (" epochs" if i == 0 else "") for i, (e, n) in enumerate(known)]
        unknown = sum(n for e, n in c.items() if not isinstance(e, int | float))
        return ", ".join(text + ([f"{unknown} of unrecorded length"] if unknown else []))

    return "; ".join(f"{section}: {lengths(c)}" for section, c in sorted(counts.items()))


def commit_finished(repo: Path, item: str) -> int:
    """Commits every finished run folder git does not hold as it is
    (:func:`_finished_uncommitted`), retrying while git's index is locked (another commit
    running: the folders are looked up again each try, so one that committed them ends it)."""
    dirs: list[str] = []
    for attempt in range(30):
        dirs = _finished_uncommitted(repo)
        if not dirs:
            return 0
        message = (f"cpu results: {len(dirs)} finished run dirs ({describe_runs(repo, dirs)}; "
                   f"queue at: {item}; provenance in each)")
        with interrupts.uninterrupted():  # a stop waits for the commit (no index.lock left)
            add = _git(repo, "add", "-A", "--", *dirs, tries=1)
            if add.returncode == 0:
                done = _git(repo, "commit", "-q", "-m", message, "--", *dirs, tries=1)
                if done.returncode == 0:
                    return len(dirs)
        time.sleep(2 + attempt)
    print(f"could not commit {dirs}", file=sys.stderr)
    return 0
