"""The training engine: one jitted, scanned distill (or label) step over a device mesh.

``train(config, run_dir)`` trains one :class:`kdlib.config.RunConfig`, evaluating, logging
and checkpointing as it goes; ``run(config)`` returns the stored result when there is one.
The dataset and the batch order live on device and follow from (seed, step), so a run
resumed from a checkpoint continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from kdlib import augment, checks, data, divergence, losses, models, optim, store, teachers, views
from kdlib.checkpoint import Checkpointer, group_start
from kdlib.config import RunConfig, teacher_sizes, teacher_view_size, warmup_steps
from kdlib.data.pipelines import crop_fraction
from kdlib.policies import teacher_mode

EVAL_BATCH = 500
# Runs shorter than this keep the scan rolled on CPU: the unrolled chunk's steps are 3-7x
# faster but it compiles ~1.7x longer (measured, smoke mix chunk: 23.6 vs 14.3 s), which
# only pays off over many steps. Every stored cpu run is longer (>= 235 steps): unrolled.
UNROLL_MIN_STEPS = 100


def enable_compile_cache() -> None:
    """Turns on JAX's persistent compilation cache (``$KDLIB_JAX_CACHE``, else ~/.cache).

    Runs of a sweep that differ only in hyper-parameters or length compile to the same
    program (they enter it as arrays), so later runs, and later processes, skip the compile.
    A cache directory set by the user in JAX's own config is left alone.
    """
    if jax.config.jax_compilation_cache_dir:
        return
    default = Path.home() / ".cache" / "kdlib" / "jax"
    path = Path(os.environ.get("KDLIB_JAX_CACHE") or default)
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.0)


def make_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh with a ``data`` axis over ``devices`` (default: all)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


@dataclass
class RunData:
    """Arrays of one run, in memory: train/val/test images (uint8) and labels."""

    train: data.Dataset
    val: data.Dataset
    test: data.Dataset


def stored_image_size(config: RunConfig) -> int | None:
    """Resolution tfds images are decoded at: enough for the views (None: embedded, native)."""
    if config.data.name in data.EMBEDDED and config.data.eval_dataset in data.EMBEDDED:
        return None
    return max(data.DEFAULT_IMAGE_SIZE, config.student_size, teacher_view_size(config))


def _eval_size(config: RunConfig) -> int:
    """Side of the stored evaluation images of the big_vision pipeline: the largest view."""
    return max(config.student_size, teacher_view_size(config))


def load_data(config: RunConfig) -> RunData:
    """Loads the run's splits, with the optional class filter and balanced subsets.

    Validation and test come from ``data.eval_name`` when set (distilling on another domain).
    With ``data.pipeline="big_vision"`` the training images are stored whole (squashed, with
    ``Dataset.aspect``) and the evaluation images as big_vision's central crops
    (``kdlib.data.pipelines``).

    A streamed training split (ImageNet) stays a :class:`kdlib.data.StreamingDataset` and is
    fed to the device chunk by chunk; its validation and test splits are read into memory.
    """
    d = config.data
    size = stored_image_size(config)
    train_kw: dict[str, Any] = {}
    eval_kw: dict[str, Any] = {}
    eval_size = size
    if d.pipeline == "big_vision":
        train_kw = {"layout": "full"}
        eval_kw = {"layout": "central_crop", "crop_fraction": crop_fraction(d.eval_dataset)}
        eval_size = _eval_size(config)
    train = data.load(d.name, d.train_split, classes=d.classes, image_size=size, **train_kw)
    if d.train_size is not None:
        if isinstance(train, data.StreamingDataset):
            raise ValueError(f"train_size={d.train_size} needs an in-memory dataset; "
                             f"{d.name!r} is streamed (use a split string such as 'train[:10%]')")
        seed = config.seed if d.subset_seed is None else d.subset_seed
        train = data.subset(train, d.train_size, seed=seed)
    val = data.to_memory(data.load(d.eval_dataset, d.val_split, image_size=eval_size, **eval_kw))
    test = data.to_memory(data.load(d.eval_dataset, d.test_split, image_size=eval_size,
                                    **eval_kw))
    if d.val_size is not None:
        val = data.subset(val, d.val_size, seed=0)
    if d.test_size is not None:
        test = data.subset(test, d.test_size, seed=0)
    return RunData(train, val, test)


def batch_indices(key: jax.Array, step: jax.Array, n: int, batch: int) -> jax.Array:
    """Example indices of ``step``: epoch-wise permutations of ``range(n)`` from (key, epoch)."""
    pos = step * batch + jnp.arange(batch)
    first_epoch = (step * batch) // n
    epoch = pos // n
    perm0 = jax.random.permutation(jax.random.fold_in(key, first_epoch), n)
    perm1 = jax.random.permutation(jax.random.fold_in(key, first_epoch + 1), n)
    return jnp.where(epoch == first_epoch, perm0[pos % n], perm1[pos % n])


def stream_chunk(
    config: RunConfig, source: data.StreamingDataset, start_step: int, num_steps: int,
    targets: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, fixed targets, aspects) of steps ``start_step..+num_steps`` of a
    streamed run.

    The batch order follows from (seed, step) as in memory (``source.batch_indices``), so a
    resumed streamed run reads the same batches; ``targets`` are the precomputed fixed
    teacher's logits of every training image, or None. ``aspects`` are the images' original
    widths / heights (used by the big_vision pipeline's crops; a placeholder otherwise).
    """
    idx = np.concatenate([source.batch_indices(s, config.batch_size, seed=config.seed)
                          for s in range(start_step, start_step + num_steps)])
    images, labels, aspects = source.read(idx)
    rows = targets[idx] if targets is not None else np.zeros((1, source.num_classes))
    if config.data.pipeline != "big_vision":
        aspects = np.ones((1,), np.float32)
    return images, labels, np.asarray(rows, np.float32), np.asarray(aspects, np.float32)


