"""A read-only results/ works when nothing needs training: stored runs load, and rewriting a
chapter's unchanged tables and claims writes nothing (kdlib.store.write_bytes_atomic).

The machine's tests run as root, which ignores file modes, so the read-only file system is
simulated: every write, rename, delete or mkdir under the results root raises EROFS.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from kdlib import claims, store, sweep
from kdlib.config import DataConfig, RunConfig
from kdlib.experiments import common


def _read_only(monkeypatch, root: Path) -> None:
    """Makes every write under ``root`` fail with EROFS, as on a read-only mount."""
    root = root.resolve()

    def under(path) -> bool:
        try:
            return Path(os.fspath(path)).resolve().is_relative_to(root)
        except (TypeError, ValueError):
            return False

    def refuse(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    real_open, real_mkstemp = builtins.open, tempfile.mkstemp
    real_replace, real_unlink, real_rmtree = os.replace, os.unlink, shutil.rmtree
    real_mkdir = Path.mkdir

    def fake_open(file, mode="r", *args, **kwargs):
        if any(m in mode for m in "wax+") and under(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_mkstemp(*args, dir=None, **kwargs):
        if dir is not None and under(dir):
            refuse(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def fake_mkdir(self, *args, **kwargs):
        if under(self) and not self.is_dir():
            refuse(self)
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(tempfile, "mkstemp", fake_mkstemp)
    monkeypatch.setattr(os, "replace", lambda a, b: refuse(b) if under(b) else real_replace(a, b))
    monkeypatch.setattr(os, "unlink", lambda p, **k: refuse(p) if under(p) else real_unlink(p))
    monkeypatch.setattr(shutil, "rmtree",
                        lambda p, *a, **k: refuse(p) if under(p) else real_rmtree(p, *a, **k))
    monkeypatch.setattr(Path, "mkdir", fake_mkdir)
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: refuse(self)
                        if under(self) else real_unlink(self))


def _train(configs, paths):
    return [{"val_acc": 0.5, "test_acc": 0.5} for _ in configs]


def _chapter(preset: str) -> tuple[pd.DataFrame, list[claims.Claim]]:
    table = pd.DataFrame({"arm": ["fm"], "test_acc": [0.5]})
    found = [claims.Claim("C1", "A claim.", "1%", "2%", "partly", "01_x")]
    return table, found


def test_a_stored_chapter_reruns_on_a_read_only_results(tmp_path, monkeypatch):
    root = tmp_path / "results"
    monkeypatch.setenv("KDLIB_RESULTS", str(root))
    teacher = root / "teachers" / "t1"
    teacher.mkdir(parents=True)
    (teacher / "weights.npz").write_bytes(b"weights")
    base = RunConfig(section="01_x", data=DataConfig("noise"), teachers=("t1",))
    axes = {"lr": [1e-3, 3e-3]}
    first = sweep.sweep(base, axes, None, batch_train_fn=_train)
    table, found = _chapter("smoke")
    common.save_table(table, "smoke", "01_x", "1_arms")
    claims.save(found, "smoke", "01_x")

    _read_only(monkeypatch, root)
    with pytest.raises(OSError, match="Read-only"):  # the simulation bites
        store.write_json_atomic(root / "smoke" / "probe.json", {})

    again = sweep.sweep(base, axes, None, batch_train_fn=_train)
    assert [r.hash for r in again.runs] == [r.hash for r in first.runs]
    assert all(r.status == "done" for r in again.runs)
    assert store.run_or_load(base, lambda c, p: pytest.fail("retrained")).status == "done"
    common.save_table(table, "smoke", "01_x", "1_arms")  # unchanged: nothing written
    claims.save(found, "smoke", "01_x")
    changed = pd.DataFrame({"arm": ["fm"], "test_acc": [0.6]})
    with pytest.raises(OSError, match="Read-only"):  # a real change still needs a write
        common.save_table(changed, "smoke", "01_x", "1_arms")


def test_unchanged_write_keeps_the_file(tmp_path):
    path = tmp_path / "x.json"
    store.write_json_atomic(path, {"a": 1})
    before = path.stat()
    store.write_json_atomic(path, {"a": 1})
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    store.write_json_atomic(path, {"a": 2})
    assert path.stat().st_ino != before.st_ino
