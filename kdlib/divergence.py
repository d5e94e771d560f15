"""When a run has diverged: its training loss is not finite, or far above its start for long.

A run is stopped and stored with status ``"diverged"`` (and the step) when
- a training chunk's mean loss is NaN or infinite, or
- the mean training loss of :data:`PATIENCE` consecutive evaluation windows exceeds
  :data:`FACTOR` times the *chance loss*: the loss of a uniform prediction, which is about
  where a freshly initialized student starts (``T**2 * log C`` for ``kl`` and ``labels``,
  ``2 * T**2 * (beta + gamma)`` for ``dist``, whose Pearson terms are at most 2).

The chance loss, not the first window's loss, is the reference because a wild learning rate
(lr 1e6) has already exploded within the first window (loss 1e12 from step 2). No stored
healthy run comes near the bound (tested: the largest is below 2x chance). Resumes replay
the metrics log (:meth:`Watch.replay`), so an interrupted run diverges at the same step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

FACTOR = 10.0
PATIENCE = 2


def chance_loss(loss: str, num_classes: int, temperature: float = 1.0, beta: float = 1.0,
                gamma: float = 1.0) -> float:
    """The loss of a uniform prediction (the scale a fresh student starts at), per loss."""
    if loss == "dist":
        return 2.0 * temperature**2 * (beta + gamma)
    t2 = 1.0 if loss == "labels" else temperature**2
    return t2 * math.log(num_classes)


class Watch:
    """Watches one run's training losses; each check returns why it diverged, or None."""

    def __init__(self, start: float, factor: float = FACTOR, patience: int = PATIENCE):
        self.limit = factor * start
        self.factor = factor
        self.patience = patience
        self.above = 0  # consecutive evaluation windows above the limit

    def chunk(self, loss: float) -> str | None:
        """A training chunk's mean loss: diverged when it is not finite."""
        if not math.isfinite(loss):
            return f"non-finite training loss {loss}"
        return None

    def evaluation(self, train_loss: float) -> str | None:
        """An evaluation window's mean loss: diverged after ``patience`` windows above limit."""
        if not math.isfinite(train_loss):
            return f"non-finite training loss {train_loss}"
        self.above = self.above + 1 if train_loss > self.limit else 0
        if self.above >= self.patience:
            return (f"training loss {train_loss:.4g} above {self.factor:g} x the chance loss "
                    f"({self.limit:.4g}) for {self.above} evaluations")
        return None

    def replay(self, records: Iterable[Mapping[str, Any]]) -> str | None:
        """Feeds the stored records of a resumed run; the divergence they show, if any."""
        for record in records:
            if record.get("status") == "diverged":
                return str(record.get("reason", "diverged before the resume"))
            if "val_acc" in record and isinstance(record.get("train_loss"), (int, float)):
                self.evaluation(float(record["train_loss"]))
        return None
