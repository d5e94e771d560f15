"""Orbax checkpoints of a run's training state, for resuming interrupted runs exactly.

The state (any pytree) is saved as its flat list of leaves; restoring needs a pytree of the
same structure (the freshly initialized state), so custom nodes (nnx.State, optax states)
round-trip without orbax having to know them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:
    """Keeps the latest ``max_to_keep`` checkpoints of a training state under ``directory``."""

    def __init__(self, directory: str | Path, max_to_keep: int = 1):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        """Saves ``state`` at ``step`` and waits until it is on disk.

        A checkpoint already at ``step`` is replaced: a group resumed from an earlier step
        (its runs' latest checkpoints differed after a kill) saves that step again. A failed
        write (a full disk: orbax's RESOURCE_EXHAUSTED) is one OSError naming the folder; the
        earlier checkpoint stays, so the run can resume once there is room.
        """
        if step in self._manager.all_steps():
            self._manager.delete(step)
        leaves = jax.tree.leaves(state)
        payload = {f"{i:05d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
        try:
            self._manager.save(step, args=ocp.args.StandardSave(payload), force=True)
            self._manager.wait_until_finished()
        except Exception as err:
            raise OSError(f"cannot write the checkpoint of step {step} to {self.directory} "
                          f"({_first_line(err)}): free disk space (or set checkpoint_every "
                          "higher) and rerun; the run resumes from its last checkpoint") from err

    def restore(self, step: int, like: Any) -> Any:
        """Restores the checkpoint at ``step`` into the structure of ``like``; an unreadable
        one is a ValueError naming its folder and the fix."""
        leaves, treedef = jax.tree.flatten(like)
        target = {f"{i:05d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
        try:
            payload = self._manager.restore(step, args=ocp.args.StandardRestore(target))
        except Exception as err:
            raise ValueError(f"checkpoint {self.directory / str(step)} cannot be read "
                             f"({_first_line(err)}): delete {self.directory} to restart the "
                             "run from step 0") from err
        restored = [payload[f"{i:05d}"] for i in range(len(leaves))]
        for old, new in zip(leaves, restored, strict=True):
            if np.shape(old) != np.shape(new):
                raise ValueError(
                    f"checkpoint in {self.directory} does not match this config: "
                    f"leaf shape {np.shape(new)} != {np.shape(old)}"
                )
        return jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in restored])

    def clear(self) -> None:
        """Deletes every checkpoint (a group restarts from step 0 when its runs disagree)."""
        for step in self._manager.all_steps():
            self._manager.delete(step)

    def close(self) -> None:
        self._manager.close()


def group_start(ckpts: list[Checkpointer]) -> int:
    """The step a vectorized group resumes from: their common latest step, else 0.

    Runs killed between their checkpoint saves disagree; those ahead are cleared, so the
    group restarts together from 0 and no later save meets a step from the earlier attempt.
    """
    latest = {c.latest_step() for c in ckpts}
    if len(latest) == 1 and None not in latest:
        return cast(int, latest.pop())  # the one step, not None
    for c in ckpts:
        if c.latest_step() is not None:
            c.clear()
    return 0


def _first_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception (orbax's run to many lines)."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__
