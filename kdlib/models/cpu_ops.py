"""CPU-tuned versions of the ops in :mod:`kdlib.models.ops` (same values and gradients).

Every op here equals its plain ``*_xla`` twin in values and in gradients (w.r.t. the input,
the kernel, scale and bias) up to float32 rounding; only the way XLA:CPU is asked to compute
it differs. What was slow on CPU and what replaces it (forward+backward speedups measured by
``benchmarks/building_blocks.py``, see ``benchmarks/README.md``):

* 1x1 convolutions are matrix products ``(N*H*W, Cin) @ (Cin, Cout)`` (a strided or padded
  one pads/slices first), with a custom VJP whose gradients are 2-D matmuls: 1.1-4.4x.
* k x k convolutions with few input channels (``kh*kw*Cin <= 36``), where XLA's conv runs at
  a few GFLOP/s: a custom VJP with a *direct* forward (sum of shifted NCHW slices times kernel
  rows in one fused loop, vectorized along the width), an input gradient that is the same
  direct sum over the dilated output gradient or *col2im* (one matmul ``dy @ W^T``, then a
  shifted add per tap), and XLA's own kernel gradient: 2-5x. Wider convs keep ``lax.conv``
  and plain autodiff (25-180 GFLOP/s here; per-tap weight-gradient matmuls and im2col were
  measured and were slower).
* Depthwise convolutions: grouped ``lax.conv`` runs at 0.1-1 GFLOP/s; a sum over the kh*kw
  taps of ``x_shifted * w_tap`` forward, the same sum over the (dilated) output gradient with
  the flipped kernel for the input gradient, and one variadic reduction of all taps' products
  for the kernel gradient: 8-35x.
* GroupNorm: custom VJP, one fused statistics pass (sum and sum of squares of the input
  shifted by its first pixel, so no catastrophic cancellation) and one normalize pass forward;
  one pass of two reductions and one elementwise pass backward. Reductions over H*W run on an
  ``(N, H*W/k, k*C)`` view so the vectorized minor axis is long even when C is 4: 1.6-5.8x.

The slice sums run inside a loop over two halves of the batch (:func:`_in_batch_halves`), a
fusion fence: without it XLA:CPU fuses, and recomputes, them inside every consumer.

Layouts follow :mod:`kdlib.models.ops`: NHWC activations, HWIO kernels, padding "SAME",
"VALID" or explicit ``[(lo, hi), (lo, hi)]`` (negative crops, as in ``lax``).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

Padding = str | Sequence[tuple[int, int]]
Pads = tuple[tuple[int, int], tuple[int, int]]
_DN = ("NHWC", "HWIO", "NHWC")

# A "direct" conv (sum of shifted slices, one fused loop) is used while the number of
# multiply-adds per output element (kernel taps x channels summed over) stays at most this
# and the output is at least _DIRECT_MIN_WIDTH wide (the loop vectorizes along the width).
# Measured: 3x3 with 1-4 input channels at 14-28 px wins 2-4x; 8 channels tie (stride 1)
# or lose up to 1.6x (stride 2, strided loads along the width); 16 channels lose 2-3x.
DIRECT_MAX_TERMS = 36
DIRECT_DX_MAX_TERMS = 36
_DIRECT_MIN_WIDTH = 8
# col2im (input gradient, stride 1) materializes (N*H*W, kh*kw*Cin) floats: used for few
# input channels and below this size (big temporaries are slow to allocate).
COL2IM_MAX_CIN = 8
COL2IM_MAX_ELEMENTS = 2 * 1024 * 1024
# Widest vectorized minor axis (k*C floats) that GroupNorm folds H*W into.
_GN_FOLD_WIDTH = 128


class ConvPlan(NamedTuple):
    """How :func:`conv2d` computes a k x k conv: forward, input gradient, kernel gradient.

    fwd: "xla" (``lax.conv``) or "direct"; dx: "xla", "direct" or "col2im"; dw: "xla".
    """

    fwd: str
    dx: str
    dw: str


FWD_METHODS = ("xla", "direct")
DX_METHODS = ("xla", "direct", "col2im")
DW_METHODS = ("xla",)


# ----------------------------------------------------------------------------- validation


def _check_4d(name: str, a: jax.Array) -> None:
    if getattr(a, "ndim", None) != 4:
        raise ValueError(f"{name} must be a 4-D array, got shape {getattr(a, 'shape', a)!r}")


def _normalize_strides(strides: Sequence[int]) -> tuple[int, int]:
    try:
        s = tuple(int(v) for v in strides)
    except TypeError as e:
        raise ValueError(f"strides={strides!r} must be two positive ints") from e
    if len(s) != 2 or min(s) < 1 or any(v != w for v, w in zip(s, strides, strict=True)):
        raise ValueError(f"strides={strides!r} must be two positive ints")
    return s  # type: ignore[return-value]


def _normalize_padding(
    padding: Padding, in_hw: Sequence[int], k_hw: Sequence[int], strides: tuple[int, int]
) -> Pads:
    """Explicit ((lo, hi), (lo, hi)) pads, as ``lax.conv_general_dilated`` would use."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(
                f"padding={padding!r} must be 'SAME', 'VALID' or [(lo, hi), (lo, hi)]"
            )
        lax_pads = lax.padtype_to_pads(tuple(in_hw), tuple(k_hw), strides, padding.upper())
        return tuple((int(lo), int(hi)) for lo, hi in lax_pads)  # type: ignore[return-value]
    try:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
        ok = len(pads) == 2 and all(
            int(v) == v for pair in padding for v in pair
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"padding={padding!r} must be 'SAME', 'VALID' or [(lo, hi), (lo, hi)] of ints"
        )
    return pads  # type: ignore[return-value]


