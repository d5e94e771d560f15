"""The training loop: train a group of runs to the end, evaluating, logging and checkpointing
as it goes, resuming from the last checkpoint after a kill."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from kdlib import checkpoint, data, divergence, interrupts, provenance, teachers
from kdlib.checkpoint import Checkpointer, group_start
from kdlib.config import RunConfig, config_hash
from kdlib.fileio import MetricsLog
from kdlib.policies import teacher_mode
from kdlib.train.batches import load_data, stream_chunk, total_steps, train_aspects
from kdlib.train.evaluate import eval_batch, eval_metrics, predict
from kdlib.train.optimizer import group_key
from kdlib.train.state import check_group, group_program, make_mesh
from kdlib.train.step import (  # noqa: F401  (UNROLL_MIN_STEPS: re-exported)
    UNROLL_MIN_STEPS,
    host_stack_runs,
    host_take_run,
    unroll_for,
)


def enable_compile_cache() -> None:
    """Turns on JAX's persistent compilation cache (``$KDLIB_JAX_CACHE``, else ~/.cache).

    Runs of a sweep that differ only in hyper-parameters or length compile to the same
    program (they enter it as arrays), so later runs, and later processes, skip the compile.
    A cache directory set by the user in JAX's own config is left alone.
    """
    default = Path.home() / ".cache" / "kdlib" / "jax"
    path = Path(os.environ.get("KDLIB_JAX_CACHE") or default)
    # jax.config's stub declares no attributes for its flags (read here as at runtime).
    current = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if current:
        if Path(current) == path:
            prune_compile_cache(path)  # ours, set by an earlier call: before this group reads
        return
    path.mkdir(parents=True, exist_ok=True)
    prune_compile_cache(path)
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Every program, however quick to compile: a smoke chapter compiles ~80 small ones (group
    # inits, eval views, teacher crops; 0.2 s each), which a warm cache then serves too
    # (chapter 01 at smoke, warm: 71 -> 61 s; issue 15). JAX's default skips those under 1 s.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


# jaxlib 0.10.2 loads a program from the persistent cache on a thread-pool thread with a 2 MB
# stack, through a recursion as deep as the program's object files (~1,000 for a large
# training chunk, 8 frames each): a 16.2 MB entry (a 4-run MobileNetV3-L group, compiled in
# 2.5 min) overflowed it, a segfault in llvm::RuntimeDyldImpl on every read (2026-12-05; the
# process that compiled it had trained with it). Entries above this size are deleted before a
# process could read them, so such programs compile afresh (half the size that crashed; 1,817
# of the 1,861 entries then cached were under 1 MB, 11 over 8 MB).
CACHE_ENTRY_MAX_BYTES = 8 * 2**20


def compile_cache_dir() -> str | None:
    """The persistent compilation cache's folder JAX uses, or None when it has none."""
    # jax.config's stub declares no attributes for its flags (read here as at runtime).
    return jax.config.jax_compilation_cache_dir or None  # type: ignore[attr-defined]


def prune_compile_cache(path: str | Path, max_bytes: int | None = None) -> int:
    """Deletes the persistent-cache entries in ``path`` larger than ``max_bytes`` (default
    :data:`CACHE_ENTRY_MAX_BYTES`); returns how many. A file another process reads meanwhile
    stays readable to it (Linux keeps an open file until it is closed)."""
    max_bytes = CACHE_ENTRY_MAX_BYTES if max_bytes is None else max_bytes
    removed = 0
    for entry in Path(path).glob("*-cache"):
        try:
            if entry.stat().st_size > max_bytes:
                entry.unlink()
                removed += 1
        except FileNotFoundError:  # pruned by another process meanwhile
            continue
    return removed


# XLA:CPU maps each compiled training program in ~2,500 memory regions (measured: 470 ->
# ~3,000 per cpu-preset program, back to ~600 after jax.clear_caches) and keeps them while the
# program is cached in the process; Linux allows vm.max_map_count (65,530 by default) per
# process, and the background queue, compiling program after program, died at it ("LLVM
# ERROR: Unable to allocate section memory", 2026-12-05); with the limit raised it held 17 GB
# of the 24 (53,000 regions). Past this share of the limit (~6 programs) the caches go.
MAP_SHARE_LIMIT = 0.25


