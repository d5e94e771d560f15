"""Stops that wait for a consistent moment: a stop requested (a SIGTERM handler's) while the
main thread is inside :func:`uninterrupted` runs when that block ends, so a group's
checkpoints are saved together and a ``git commit`` is not killed halfway (leaving
``.git/index.lock`` behind)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_depth = 0
_pending: Callable[[], None] | None = None  # the stop a block holds back (one is enough)


def _main_thread() -> bool:
    # Signal handlers run in the main thread only: another thread's block cannot be cut short
    # by one, and must not hold back (or run) the main thread's stop.
    return threading.current_thread() is threading.main_thread()


@contextmanager
def uninterrupted() -> Iterator[None]:
    """A block a stop (:func:`stop_or_defer`) does not cut short: it runs when the outermost
    block of the main thread ends. In other threads, a plain block."""
    global _depth, _pending
    if not _main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            action, _pending = _pending, None
            action()


def stop_or_defer(action: Callable[[], None]) -> None:
    """Runs ``action`` (e.g. ``sys.exit``) now, or at the end of the main thread's current
    :func:`uninterrupted` block: for a signal handler."""
    global _pending
    if _depth and _main_thread():
        _pending = action
    else:
        action()


def deferred() -> bool:
    """Whether a stop waits for the current block to end (for tests and progress lines)."""
    return _pending is not None
