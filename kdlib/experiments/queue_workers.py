"""Single runs side by side: the queue trains a selected config's seed replicates in parallel
worker processes (``--workers``), one in its own process and the others each in a worker.

On this 2-core machine two single runs side by side trained 1.4x the images of one at a time
(2026-12-06: two 16-epoch runs of chapter 03, 31 minutes together against about 22 each
alone; a single run leaves part of the second core idle). A vectorized group (a grid) stays
one program in one process: its runs share the teacher's forward.

A worker is ``python -m kdlib.experiments.queue --commit REPO --train-config FILE``: its
command line names the queue's checkout, so ``make queue-park`` stops it with the queue (it
saves its checkpoint first) and ``park`` waits for it. Runs are locked in the store, so a run
is trained once whichever process asks; whatever a worker did not store (it failed, or was
stopped) the queue trains itself afterwards.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from kdlib.config import RunConfig, config_from_dict, config_hash, config_to_dict

TrainSingles = Callable[[Sequence[RunConfig]], None]


def worker_command(repo: Path, config_file: Path) -> list[str]:
    """The command line of a worker training the config in ``config_file`` for the queue
    committing to ``repo``."""
    return [sys.executable, "-m", "kdlib.experiments.queue", "--commit", str(repo),
            "--train-config", str(config_file)]


def side_by_side(repo: Path, workers: int, progress: bool = False) -> TrainSingles:
    """A :data:`TrainSingles` that trains ``workers`` runs at a time: the first of each batch
    in this process, the others in worker processes; then trains here any the workers did not
    store. ``workers`` 1: one after another, here."""
    from kdlib import train

    if workers < 1:
        raise ValueError(f"workers={workers}: train with at least 1 process")

    def train_all(configs: Sequence[RunConfig]) -> None:
        for start in range(0, len(configs), workers):
            batch = list(configs[start:start + workers])
            with tempfile.TemporaryDirectory(prefix="kdlib-worker-") as tmp:
                procs = []
                try:
                    for i, config in enumerate(batch[1:]):
                        path = Path(tmp) / f"config{i}.json"
                        path.write_text(json.dumps(config_to_dict(config)))
                        procs.append(subprocess.Popen(worker_command(repo, path)))
                    train.run(batch[0], progress=progress)
                    for proc, config in zip(procs, batch[1:], strict=True):
                        if proc.wait() != 0:
                            logging.getLogger("kdlib").warning(
                                "kdlib: the worker training %s exited %s; what it did not "
                                "store is trained here", config_hash(config), proc.returncode)
                finally:  # a stop (or a failure) here stops the workers too, once they saved
                    for proc in procs:
                        if proc.poll() is None:
                            proc.send_signal(signal.SIGTERM)
                            proc.wait()
            for config in batch[1:]:  # stored by its worker: loaded; else trained here
                train.run(config, progress=progress)

    return train_all


def train_config_file(path: Path) -> None:
    """A worker's job: train (or load) the run of the config stored in ``path``."""
    from kdlib import train

    train.run(config_from_dict(json.loads(Path(path).read_text())), progress=False)
