"""kdlib.profiling: FLOPs from XLA's cost analysis and measured forward throughput."""

import pytest
from flax import nnx

from kdlib import profiling
from kdlib.experiments import common, resolution


def test_forward_flops_of_a_linear_layer():
    layer = nnx.Linear(8, 4, rngs=nnx.Rngs(0))
    one = profiling.forward_flops(layer, (1, 8))
    # A multiply-add per weight, plus the bias adds.
    assert 2 * 8 * 4 <= one <= 2 * 8 * 4 + 4
    assert profiling.forward_flops(layer, (16, 8)) == pytest.approx(16 * one)


def test_conv_flops_count_every_valid_tap():
    """Counted by XLA:CPU on every backend (on GPU the compiled cuDNN convolutions count 0)."""
    conv = nnx.Conv(3, 16, (3, 3), rngs=nnx.Rngs(0))
    # A multiply-add per weight and valid (unpadded) tap: 46 = 16 x 3 taps - 2 at the borders,
    # per row and column; plus the bias adds.
    assert profiling.forward_flops(conv, (1, 16, 16, 3)) == 2 * 16 * 3 * 46**2 + 16 * 16 * 16


def test_forward_throughput_is_images_per_second():
    layer = nnx.Linear(8, 4, rngs=nnx.Rngs(0))
    assert profiling.forward_throughput(layer, (32, 8), repeats=2) > 0
    with pytest.raises(ValueError, match="repeats=0"):
        profiling.forward_throughput(layer, (32, 8), repeats=0)


def test_model_costs_rank_the_low_resolution_student_cheaper():
    rows = {r["arm"]: r for r in common.model_costs(resolution.arms("smoke"))}
    assert set(rows) == set(resolution.ARMS)
    low, same = rows["low-res student"], rows["same resolution"]
    assert low["student px"] < same["student px"]
    assert low["student MFLOPs"] < same["student MFLOPs"]
    assert low["student params"] == same["student params"]  # same network, smaller input
    assert all(r["student img/s"] > 0 for r in rows.values())
