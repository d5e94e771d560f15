"""The eight view policies by name, and where each one's teacher gets its images.

The views themselves are :mod:`kdlib.views` (on device, with jax); this module is the plain
table every caller asks, without importing jax: the config's validation, the engine (does the
teacher run in the step, or are its targets computed once?) and the verdicts (which arms are
the fixed, independent and consistent families of the paper's Figure 2).
"""

from __future__ import annotations

POLICIES = ("fix/rs", "fix/cc", "fix/ic_ens", "ind/rc", "ind/ic", "same/rc", "same/ic", "mix")
# Where a policy's teacher gets its images (paper section 3.1.1):
# - "fixed": once, before training: its logits are precomputed targets (fix/*);
# - "independent": its own random view at every step (ind/*);
# - "consistent": the student's view at every step (same/*; mix: mixed up as well).
TEACHER_MODES = ("fixed", "independent", "consistent")
_MODE_OF_PREFIX = {"fix": "fixed", "ind": "independent", "same": "consistent",
                   "mix": "consistent"}


def check_policy(policy: str) -> str:
    """Returns ``policy`` if it is one of ``POLICIES``, else raises a ValueError."""
    if policy not in POLICIES:
        raise ValueError(f"policy={policy!r} is not one of {POLICIES}")
    return policy


def teacher_mode(policy: str) -> str:
    """Where the teacher of ``policy`` gets its images: one of :data:`TEACHER_MODES`."""
    return _MODE_OF_PREFIX[check_policy(policy).split("/")[0]]


def policies_of(mode: str) -> tuple[str, ...]:
    """The policies whose teacher mode is ``mode``, in :data:`POLICIES` order."""
    if mode not in TEACHER_MODES:
        raise ValueError(f"mode={mode!r} is not one of {TEACHER_MODES}")
    return tuple(p for p in POLICIES if teacher_mode(p) == mode)


FIXED_POLICIES = policies_of("fixed")
