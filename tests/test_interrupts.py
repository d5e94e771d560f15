"""A stop waits for the block under way: a group's checkpoints, a git commit."""

import threading

import pytest

from kdlib import interrupts


def test_a_stop_outside_a_block_runs_at_once():
    calls = []
    interrupts.stop_or_defer(lambda: calls.append("stop"))
    assert calls == ["stop"]


def test_a_stop_inside_a_block_waits_for_its_outermost_end():
    calls = []
    with interrupts.uninterrupted():
        with interrupts.uninterrupted():
            interrupts.stop_or_defer(lambda: calls.append("stop"))
            calls.append("inner work")
        assert interrupts.deferred() and calls == ["inner work"]
        calls.append("outer work")
    assert calls == ["inner work", "outer work", "stop"] and not interrupts.deferred()


def test_a_deferred_exit_unwinds_after_the_block():
    done = []
    with pytest.raises(SystemExit) as exit_info:
        with interrupts.uninterrupted():
            interrupts.stop_or_defer(lambda: (_ for _ in ()).throw(SystemExit(143)))
            done.append("saved every run")
    assert exit_info.value.code == 143 and done == ["saved every run"]
    interrupts.stop_or_defer(lambda: done.append("next stop runs at once"))
    assert done[-1] == "next stop runs at once"


def test_another_threads_block_neither_holds_nor_runs_the_main_threads_stop():
    """Signal handlers run in the main thread: the committer thread's commit must not hold
    the main thread's stop back, nor run sys.exit in itself (which would end only it)."""
    calls, inside, release = [], threading.Event(), threading.Event()

    def worker():
        with interrupts.uninterrupted():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(5)
    interrupts.stop_or_defer(lambda: calls.append(threading.current_thread().name))
    release.set()
    thread.join()
    assert calls == [threading.main_thread().name]
