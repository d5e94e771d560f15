"""Forward+backward throughput of the models' building blocks: plain XLA ops vs CPU-tuned ops.

For each op at the shapes the models use (small BiT on 28x28 Fashion-MNIST at batch 128,
MobileNetV3's depthwise convs, BiT-R50 at 128 px) it times ``jax.jit(jax.value_and_grad)`` of
``<op(...), r>`` w.r.t. every array input (after warm-up; median of interleaved repeats) and
prints a markdown table: ms, GFLOP/s, the speedup, and the CPU op's share of this machine's
matmul peak (measured here with an NxN float32 matmul). The full run ends with whole models
(small BiTs, MobileNetV3-small) built with ``impl="xla"`` and ``impl="cpu"``.

    JAX_PLATFORMS=cpu .venv/bin/python benchmarks/building_blocks.py [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from kdlib.models import cpu_ops, ops  # noqa: E402

# GroupNorm is memory-bound; its GFLOP/s use a nominal 16 flop per element (fwd + bwd).
GN_FLOPS_PER_ELEMENT = 16


@dataclass(frozen=True)
class Case:
    """One benchmark row: an op at one shape, labelled by where the models use it."""

    group: str
    label: str
    op: str  # "conv2d" | "depthwise" | "group_norm"
    x_shape: tuple[int, int, int, int]
    param: tuple[int, ...]  # kernel shape, or (num_groups,) for group_norm
    strides: tuple[int, int] = (1, 1)
    padding: str = "SAME"


def small_bit_cases(batch: int) -> list[Case]:
    """Small BiT (ResNet-v2 + GN + WS) on 28x28x1 Fashion-MNIST."""
    n, g = batch, "small BiT 28px"
    return [
        Case(g, "stem 3x3 1->16", "conv2d", (n, 28, 28, 1), (3, 3, 1, 16)),
        Case(g, "stem 3x3 1->4", "conv2d", (n, 28, 28, 1), (3, 3, 1, 4)),
        Case(g, "1x1 16->4", "conv2d", (n, 28, 28, 16), (1, 1, 16, 4)),
        Case(g, "1x1 4->16", "conv2d", (n, 28, 28, 4), (1, 1, 4, 16)),
        Case(g, "1x1 proj s2 16->32", "conv2d", (n, 28, 28, 16), (1, 1, 16, 32), (2, 2)),
        Case(g, "1x1 64->16", "conv2d", (n, 7, 7, 64), (1, 1, 64, 16)),
        Case(g, "3x3 4->4", "conv2d", (n, 28, 28, 4), (3, 3, 4, 4)),
        Case(g, "3x3 8->8", "conv2d", (n, 28, 28, 8), (3, 3, 8, 8)),
        Case(g, "3x3 s2 8->8", "conv2d", (n, 28, 28, 8), (3, 3, 8, 8), (2, 2)),
        Case(g, "3x3 8->8", "conv2d", (n, 14, 14, 8), (3, 3, 8, 8)),
        Case(g, "3x3 16->16", "conv2d", (n, 14, 14, 16), (3, 3, 16, 16)),
        Case(g, "3x3 16->16", "conv2d", (n, 7, 7, 16), (3, 3, 16, 16)),
        Case(g, "3x3 64->64", "conv2d", (n, 4, 4, 64), (3, 3, 64, 64)),
        Case(g, "GN 4 groups", "group_norm", (n, 28, 28, 4), (4,)),
        Case(g, "GN 4 groups", "group_norm", (n, 28, 28, 16), (4,)),
        Case(g, "GN 32 groups", "group_norm", (n, 14, 14, 32), (32,)),
        Case(g, "GN 32 groups", "group_norm", (n, 7, 7, 64), (32,)),
    ]


def mobilenet_cases(batch: int) -> list[Case]:
    """MobileNetV3 depthwise convs (28x28 input)."""
    n, g = batch, "MobileNetV3 depthwise"
    return [
        Case(g, "dw 3x3 s2 c16", "depthwise", (n, 28, 28, 16), (3, 3, 1, 16), (2, 2)),
        Case(g, "dw 3x3 s1 c72", "depthwise", (n, 14, 14, 72), (3, 3, 1, 72)),
        Case(g, "dw 5x5 s2 c96", "depthwise", (n, 14, 14, 96), (5, 5, 1, 96), (2, 2)),
        Case(g, "dw 5x5 s1 c240", "depthwise", (n, 7, 7, 240), (5, 5, 1, 240)),
        Case(g, "dw 5x5 s1 c576", "depthwise", (n, 4, 4, 576), (5, 5, 1, 576)),
    ]


def r50_cases(batch: int) -> list[Case]:
    """Paper-scale BiT-R50x1 at 128 px (CPU only for this benchmark)."""
    n, g = batch, "BiT-R50 128px"
    return [
        Case(g, "stem 7x7 s2 3->64", "conv2d", (n, 128, 128, 3), (7, 7, 3, 64), (2, 2)),
        Case(g, "1x1 256->64", "conv2d", (n, 32, 32, 256), (1, 1, 256, 64)),
        Case(g, "3x3 64->64", "conv2d", (n, 32, 32, 64), (3, 3, 64, 64)),
        Case(g, "3x3 s2 128->128", "conv2d", (n, 32, 32, 128), (3, 3, 128, 128), (2, 2)),
        Case(g, "1x1 1024->256", "conv2d", (n, 8, 8, 1024), (1, 1, 1024, 256)),
        Case(g, "GN 32 groups", "group_norm", (n, 32, 32, 256), (32,)),
        Case(g, "GN 32 groups", "group_norm", (n, 8, 8, 1024), (32,)),
    ]


def quick_cases(batch: int) -> list[Case]:
    """One or two rows per kind of op, for a fast sanity run."""
    keep = {"stem 3x3 1->16", "1x1 16->4", "3x3 4->4", "dw 3x3 s1 c72"}
    rows = [c for c in small_bit_cases(batch) + mobilenet_cases(batch) if c.label in keep]
    return rows + [small_bit_cases(batch)[-3]]


def flops(case: Case) -> float:
    """Forward+backward flops: 3x the forward's multiply-adds x2 for convs (y, dx, dw)."""
    n, h, w, _ = case.x_shape
    if case.op == "group_norm":
        return float(GN_FLOPS_PER_ELEMENT * n * h * w * case.x_shape[-1])
    kh, kw, cin, cout = case.param
    ho, wo = -(-h // case.strides[0]), -(-w // case.strides[1])  # SAME padding
    per_output = 2 * kh * kw * (cin if case.op == "conv2d" else 1)
    return 3.0 * per_output * n * ho * wo * cout


def method_name(case: Case) -> str:
    """What the CPU op does for this case (the dispatch the table measures)."""
    if case.op == "group_norm":
        return "fused passes"
    if case.op == "depthwise":
        return "slices"
    if case.param[:2] == (1, 1):
        return "matmul"
    plan = cpu_ops.conv2d_plan(case.x_shape, case.param, case.strides, case.padding)
    return f"{plan.fwd}/{plan.dx}/{plan.dw}"


def build(case: Case) -> tuple[Callable, Callable, tuple]:
    """(plain fwd+bwd fn, cpu fwd+bwd fn, args) for a case, both jitted."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=case.x_shape), jnp.float32)
    if case.op == "group_norm":
        c = case.x_shape[-1]
        (groups,) = case.param
        params = (jnp.asarray(rng.normal(size=(c,)), jnp.float32),) * 2
        plain = lambda x, s, b: ops.group_norm_xla(x, groups, s, b)
        fast = lambda x, s, b: cpu_ops.group_norm(x, groups, s, b)
    else:
        params = (jnp.asarray(rng.normal(size=case.param), jnp.float32),)
        plain_op, fast_op = {
            "conv2d": (ops.conv2d_xla, cpu_ops.conv2d),
            "depthwise": (ops.depthwise_conv2d_xla, cpu_ops.depthwise_conv2d),
        }[case.op]
        plain = lambda x, k: plain_op(x, k, case.strides, case.padding)
        fast = lambda x, k: fast_op(x, k, case.strides, case.padding)
    args = (x, *params)
    r = jnp.asarray(rng.normal(size=jax.eval_shape(plain, *args).shape), jnp.float32)
    argnums = tuple(range(len(args)))

    def fwd_bwd(f: Callable) -> Callable:
        return jax.jit(jax.value_and_grad(lambda *a: jnp.vdot(f(*a), r), argnums=argnums))

    return fwd_bwd(plain), fwd_bwd(fast), args


def time_pair(f: Callable, g: Callable, args: tuple, reps: int, warmup: int) -> tuple[float, float]:
    """Median ms of f and of g, timed alternately so that load from others hits both alike."""
    for _ in range(warmup):
        jax.block_until_ready(f(*args))
        jax.block_until_ready(g(*args))
    tf, tg = [], []
    for _ in range(reps):
        for fn, acc in ((f, tf), (g, tg)):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            acc.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(tf), 1e3 * statistics.median(tg)


def matmul_peak(size: int, reps: int) -> float:
    """Measured float32 GFLOP/s of a size x size matmul (the best of ``reps``: a peak)."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(size, size)), jnp.float32)
    mm = jax.jit(jnp.dot)
    for _ in range(2):
        jax.block_until_ready(mm(a, a))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(mm(a, a))
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / min(times) / 1e9


def model_cases(batch: int) -> list[tuple[str, Callable]]:
    """Whole models on 28x28x1 inputs: (label, impl -> model)."""
    from kdlib.models.bit import BiT
    from kdlib.models.mobilenet_v3 import MobileNetV3

    small = dict(num_classes=10, in_channels=1, stem="small")
    return [
        (f"BiT [1,1,1,1] width 1/16, batch {batch}",
         lambda impl: BiT(depth=[1, 1, 1, 1], width=1 / 16, impl=impl, **small)),
        (f"BiT [2,2,2,2] width 1/8, batch {batch}",
         lambda impl: BiT(depth=[2, 2, 2, 2], width=1 / 8, impl=impl, **small)),
        (f"MobileNetV3-small (GN), batch {batch}",
         lambda impl: MobileNetV3(variant="small", norm="gn", impl=impl, **small)),
    ]


def build_model_step(make: Callable, impl: str, batch: int) -> tuple[Callable, tuple]:
    """Jitted gradient of a cross-entropy loss w.r.t. a model's parameters, and its args."""
    import optax
    from flax import nnx

    graphdef, params, rest = nnx.split(make(impl), nnx.Param, ...)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, size=(batch, 28, 28, 1)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, size=batch))

    def loss(params, x, y):
        logits = nnx.merge(graphdef, params, rest)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return jax.jit(jax.value_and_grad(loss)), (params, x, y)