def _conv_geometry(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: Padding, depthwise: bool
) -> tuple[tuple[int, int], Pads]:
    """Validates a conv's arguments; returns (strides, explicit pads)."""
    _check_4d("x", x)
    _check_4d("kernel", kernel)
    kh, kw, kin, kout = kernel.shape
    c = x.shape[-1]
    if depthwise:
        if kin != 1 or kout != c:
            raise ValueError(
                f"depthwise kernel shape {kernel.shape} must be (kh, kw, 1, C) with C={c} "
                f"the input's channels (x shape {x.shape})"
            )
    elif kin != c:
        raise ValueError(
            f"kernel in-channels {kin} (kernel shape {kernel.shape}) must equal the input "
            f"channels {c} (x shape {x.shape})"
        )
    if x.dtype != kernel.dtype:
        raise ValueError(f"x dtype {x.dtype} and kernel dtype {kernel.dtype} must be equal")
    s = _normalize_strides(strides)
    pads = _normalize_padding(padding, x.shape[1:3], (kh, kw), s)
    for d, (size, k, (lo, hi)) in enumerate(zip(x.shape[1:3], (kh, kw), pads, strict=True)):
        if size + lo + hi < k:
            raise ValueError(
                f"padded input size {size + lo + hi} along spatial axis {d} (size {size}, "
                f"pads {(lo, hi)}) is smaller than the kernel size {k}"
            )
    return s, pads


# ----------------------------------------------------------------------------- helpers


def _pad_hw(x: jax.Array, pads: Pads, interior: tuple[int, int] = (0, 0)) -> jax.Array:
    """Zero-pads (or crops, for negative pads) the H and W axes of an NHWC array."""
    (hl, hh), (wl, wh) = pads
    cfg = [(0, 0, 0), (hl, hh, interior[0]), (wl, wh, interior[1]), (0, 0, 0)]
    return lax.pad(x, jnp.zeros((), x.dtype), cfg)


def _in_batch_halves(fn, x: jax.Array) -> jax.Array:
    """``fn(x)`` computed on two halves of the batch inside a loop: a fusion fence.

    The slice sums here are cheap elementwise expressions, so XLA:CPU would otherwise fuse
    (and recompute) them inside every consumer: GroupNorm's passes recomputed a 36-term
    conv in NHWC order, 3-9 ms each; a consumer's reduction handed to YNNPACK had every
    shifted slice materialized (30x slower). A loop's result is computed once and stored.
    The halves interleave examples (even, odd), so a batch-sharded ``x`` stays sharded
    without collectives. ``fn`` must treat examples independently.
    """
    n = x.shape[0]
    if n % 2:
        x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 1, 0)] + [(0, 0, 0)] * (x.ndim - 1))
    halves = jnp.moveaxis(x.reshape(-1, 2, *x.shape[1:]), 1, 0)
    y = lax.map(fn, halves)
    return jnp.moveaxis(y, 0, 1).reshape(-1, *y.shape[2:])[:n]


