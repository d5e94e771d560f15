"""The train step: views -> teacher -> student forward/backward -> optax update, scanned over
``steps_per_call`` steps in one jitted call for a group of runs (:func:`make_train_chunk`)."""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from kdlib import augment, losses, views
from kdlib.config import RunConfig, teacher_view_size
from kdlib.policies import teacher_mode
from kdlib.train.batches import batch_indices, crop_kwargs
from kdlib.train.optimizer import HPARAMS, make_optimizer
from kdlib.train.teacher import Teacher

# Runs shorter than this keep the scan rolled on CPU: the unrolled chunk's steps are 3-7x
# faster but it compiles ~1.7x longer (measured, smoke mix chunk: 23.6 vs 14.3 s), which
# only pays off over many steps. Every stored cpu run is longer (>= 235 steps): unrolled.
UNROLL_MIN_STEPS = 100


def unroll_for(steps: int) -> bool | None:
    """The chunk's ``unroll`` for a run of ``steps`` steps: rolled when short, else the
    backend's default (unrolled on CPU)."""
    return None if steps >= UNROLL_MIN_STEPS else False


def vectorize_runs(config: RunConfig) -> bool:
    """Whether a group's student steps are vmapped (one copy in the program) or unrolled run
    by run. The runs share views and teacher either way. On accelerators: vmapped. On CPU,
    vmapped convs run 1.3-1.6x slower per run (measured, cpu-preset student: 2359 img/s
    alone, 1757 per run under vmap of 2), so unrolled, except at the smoke preset, where
    compiling is most of a run: a 2-run group compiles in 15 vs 37 s (MobileNetV3-L, smoke;
    issue 15). Stored cpu runs are unrolled at every length, so their numbers do not move."""
    return jax.default_backend() != "cpu" or config.preset == "smoke"


def split_chunk(config: RunConfig) -> bool:
    """Whether a chunk runs as two programs: the policy's inputs (views and teacher logits)
    for all of its steps, then the students' steps on them. The students' program then does
    not depend on the policy, the teacher or the data, so runs that differ only in those
    share it through the persistent compilation cache: chapter 01 at smoke compiles one
    instead of eight (issue 15). Only at the smoke preset: the stored cpu runs were trained
    with the fused program (kept, so they retrain to the bit), and the split's speed per step
    was not measured beyond smoke."""
    return config.preset == "smoke"