def keep_freed_memory() -> bool:
    """Asks glibc to keep freed memory (no mmap/munmap round trip per large XLA temp buffer).

    XLA:CPU allocates its temporaries on every call; glibc returns large ones to the OS, so
    each call page-faults them in again, which is slow in this VM. Returns whether it applied.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    big = 2**31 - 1
    return bool(libc.mallopt(m_mmap_threshold, big)) and bool(libc.mallopt(m_trim_threshold, big))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few rows and repeats (about a minute)")
    p.add_argument("--batch", type=int, default=128, help="batch of the 28 px models")
    p.add_argument("--r50-batch", type=int, default=8, help="batch of the BiT-R50 rows")
    p.add_argument("--reps", type=int, default=None, help="timed repeats per row (median)")
    p.add_argument("--peak-size", type=int, default=2048, help="N of the NxN matmul peak")
    p.add_argument("--only", default="", help="keep rows whose group or label contains this")
    p.add_argument("--no-models", action="store_true",
                   help="skip the whole-model rows (run by default unless --quick)")
    p.add_argument("--keep-heap", action="store_true",
                   help="mallopt: glibc keeps freed memory instead of unmapping it (see README)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    heap_note = ""
    if args.keep_heap:
        heap_note = "; glibc keeps freed memory" if keep_freed_memory() else "; mallopt failed"
    reps = args.reps or (5 if args.quick else 15)
    if args.quick:
        cases = quick_cases(args.batch)
    else:
        cases = small_bit_cases(args.batch) + mobilenet_cases(args.batch)
        cases += r50_cases(args.r50_batch)
    cases = [c for c in cases if args.only in c.group or args.only in c.label]

    peak = matmul_peak(1024 if args.quick else args.peak_size, 2 * reps)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}; load average at start "
          f"{os.getloadavg()[0]:.1f}{heap_note}")
    print(f"float32 matmul peak ({1024 if args.quick else args.peak_size}^2): "
          f"{peak:.0f} GFLOP/s (best of {2 * reps}); rows: median of {reps} interleaved repeats\n")
    print("| block | x shape | kernel / groups | stride | cpu method | plain ms | cpu ms "
          "| speedup | plain GFLOP/s | cpu GFLOP/s | cpu % peak |")
    print("|" + "---|" * 11)
    totals: dict[str, list[float]] = {}
    for case in cases:
        plain, fast, xs = build(case)
        t_plain, t_fast = time_pair(plain, fast, xs, reps, warmup=2)
        fl = flops(case)
        total = totals.setdefault(case.group, [0.0, 0.0])
        total[0] += t_plain
        total[1] += t_fast
        stride = "" if case.op == "group_norm" else f"{case.strides[0]}"
        print(
            f"| {case.group}: {case.label} | {'x'.join(map(str, case.x_shape))} "
            f"| {'x'.join(map(str, case.param))} | {stride} | {method_name(case)} "
            f"| {t_plain:.2f} | {t_fast:.2f} | {t_plain / t_fast:.1f}x "
            f"| {fl / t_plain / 1e6:.1f} | {fl / t_fast / 1e6:.1f} "
            f"| {100 * fl / t_fast / 1e6 / peak:.0f}% |",
            flush=True,
        )
    print()
    for group, (t_plain, t_fast) in totals.items():
        print(f"sum over {group} rows: plain {t_plain:.1f} ms, cpu {t_fast:.1f} ms "
              f"({t_plain / t_fast:.1f}x)")
    if not (args.quick or args.no_models or args.only):
        print("\nWhole models, forward+backward (gradient w.r.t. all parameters), impl xla vs cpu:")
        for label, make in model_cases(args.batch):
            (f_xla, a_xla), (f_cpu, a_cpu) = (
                build_model_step(make, impl, args.batch) for impl in ("xla", "cpu")
            )
            t_xla, t_cpu = time_pair(
                partial(f_xla, *a_xla), partial(f_cpu, *a_cpu), (), max(5, reps // 2), warmup=1
            )
            print(f"  {label}: xla {t_xla:.1f} ms, cpu {t_cpu:.1f} ms ({t_xla / t_cpu:.2f}x)",
                  flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f} (other processes share these cores)")


if __name__ == "__main__":
    main()
