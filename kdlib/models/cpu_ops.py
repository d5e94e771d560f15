"""CPU-tuned versions of the ops in :mod:`kdlib.models.ops` (same values and gradients).

Placeholder: delegates to the plain XLA versions until the tuned ones land.
"""

from __future__ import annotations

from kdlib.models.ops import conv2d_xla as conv2d  # noqa: F401
from kdlib.models.ops import depthwise_conv2d_xla as depthwise_conv2d  # noqa: F401
from kdlib.models.ops import group_norm_xla as group_norm  # noqa: F401