def _students_step(config: RunConfig, graphdef: Any, vectorize: bool) -> Callable:
    """``students_step(carry, step, hp, sched, x, t_logits, y) -> (carry, losses)``: every
    run's student step (forward, loss, backward, optax update) on one step's shared inputs,
    vmapped or unrolled run by run (:func:`vectorize_runs`)."""

    def student_step(params, rest, opt_state, hp, sched, step, x, t_logits, y):
        tx = make_optimizer(config, sched["steps"], warmup=sched["warmup"], lr=hp["lr"],
                            wd=hp["wd"])

        def distill_loss(logits, target):
            if config.loss == "kl":
                return jnp.mean(losses.kl(logits, target, hp["temperature"]))
            return losses.dist(
                logits, target, hp["temperature"], hp["dist_beta"], hp["dist_gamma"]
            )

        def loss_fn(p):
            model = nnx.merge(graphdef, p, rest, copy=True)  # BatchNorm stats: fresh Variables
            logits = model(x)
            new_rest = nnx.state(model, nnx.Not(nnx.Param))
            if config.loss == "labels":
                loss = jnp.mean(losses.softmax_xent(logits, y))
            elif t_logits.ndim == 3:  # one row per teacher: the losses are summed (big_vision)
                loss = distill_loss(logits, t_logits[0])
                for i in range(1, t_logits.shape[0]):
                    loss = loss + distill_loss(logits, t_logits[i])
            else:
                loss = distill_loss(logits, t_logits)
            return loss, new_rest

        (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, new_opt = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_rest, new_opt, loss

    def students_step(carry, step, hp, sched, x, t_logits, y):
        """Every run's student step on the shared inputs: vmapped or unrolled run by run."""
        params, rest, opt_state = carry
        if vectorize:
            params, rest, opt_state, loss = jax.vmap(
                student_step, in_axes=(0, 0, 0, 0, None, None, None, None, None)
            )(params, rest, opt_state, hp, sched, step, x, t_logits, y)
            return (params, rest, opt_state), loss
        group = hp["lr"].shape[0]
        outs = []
        for i in range(group):
            run_params, run_rest, run_opt, run_hp = take_run((params, rest, opt_state, hp), i)
            outs.append(student_step(run_params, run_rest, run_opt, run_hp, sched, step, x,
                                     t_logits, y))
        new_params, new_rest, new_opt, loss = stack_runs(outs)
        return (new_params, new_rest, new_opt), loss

    return students_step


# Config fields that only the inputs' half of a split chunk reads (views, teachers, data and
# its order) or that reach the students' half as arrays (hyper-parameters, schedule, seed):
# configs differing only in these train with one students program (see students_chunk).
INPUT_ONLY_FIELDS = ("section", "data", "teachers", "policy", "fixed_num_crops",
                     "student_size", "teacher_size", "teacher_ensemble", "epochs",
                     "steps_per_call", "eval_every", "checkpoint_every", "init", "seed",
                     "warmup_frac", "warmup_steps", *HPARAMS)


def students_key(config: RunConfig) -> RunConfig:
    """``config`` with every :data:`INPUT_ONLY_FIELDS` field at its default: what a split
    chunk's students program is built from, so that it cannot read them."""
    defaults = RunConfig()
    return dataclasses.replace(config, **{f: getattr(defaults, f) for f in INPUT_ONLY_FIELDS})


def cached_program(cache: OrderedDict, key: Any, build: Callable[[], Callable],
                   maximum: int = 8) -> Callable:
    """``cache[key]``, built by ``build()`` when missing; the least recently used of more than
    ``maximum`` entries are dropped (a process's jitted programs: see :func:`students_chunk`
    and :func:`kdlib.train.state.train_chunk`)."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    cache[key] = build()
    while len(cache) > maximum:
        cache.popitem(last=False)
    return cache[key]


# The students' programs of this process (see students_chunk).
_STUDENT_CHUNKS: OrderedDict[tuple, Callable] = OrderedDict()


def build_students_chunk(config: RunConfig, graphdef: Any, mesh: Mesh, unroll: bool
                         ) -> Callable:
    """A new jitted students' half of a split chunk for ``config`` (see :func:`students_chunk`,
    which shares one per :func:`students_key`)."""
    students_step = _students_step(config, graphdef, vectorize_runs(config))
    batch_sharding = NamedSharding(mesh, P("data"))

    @functools.partial(jax.jit, out_shardings=NamedSharding(mesh, P()), donate_argnums=0)
    def chunk_students(carry, hp, sched, start_step, inputs):
        steps = start_step + jnp.arange(inputs[0].shape[0])

        def body(c, s_in):
            step, (x, t_logits, y) = s_in
            x = jax.lax.with_sharding_constraint(x, batch_sharding)
            return students_step(c, step, hp, sched, x, t_logits, y)

        carry, chunk_losses = jax.lax.scan(body, carry, (steps, inputs), unroll=unroll)
        return carry, jnp.mean(chunk_losses, axis=0)

    return chunk_students


def students_chunk(config: RunConfig, graphdef: Any, mesh: Mesh, unroll: bool
                   ) -> Callable:
    """The students' half of a split chunk: ``(carry, hp, sched, start_step, inputs) ->
    (carry, mean_loss_per_run)``, a scan of :func:`_students_step` over a chunk's inputs.

    One jitted function per :func:`students_key`, student graph, mesh and unrolling in this
    process: chapter 01's eight policies (and its lengths, teachers, data) trace and lower it
    once instead of once per policy (13 s of its 74 s at smoke, measured; issue 15). Built
    from the key itself, so a field of :data:`INPUT_ONLY_FIELDS` cannot leak into it (and
    tests/test_train.py checks that the full config would have built the same program).
    """
    key_config = students_key(config)
    return cached_program(_STUDENT_CHUNKS, (repr(key_config), graphdef, mesh, unroll),
                          lambda: build_students_chunk(key_config, graphdef, mesh, unroll))


def make_train_chunk(
    config: RunConfig,
    graphdef: Any,
    teacher: Teacher | None,
    mesh: Mesh,
    *,
    streamed: bool = False,
    unroll: bool | None = None,
) -> Callable:
    """Returns ``chunk(carry, consts, hp, sched, start_step) -> (carry, mean_loss_per_run)``.

    A ``lax.scan`` over ``num_steps`` (static, default ``config.steps_per_call``) distill steps
    of a group of runs: ``carry`` = (params, rest, opt_state) stacked over the group's runs;
    ``consts`` = device arrays of the dataset, fixed targets, teacher states and the images'
    original aspects (big_vision pipeline; else a placeholder); ``hp`` =
    :func:`hparams` of the group; ``sched`` = :func:`schedule_arrays`. Views and the teacher
    forward are computed once per step and shared by the runs' student steps (vmapped or
    unrolled: :func:`vectorize_runs`), in one program or two (:func:`split_chunk`).
    With ``streamed``, ``consts`` hold only the chunk's batches, in step order
    (:func:`stream_chunk`), instead of the whole dataset. ``unroll`` (default: on CPU)
    unrolls the scan: faster steps, slower compile (see :data:`UNROLL_MIN_STEPS`).
    """
    policy = config.policy
    fixed = teacher_mode(policy) == "fixed"
    distill = config.loss != "labels"
    big_vision = config.data.pipeline == "big_vision"
    crop_kw: dict[str, Any] = crop_kwargs(config)
    sum_losses = (teacher is not None and teacher.ensemble == "sum_losses"
                  and len(teacher.names) > 1)
    teacher_size = teacher_view_size(config)
    batch_sharding = NamedSharding(mesh, P("data"))

    def step_inputs(step, pos, consts, sched):
        """One step's student views and what the loss compares them with (the teacher's
        logits, or for the label baselines the mixed one-hot labels): no student in it."""
        data_key, aug_key = jax.random.split(jax.random.key(sched["seed"]))
        images_all, labels_all, targets_all, teacher_states, aspects_all = consts
        if streamed:  # consts hold this chunk's batches in order (see stream_chunk)
            idx = pos * config.batch_size + jnp.arange(config.batch_size)
        else:
            idx = batch_indices(data_key, step, images_all.shape[0], config.batch_size)
        idx = jax.lax.with_sharding_constraint(idx, batch_sharding)
        images = images_all[idx]
        v = views.make_views(
            policy, jax.random.fold_in(aug_key, step), images,
            student_size=config.student_size, teacher_size=teacher_size,
            need_teacher=distill and not fixed, **crop_kw,
            aspect=aspects_all[idx] if big_vision else None,
        )
        x = jax.lax.with_sharding_constraint(v.student, batch_sharding)
        num_classes = targets_all.shape[-1]
        t_logits = y = None
        if not distill:
            y = augment.mix_labels(losses.onehot(labels_all[idx], num_classes), v.mix_lam,
                                   v.mix_partner)
        elif fixed:
            t_logits = targets_all[idx]
        elif teacher is None or v.teacher is None:  # traced once: no cost per step
            raise ValueError(f"policy {policy!r} distills from a live teacher; none was given")
        elif sum_losses:
            t_logits = teacher.targets(teacher_states, v.teacher)
        else:
            t_logits = teacher.apply(teacher_states, v.teacher)
        return x, t_logits, y

    # Outputs keep the inputs' (replicated) sharding, so the second call hits the jit cache
    # instead of compiling again for differently-sharded arguments.
    # XLA:CPU runs a rolled while-loop body 3-7x slower than the same ops unrolled
    # (measured: 1.87 vs 0.27 s per step of the cpu-preset teacher), so unroll on CPU.
    if unroll is None:
        unroll = jax.default_backend() == "cpu"
    replicated = NamedSharding(mesh, P())

    if split_chunk(config):
        @functools.partial(jax.jit, static_argnames="num_steps")
        def chunk_inputs(consts, sched, start_step, num_steps):
            positions = jnp.arange(num_steps)
            _, inputs = jax.lax.scan(
                lambda c, sp: (c, step_inputs(sp[0], sp[1], consts, sched)), None,
                (start_step + positions, positions), unroll=unroll,
            )
            return inputs

        chunk_students = students_chunk(config, graphdef, mesh, unroll)

        def split(carry, consts, hp, sched, start_step, num_steps=config.steps_per_call):
            inputs = chunk_inputs(consts, sched, start_step, num_steps=num_steps)
            return chunk_students(carry, hp, sched, start_step, inputs)

        programs: Any = split  # a function that also carries the two programs, by name
        programs.inputs, programs.students = chunk_inputs, chunk_students
        return split

    students_step = _students_step(config, graphdef, vectorize_runs(config))

    def one_step(carry, step, pos, consts, hp, sched):
        return students_step(carry, step, hp, sched, *step_inputs(step, pos, consts, sched))

    @functools.partial(
        jax.jit, out_shardings=replicated, donate_argnums=0, static_argnames="num_steps",
    )
    def chunk(carry, consts, hp, sched, start_step, num_steps=config.steps_per_call):
        positions = jnp.arange(num_steps)
        carry, chunk_losses = jax.lax.scan(
            lambda c, sp: one_step(c, sp[0], sp[1], consts, hp, sched), carry,
            (start_step + positions, positions), unroll=unroll,
        )
        return carry, jnp.mean(chunk_losses, axis=0)

    return chunk


def stack_runs(trees: list[Any]) -> Any:
    """One tree whose leaves stack the runs' leaves (leading axis: the run)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def take_run(tree: Any, i: int) -> Any:
    """Run ``i``'s slice of a :func:`stack_runs` tree."""
    return jax.tree.map(lambda x: x[i], tree)


def host_stack_runs(trees: list[Any]) -> Any:
    """:func:`stack_runs` in numpy, for use outside ``jit``: eager ``jnp.stack`` compiles a
    program per leaf shape (55 compiles, ~14 s, for a MobileNetV3 group at smoke)."""
    return jax.tree.map(
        lambda *xs: jnp.stack(xs) if _is_key(xs[0]) else np.stack([np.asarray(x) for x in xs]),
        *trees)


def host_take_run(tree: Any, i: int) -> Any:
    """:func:`take_run` in numpy on CPU, for use outside ``jit`` (an eager slice compiles two
    programs per leaf shape). On accelerators it slices on device: copying every run's
    state to the host to keep one would cost more than those compiles."""
    if jax.default_backend() != "cpu":
        return take_run(tree, i)
    return jax.tree.map(lambda x: (x if _is_key(x) else np.asarray(x))[i], tree)


def _is_key(x: Any) -> bool:
    """Whether ``x`` is a PRNG key array (numpy cannot hold one)."""
    return jax.dtypes.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)
