"""Throughput of kdlib's jitted training step (img/s, achieved GFLOP/s vs the matmul peak).

Times the real engine step (``kdlib.train.make_train_chunk``: views -> teacher forward ->
student forward/backward -> Adam update, ``steps_per_call`` steps per ``lax.scan``) on
random uint8 data, for the cpu-preset teacher/student pair (and chapter 07's
MobileNetV3-L (GN) student) and, with ``--paper``, a
paper-scale pair (R152x2 -> R50x1 at 128 px). ``--impl xla`` times the plain ops.

    python benchmarks/distill_step.py [--impl cpu|xla] [--batch 128] [--group 4] [--paper]

``--group K`` trains K runs that differ in their learning rate as one vectorized program
(how ``kdlib.train.sweep`` trains a sweep): the views and the teacher forward are shared.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from kdlib import profiling, train, views
from kdlib.config import ModelConfig, RunConfig
from kdlib.experiments import cross_family
from kdlib.experiments.teachers import STUDENT_MODEL, TEACHER_MODEL


def matmul_peak_gflops(n: int = 1536, repeats: int = 10, dtype: Any = jnp.float32) -> float:
    """Measured matmul GFLOP/s of this device at ``dtype`` (the reference peak)."""
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(repeats):
        f(a).block_until_ready()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


class _FakeTeacher(train.Teacher):
    """A teacher built in memory (random weights), with the engine's interface."""

    def __init__(self, model: nnx.Module, size: int):
        self.names = ("bench",)
        self.cards = [{"image_size": size}]
        gd, state = nnx.split(model)
        self.graphdefs, self.states, self.image_size = [gd], [state], size
        self.sizes = (size,)


def bench_config(student_cfg: ModelConfig, teacher_cfg: ModelConfig | None, *, policy: str,
                 loss: str, batch: int, size: int, steps_per_call: int) -> RunConfig:
    """The timed run's config: the cpu preset, so the chunk is the fused one-program chunk the
    stored cpu runs train with (the smoke preset splits it in two: ``train.split_chunk``)."""
    return RunConfig(
        student=student_cfg, teachers=("bench",) if teacher_cfg else (), policy=policy,
        loss=loss, batch_size=batch, student_size=size, steps_per_call=steps_per_call,
        preset="cpu",
    )