def map_count() -> tuple[int, int] | None:
    """(memory regions this process maps, the kernel's limit), or None off Linux."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            count = sum(1 for _ in maps)
        with open("/proc/sys/vm/max_map_count") as limit:
            return count, int(limit.read())
    except (OSError, ValueError):
        return None


def release_compiled(share: float = MAP_SHARE_LIMIT) -> bool:
    """Drops JAX's in-process compiled programs when the process maps more than ``share`` of
    the kernel's limit (their memory regions go with them; a program needed again loads from
    the persistent compilation cache, pruned first: :func:`prune_compile_cache`). Returns
    whether it did."""
    counts = map_count()
    if counts is None or counts[0] <= share * counts[1]:
        return False
    import gc

    cache = compile_cache_dir()
    if cache:
        prune_compile_cache(cache)
    jax.clear_caches()
    gc.collect()
    return True


def train(
    config: RunConfig, run_dir: str | Path, *, progress: bool = True, save_model: bool = False
) -> dict[str, Any]:
    """Trains ``config`` into ``run_dir`` (metrics.jsonl, ckpt/), resuming if interrupted.

    With ``save_model`` the final student is written to ``run_dir/model.npz``. The
    checkpoints stay until the store has saved the run's result (:func:`kdlib.store.save_run`
    removes them), so a kill between the last step and the save loses nothing.
    Returns the summary: final val/test metrics, steps, wall time, throughput (over every
    process that trained the run: each evaluation record carries the cumulative times, which a
    resume reads back, :func:`earlier_times`) and
    ``status`` ("done" or "diverged", with ``diverged_at_step``: :mod:`kdlib.divergence`) and
    ``group`` (the config hashes trained together, for the provenance). metrics.jsonl has
    validation metrics at every evaluation and test metrics only at the final step.
    """
    return train_group([config], [run_dir], progress=progress, save_model=save_model)[0]


def train_group(
    configs: list[RunConfig], run_dirs: list, *, progress: bool = True,
    save_model: bool = False,
) -> list[dict[str, Any]]:
    """Trains runs that differ only in :data:`HPARAMS` as one vectorized program.

    Each run keeps its own directory, metrics log, checkpoint and summary, exactly as if it
    had been trained alone by :func:`train` (equal within float tolerance, tested); they
    share the data, the batch order, the views and the teacher's forward pass.
    """
    check_group(configs, run_dirs)
    enable_compile_cache()
    config = configs[0]
    group = len(configs)
    run_dirs = [Path(d) for d in run_dirs]
    started = time.time()
    mesh = make_mesh()
    rd = load_data(config)
    streamed = isinstance(rd.train, data.StreamingDataset)
    num_train = len(rd.train)
    # The student outputs the classes it is scored on (another domain's images: the teacher's).
    num_classes = (rd.val if config.data.eval_name else rd.train).num_classes
    in_channels = rd.val.images.shape[-1]
    steps = total_steps(config, num_train)
    if config.batch_size > num_train:
        raise ValueError(
            f"batch_size={config.batch_size} exceeds the {num_train} training images"
        )
    if config.batch_size % mesh.size:
        raise ValueError(
            f"batch_size={config.batch_size} must be divisible by the {mesh.size} devices"
        )

    replicated = NamedSharding(mesh, P())
    put = lambda x: jax.device_put(x, replicated)
    prog = group_program(configs, rd.train, num_classes, in_channels, steps, mesh,
                          streamed=streamed, unroll=unroll_for(steps))
    teacher, student, targets = prog.teacher, prog.student, prog.targets
    carry, hp, sched, chunk = prog.carry, prog.hp, prog.sched, prog.chunk
    student.eval()
    # nnx.split's stub types the States as a variadic tuple; two filters give exactly two.
    eval_graphdef, _, _ = nnx.split(student, nnx.Param, ...)  # type: ignore[misc]
    teacher_states = put(teacher.states) if teacher else []
    # The teacher's logits of the evaluation splits do not change during training either.
    teacher_eval = ({split: teacher.predict(ds.images, eval_batch(config.preset)) for split, ds in
                     (("val", rd.val), ("test", rd.test))} if teacher else {})
    if streamed:  # the chunk's batches are read and put on device before each call
        fixed = teacher is not None and teacher_mode(config.policy) == "fixed"
        host_targets = targets if fixed else None
        consts = None
    else:
        in_memory = cast(data.Dataset, rd.train)  # not streamed
        consts = put((in_memory.images, in_memory.labels, jnp.asarray(targets), teacher_states,
                      train_aspects(config, in_memory)))

    k = config.steps_per_call
    eval_every = config.eval_every or max(k, steps // 10)
    eval_every = max(k, (eval_every // k) * k)
    ckpt_every = config.checkpoint_every or eval_every
    ckpts = [Checkpointer(d / "ckpt") for d in run_dirs]
    logs = [MetricsLog(d / "metrics.jsonl") for d in run_dirs]
    step = group_start(ckpts)
    state_layout = checkpoint.layout(prog.one_carry)
    if step and (moved := [d for d, run_log in zip(run_dirs, logs, strict=True)
                           if checkpoint.logged_layout(run_log.read(), step)
                           not in (None, state_layout)]):
        # the code changed the state's layout since these checkpoints were saved: their leaves
        # would load into the wrong slots, so the group trains again from step 0
        logging.getLogger("kdlib").warning(
            f"kdlib: {', '.join(str(d) for d in moved)}: the checkpoint at step {step} "
            "holds another training-state layout than this code's (the code changed since it "
            "was saved); the group restarts from step 0")
        for c in ckpts:
            c.clear()
        step = 0
    if step:  # every run of the group checkpointed at this step
        carry = put(host_stack_runs([c.restore(step, prog.one_carry) for c in ckpts]))
    for log in logs:
        log.drop_after(step)
    histories = [log.read() for log in logs]  # what a resume continues from, read once
    # The code this process trains with, in each record it logs: a run resumed in a later
    # session (a parked checkpoint) names every commit that trained part of it.
    commit = provenance.git_commit()
    earlier = group_earlier_times(histories, step)  # a resumed group's time before this process
    status = ["done"] * group
    watches = [divergence.Watch(divergence.chance_loss(
        c.loss, num_classes, c.temperature, c.dist_beta, c.dist_gamma)) for c in configs]
    diverged_at: list[int | None] = [None] * group
    for i, history in enumerate(histories):  # a resumed run continues its divergence watch
        if (reason := watches[i].replay(history)) is not None:
            status[i], diverged_at[i] = "diverged", _diverged_step(history)

    def diverge(i: int, reason: str, train_loss: float) -> None:
        """Stops run ``i``: status "diverged", with the step and why, in its metrics log."""
        status[i], diverged_at[i] = "diverged", step
        logs[i].append({"step": step, "train_loss": train_loss, "status": "diverged",
                        "reason": reason})

    def times_so_far() -> dict[str, float]:
        """The run's training and wall seconds over every process that trained it so far."""
        return {"train_time_s": earlier.train_time_s + t_train,
                "wall_time_s": earlier.wall_time_s + time.time() - started}

    def evaluate(i, train_loss):
        """Validation metrics at every eval; test ones only at the end (run selection and
        the curves use validation; the test split is read once, for the reported number)."""
        record: dict[str, Any] = {"step": step, "epoch": step * config.batch_size / num_train,
                                  "train_loss": train_loss, **times_so_far(), "commit": commit,
                                  "layout": state_layout}
        state = host_take_run(carry[:2], i)
        splits = (("val", rd.val), ("test", rd.test)) if step >= steps else (("val", rd.val),)
        for split, ds in splits:
            logits = predict(eval_graphdef, state, ds.images, config.student_size,
                             eval_batch(config.preset))
            record.update(eval_metrics(logits, ds.labels, teacher_eval.get(split), split))
        return record

    from tqdm.auto import tqdm

    desc = f"{config.section}:{config.policy}" + (f" x{group}" if group > 1 else "")
    bar = tqdm(total=steps, initial=step, unit="step", disable=not progress, leave=False,
               desc=desc)
    # Resumed from a timed checkpoint between evaluations: the window's chunk losses so far.
    losses_since_eval = window_losses(histories, step)
    every_s = checkpoint_seconds()
    last_save = time.time()
    t_train = 0.0
    images_seen = 0
    records: list[dict[str, Any]] = [{} for _ in configs]
    while step < steps and "done" in status:
        t0 = time.perf_counter()
        n_steps = min(k, steps - step)  # the last chunk may be shorter (one more compile)
        if streamed:
            images, labels, rows, aspects = stream_chunk(
                config, cast(data.StreamingDataset, rd.train), step, n_steps, host_targets)
            consts = put((images, labels, rows, teacher_states, aspects))
        carry, loss = chunk(carry, consts, hp, sched, jnp.asarray(step, jnp.int32),
                            num_steps=n_steps)
        loss = np.asarray(loss)
        dt = time.perf_counter() - t0
        step += n_steps
        t_train += dt
        images_seen += n_steps * config.batch_size
        losses_since_eval.append(loss)
        bar.update(n_steps)
        shown = loss[0] if group == 1 else np.nanmin(np.where(np.isfinite(loss), loss, np.nan))
        bar.set_postfix(loss=f"{shown:.4f}", img_s=f"{n_steps * config.batch_size / dt:.0f}")
        for i in range(group):
            if status[i] == "done" and (reason := watches[i].chunk(float(loss[i]))):
                diverge(i, reason, float(loss[i]))
        if step % eval_every == 0 or step >= steps:
            train_loss = np.mean(losses_since_eval, axis=0)
            losses_since_eval = []
            for i in range(group):
                if status[i] != "done":
                    continue
                if reason := watches[i].evaluation(float(train_loss[i])):
                    diverge(i, reason, float(train_loss[i]))
                    continue
                records[i] = evaluate(i, float(train_loss[i]))
                logs[i].append(records[i])  # before the checkpoint: a resume drops later ones
            if step % ckpt_every == 0 or step >= steps:
                with interrupts.uninterrupted():  # a stop waits until every run has saved
                    for i in range(group):
                        ckpts[i].save(step, host_take_run(carry, i))
                last_save = time.time()
                continue
        if every_s and time.time() - last_save >= every_s:
            # A timed checkpoint between evaluations: the window's losses go in the log with
            # it, so a resume averages the same losses as an uninterrupted run.
            with interrupts.uninterrupted():
                for i in range(group):
                    if status[i] == "done":
                        logs[i].append({"step": step, "checkpoint": "timed",
                                        "window_losses": [float(x[i]) for x in losses_since_eval],
                                        **times_so_far(), "commit": commit,
                                        "layout": state_layout})
                    ckpts[i].save(step, host_take_run(carry, i))
            last_save = time.time()
    bar.close()
    for c in ckpts:
        c.close()
    summaries = []
    for i, run_dir in enumerate(run_dirs):
        if status[i] == "done" and not records[i]:  # resumed from the final checkpoint
            done_losses = [r.get("train_loss") for r in logs[i].read() if r.get("step") == step]
            records[i] = evaluate(i, done_losses[-1] if done_losses else float("nan"))
        if status[i] == "done":
            if save_model:
                params_i, rest_i = host_take_run(carry[:2], i)
                nnx.update(student, params_i, rest_i)
                teachers.save_weights(student, run_dir / "model.npz")
        # the commit is in the provenance, the layout only for resumes
        summary = ({k: v for k, v in records[i].items() if k not in ("commit", "layout")}
                   if status[i] == "done" else {})
        if status[i] == "diverged":
            summary["diverged_at_step"] = diverged_at[i]
        timed_images = images_seen + earlier.timed_steps * config.batch_size
        times = times_so_far()
        train_time = times["train_time_s"]
        summary.update(
            status=status[i], steps=steps, final_step=step, num_train=num_train, **times,
            img_per_s=timed_images / train_time if train_time else None, group_size=group,
            group=[config_hash(c) for c in configs], earlier_wall_time_s=earlier.wall_time_s,
            untimed_steps=earlier.untimed_steps, earlier_commits=earlier_commits(histories[i]),
        )
        summaries.append(summary)
    release_compiled()
    return summaries


