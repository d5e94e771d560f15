"""The code and the notebooks stay ruff-clean (the rules in pyproject.toml): checked by the
suite, so CI fails on a lint error as it does on a failing test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    """The ruff of this environment (the test extra installs it), else skip."""
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return [str(exe)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed (pip install -e '.[test]')")


def test_kdlib_tests_benchmarks_and_notebooks_are_ruff_clean():
    done = subprocess.run([*_ruff(), "check", "--no-cache", "kdlib", "tests", "benchmarks",
                           "notebooks"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