def time_step(
    student_cfg: ModelConfig, teacher_cfg: ModelConfig | None, *, size: int, channels: int,
    classes: int, batch: int, impl: str, policy: str, steps_per_call: int, calls: int,
    loss: str = "kl", group: int = 1,
) -> dict:
    """img/s and GFLOP/s of the engine's train chunk for one student/teacher pair."""
    config = bench_config(student_cfg, teacher_cfg, policy=policy, loss=loss, batch=batch,
                          size=size, steps_per_call=steps_per_call)
    mesh = train.make_mesh()
    kw = {"num_classes": classes, "in_channels": channels, "impl": impl}
    student = train.models.create(student_cfg.name, rngs=nnx.Rngs(0),
                                  **{**student_cfg.kwargs, **kw})
    teacher = None
    if teacher_cfg:
        t_model = train.models.create(teacher_cfg.name, rngs=nnx.Rngs(1),
                                      **{**teacher_cfg.kwargs, **kw})
        t_model.eval()
        teacher = _FakeTeacher(t_model, size)
    student.train()
    graphdef, params, rest = nnx.split(student, nnx.Param, ...)
    steps = steps_per_call * (calls + 1)
    configs = [config.replace(lr=config.lr * (1 + i)) for i in range(group)]
    carry = train.stack_runs([(params, rest, train.make_optimizer(c, steps).init(params))
                          for c in configs])
    hp, sched = train.hparams(configs), train.schedule_arrays(config, steps)
    n = max(batch * 4, 512)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    labels = rng.integers(0, classes, n).astype(np.int32)
    targets = jnp.zeros((1, classes)) if policy not in views.FIXED_POLICIES else jnp.zeros(
        (n, classes))
    consts = (jnp.asarray(images), jnp.asarray(labels), targets,
              teacher.states if teacher else [], jnp.ones((1,), jnp.float32))
    # Place everything as the engine does, so the timed calls hit the jit cache.
    put = lambda x: jax.device_put(x, NamedSharding(mesh, P()))
    carry, consts, hp, sched = put(carry), put(consts), put(hp), put(sched)
    chunk = train.make_train_chunk(config, graphdef, teacher, mesh)
    t0 = time.perf_counter()
    carry, loss = chunk(carry, consts, hp, sched, jnp.asarray(0, jnp.int32))
    np.asarray(loss)
    compile_s = time.perf_counter() - t0
    if chunk._cache_size() != 1:
        raise RuntimeError("the train chunk compiled more than once")
    t0 = time.perf_counter()
    for c in range(calls):
        start = jnp.asarray((c + 1) * steps_per_call, jnp.int32)
        carry, loss = chunk(carry, consts, hp, sched, start)
    np.asarray(loss)
    dt = time.perf_counter() - t0
    if chunk._cache_size() != 1:
        raise RuntimeError("the train chunk recompiled while being timed")
    img_s = calls * steps_per_call * batch * group / dt  # run-images: each run sees the batch
    s_flops = profiling.forward_flops(student, (1, size, size, channels))
    t_flops = profiling.forward_flops(t_model, (1, size, size, channels)) if teacher_cfg else 0.0
    # Training costs about 3x the forward (forward + backward); the teacher only forwards.
    # A vectorized group of runs shares one teacher forward per image.
    teacher_share = t_flops / group if policy not in views.FIXED_POLICIES else 0.0
    flops_per_img = 3 * s_flops + teacher_share
    return {"img_s": img_s, "gflops": img_s * flops_per_img / 1e9, "compile_s": compile_s,
            "student_mflops": s_flops / 1e6, "teacher_mflops": t_flops / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="cpu", choices=["cpu", "xla"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps-per-call", type=int, default=10)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--group", type=int, default=1,
                        help="runs trained as one vectorized program (a sweep over lr)")
    parser.add_argument("--paper", action="store_true", help="also R152x2 -> R50x1 at 128 px")
    parser.add_argument("--paper-batch", type=int, default=32,
                        help="the paper pair's batch (32 fits 2 CPU cores; 512 is the paper's)")
    parser.add_argument("--paper-steps-per-call", type=int, default=1)
    parser.add_argument("--paper-calls", type=int, default=2)
    parser.add_argument("--paper-only", action="store_true", help="skip the cpu preset's pair")
    parser.add_argument("--only", default="",
                        help="only the cpu preset's rows whose name contains this text (e.g. mix)")
    args = parser.parse_args()
    peak = matmul_peak_gflops()
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, "
          f"matmul peak {peak:.0f} GFLOP/s, impl={args.impl}, batch={args.batch}, "
          f"group={args.group} (img/s counts every run's images)")
    if jax.default_backend() != "cpu":
        # Accelerators: the fp32 steps run on the tensor cores at the default matmul precision,
        # so the reference is the bf16 peak (a small fp32 matmul read 26-47 TFLOP/s on an H200).
        peak = matmul_peak_gflops(8192, 10, jnp.bfloat16)
        print(f"bf16 matmul peak {peak:.0f} GFLOP/s: the reference for '% of peak' below")
    rows = [
        ("cpu preset: teacher from labels (same/rc)", TEACHER_MODEL, None, "same/rc", "labels"),
        ("cpu preset: student from labels (same/rc)", STUDENT_MODEL, None, "same/rc", "labels"),
        ("cpu preset: distill mix (teacher+student)", STUDENT_MODEL, TEACHER_MODEL, "mix", "kl"),
        ("cpu preset: distill fix/rs (no teacher fwd)", STUDENT_MODEL, TEACHER_MODEL, "fix/rs",
         "kl"),
        ("cpu preset: distill mix into MobileNetV3-L (GN)",
         cross_family.student("MobileNetV3-L (GN)", "cpu"), TEACHER_MODEL, "mix", "kl"),
    ]
    rows = [row for row in rows if args.only in row[0]]
    for name, s_cfg, t_cfg, policy, loss in [] if args.paper_only else rows:
        r = time_step(s_cfg, t_cfg, size=28, channels=1, classes=10, batch=args.batch,
                      impl=args.impl, policy=policy, steps_per_call=args.steps_per_call,
                      calls=args.calls, loss=loss, group=args.group)
        print(f"{name:46s} {r['img_s']:8.0f} img/s  {r['gflops']:6.1f} GFLOP/s "
              f"({100 * r['gflops'] / peak:4.1f}% of peak)  compile {r['compile_s']:.0f} s  "
              f"[student {r['student_mflops']:.1f} MFLOPs, teacher {r['teacher_mflops']:.1f}]")
    if args.paper or args.paper_only:
        r50 = ModelConfig("bit", {"depth": 50, "width": 1})
        r152x2 = ModelConfig("bit", {"depth": 152, "width": 2})
        r = time_step(r50, r152x2, size=128, channels=3, classes=102, batch=args.paper_batch,
                      impl=args.impl, policy="mix", steps_per_call=args.paper_steps_per_call,
                      calls=args.paper_calls)
        print(f"{'paper: R152x2 -> R50x1 @128 mix':46s} {r['img_s']:8.1f} img/s  "
              f"{r['gflops']:6.1f} GFLOP/s ({100 * r['gflops'] / peak:4.1f}% of peak)  "
              f"compile {r['compile_s']:.0f} s  batch {args.paper_batch}  "
              f"[student {r['student_mflops']:.0f} MFLOPs, teacher {r['teacher_mflops']:.0f}]")


if __name__ == "__main__":
    main()