CHECKPOINT_MINUTES = 10.0  # the default time between checkpoints (KDLIB_CHECKPOINT_MINUTES)


def checkpoint_seconds() -> float:
    """Seconds between timed checkpoints, from ``$KDLIB_CHECKPOINT_MINUTES`` (default
    :data:`CHECKPOINT_MINUTES`; 0 turns them off): a long run's evaluations (a tenth of it
    apart) would leave up to an hour of a 10-hour group to retrain after a kill. A process
    setting, not a config field: checkpoints do not change what a run computes (tested)."""
    raw = os.environ.get("KDLIB_CHECKPOINT_MINUTES", "")
    try:
        minutes = float(raw) if raw.strip() else CHECKPOINT_MINUTES
    except ValueError:
        minutes = float("nan")
    if not minutes >= 0:  # also NaN
        raise ValueError(f"KDLIB_CHECKPOINT_MINUTES={raw!r}; allowed: a number of minutes "
                         ">= 0 (0: checkpoint only at evaluations)")
    return 60.0 * minutes


def earlier_commits(records: list[dict[str, Any]]) -> list[str]:
    """The commits that trained a run before this process, in order (its log's records up to
    the resumed step; [] for a run trained in one go, or logged before records named one)."""
    out: list[str] = []
    for record in records:
        commit = record.get("commit")
        if isinstance(commit, str) and commit not in out:
            out.append(commit)
    return out


