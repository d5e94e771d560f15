"""Would a bfloat16 teacher forward speed up distillation on this CPU, and what would it cost?

Times the cpu preset's teacher forward (the stored ``fmnist_bit_t28``, as the engine applies
it: ``kdlib.train.Teacher.apply`` on float NHWC views in [-1, 1]) on Fashion-MNIST test images
in float32 and with its parameters and inputs cast to bfloat16 (logits back in float32), and
compares the two: top-1 agreement, the largest logit difference and the mean KL between their
softmaxes (the distillation target). Issue 14 asked for this measurement: the CPU has
AVX512_BF16, the teacher is most of a 1-run ``mix`` step's FLOPs.

    python benchmarks/teacher_precision.py [--batch 128] [--calls 20] [--images 2048]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from kdlib import augment, train
from kdlib.data import loading

TEACHER = "fmnist_bit_t28"


def forward(graphdef, dtype):
    """The jitted teacher forward at ``dtype`` (parameters and inputs cast; logits float32)."""
    @jax.jit
    def fn(state, images):
        cast = jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating)
                            else x, state)
        return nnx.merge(graphdef, cast)(images.astype(dtype)).astype(jnp.float32)
    return fn


def time_calls(fn, state, batches, calls: int) -> tuple[float, float]:
    """(compile seconds, seconds per call) over ``calls`` calls cycling through ``batches``."""
    t0 = time.perf_counter()
    fn(state, batches[0]).block_until_ready()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(calls):
        fn(state, batches[i % len(batches)]).block_until_ready()
    return compile_s, (time.perf_counter() - t0) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=2, help="float32/bfloat16 alternations")
    args = parser.parse_args()

    teacher = train.Teacher((TEACHER,))
    graphdef, state = teacher.graphdefs[0], teacher.states[0]
    test = loading.load("fashion_mnist", "test")
    images = np.asarray(test.images[: args.images])
    views = augment.value_range(jnp.asarray(images, jnp.float32))  # uint8 -> [-1, 1]
    batches = [views[i:i + args.batch] for i in range(0, len(views) - args.batch + 1,
                                                        args.batch)]
    fns = {"float32": forward(graphdef, jnp.float32), "bfloat16": forward(graphdef, jnp.bfloat16)}
    rows = []
    for r in range(args.rounds):
        for name, fn in fns.items():
            compile_s, per_call = time_calls(fn, state, batches, args.calls)
            rows.append((r, name, compile_s, args.batch / per_call))
    print("| round | dtype | compile s | img/s |")
    print("| --- | --- | --- | --- |")
    for r, name, compile_s, img_s in rows:
        print(f"| {r} | {name} | {compile_s:.1f} | {img_s:,.0f} |")
    logits = {name: np.concatenate([np.asarray(fn(state, b)) for b in batches])
              for name, fn in fns.items()}
    f32, b16 = logits["float32"], logits["bfloat16"]
    p, q = jax.nn.softmax(f32), jax.nn.softmax(b16)
    kl = float(jnp.mean(jnp.sum(p * (jnp.log(p + 1e-12) - jnp.log(q + 1e-12)), axis=-1)))
    labels = np.asarray(test.labels[: len(f32)])
    agree = np.mean(f32.argmax(1) == b16.argmax(1))
    print(f"\n{len(f32)} test images: top-1 agreement {agree:.4f}; "
          f"accuracy float32 {np.mean(f32.argmax(1) == labels):.4f}, bfloat16 "
          f"{np.mean(b16.argmax(1) == labels):.4f}; largest |logit difference| "
          f"{np.abs(f32 - b16).max():.4f}; mean KL(float32 || bfloat16) {kl:.2e}")


if __name__ == "__main__":
    main()