def fixed_targets(
    config: RunConfig, teacher: Teacher, train_data: Any, teacher_size: int
) -> np.ndarray:
    """The fixed teacher's logits of every training image, computed once (fix/* policies).

    A streamed split is read block by block; each image keeps its own crops (seeded by its
    index), so the targets equal those of the same images in memory.
    """
    apply = lambda imgs: teacher.apply(teacher.states, imgs)
    kw = dict(teacher_size=teacher_size, batch_size=EVAL_BATCH,
              num_crops=config.fixed_num_crops, seed=config.seed, **_crop_kwargs(config))
    big_vision = config.data.pipeline == "big_vision"
    if not isinstance(train_data, data.StreamingDataset):
        aspect = train_data.aspect if big_vision else None
        return views.precompute_fixed_targets(config.policy, apply, train_data.images,
                                              aspect=aspect, **kw)
    block = 16 * EVAL_BATCH
    out = []
    for start in range(0, len(train_data), block):
        images, _, aspect = train_data.read(np.arange(start, min(start + block, len(train_data))))
        out.append(views.precompute_fixed_targets(config.policy, apply, images, first_index=start,
                                                  aspect=aspect if big_vision else None, **kw))
    return np.concatenate(out)


def _crop_kwargs(config: RunConfig) -> dict[str, float]:
    """The mild random / central crop's fraction: big_vision's for its pipeline, else the
    views' default (224 / 256)."""
    if config.data.pipeline == "big_vision":
        return {"crop_fraction": crop_fraction(config.data.name)}
    return {}


def total_steps(config: RunConfig, num_train: int) -> int:
    """Number of optimizer steps of a run: ``epochs`` passes over the training images."""
    return max(1, math.ceil(config.epochs * num_train / config.batch_size))