def window_losses(logs: list[list[dict[str, Any]]], step: int) -> list[np.ndarray]:
    """The chunk losses since the last evaluation, per chunk across the group's runs, from the
    timed-checkpoint records at ``step`` (empty when the run resumes at an evaluation). A run
    without the record (diverged before it) reads NaN, which no evaluation of it reads."""
    windows = []
    for records in logs:
        at = [r for r in records if r.get("step") == step and r.get("checkpoint") == "timed"]
        windows.append(at[-1]["window_losses"] if at else None)
    if all(w is None for w in windows):
        return []
    n = max(len(w) for w in windows if w is not None)
    return [np.asarray([np.nan if w is None else w[j] for w in windows], np.float32)
            for j in range(n)]


@dataclasses.dataclass(frozen=True)
class EarlierTimes:
    """The time a resumed run spent before this process: ``timed_steps`` steps took
    ``train_time_s`` of training and ``wall_time_s`` in all; ``untimed_steps`` (of the
    ``resumed_at`` steps) have no recorded time (a log written before the times were, or a
    checkpoint past the last evaluation): accounts that need them scale by the timed share."""

    resumed_at: int = 0
    timed_steps: int = 0
    train_time_s: float = 0.0
    wall_time_s: float = 0.0

    @property
    def untimed_steps(self) -> int:
        return self.resumed_at - self.timed_steps