def _out_size(size: int, k: int, s: int, lo: int, hi: int) -> int:
    return (size + lo + hi - k) // s + 1


def _tap(xp: jax.Array, i: int, j: int, out_hw: Sequence[int], s: tuple[int, int],
         axes: tuple[int, int] = (1, 2)) -> jax.Array:
    """The strided window of ``xp`` that kernel tap (i, j) sees, on spatial ``axes``."""
    start = [0] * xp.ndim
    limit = list(xp.shape)
    step = [1] * xp.ndim
    for ax, off, n, st in zip(axes, (i, j), out_hw, s, strict=True):
        start[ax], limit[ax], step[ax] = off, off + (n - 1) * st + 1, st
    return lax.slice(xp, start, limit, step)


def _dilated_grad_pads(
    in_hw: Sequence[int], k_hw: Sequence[int], out_hw: Sequence[int], s: tuple[int, int],
    pads: Pads,
) -> tuple[Pads, tuple[int, int]]:
    """Pads that turn dy into the input of a stride-1 VALID correlation giving d(x padded)."""
    result = []
    for size, k, n, st, (lo, hi) in zip(in_hw, k_hw, out_hw, s, pads, strict=True):
        span = (n - 1) * st + 1
        result.append((k - 1, size + lo + hi - span))
    return tuple(result), (s[0] - 1, s[1] - 1)  # type: ignore[return-value]


def _crop_pads(pads: Pads) -> Pads:
    return ((-pads[0][0], -pads[0][1]), (-pads[1][0], -pads[1][1]))


# ----------------------------------------------------------------------------- 1x1 conv