def make_optimizer(
    config: RunConfig, steps: Any, *, warmup: Any = None, lr: Any = None, wd: Any = None
) -> optax.GradientTransformation:
    """The run's optimizer with a linear warmup and a decay to zero at ``steps``.

    ``steps``, ``warmup``, ``lr`` and ``wd`` may be scalar JAX arrays (defaults: the config's),
    so that runs differing only in them share one compiled step (see :data:`HPARAMS`).
    """
    lr = config.lr if lr is None else lr
    wd = config.wd if wd is None else wd
    if warmup is None:
        warmup = warmup_steps(config, steps)
    if config.optimizer == "adam":
        schedule = optim.warmup_cosine(1.0, steps, warmup)
        mu_dtype = None if config.mu_dtype is None else jnp.dtype(config.mu_dtype)
        return optim.adam_bv(lr, schedule=schedule, weight_decay=wd,
                             grad_clip_norm=config.grad_clip, mu_dtype=mu_dtype)
    if config.optimizer == "sgd":
        schedule = optim.warmup_cosine(1.0, steps, warmup)
        return optim.sgd_momentum(
            lr, schedule=schedule, momentum=config.momentum, weight_decay=wd,
            grad_clip_norm=config.grad_clip,
        )
    schedule = optim.warmup_quadratic_decay(1.0, steps, warmup)
    return optim.shampoo(
        learning_rate=lr, schedule=schedule, weight_decay=wd,
        grad_clip_norm=config.grad_clip, **config.shampoo,
    )


# Config fields that may differ between the runs of one vectorized group: they enter the
# compiled step as arrays, so a sweep over them trains as one program (one compile, one
# teacher forward per batch, several students under vmap).
HPARAMS = ("lr", "wd", "temperature", "dist_beta", "dist_gamma")


def group_key(config: RunConfig) -> str:
    """Configs with equal keys differ only in :data:`HPARAMS` and can train as one group."""
    neutral = dataclasses.replace(config, **{h: 0.0 for h in HPARAMS})
    return store.config_hash(neutral)


def hparams(configs: list[RunConfig]) -> dict[str, jax.Array]:
    """The :data:`HPARAMS` of a group as float32 arrays with one entry per run."""
    return {h: jnp.asarray([float(getattr(c, h)) for c in configs], jnp.float32)
            for h in HPARAMS}


def schedule_arrays(config: RunConfig, steps: int) -> dict[str, jax.Array]:
    """Total and warmup steps and the seed as arrays: runs differing in length or seed (seed
    replicates) share the compiled step."""
    warmup = warmup_steps(config, steps)
    return {"steps": jnp.asarray(steps, jnp.int32), "warmup": jnp.asarray(warmup, jnp.int32),
            "seed": jnp.asarray(config.seed, jnp.uint32)}


class Teacher:
    """A frozen teacher (or an ensemble) as a pure function of its state.

    ``sizes`` are the teachers' input resolutions (default: none, each takes the views as
    given): :meth:`apply` takes views at the largest and resizes them for the others, so
    every teacher sees the same crop (the paper's 224 px + 384 px ensemble). ``ensemble``
    (``config.TEACHER_ENSEMBLES``): "mean_logits" distills one teacher, the mean of their
    logits; "sum_losses" (big_vision) sums the loss over teachers: :meth:`targets` returns
    their logits stacked (teachers, batch, classes).
    """

    ensemble = "mean_logits"  # instances built without __init__ (benchmarks) keep the default

    def __init__(self, names: tuple[str, ...], sizes: tuple[int | None, ...] | None = None,
                 ensemble: str = "mean_logits"):
        self.ensemble = ensemble
        self.names = names
        loaded = [teachers.load(n) for n in names]
        self.cards = [card for _, card in loaded]
        self.graphdefs = []
        self.states = []
        for model, _ in loaded:
            gd, state = nnx.split(model)
            self.graphdefs.append(gd)
            self.states.append(state)
        self.image_size = self.cards[0]["image_size"] if self.cards else None
        if sizes is None:
            sizes = (None,) * len(names)
        if len(sizes) != len(names):
            raise ValueError(f"sizes={sizes!r}: one size per teacher of {names!r}")
        self.sizes = tuple(sizes)

    def apply(self, states: list, images: jax.Array) -> jax.Array:
        """Mean logits of the teachers on float NHWC views (each resized to its teacher's size
        when it differs from the views')."""
        return jax.lax.stop_gradient(losses.ensemble_logits(self.apply_each(states, images)))

    def apply_each(self, states: list, images: jax.Array) -> list[jax.Array]:
        """Each teacher's logits on float NHWC views (resized to its size where it differs)."""
        logits = []
        for gd, s, size in zip(self.graphdefs, states, self.sizes, strict=True):
            x = images
            if size is not None and size != images.shape[1]:
                x = jax.image.resize(images, (images.shape[0], size, size, images.shape[3]),
                                     "linear", antialias=True)
            logits.append(jax.lax.stop_gradient(nnx.merge(gd, s)(x)))
        return logits

    def targets(self, states: list, images: jax.Array) -> jax.Array:
        """What the loss compares the student with: (teachers, batch, classes) logits, one
        row per teacher for "sum_losses", a single row of mean logits for "mean_logits"."""
        if self.ensemble == "sum_losses":
            return jnp.stack(self.apply_each(states, images))
        return self.apply(states, images)[None]

    def eval_logits(self, per_teacher: list[np.ndarray]) -> np.ndarray:
        """The ensemble's logits for evaluation metrics from each teacher's: the mean of the
        logits, or (for "sum_losses", as big_vision's ``teacher_ensemble_fwd``) the log of
        the mean probabilities."""
        if self.ensemble == "sum_losses" and len(per_teacher) > 1:
            probs = np.mean([np.asarray(jax.nn.softmax(jnp.asarray(x))) for x in per_teacher],
                            axis=0)
            return np.log(np.maximum(probs, 1e-30)).astype(np.float32)
        return np.mean(per_teacher, axis=0)