def earlier_times(records: list[dict[str, Any]], resumed_at: int) -> EarlierTimes:
    """The cumulative times of the last evaluation record at or before ``resumed_at`` (records
    carry ``train_time_s``/``wall_time_s`` since 2026-12-04): what a resumed run already spent."""
    if not resumed_at:
        return EarlierTimes()
    timed = [r for r in records if r.get("step", resumed_at + 1) <= resumed_at
             and isinstance(r.get("train_time_s"), (int, float))
             and isinstance(r.get("wall_time_s"), (int, float))]
    if not timed:
        return EarlierTimes(resumed_at=resumed_at)
    last = max(timed, key=lambda r: r["step"])
    return EarlierTimes(resumed_at, int(last["step"]), float(last["train_time_s"]),
                        float(last["wall_time_s"]))


def group_earlier_times(histories: list[list[dict[str, Any]]], resumed_at: int) -> EarlierTimes:
    """A resumed group's :func:`earlier_times`: those of the run that logged furthest (a run
    that diverged earlier stopped logging evaluations and timed checkpoints)."""
    return max((earlier_times(h, resumed_at) for h in histories), key=lambda e: e.timed_steps)


def _diverged_step(records: list[dict[str, Any]]) -> int | None:
    """The step of the first "diverged" record of a metrics log."""
    return next((r.get("step") for r in records if r.get("status") == "diverged"), None)


def train_many(
    configs: list[RunConfig], run_dirs: list, *, progress: bool = True,
    save_model: bool = False,
) -> list[dict[str, Any]]:
    """Trains any list of configs, as vectorized groups of those that differ only in HPARAMS.

    The ``batch_train_fn`` of :func:`kdlib.sweep.sweep`; summaries come back in input order.
    """
    if len(configs) != len(run_dirs):
        raise ValueError(f"{len(configs)} configs but {len(run_dirs)} run dirs")
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(group_key(c), []).append(i)
    out: list[dict[str, Any]] = [{} for _ in configs]
    for idx in groups.values():
        sums = train_group([configs[i] for i in idx], [run_dirs[i] for i in idx],
                           progress=progress, save_model=save_model)
        for i, s in zip(idx, sums, strict=True):
            out[i] = s
    return out