@jax.custom_vjp
def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b`` for 2-D arrays; custom VJP keeps both gradients plain 2-D matmuls."""
    return jnp.dot(a, b)


def _matmul_fwd(a: jax.Array, b: jax.Array):
    return jnp.dot(a, b), (a, b)


def _matmul_bwd(res, g):
    a, b = res
    return jnp.dot(g, b.T), lax.dot_general(a, g, (((0,), (0,)), ((), ())))


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _conv1x1(x: jax.Array, kernel: jax.Array, s: tuple[int, int], pads: Pads) -> jax.Array:
    """1x1 conv as (pad/crop, strided slice, matmul)."""
    n, h, w, cin = x.shape
    cout = kernel.shape[-1]
    if pads != ((0, 0), (0, 0)):
        x = _pad_hw(x, pads)
        h, w = x.shape[1:3]
    if s != (1, 1):
        ho, wo = (h - 1) // s[0] + 1, (w - 1) // s[1] + 1
        x = _tap(x, 0, 0, (ho, wo), s)
        h, w = ho, wo
    y = _matmul(x.reshape(n * h * w, cin), kernel.reshape(cin, cout))
    return y.reshape(n, h, w, cout)


# ----------------------------------------------------------------------------- k x k conv


def _conv_xla(x: jax.Array, kernel: jax.Array, s: tuple[int, int], pads: Pads) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, s, pads, dimension_numbers=_DN)


def _conv_direct(x: jax.Array, kernel: jax.Array, s: tuple[int, int], pads: Pads) -> jax.Array:
    """Sum over taps and input channels of a shifted NCHW slice times a kernel row.

    One fused elementwise loop over the NCHW output, vectorized along the width; efficient
    while ``kh*kw*Cin`` is small (XLA's conv is slowest exactly there).
    """
    return _in_batch_halves(lambda xh: _conv_direct_unfenced(xh, kernel, s, pads), x)


def _conv_direct_unfenced(x: jax.Array, kernel: jax.Array, s, pads) -> jax.Array:
    kh, kw, cin, cout = kernel.shape
    xp = _pad_hw(x, pads)
    ho = _out_size(xp.shape[1], kh, s[0], 0, 0)
    wo = _out_size(xp.shape[2], kw, s[1], 0, 0)
    xt = jnp.transpose(xp, (0, 3, 1, 2))  # N C H W
    y = None
    for i in range(kh):
        for j in range(kw):
            t = _tap(xt, i, j, (ho, wo), s, axes=(2, 3))
            for c in range(cin):
                term = t[:, c : c + 1] * kernel[i, j, c][None, :, None, None]
                y = term if y is None else y + term
    if y is None:
        raise ValueError(f"kernel of shape {kernel.shape} has no taps")
    return jnp.transpose(y, (0, 2, 3, 1))


def _conv_fwd_by(method: str):
    return {"xla": _conv_xla, "direct": _conv_direct}[method]


def _conv_dx(x_shape, kernel: jax.Array, dy: jax.Array, s, pads, method: str) -> jax.Array:
    """Gradient of the conv w.r.t. its input, by ``method``."""
    kh, kw, cin, cout = kernel.shape
    in_hw, out_hw = x_shape[1:3], dy.shape[1:3]
    if method == "xla":
        zeros = jax.ShapeDtypeStruct(x_shape, dy.dtype)
        (dx,) = jax.linear_transpose(lambda x: _conv_xla(x, kernel, s, pads), zeros)(dy)
        return dx
    if method == "direct":
        dpads, interior = _dilated_grad_pads(in_hw, (kh, kw), out_hw, s, pads)
        flipped = jnp.transpose(jnp.flip(kernel, (0, 1)), (0, 1, 3, 2))

        def direct(d: jax.Array) -> jax.Array:
            d = _pad_hw(d, dpads, interior)
            dxp = _conv_direct_unfenced(d, flipped, (1, 1), ((0, 0), (0, 0)))
            return _pad_hw(dxp, _crop_pads(pads))

        return _in_batch_halves(direct, dy)
    if method == "col2im":
        hp, wp = in_hw[0] + sum(pads[0]), in_hw[1] + sum(pads[1])
        span = ((out_hw[0] - 1) * s[0] + 1, (out_hw[1] - 1) * s[1] + 1)

        def col2im(d: jax.Array) -> jax.Array:
            cols = jnp.dot(d, kernel.reshape(kh * kw * cin, cout).T)
            cols = cols.reshape(*d.shape[:3], kh * kw, cin)
            acc = None
            for i in range(kh):
                for j in range(kw):
                    placed = _pad_hw(
                        cols[:, :, :, i * kw + j, :],
                        ((i, hp - i - span[0]), (j, wp - j - span[1])),
                        (s[0] - 1, s[1] - 1),
                    )
                    acc = placed if acc is None else acc + placed
            if acc is None:
                raise ValueError(f"kernel of shape {kernel.shape} has no taps")
            return _pad_hw(acc, _crop_pads(pads))

        return _in_batch_halves(col2im, dy)
    raise ValueError(f"dx method {method!r} is not one of {DX_METHODS}")


def _conv_dw(x: jax.Array, kernel_shape, dy: jax.Array, s, pads, method: str) -> jax.Array:
    """Gradient of the conv w.r.t. its kernel, by ``method``."""
    if method == "xla":
        zeros = jax.ShapeDtypeStruct(kernel_shape, dy.dtype)
        (dw,) = jax.linear_transpose(lambda w: _conv_xla(x, w, s, pads), zeros)(dy)
        return dw
    raise ValueError(f"dw method {method!r} is not one of {DW_METHODS}")


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_kxk(x: jax.Array, kernel: jax.Array, s, pads, plan: ConvPlan) -> jax.Array:
    return _conv_fwd_by(plan.fwd)(x, kernel, s, pads)


def _conv_kxk_fwd(x, kernel, s, pads, plan):
    return _conv_fwd_by(plan.fwd)(x, kernel, s, pads), (x, kernel)


def _conv_kxk_bwd(s, pads, plan, res, dy):
    x, kernel = res
    dx = _conv_dx(x.shape, kernel, dy, s, pads, plan.dx)
    dw = _conv_dw(x, kernel.shape, dy, s, pads, plan.dw)
    return dx, dw


_conv_kxk.defvjp(_conv_kxk_fwd, _conv_kxk_bwd)


def conv2d_plan(
    x_shape: Sequence[int], kernel_shape: Sequence[int], strides: Sequence[int] = (1, 1),
    padding: Padding = "SAME",
) -> ConvPlan:
    """The methods :func:`conv2d` uses for a k x k conv of these static shapes."""
    kh, kw, cin, cout = kernel_shape
    s = _normalize_strides(strides)
    pads = _normalize_padding(padding, x_shape[1:3], (kh, kw), s)
    in_hw = x_shape[1:3]
    wo = _out_size(in_hw[1], kw, s[1], *pads[1])
    fwd = "direct" if kh * kw * cin <= DIRECT_MAX_TERMS and wo >= _DIRECT_MIN_WIDTH else "xla"
    dx = "xla"
    if s == (1, 1) and in_hw[1] + sum(pads[1]) >= _DIRECT_MIN_WIDTH:
        cols = x_shape[0] * in_hw[0] * in_hw[1] * kh * kw * cin
        if kh * kw * cout <= DIRECT_DX_MAX_TERMS:
            dx = "direct"
        elif cin <= COL2IM_MAX_CIN and cols <= COL2IM_MAX_ELEMENTS:
            dx = "col2im"
    return ConvPlan(fwd, dx, "xla")


def conv2d_with_plan(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: Padding, plan: ConvPlan
) -> jax.Array:
    """:func:`conv2d` with the k x k methods forced (for tests and benchmarks)."""
    s, pads = _conv_geometry(x, kernel, strides, padding, depthwise=False)
    plan = ConvPlan(*plan)
    for name, value, allowed in zip(
        ("fwd", "dx", "dw"), plan, (FWD_METHODS, DX_METHODS, DW_METHODS), strict=True
    ):
        if value not in allowed:
            raise ValueError(f"plan.{name}={value!r} is not one of {allowed}")
    return _conv_kxk(x, kernel, s, pads, plan)


def conv2d(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1), padding: Padding = "SAME"
) -> jax.Array:
    """2-D convolution NHWC x HWIO -> NHWC, equal to ``ops.conv2d_xla``; fast on CPU.

    1x1 kernels run as matmuls; k x k kernels as chosen by :func:`conv2d_plan`.
    """
    s, pads = _conv_geometry(x, kernel, strides, padding, depthwise=False)
    if kernel.shape[:2] == (1, 1):
        return _conv1x1(x, kernel, s, pads)
    plan = conv2d_plan(x.shape, kernel.shape, s, pads)
    if plan == ConvPlan("xla", "xla", "xla"):
        return _conv_xla(x, kernel, s, pads)  # plain autodiff computes exactly this plan
    return _conv_kxk(x, kernel, s, pads, plan)


# ----------------------------------------------------------------------------- depthwise


def _depthwise_fwd_slices(x: jax.Array, kernel: jax.Array, s, pads) -> jax.Array:
    """Sum over taps of the shifted (strided) input times the tap's per-channel weights."""
    return _in_batch_halves(lambda xh: _depthwise_unfenced(xh, kernel, s, pads), x)


def _depthwise_unfenced(x: jax.Array, kernel: jax.Array, s, pads) -> jax.Array:
    kh, kw = kernel.shape[:2]
    xp = _pad_hw(x, pads)
    out_hw = (_out_size(xp.shape[1], kh, s[0], 0, 0), _out_size(xp.shape[2], kw, s[1], 0, 0))
    y = None
    for i in range(kh):
        for j in range(kw):
            term = _tap(xp, i, j, out_hw, s) * kernel[i, j, 0]
            y = term if y is None else y + term
    if y is None:
        raise ValueError(f"kernel of shape {kernel.shape} has no taps")
    return y


def _depthwise_dx(x_shape, kernel: jax.Array, dy: jax.Array, s, pads) -> jax.Array:
    """Input gradient: the same slice sum over the dilated dy with the flipped kernel."""
    kh, kw = kernel.shape[:2]
    dpads, interior = _dilated_grad_pads(x_shape[1:3], (kh, kw), dy.shape[1:3], s, pads)
    flipped = jnp.flip(kernel, (0, 1))

    def dx(d: jax.Array) -> jax.Array:
        d = _pad_hw(d, dpads, interior)
        dxp = _depthwise_unfenced(d, flipped, (1, 1), ((0, 0), (0, 0)))
        return _pad_hw(dxp, _crop_pads(pads))

    return _in_batch_halves(dx, dy)


def _depthwise_dw(x: jax.Array, kernel_shape, dy: jax.Array, s, pads) -> jax.Array:
    """Kernel gradient: per tap, the sum over N, H, W of the shifted input times dy.

    All taps in one variadic ``lax.reduce`` over H, W (then a small sum over N): XLA's own
    reduction loop reads the shifted slices in place. Separate ``jnp.sum`` per tap go to
    YNNPACK, which materializes every slice (4-5x slower).
    """
    kh, kw = kernel_shape[:2]
    xp = _pad_hw(x, pads)
    out_hw = dy.shape[1:3]
    products = [_tap(xp, i, j, out_hw, s) * dy for i in range(kh) for j in range(kw)]
    zeros = [jnp.zeros((), dy.dtype)] * len(products)
    per_example = lax.reduce(
        products, zeros, lambda a, b: [u + v for u, v in zip(a, b, strict=True)], (1, 2)
    )
    return jnp.stack(per_example).sum(axis=1).reshape(kernel_shape)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise(x: jax.Array, kernel: jax.Array, s, pads) -> jax.Array:
    return _depthwise_fwd_slices(x, kernel, s, pads)


def _depthwise_vjp_fwd(x, kernel, s, pads):
    return _depthwise_fwd_slices(x, kernel, s, pads), (x, kernel)


def _depthwise_vjp_bwd(s, pads, res, dy):
    x, kernel = res
    return _depthwise_dx(x.shape, kernel, dy, s, pads), _depthwise_dw(x, kernel.shape, dy, s, pads)


_depthwise.defvjp(_depthwise_vjp_fwd, _depthwise_vjp_bwd)


def depthwise_conv2d(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1), padding: Padding = "SAME"
) -> jax.Array:
    """Depthwise conv (kernel (kh, kw, 1, C)) equal to ``ops.depthwise_conv2d_xla``.

    Shifted slices forward and backward (custom VJP); see the module docstring.
    """
    s, pads = _conv_geometry(x, kernel, strides, padding, depthwise=True)
    return _depthwise(x, kernel, s, pads)


