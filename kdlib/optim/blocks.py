"""Shampoo's view of a parameter: a matrix (small dims merged) cut into padded square-ish blocks.

A parameter with two or more dims is reshaped to `(prod(shape[:-1]), shape[-1])` (a Flax conv
kernel HWIO becomes `(H*W*I, O)`, a dense kernel stays `(I, O)`). Each side is cut into blocks
of `min(side, block_size)`; the matrix is zero-padded up to whole blocks so that every block of
one parameter has the same shape and all blocks are processed as one batch. Zero padding is
exact for Shampoo: padded rows/columns of the gradient are zero, so the statistics and their
inverse roots are block-diagonal between real and padded coordinates (see tests).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class BlockLayout:
    """Static description of how one parameter maps to `(num_blocks, block_rows, block_cols)`."""

    shape: tuple[int, ...]
    rows: int
    cols: int
    block_rows: int
    block_cols: int

    @property
    def row_blocks(self) -> int:
        """Number of blocks along the matrix rows."""
        return math.ceil(self.rows / self.block_rows)

    @property
    def col_blocks(self) -> int:
        """Number of blocks along the matrix columns."""
        return math.ceil(self.cols / self.block_cols)

    @property
    def num_blocks(self) -> int:
        """Total number of blocks (row-major over the block grid)."""
        return self.row_blocks * self.col_blocks

    @property
    def padded(self) -> bool:
        """Whether the last row or column block is partly padding."""
        return self.rows % self.block_rows != 0 or self.cols % self.block_cols != 0

    def to_blocks(self, x: jnp.ndarray) -> jnp.ndarray:
        """Array of `shape` -> `(num_blocks, block_rows, block_cols)`, zero padded."""
        return self._blockify(x, jnp)

    def _blockify(self, x, xp):
        m = x.reshape(self.rows, self.cols)
        pad_r = self.row_blocks * self.block_rows - self.rows
        pad_c = self.col_blocks * self.block_cols - self.cols
        if pad_r or pad_c:
            m = xp.pad(m, ((0, pad_r), (0, pad_c)))
        m = m.reshape(self.row_blocks, self.block_rows, self.col_blocks, self.block_cols)
        return m.transpose(0, 2, 1, 3).reshape(self.num_blocks, self.block_rows, self.block_cols)

    def from_blocks(self, blocks: jnp.ndarray) -> jnp.ndarray:
        """Inverse of `to_blocks`: drops the padding and restores `shape`."""
        m = blocks.reshape(self.row_blocks, self.col_blocks, self.block_rows, self.block_cols)
        m = m.transpose(0, 2, 1, 3).reshape(
            self.row_blocks * self.block_rows, self.col_blocks * self.block_cols
        )
        return m[: self.rows, : self.cols].reshape(self.shape)

    def valid_mask(self) -> np.ndarray:
        """float32 `(num_blocks, block_rows, block_cols)`: 1 on real entries, 0 on padding."""
        return self._blockify(np.ones((self.rows, self.cols), np.float32), np)


def block_layout(shape: tuple[int, ...], block_size: int) -> BlockLayout | None:
    """Layout for a parameter of `shape`, or None for scalars, vectors and empty arrays.

    None means "not preconditioned": biases and norm scales take the grafted step only.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2 or math.prod(shape) == 0:
        return None
    rows, cols = math.prod(shape[:-1]), shape[-1]
    return BlockLayout(
        shape=shape,
        rows=rows,
        cols=cols,
        block_rows=min(rows, block_size),
        block_cols=min(cols, block_size),
    )
