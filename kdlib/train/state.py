"""What a group of runs trains with: the mesh, the student, stacked optimizer states, the
teacher and its fixed targets, and the jitted chunk (:func:`group_program`)."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from kdlib import checks, models, teachers
from kdlib.config import RunConfig, teacher_sizes, teacher_view_size
from kdlib.policies import teacher_mode
from kdlib.train.optimizer import HPARAMS, group_key, hparams, make_optimizer, schedule_arrays
from kdlib.train.step import cached_program, host_stack_runs, make_train_chunk
from kdlib.train.teacher import Teacher, fixed_targets


def make_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh with a ``data`` axis over ``devices`` (default: all)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def student_kwargs(config: RunConfig, num_classes: int, in_channels: int) -> dict[str, Any]:
    """The student's constructor kwargs with the dataset's class and channel counts filled in."""
    kwargs = dict(config.student.kwargs)
    kwargs.setdefault("num_classes", num_classes)
    kwargs.setdefault("in_channels", in_channels)
    return kwargs


def build_student(config: RunConfig, num_classes: int, in_channels: int) -> nnx.Module:
    """The student, from scratch or initialized from a stored model (``config.init``)."""
    kwargs = student_kwargs(config, num_classes, in_channels)
    student = models.create(config.student.name, rngs=nnx.Rngs(config.seed), **kwargs)
    if config.init:
        source, _ = teachers.load(config.init)
        init_state = nnx.state(source, nnx.Param)
        target = nnx.state(student, nnx.Param)
        merged = _copy_matching(init_state.to_pure_dict(), target.to_pure_dict())
        nnx.replace_by_pure_dict(target, merged)
        nnx.update(student, target)
    return student


def _copy_matching(src: Any, dst: Any) -> Any:
    """Copies leaves of ``src`` into ``dst`` where paths and shapes agree (new heads stay)."""
    if isinstance(dst, dict):
        return {k: _copy_matching(src.get(k) if isinstance(src, dict) else None, v)
                for k, v in dst.items()}
    if src is not None and np.shape(src) == np.shape(dst):
        return src
    return dst


def check_group(configs: list[RunConfig], run_dirs: list) -> None:
    """A group needs one run dir per config and configs that differ only in HPARAMS."""
    if not configs or len(configs) != len(run_dirs):
        raise ValueError(
            f"need one run_dir per config, got {len(configs)} configs and {len(run_dirs)} dirs"
        )
    for c in configs:
        checks.check_run(c)
    keys = {group_key(c) for c in configs}
    if len(keys) > 1:
        diff = sorted(
            f.name for f in dataclasses.fields(RunConfig)
            if len({repr(getattr(c, f.name)) for c in configs}) > 1 and f.name not in HPARAMS
        )
        raise ValueError(
            f"configs of one group may differ only in {HPARAMS}; these differ too: {diff}"
        )


@dataclass
class GroupProgram:
    """What a vectorized group trains with: its student, stacked state and jitted chunk."""

    teacher: Teacher | None
    student: nnx.Module
    one_carry: tuple[Any, Any, Any]  # (params, rest, optimizer state) of one run
    carry: Any  # every run's one_carry, stacked and on device
    hp: dict[str, jax.Array]
    sched: dict[str, jax.Array]
    targets: np.ndarray  # fixed teacher targets of the training images, or a dummy
    chunk: Callable


def group_program(
    configs: list[RunConfig], train_ds: Any, num_classes: int, in_channels: int, steps: int,
    mesh: Mesh, *, streamed: bool = False, unroll: bool | None = None,
) -> GroupProgram:
    """Builds the teacher, student, optimizer states and chunk of ``configs`` (one group)."""
    config = configs[0]
    put = lambda x: jax.device_put(x, NamedSharding(mesh, P()))
    teacher = (Teacher(config.teachers, teacher_sizes(config), config.teacher_ensemble)
               if config.teachers else None)
    student = build_student(config, num_classes, in_channels)
    student.train()
    # nnx.split's stub types the States as a variadic tuple; two filters give exactly two.
    graphdef, params, rest = nnx.split(student, nnx.Param, ...)  # type: ignore[misc]
    # One jitted init for the group: eager inits compile a zeros program per leaf shape (45
    # for a MobileNetV3 at smoke), a jitted one per call. wd as an array, as the step passes
    # it: a float 0.0 would drop the decay from the chain and its state (a run with wd=0
    # then failed inside optax at its first step).
    opt_states = jax.jit(lambda p: [
        make_optimizer(c, steps, wd=jnp.asarray(c.wd, jnp.float32)).init(p) for c in configs
    ])(params)
    # Teacher outputs that do not change during training: fixed targets.
    if teacher and teacher_mode(config.policy) == "fixed":
        targets = fixed_targets(config, teacher, train_ds, teacher_view_size(config))
    else:
        targets = np.zeros((1, num_classes), np.float32)
    return GroupProgram(
        teacher=teacher, student=student, one_carry=(params, rest, opt_states[0]),
        carry=put(host_stack_runs([(params, rest, o) for o in opt_states])),
        hp=put(hparams(configs)), sched=put(schedule_arrays(config, steps)), targets=targets,
        chunk=train_chunk(config, graphdef, teacher, mesh, streamed=streamed, unroll=unroll),
    )


# The jitted chunks of this process, by program (see train_chunk); the oldest are dropped.
_CHUNKS: OrderedDict[tuple, Callable] = OrderedDict()
_MAX_CHUNKS = 8


def train_chunk(config: RunConfig, graphdef: Any, teacher: Teacher | None, mesh: Mesh, *,
                streamed: bool = False, unroll: bool | None = None) -> Callable:
    """:func:`make_train_chunk`, reused within a process for groups whose configs differ only
    in :data:`HPARAMS`, length or seed: those enter as arrays, so the chunk is the same program
    and a second length of an arm skips tracing it and loading it from the compilation cache
    (a MobileNetV3 group at smoke: 19 s per length; issue 15). Every other config field, the
    student's and teachers' graphs and the mesh are part of the key."""
    zeros: dict[str, Any] = dict.fromkeys(HPARAMS, 0.0)
    neutral = dataclasses.replace(config, epochs=1.0, seed=0, **zeros)
    teacher_key = None if teacher is None else (
        teacher.names, tuple(teacher.graphdefs), teacher.sizes, teacher.ensemble)
    key = (repr(neutral), graphdef, teacher_key, mesh, streamed, unroll)
    return cached_program(_CHUNKS, key, lambda: make_train_chunk(
        config, graphdef, teacher, mesh, streamed=streamed, unroll=unroll), _MAX_CHUNKS)