# ----------------------------------------------------------------------------- group norm


def _fold_factor(m: int, c: int) -> int:
    """Largest divisor k of m with k*c <= max(_GN_FOLD_WIDTH, c): (N, m, c) -> (N, m/k, k*c)."""
    best = 1
    for k in range(1, m + 1):
        if m % k == 0 and k * c <= max(_GN_FOLD_WIDTH, c):
            best = k
    return best


def _sum_over_pixels(v: jax.Array, k: int) -> jax.Array:
    """Sum of an (N, M, C) array over M, reduced on the (N, M/k, k*C) view."""
    n, m, c = v.shape
    return jnp.sum(v.reshape(n, m // k, k * c), axis=1).reshape(n, k, c).sum(axis=1)


def _tile_channels(v: jax.Array, k: int) -> jax.Array:
    """(N, C) -> (N, 1, k*C): per-channel values broadcast over a k-fold pixel block."""
    return jnp.tile(v, (1, k))[:, None, :]


def _gn_stats(x3: jax.Array, num_groups: int, eps: float, k: int):
    """Per (example, group) mean and 1/std of an (N, M, C) array, in one pass over it."""
    n, m, c = x3.shape
    cg = c // num_groups
    shift = x3[:, 0, :]  # (N, C): a sample of each channel, to avoid cancellation
    d = (x3.reshape(n, m // k, k * c) - _tile_channels(shift, k)).reshape(n, m, c)
    s1 = _sum_over_pixels(d, k)
    s2 = _sum_over_pixels(d * d, k)
    count = m * cg
    shift_g = shift.reshape(n, num_groups, cg)
    mean = (s1.reshape(n, num_groups, cg).sum(-1) + m * shift_g.sum(-1)) / count
    rel = shift_g - mean[:, :, None]  # (N, G, Cg): shift minus the group mean
    ss = (
        s2.reshape(n, num_groups, cg) + 2 * rel * s1.reshape(n, num_groups, cg) + m * rel * rel
    ).sum(-1)
    var = jnp.maximum(ss / count, 0)
    return mean, lax.rsqrt(var + eps)


def _per_channel(v: jax.Array, cg: int) -> jax.Array:
    """(N, G) -> (N, G*Cg): a group value repeated for the group's channels."""
    return jnp.repeat(v, cg, axis=1)


def _gn_forward(x, num_groups, scale, bias, eps):
    n, h, w, c = x.shape
    cg, m = c // num_groups, h * w
    k = _fold_factor(m, c)
    x3 = x.reshape(n, m, c)
    mean, rstd = _gn_stats(x3, num_groups, eps, k)
    a = _per_channel(rstd, cg) * scale
    mean_c = _per_channel(mean, cg)
    y = (x3 - mean_c[:, None, :]) * a[:, None, :] + bias
    return y.reshape(x.shape), (x, mean, rstd, scale)


@partial(jax.custom_vjp, nondiff_argnums=(1, 4))
def _group_norm(x, num_groups, scale, bias, eps):
    return _gn_forward(x, num_groups, scale, bias, eps)[0]


def _group_norm_bwd(num_groups, eps, res, dy):
    x, mean, rstd, scale = res
    n, h, w, c = x.shape
    cg, m = c // num_groups, h * w
    k = _fold_factor(m, c)
    x3, d3 = x.reshape(n, m, c), dy.reshape(n, m, c)
    mean_c, rstd_c = _per_channel(mean, cg), _per_channel(rstd, cg)
    centered = x3 - mean_c[:, None, :]
    a_sum = _sum_over_pixels(d3 * centered, k)  # (N, C): sum dy * (x - mean)
    b_sum = _sum_over_pixels(d3, k)  # (N, C): sum dy
    dscale = jnp.sum(a_sum * rstd_c, axis=0)
    dbias = jnp.sum(b_sum, axis=0)
    count = m * cg
    g_mean = (scale * b_sum).reshape(n, num_groups, cg).sum(-1) / count
    gx_mean = (scale * a_sum).reshape(n, num_groups, cg).sum(-1) * rstd / count
    k1 = _per_channel(-rstd * rstd * gx_mean, cg)
    k0 = _per_channel(-rstd * g_mean, cg)
    dx = d3 * (scale * rstd_c)[:, None, :] + centered * k1[:, None, :] + k0[:, None, :]
    return dx.reshape(x.shape), dscale, dbias


_group_norm.defvjp(_gn_forward, _group_norm_bwd)


def _as_channel_vector(name: str, v: jax.Array | None, c: int, dtype, fill: float) -> jax.Array:
    if v is None:
        return jnp.full((c,), fill, dtype)
    v = jnp.asarray(v)
    if v.size != c or (v.ndim > 0 and v.shape[-1] != c) or any(d != 1 for d in v.shape[:-1]):
        raise ValueError(f"{name} shape {v.shape} must be ({c},) (one value per channel)")
    return v.reshape(c)


def group_norm(
    x: jax.Array, num_groups: int, scale: jax.Array | None = None,
    bias: jax.Array | None = None, eps: float = 1e-5,
) -> jax.Array:
    """GroupNorm of NHWC ``x`` equal to ``ops.group_norm_xla``; fused passes, custom VJP.

    ``num_groups`` and ``eps`` must be static (Python numbers); ``scale`` and ``bias`` are
    per-channel vectors or None (1 and 0).
    """
    _check_4d("x", x)
    c = x.shape[-1]
    try:
        num_groups = operator.index(num_groups)
    except TypeError as e:
        raise ValueError(f"num_groups={num_groups!r} must be a positive int") from e
    if num_groups < 1:
        raise ValueError(f"num_groups={num_groups!r} must be a positive int")
    if c % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide the channel count {c}")
    try:
        eps = float(eps)
    except (TypeError, jax.errors.ConcretizationTypeError) as e:
        raise ValueError(f"eps={eps!r} must be a Python float") from e
    dtype = jnp.result_type(x, *(v for v in (scale, bias) if v is not None))
    s = _as_channel_vector("scale", scale, c, dtype, 1.0)
    b = _as_channel_vector("bias", bias, c, dtype, 0.0)
    return _group_norm(x.astype(dtype), num_groups, s.astype(dtype), b.astype(dtype), eps)
