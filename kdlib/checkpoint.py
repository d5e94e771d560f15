"""Orbax checkpoints of a run's training state, for resuming interrupted runs exactly.

The state (any pytree) is saved as its flat list of leaves; restoring needs a pytree of the
same structure (the freshly initialized state), so custom nodes (nnx.State, optax states)
round-trip without orbax having to know them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

# Two steps kept: a group's runs save one after another, so a stop between two saves (a crash,
# a full disk) leaves the runs one step apart, and they resume together from the older step
# they all still hold (:func:`group_start`), not from step 0.
MAX_TO_KEEP = 2


class Checkpointer:
    """Keeps the latest ``max_to_keep`` checkpoints of a training state under ``directory``."""

    def __init__(self, directory: str | Path, max_to_keep: int = MAX_TO_KEEP):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """The steps of every complete checkpoint kept, oldest first."""
        return sorted(self._manager.all_steps())

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
        self.drop_after(-1)

    def drop_after(self, step: int) -> None:
        """Deletes the checkpoints after ``step`` (a group resumes from an earlier one)."""
        for kept in self._manager.all_steps():
            if kept > step:
                self._manager.delete(kept)

    def close(self) -> None:
        self._manager.close()


def group_start(ckpts: list[Checkpointer]) -> int:
    """The step a vectorized group resumes from: the newest step every run holds, else 0.

    Runs stopped between their checkpoint saves disagree on their latest step; they resume
    from the older step they all kept, and the steps past it are deleted, so no later save
    meets a step from the earlier attempt. Runs with no step in common are cleared: the
    group restarts together from 0.
    """
    if not ckpts:
        return 0
    common = set.intersection(*(set(c.steps()) for c in ckpts))
    start = max(common) if common else 0
    for c in ckpts:
        c.drop_after(start if common else -1)
    return start


def layout(state: Any) -> str:
    """A short digest of a training state's layout: each leaf's path, shape and dtype, in the
    order the checkpoint stores the leaves. Restoring matches leaves by position and checks
    shapes only, so a code change that renames or reorders same-shaped leaves would load
    weights into the wrong slots; the digest, logged beside each checkpoint, tells."""
    import hashlib

    rows = [f"{jax.tree_util.keystr(path)} {np.shape(leaf)} {getattr(leaf, 'dtype', '?')}"
            for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]]
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def logged_layout(history: list[dict[str, Any]], step: int) -> str | None:
    """The layout digest logged with the checkpoint at ``step`` (None: an older log)."""
    found = [r["layout"] for r in history if r.get("step") == step and "layout" in r]
    return found[-1] if found else None


def _first_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception (orbax's run to many lines)."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__
