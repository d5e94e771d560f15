"""A benchmark timer of the real training program, steady state, nothing written to disk."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from kdlib import data
from kdlib.config import RunConfig
from kdlib.train.batches import load_data, total_steps, train_aspects
from kdlib.train.state import check_group, group_program, make_mesh
from kdlib.train.step import unroll_for


def chunk_timer(configs: list[RunConfig], *, num_train: int | None = None
                ) -> Callable[[int], dict[str, float]]:
    """A timer of the training program of ``configs`` (one vectorized group), steady state.

    Builds what :func:`train_group` builds (data, teacher, student, optimizer states, the
    jitted chunk) and returns ``timer(calls)``: it runs ``calls`` chunk calls and returns
    ``{"step_s": seconds per step, "img_per_s": batch images per second, "compile_s": ...}``
    (the first call compiles first, untimed: ``compile_s`` is that time, 0 afterwards). Two
    settings (e.g. Adam vs Shampoo) can so be timed alternately in one process, under the
    same load, without the compile and evaluation time a run's ``img_per_s`` includes.
    ``num_train`` caps the training images loaded (a step does not depend on their number).
    The program is the one the runs train with: rolled or unrolled by the runs' real length
    (so a smoke timer reuses the smoke runs' compiled program). Nothing is written to disk.
    """
    check_group(configs, [None] * len(configs))
    config = configs[0]
    mesh = make_mesh()
    rd = load_data(config)
    if isinstance(rd.train, data.StreamingDataset):
        raise ValueError(f"dataset {config.data.name!r} is streamed; time an in-memory one")
    train_ds = rd.train if num_train is None else data.subset(rd.train, num_train, seed=0)
    num_classes = (rd.val if config.data.eval_name else rd.train).num_classes
    k = config.steps_per_call
    steps = 1_000_000  # the schedule's length; a timer may be called any number of times
    unroll = unroll_for(total_steps(config, len(rd.train)))
    prog = group_program(configs, train_ds, num_classes, rd.val.images.shape[-1], steps, mesh,
                         unroll=unroll)
    state = {"carry": prog.carry, "step": 0}
    teacher_states = prog.teacher.states if prog.teacher else []
    consts = jax.device_put((train_ds.images, train_ds.labels, jnp.asarray(prog.targets),
                             teacher_states, train_aspects(config, train_ds)),
                            NamedSharding(mesh, P()))
    hp, sched, chunk = prog.hp, prog.sched, prog.chunk

    def call() -> Any:
        carry, loss = chunk(state["carry"], consts, hp, sched,
                            jnp.asarray(state["step"], jnp.int32), num_steps=k)
        state["carry"], state["step"] = carry, state["step"] + k
        return loss

    def timer(calls: int) -> dict[str, float]:
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
            raise ValueError(f"calls={calls!r}; must be an integer >= 1")
        compile_s = 0.0
        if state["step"] == 0:
            t0 = time.perf_counter()
            np.asarray(call())
            compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(calls):
            loss = call()
        np.asarray(loss)
        step_s = (time.perf_counter() - t0) / (calls * k)
        return {"step_s": step_s, "img_per_s": config.batch_size / step_s,
                "compile_s": compile_s}

    return timer
