"""The background queue of the cpu preset's evidence runs, in the order they settle claims.

Its plan is :mod:`kdlib.experiments.queue_plan`; committing and parking run folders in a git
checkout is :mod:`kdlib.experiments.queue_checkout`; this module is the command line, the run
loop and the supervisor. Each item is one comparison (arms at one or more schedule lengths)
run through :func:`kdlib.experiments.common.run_arms` (per comparison its chapter grows grids
over: :func:`kdlib.experiments.queue_plan.run_item`) with the extras on: the short-schedule
temperatures, the grid grown until it brackets every selected run, then the seed replicates.
Every finished run is stored the moment its group finishes, and with ``--commit`` committed to
git within five minutes; an interrupted run resumes from its checkpoint when the queue is
started again. ``make queue`` runs it niced, from a clean ``git worktree`` of HEAD (clean
provenance), committing to this checkout.

After the item ``queue_plan.PROBES_AFTER`` the queue trains the probes one step beyond the lr
ladder's end (:mod:`kdlib.experiments.ladder_probe`) at every selected config still sitting
there: single runs, no grid, no replicates.

``--list`` prints the plan (items, their estimated hours, how many runs of their base grids
are stored, the hours still to train and the hours their stored runs took) without training.

``--supervise`` runs the queue in a child process and starts it again when it dies of a crash
(a segfault inside the compiler is not an exception the queue can catch); an item it crashed on
twice is skipped for the rest of that run, said in the log (``make queue`` supervises).

``--park REPO`` commits the complete checkpoints (and the config, metrics log and started-on
input hashes) of every unfinished run, after the queue is stopped (it refuses beside a running
queue): checkpoints are gitignored and a session's
checkout is laid anew, so without it a group longer than the time left in a session would
start over in every session. The next ``make queue`` resumes them; a parked run that finishes
is committed with its checkpoint's removal (``make queue-park`` stops the queue and parks).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from kdlib import interrupts
from kdlib.experiments import ladder_probe
from kdlib.experiments import queue_checkout as checkout
from kdlib.experiments import queue_plan as plan
from kdlib.experiments import queue_workers as workers

# The line the queue prints as it starts an item ("[12:00:00] item 16: ..."; "item 21+:" for
# the ladder probes after item 21), which the supervisor reads to know where a crash happened.
ITEM_LINE = re.compile(r"^\[[\d:]+\] item (\d+\+?): ")


def supervise(command: Callable[[set[str]], list[str]], *, retries: int = 2,
              pause_s: float = 10.0, skip: Iterable[str] = ()) -> int:
    """Runs ``command(skip)`` (the queue's command line, skipping the items in ``skip``) as a
    child process, echoing its output, and starts it again after ``pause_s`` when it dies of
    anything but a stop: an item it died in ``retries`` times is skipped from then on. Ends
    when the child finishes (0), dies before starting any item (its exit code: not an item's
    fault), or on SIGTERM (passed on to the child; ``make queue-park``), also one that comes
    during the pause. The child gets ``PYTHONFAULTHANDLER=1``: a segfault prints its stack."""
    skip = set(skip)
    crashes: Counter[str] = Counter()
    stopping = False
    child: subprocess.Popen | None = None

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    try:
        while not stopping:
            child = subprocess.Popen(command(set(skip)), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace",
                                     bufsize=1, env=env)
            if stopping:  # the stop came between the check and the start
                child.terminate()
            item = None
            assert child.stdout is not None
            for line in child.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                found = ITEM_LINE.match(line)
                if found:
                    item = found.group(1)
            code = child.wait()
            if code == 0 or stopping or item is None:
                return 0 if stopping else code
            crashes[item] += 1
            if crashes[item] >= retries:
                skip.add(item)
            print(f"[{time.strftime('%H:%M:%S')}] supervisor: the queue died (exit {code}) in "
                  f"item {item} ({crashes[item]} times"
                  + (": skipped from now on" if item in skip else "") + f"); restarting in "
                  f"{pause_s:g} s", flush=True)
            time.sleep(pause_s)
        return 0
    finally:
        if child is not None and child.poll() is None:  # the supervisor itself failed
            child.terminate()
            child.wait()
        signal.signal(signal.SIGTERM, previous)


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m kdlib.experiments.queue``."""
    out = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    out.add_argument("--list", action="store_true", help="print the plan, train nothing")
    out.add_argument("--commit", type=Path, default=None,
                     help="the checkout to commit finished run folders to")
    out.add_argument("--start", type=int, default=0, help="first plan item (0-based)")
    out.add_argument("--skip", nargs="+", default=[], metavar="ITEM",
                     help="items not to run (e.g. 16, or 21+ for the ladder probes)")
    out.add_argument("--supervise", action="store_true",
                     help="run the queue in a child process, restarted after a crash; an item "
                     "it crashed in twice is skipped")
    out.add_argument("--progress", type=Path, default=None, metavar="REPO",
                     help="how far each unfinished run under REPO's results is, and its hours "
                     "left at its logged pace; trains nothing")
    out.add_argument("--workers", type=int, default=1,
                     help="processes that train a selected config's seed replicates side by "
                     "side (kdlib.experiments.queue_workers; make queue: 2)")
    out.add_argument("--train-config", type=Path, default=None, metavar="FILE",
                     help="a worker: train the run of the config in FILE, then exit (with "
                     "--commit naming the queue's checkout, so park and make queue see it)")
    out.add_argument("--park", type=Path, default=None, metavar="REPO",
                     help="commit the unfinished runs' checkpoints to REPO (stop the "
                     "queue first), train nothing")
    return out


def _committer(repo: Path, item: list[str], every_s: float) -> threading.Event:
    """Commits finished run folders every ``every_s`` seconds in a daemon thread (so a run
    that finishes mid-item is in git minutes later); set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            checkout.commit_finished(repo, item[0])

    threading.Thread(target=loop, daemon=True).start()
    return stop


def _stop_once(*_: Any) -> None:
    """SIGTERM in the queue: ignore any further one, then unwind (``finally`` commits), once
    the checkpoints or the git commit under way are done (kdlib.interrupts)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    interrupts.stop_or_defer(lambda: sys.exit(128 + signal.SIGTERM))


def _without_options(argv: list[str], flags: tuple[str, ...], lists: tuple[str, ...]
                     ) -> list[str]:
    """``argv`` without the ``flags`` and without the ``lists`` options and their values
    (the supervisor passes its own ``--skip``)."""
    out, dropping = [], False
    for arg in argv:
        if arg in flags:
            continue
        if arg in lists:
            dropping = True
            continue
        if dropping and not arg.startswith("--"):
            continue
        dropping = False
        out.append(arg)
    return out


def check_args(args: argparse.Namespace) -> str | None:
    """The first bad option of a queue command line as one line, or None: an item number
    outside the plan would otherwise skip nothing or run nothing, --workers without --commit
    train in one process, and a --commit or --park checkout that is not a git checkout would
    fail only at its first commit, minutes in."""
    names = [name for name, _ in plan.PLAN]
    probes = [f"{plan.probes_index()}+"] if plan.PROBES_AFTER in names else []
    items = [str(i) for i in range(len(plan.PLAN))] + probes
    if not 0 <= args.start < len(plan.PLAN):
        return f"--start {args.start} is not a plan item; allowed: 0..{len(plan.PLAN) - 1}"
    if args.workers < 1:
        return f"--workers {args.workers}: train with 1 process or more"
    if args.workers > 1 and args.commit is None:  # else it would train in one process
        return (f"--workers {args.workers} needs --commit REPO (the checkout its worker "
                "processes commit to); without --commit, use --workers 1")
    if args.train_config is not None and not args.train_config.is_file():
        return f"--train-config {args.train_config} is not a file (a config's JSON)"
    bad = [s for s in args.skip if s not in items]
    if bad:
        return (f"--skip {' '.join(bad)}: not plan items; allowed: 0..{len(plan.PLAN) - 1}"
                + "".join(f" and {p} (the ladder probes)" for p in probes))
    for option, repo in (("--commit", args.commit), ("--park", args.park),
                         ("--progress", args.progress)):
        if repo is not None and not (repo / ".git").exists():
            return f"{option} {repo} is not a git checkout (no .git in it)"
    return None


def _print_table(columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """``rows`` as a markdown table of ``columns`` on stdout (--list, --progress)."""
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" for _ in columns) + " |")
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    problem = check_args(args)
    if problem:
        cli.error(problem)
    if args.train_config:
        signal.signal(signal.SIGTERM, _stop_once)  # a stop waits for its checkpoint saves
        workers.train_config_file(args.train_config)
        return 0
    if args.park:
        print(f"parked {checkout.park(args.park)} unfinished runs")
        return 0
    if args.progress:
        rows = checkout.progress_rows(args.progress)
        _print_table(checkout.PROGRESS_COLUMNS, rows)
        print(f"\n{len(rows)} unfinished run(s) with a metrics log (step 0: no record yet)")
        return 0
    if args.list:
        rows = plan.plan_rows(args.start)
        _print_table(plan.PLAN_COLUMNS, rows)
        print("\n" + plan.plan_summary(rows))
        return 0
    if args.supervise:
        argv = _without_options(sys.argv[1:] if argv is None else argv, ("--supervise",),
                                ("--skip",))
        return supervise(lambda skip: [sys.executable, "-m", "kdlib.experiments.queue", *argv,
                                       *(["--skip", *sorted(skip)] if skip else [])],
                         skip=args.skip)
    skip = set(args.skip)
    singles = (workers.side_by_side(args.commit, args.workers)
               if args.commit and args.workers > 1 else None)
    current = ["starting"]
    stop = _committer(args.commit, current, 300.0) if args.commit else None
    # A stop (make queue-park's SIGTERM) unwinds like an error, so the finished runs are
    # committed on the way out (the committer thread dies with the process); a second SIGTERM
    # (the supervisor passes the stop on) must not cut that commit short.
    signal.signal(signal.SIGTERM, _stop_once)
    try:
        for i, (name, build) in enumerate(plan.PLAN):
            if i < args.start:
                continue
            if str(i) not in skip:
                t0 = time.time()
                current[0] = name
                # printed before anything of the item runs: the supervisor reads it to know
                # which item a crash belongs to
                print(f"[{time.strftime('%H:%M:%S')}] item {i}: {name}", flush=True)
                plan.run_item(build(), progress=False, extras=True,
                              seeds=plan.ITEM_SEEDS.get(name), train_singles=singles)
                print(f"[{time.strftime('%H:%M:%S')}] item {i} done in "
                      f"{time.time() - t0:.0f} s", flush=True)
                if args.commit:
                    print(f"committed {checkout.commit_finished(args.commit, name)} run dirs",
                          flush=True)
            if name == plan.PROBES_AFTER and f"{i}+" not in skip:
                t0, current[0] = time.time(), plan.PROBES_NAME
                print(f"[{time.strftime('%H:%M:%S')}] item {i}+: {plan.PROBES_NAME}", flush=True)
                n = ladder_probe.train_probes(plan.PRESET, limit=None)
                print(f"[{time.strftime('%H:%M:%S')}] item {i}+: {n} probes stored in "
                      f"{time.time() - t0:.0f} s", flush=True)
    finally:
        if stop is not None:
            stop.set()
        if args.commit:
            checkout.commit_finished(args.commit, current[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
