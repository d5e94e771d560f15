"""Step-time overhead of Shampoo over Adam: one jitted train step (forward + backward + update).

Times `adam_bv`, and `shampoo` with inverse roots refreshed every step and every 10 steps,
on a BiT student from `kdlib.models.create("bit", ...)` (or a small nnx CNN if that is
missing), and prints ms/step and the ratio to Adam. The paper (section 3.4) reports
"minimal step time overhead" on TPUs; this measures it here.

On CPU, set OPENBLAS_NUM_THREADS=1: jaxlib's eigh calls OpenBLAS, whose own threads fight
XLA's thread pool for the cores; on 2 shared cores that made Shampoo steps 3x slower.

    OPENBLAS_NUM_THREADS=1 JAX_PLATFORMS=cpu .venv/bin/python benchmarks/shampoo_overhead.py
    .venv/bin/python benchmarks/shampoo_overhead.py --depth 50 --width 1 --res 128 --batch 64 \
        --in-channels 3 --stem imagenet --classes 1000      # on an accelerator
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import optax
from flax import nnx

from kdlib import optim


class SmallCNN(nnx.Module):
    """Fallback BiT-like net: conv stem, three conv + GroupNorm stages, dense head."""

    def __init__(self, in_channels: int, width: int, classes: int, rngs: nnx.Rngs):
        chans = [in_channels, width, 2 * width, 4 * width]
        self.convs = nnx.List(
            [
                nnx.Conv(a, b, (3, 3), strides=2, rngs=rngs)
                for a, b in zip(chans[:-1], chans[1:], strict=True)
            ]
        )
        self.norms = nnx.List([nnx.GroupNorm(c, num_groups=4, rngs=rngs) for c in chans[1:]])
        self.head = nnx.Linear(chans[-1], classes, rngs=rngs)

    def __call__(self, x):
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = nnx.relu(norm(conv(x)))
        return self.head(x.mean(axis=(1, 2)))


def build_model(args: argparse.Namespace) -> tuple[nnx.Module, str]:
    """The project's BiT if `kdlib.models.create` exists, else `SmallCNN`; and its name."""
    try:
        from kdlib.models import create
    except ImportError:
        create = None
    if create is not None and not args.fallback_cnn:
        model = create(
            "bit",
            depth=[int(d) for d in args.depth.split(",")] if "," in args.depth else int(args.depth),
            width=args.width,
            num_classes=args.classes,
            in_channels=args.in_channels,
            stem=args.stem,
        )
        return model, f"BiT depth={args.depth} width={args.width} stem={args.stem}"
    width = max(4, int(64 * args.width))
    model = SmallCNN(args.in_channels, width, args.classes, nnx.Rngs(0))
    return model, f"SmallCNN width={width}"


def make_runner(model_fn, tx, batch):
    """A jitted train step and a `run(n)` that takes n steps and returns ms/step."""
    graphdef, params, rest = nnx.split(model_fn(), nnx.Param, ...)
    images, labels = batch

    def loss_fn(p):
        logits = nnx.merge(graphdef, p, rest)(images)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @jax.jit
    def step(p, s):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    carry = [params, tx.init(params)]

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            carry[0], carry[1], loss = step(carry[0], carry[1])
        jax.block_until_ready((carry[0], loss))
        return 1e3 * (time.perf_counter() - t0) / n

    return run


def main() -> None:
    """Parse arguments, time the three optimizers, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", default="1,1,1,1", help="BiT depth: 26/50/... or units per stage")
    ap.add_argument("--width", type=float, default=0.0625, help="BiT width multiplier")
    ap.add_argument("--stem", default="small", choices=["small", "imagenet"])
    ap.add_argument("--res", type=int, default=28)
    ap.add_argument("--in-channels", type=int, default=1)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument(
        "--steps", type=int, default=20, help="steps per timing window (rounded up to x10)"
    )
    ap.add_argument("--repeats", type=int, default=5, help="interleaved timing windows")
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--fallback-cnn", action="store_true", help="use SmallCNN even if BiT exists")
    args = ap.parse_args()

    model, desc = build_model(args)
    n_params = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    graphdef, state = nnx.split(model)
    model_fn = lambda: nnx.merge(graphdef, state)  # noqa: E731
    key_x, key_y = jax.random.split(jax.random.key(0))
    batch = (
        jax.random.normal(key_x, (args.batch, args.res, args.res, args.in_channels)),
        jax.random.randint(key_y, (args.batch,), 0, args.classes),
    )
    common = dict(block_size=args.block_size)
    candidates = {
        "adam_bv": optim.adam_bv(1e-3, weight_decay=1e-4),
        "shampoo (roots every step)": optim.shampoo(1e-3, **common),
        "shampoo (roots every 10 steps)": optim.shampoo(
            1e-3, preconditioning_compute_steps=10, **common
        ),
    }
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"OPENBLAS_NUM_THREADS={blas}"
    )
    print(f"model: {desc}, {n_params} params; batch {args.batch} x {args.res}px")
    print(f"{'optimizer':32s} {'compile s':>9s} {'ms/step':>9s} {'vs adam':>8s}")
    steps = 10 * max(1, -(-args.steps // 10))  # whole refresh periods of the every-10 run
    runners, compile_s = {}, {}
    for name, tx in candidates.items():
        runners[name] = make_runner(model_fn, tx, batch)
        compile_s[name] = 1e-3 * runners[name](1)  # first call: compile + one step
    # Interleave the timing windows so that load changes hit all optimizers alike.
    times = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, run in runners.items():
            times[name].append(run(steps))
    base = statistics.median(times["adam_bv"])
    for name in candidates:
        ms = statistics.median(times[name])
        ratios = sorted(t / a for t, a in zip(times[name], times["adam_bv"], strict=True))
        print(
            f"{name:32s} {compile_s[name]:9.1f} {ms:9.2f} {ms / base:8.2f}x"
            f"   (per-window ratio {ratios[0]:.2f}-{ratios[-1]:.2f})"
        )


if __name__ == "__main__":
    main()
