"""Fixtures and helpers shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_on_devices(source: str, devices: int = 8, *, env: dict | None = None,
                   args: tuple[str, ...] = (), timeout: float = 900) -> str:
    """Runs Python ``source`` in a fresh process with ``devices`` simulated CPU devices and
    returns its stdout; fails the test with the end of its stderr when it exits non-zero.

    A process of its own because JAX fixes the device count when it starts.
    """
    full_env = dict(os.environ, JAX_PLATFORMS="cpu", OPENBLAS_NUM_THREADS="1",
                    XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                    **(env or {}))
    done = subprocess.run([sys.executable, "-c", source, *args], env=full_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def scratch_repo(path: Path, ignore: str | None = None):
    """A scratch git repository at ``path`` (``ignore`` committed as its .gitignore) and a
    ``git(*args)`` that runs there and returns its output (the queue's commit and park
    tests)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], check=True,
                              capture_output=True, text=True).stdout

    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    if ignore is not None:
        (path / ".gitignore").write_text(ignore)
        git("add", ".gitignore")
        git("commit", "-q", "-m", "start")
    return git


@pytest.fixture()
def results_root(tmp_path, monkeypatch):
    """An empty results root for the test ($KDLIB_RESULTS)."""
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    return tmp_path


# --------------------------------------------------------------- compile accounting (issue 15)
# KDLIB_COUNT_COMPILES=1 pytest -p no:xdist ... prints the tests that compiled the most XLA
# programs (and their seconds): eager JAX in a test compiles one program per op and shape.
_COMPILES: dict[str, list[float]] = {}

if os.environ.get("KDLIB_COUNT_COMPILES"):
    from jax import monitoring

    _current: list[str] = []

    def _on_duration(name: str, seconds: float, **_: object) -> None:
        if name.endswith("backend_compile_duration") and _current:
            _COMPILES.setdefault(_current[-1], []).append(seconds)

    monitoring.register_event_duration_secs_listener(_on_duration)

    @pytest.fixture(autouse=True)
    def _count_compiles(request):
        _current.append(request.node.nodeid)
        yield
        _current.pop()

    def pytest_terminal_summary(terminalreporter):
        rows = sorted(_COMPILES.items(), key=lambda kv: -sum(kv[1]))[:25]
        terminalreporter.write_sep("=", "XLA compiles per test (count, seconds)")
        for nodeid, times in rows:
            terminalreporter.write_line(f"{len(times):5d} {sum(times):7.1f}s  {nodeid}")
