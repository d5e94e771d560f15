"""Optimizers of the paper as optax transformations: big_vision Adam/SGD, block Shampoo.

All work on any pytree of parameters (nested dicts, `nnx.State` of `nnx.Param`s) and follow
big_vision's convention `update = -mult(t) * (learning_rate * direction + wd * mask * w)`
with a schedule multiplier `mult` in [0, 1] and kernel-only weight decay.
"""

from kdlib.optim.adam import adam_bv
from kdlib.optim.blocks import BlockLayout, block_layout
from kdlib.optim.schedules import (
    APPENDIX_D_WARMUP_STEPS,
    warmup_constant,
    warmup_cosine,
    warmup_quadratic_decay,
)
from kdlib.optim.sgd import sgd_momentum
from kdlib.optim.shampoo import (
    APPENDIX_D_WEIGHT_DECAY,
    ShampooState,
    inverse_pth_root,
    scale_by_shampoo,
    shampoo,
)
from kdlib.optim.weight_decay import decoupled_tail, kernel_mask

__all__ = [
    "APPENDIX_D_WARMUP_STEPS",
    "APPENDIX_D_WEIGHT_DECAY",
    "BlockLayout",
    "ShampooState",
    "adam_bv",
    "block_layout",
    "decoupled_tail",
    "inverse_pth_root",
    "kernel_mask",
    "scale_by_shampoo",
    "sgd_momentum",
    "shampoo",
    "warmup_constant",
    "warmup_cosine",
    "warmup_quadratic_decay",
]