def _eval_views(images: jax.Array, size: int) -> jax.Array:
    boxes = augment.full_boxes(images.shape[0])
    return augment.value_range(augment.crop_resize(images, boxes, size))


def predict(
    graphdef: Any, states: tuple, images: np.ndarray, size: int, batch: int = EVAL_BATCH
) -> np.ndarray:
    """Logits of a model (``nnx.merge(graphdef, *states)``) on uint8 images at ``size``."""
    fn = _predict_fn(graphdef, size)
    outs = []
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
        outs.append(np.asarray(fn(states, jnp.asarray(chunk)))[: batch - pad])
    return np.concatenate(outs)


_PREDICT_CACHE: dict = {}


def _predict_fn(graphdef: Any, size: int) -> Callable:
    key = (graphdef, size)
    if key not in _PREDICT_CACHE:

        @jax.jit
        def fn(states, images):
            return nnx.merge(graphdef, *states)(_eval_views(images, size))

        _PREDICT_CACHE[key] = fn
    return _PREDICT_CACHE[key]


def eval_metrics(
    student_logits: np.ndarray, labels: np.ndarray, teacher_logits: np.ndarray | None, prefix: str
) -> dict[str, float]:
    """Accuracy, and with a teacher its accuracy, top-1 agreement and KL (T=1) to the student."""
    out = {f"{prefix}_acc": float(np.mean(np.argmax(student_logits, -1) == labels))}
    if teacher_logits is not None:
        out[f"{prefix}_teacher_acc"] = float(np.mean(np.argmax(teacher_logits, -1) == labels))
        out[f"{prefix}_agreement"] = float(
            np.mean(np.argmax(student_logits, -1) == np.argmax(teacher_logits, -1))
        )
        kl = losses.kl(jnp.asarray(student_logits), jnp.asarray(teacher_logits), 1.0)
        out[f"{prefix}_kl"] = float(jnp.mean(kl))
    return out


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
    forward are computed once per step and shared; each run's student step is vmapped.
    With ``streamed``, ``consts`` hold only the chunk's batches, in step order
    (:func:`stream_chunk`), instead of the whole dataset. ``unroll`` (default: on CPU)
    unrolls the scan: faster steps, slower compile (see :data:`UNROLL_MIN_STEPS`).
    """
    policy = config.policy
    fixed = teacher_mode(policy) == "fixed"
    distill = config.loss != "labels"
    big_vision = config.data.pipeline == "big_vision"
    crop_kw = _crop_kwargs(config)
    sum_losses = (teacher is not None and teacher.ensemble == "sum_losses"
                  and len(teacher.names) > 1)
    teacher_size = teacher_view_size(config)
    batch_sharding = NamedSharding(mesh, P("data"))

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

    def one_step(carry, step, pos, consts, hp, sched):
        params, rest, opt_state = carry
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
        elif sum_losses:
            t_logits = teacher.targets(teacher_states, v.teacher)
        else:
            t_logits = teacher.apply(teacher_states, v.teacher)
        if vectorize:
            params, rest, opt_state, loss = jax.vmap(
                student_step, in_axes=(0, 0, 0, 0, None, None, None, None, None)
            )(params, rest, opt_state, hp, sched, step, x, t_logits, y)
            return (params, rest, opt_state), loss
        group = hp["lr"].shape[0]
        outs = [student_step(*_take((params, rest, opt_state, hp), i), sched, step, x,
                             t_logits, y) for i in range(group)]
        new_params, new_rest, new_opt, loss = _stack(outs)
        return (new_params, new_rest, new_opt), loss

    # Outputs keep the inputs' (replicated) sharding, so the second call hits the jit cache
    # instead of compiling again for differently-sharded arguments.
    # XLA:CPU runs a rolled while-loop body 3-7x slower than the same ops unrolled
    # (measured: 1.87 vs 0.27 s per step of the cpu-preset teacher), so unroll on CPU.
    if unroll is None:
        unroll = jax.default_backend() == "cpu"
    # The runs of a group share views and teacher; their student steps are vmapped on
    # accelerators but unrolled on CPU, where vmapped convs run 1.3-1.6x slower per run
    # (measured, cpu-preset student: 2359 img/s alone, 1757 per run under vmap of 2).
    vectorize = jax.default_backend() != "cpu"

    @functools.partial(
        jax.jit, out_shardings=NamedSharding(mesh, P()), donate_argnums=0,
        static_argnames="num_steps",
    )
    def chunk(carry, consts, hp, sched, start_step, num_steps=config.steps_per_call):
        positions = jnp.arange(num_steps)
        carry, chunk_losses = jax.lax.scan(
            lambda c, sp: one_step(c, sp[0], sp[1], consts, hp, sched), carry,
            (start_step + positions, positions), unroll=unroll,
        )
        return carry, jnp.mean(chunk_losses, axis=0)

    return chunk


def _check_group(configs: list[RunConfig], run_dirs: list) -> None:
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
class _GroupProgram:
    """What a vectorized group trains with: its student, stacked state and jitted chunk."""

    teacher: Teacher | None
    student: nnx.Module
    one_carry: tuple[Any, Any, Any]  # (params, rest, optimizer state) of one run
    carry: Any  # every run's one_carry, stacked and on device
    hp: dict[str, jax.Array]
    sched: dict[str, jax.Array]
    targets: np.ndarray  # fixed teacher targets of the training images, or a dummy
    chunk: Callable


def _group_program(
    configs: list[RunConfig], train_ds: Any, num_classes: int, in_channels: int, steps: int,
    mesh: Mesh, *, streamed: bool = False, unroll: bool | None = None,
) -> _GroupProgram:
    """Builds the teacher, student, optimizer states and chunk of ``configs`` (one group)."""
    config = configs[0]
    put = lambda x: jax.device_put(x, NamedSharding(mesh, P()))
    teacher = (Teacher(config.teachers, teacher_sizes(config), config.teacher_ensemble)
               if config.teachers else None)
    student = build_student(config, num_classes, in_channels)
    student.train()
    graphdef, params, rest = nnx.split(student, nnx.Param, ...)
    opt_states = [make_optimizer(c, steps).init(params) for c in configs]
    # Teacher outputs that do not change during training: fixed targets.
    if teacher and teacher_mode(config.policy) == "fixed":
        targets = fixed_targets(config, teacher, train_ds, teacher_view_size(config))
    else:
        targets = np.zeros((1, num_classes), np.float32)
    return _GroupProgram(
        teacher=teacher, student=student, one_carry=(params, rest, opt_states[0]),
        carry=put(_stack([(params, rest, o) for o in opt_states])),
        hp=put(hparams(configs)), sched=put(schedule_arrays(config, steps)), targets=targets,
        chunk=make_train_chunk(config, graphdef, teacher, mesh, streamed=streamed,
                               unroll=unroll),
    )


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
    Nothing is written to disk.
    """
    _check_group(configs, [None] * len(configs))
    config = configs[0]
    mesh = make_mesh()
    rd = load_data(config)
    if isinstance(rd.train, data.StreamingDataset):
        raise ValueError(f"dataset {config.data.name!r} is streamed; time an in-memory one")
    train_ds = rd.train if num_train is None else data.subset(rd.train, num_train, seed=0)
    num_classes = (rd.val if config.data.eval_name else rd.train).num_classes
    k = config.steps_per_call
    steps = 1_000_000  # the schedule's length; a timer may be called any number of times
    prog = _group_program(configs, train_ds, num_classes, rd.val.images.shape[-1], steps, mesh)
    state = {"carry": prog.carry, "step": 0}
    teacher_states = prog.teacher.states if prog.teacher else []
    consts = jax.device_put((train_ds.images, train_ds.labels, jnp.asarray(prog.targets),
                             teacher_states, _aspects(config, train_ds)),
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


def _aspects(config: RunConfig, ds: Any) -> np.ndarray:
    """The training images' original widths / heights for the big_vision pipeline's crops;
    a placeholder otherwise (the chunk does not read it)."""
    if config.data.pipeline == "big_vision":
        if ds.aspect is None:
            raise ValueError(f"data.pipeline='big_vision' needs the images' aspects; dataset "
                             f"{ds.name!r} was not stored with layout='full'")
        return ds.aspect
    return np.ones((1,), np.float32)


def _stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _take(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda x: x[i], tree)


def train(
    config: RunConfig, run_dir: str | Path, *, progress: bool = True, save_model: bool = False
) -> dict[str, Any]:
    """Trains ``config`` into ``run_dir`` (metrics.jsonl, ckpt/), resuming if interrupted.

    With ``save_model`` the final student is written to ``run_dir/model.npz``. The
    checkpoints stay until the store has saved the run's result (:func:`kdlib.store.save_run`
    removes them), so a kill between the last step and the save loses nothing.
    Returns the summary: final val/test metrics, steps, wall time, throughput and
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
    _check_group(configs, run_dirs)
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
    unroll = None if steps >= UNROLL_MIN_STEPS else False  # None: the backend's default
    prog = _group_program(configs, rd.train, num_classes, in_channels, steps, mesh,
                          streamed=streamed, unroll=unroll)
    teacher, student, targets = prog.teacher, prog.student, prog.targets
    carry, hp, sched, chunk = prog.carry, prog.hp, prog.sched, prog.chunk
    student.eval()
    eval_graphdef, _, _ = nnx.split(student, nnx.Param, ...)
    teacher_states = put(teacher.states) if teacher else []
    # The teacher's logits of the evaluation splits do not change during training either.
    teacher_eval = {}
    if teacher:
        for split, ds in (("val", rd.val), ("test", rd.test)):
            per = [predict(gd, (s,), ds.images, size) for gd, s, size
                   in zip(teacher.graphdefs, teacher.states, teacher.sizes, strict=True)]
            teacher_eval[split] = teacher.eval_logits(per)
    if streamed:  # the chunk's batches are read and put on device before each call
        fixed = teacher is not None and teacher_mode(config.policy) == "fixed"
        host_targets = targets if fixed else None
        consts = None
    else:
        consts = put((rd.train.images, rd.train.labels, jnp.asarray(targets), teacher_states,
                      _aspects(config, rd.train)))

    k = config.steps_per_call
    eval_every = config.eval_every or max(k, steps // 10)
    eval_every = max(k, (eval_every // k) * k)
    ckpt_every = config.checkpoint_every or eval_every
    ckpts = [Checkpointer(d / "ckpt") for d in run_dirs]
    logs = [store.MetricsLog(d / "metrics.jsonl") for d in run_dirs]
    step = group_start(ckpts)
    if step:  # every run of the group checkpointed at this step
        carry = put(_stack([c.restore(step, prog.one_carry) for c in ckpts]))
    for log in logs:
        log.drop_after(step)
    status = ["done"] * group
    watches = [divergence.Watch(divergence.chance_loss(
        c.loss, num_classes, c.temperature, c.dist_beta, c.dist_gamma)) for c in configs]
    diverged_at: list[int | None] = [None] * group
    for i, log in enumerate(logs):  # a resumed run continues its divergence watch
        if (reason := watches[i].replay(log.read())) is not None:
            status[i], diverged_at[i] = "diverged", _diverged_step(log.read())

    def diverge(i: int, reason: str, train_loss: float) -> None:
        """Stops run ``i``: status "diverged", with the step and why, in its metrics log."""
        status[i], diverged_at[i] = "diverged", step
        logs[i].append({"step": step, "train_loss": train_loss, "status": "diverged",
                        "reason": reason})

    def evaluate(i, train_loss):
        """Validation metrics at every eval; test ones only at the end (run selection and
        the curves use validation; the test split is read once, for the reported number)."""
        record: dict[str, Any] = {"step": step, "epoch": step * config.batch_size / num_train,
                                  "train_loss": train_loss}
        state = _take(carry[:2], i)
        splits = (("val", rd.val), ("test", rd.test)) if step >= steps else (("val", rd.val),)
        for split, ds in splits:
            logits = predict(eval_graphdef, state, ds.images, config.student_size)
            record.update(eval_metrics(logits, ds.labels, teacher_eval.get(split), split))
        return record

    from tqdm.auto import tqdm

    desc = f"{config.section}:{config.policy}" + (f" x{group}" if group > 1 else "")
    bar = tqdm(total=steps, initial=step, unit="step", disable=not progress, leave=False,
               desc=desc)
    losses_since_eval: list[np.ndarray] = []
    t_train = 0.0
    images_seen = 0
    records: list[dict[str, Any]] = [{} for _ in configs]
    while step < steps and "done" in status:
        t0 = time.perf_counter()
        n_steps = min(k, steps - step)  # the last chunk may be shorter (one more compile)
        if streamed:
            images, labels, rows, aspects = stream_chunk(config, rd.train, step, n_steps,
                                                         host_targets)
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
                for i in range(group):
                    ckpts[i].save(step, _take(carry, i))
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
                params_i, rest_i = jax.device_get(_take(carry[:2], i))
                nnx.update(student, params_i, rest_i)
                teachers.save_weights(student, run_dir / "model.npz")
        summary = dict(records[i]) if status[i] == "done" else {}
        if status[i] == "diverged":
            summary["diverged_at_step"] = diverged_at[i]
        summary.update(
            status=status[i], steps=steps, final_step=step, num_train=num_train,
            wall_time_s=time.time() - started, train_time_s=t_train,
            img_per_s=images_seen / t_train if t_train else None, group_size=group,
            group=[store.config_hash(c) for c in configs],
        )
        summaries.append(summary)
    return summaries


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


def run(
    config: RunConfig, *, retrain: bool = False, progress: bool = True, save_model: bool = False
) -> store.RunRecord:
    """Trains ``config`` unless its result is stored; returns the stored record.

    The config and the files it names are checked first (:func:`kdlib.checks.check_run`):
    a bad one is a one-line error and leaves no run folder.
    """
    checks.check_run(config)
    return store.run_or_load(
        config, lambda c, d: train(c, d, progress=progress, save_model=save_model),
        retrain=retrain,
    )


def sweep(
    base: RunConfig, axes: dict[str, Any], *, progress: bool = True, **kwargs: Any
) -> Any:
    """:func:`kdlib.sweep.sweep` of ``base`` over ``axes``, trained as vectorized groups.

    Points that differ only in :data:`HPARAMS` (lr, wd, temperature, ...) train together as
    one program; each group's runs are stored as soon as the group finishes, and stored runs
    are loaded, never retrained.
    """
    from kdlib import sweep as sweeps

    for config in sweeps.expand(base, sweeps.grid(**axes)):  # before any folder is made
        checks.check_run(config)
    return sweeps.sweep(
        base, axes, None, group_by=group_key,
        batch_train_fn=lambda cs, ds: train_many(cs, ds, progress=progress), **kwargs,
    )
