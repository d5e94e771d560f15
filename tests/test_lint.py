"""The code and the notebooks stay ruff-clean and kdlib's type hints hold under mypy (the rules
in pyproject.toml): checked by the suite, so CI fails on a lint or type error as it does on a
failing test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> list[str]:
    """The ``name`` executable of this environment (the test extra installs it), else skip."""
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return [str(exe)]
    if shutil.which(name):
        return [name]
    pytest.skip(f"{name} is not installed (pip install -e '.[test]')")


def test_kdlib_tests_benchmarks_and_notebooks_are_ruff_clean():
    done = subprocess.run([*_tool("ruff"), "check", "--no-cache", "kdlib", "tests", "benchmarks",
                           "notebooks"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kdlib_type_checks_with_mypy():
    """Every annotation in kdlib agrees with its uses (``[tool.mypy]``: kdlib, default
    strictness); a wrong hint, or a None reaching code that assumes a value, fails here."""
    done = subprocess.run([*_tool("mypy"), "--no-incremental"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
