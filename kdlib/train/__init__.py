"""The training engine: one jitted, scanned distill (or label) step over a device mesh.

``train(config, run_dir)`` trains one :class:`kdlib.config.RunConfig`, evaluating, logging
and checkpointing as it goes; ``run(config)`` returns the stored result when there is one.
The dataset and the batch order live on device and follow from (seed, step), so a run
resumed from a checkpoint continues exactly as an uninterrupted one.

One job per module, in the order data flows (each imports only those above it):

| module | job |
| --- | --- |
| :mod:`~kdlib.train.batches` | a run's splits in memory; each step's batch from (seed, step) |
| :mod:`~kdlib.train.evaluate` | a model's logits on whole images; the evaluation metrics |
| :mod:`~kdlib.train.teacher` | the frozen teacher (or ensemble); fixed targets computed once |
| :mod:`~kdlib.train.optimizer` | the optimizer; the numbers a group feeds the step as arrays |
| :mod:`~kdlib.train.step` | the jitted, scanned train step of a group of runs |
| :mod:`~kdlib.train.state` | the mesh, student, optimizer states and chunk of a group |
| :mod:`~kdlib.train.loop` | ``train``, ``train_group``, ``train_many``: the loop, resumable |
| :mod:`~kdlib.train.timer` | ``chunk_timer``: the steady-state speed of the real program |
| :mod:`~kdlib.train.runs` | ``run``, ``sweep``: train what the results store lacks |

Every public name is re-exported here: ``from kdlib import train; train.run(config)``.
"""

from __future__ import annotations

from kdlib import data, models  # noqa: F401  (train.data, train.models: used by tests, benchmarks)
from kdlib.checkpoint import Checkpointer  # noqa: F401
from kdlib.train.batches import (
    RunData,
    batch_indices,
    crop_kwargs,
    load_data,
    stored_image_size,
    stream_chunk,
    total_steps,
    train_aspects,
)
from kdlib.train.evaluate import EVAL_BATCH, eval_metrics, predict
from kdlib.train.loop import (
    UNROLL_MIN_STEPS,
    enable_compile_cache,
    train,
    train_group,
    train_many,
)
from kdlib.train.optimizer import HPARAMS, group_key, hparams, make_optimizer, schedule_arrays
from kdlib.train.runs import run, sweep
from kdlib.train.state import (
    GroupProgram,
    build_student,
    check_group,
    group_program,
    make_mesh,
    student_kwargs,
)
from kdlib.train.step import make_train_chunk, stack_runs, take_run, vectorize_runs
from kdlib.train.teacher import Teacher, fixed_targets
from kdlib.train.timer import chunk_timer

__all__ = [
    "EVAL_BATCH", "HPARAMS", "UNROLL_MIN_STEPS", "GroupProgram", "RunData", "Teacher",
    "batch_indices", "build_student", "check_group", "chunk_timer", "crop_kwargs",
    "enable_compile_cache", "eval_metrics", "fixed_targets", "group_key", "group_program",
    "hparams", "load_data", "make_mesh", "make_optimizer", "make_train_chunk", "predict", "run",
    "schedule_arrays", "stack_runs", "stored_image_size", "stream_chunk", "student_kwargs",
    "sweep", "take_run", "total_steps", "train", "train_aspects", "train_group", "train_many",
    "vectorize_runs",
]
