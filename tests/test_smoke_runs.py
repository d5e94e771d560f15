"""kdlib.smoke_runs: smoke runs are kept across `make test` runs only for the same code."""

import pytest

from kdlib import smoke_runs


def _stored(root):
    run = root / "smoke" / "01_consistency" / "abc123"
    run.mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    teacher = root / "teachers" / "smoke_fmnist_bit_t28"
    teacher.mkdir(parents=True)
    kept = root / "teachers" / "fmnist_bit_t28"  # a cpu teacher: never touched
    kept.mkdir(parents=True)
    return run, teacher, kept


def test_runs_of_unstamped_or_other_code_are_cleared_and_of_this_code_kept(tmp_path):
    run, teacher, kept = _stored(tmp_path)
    assert smoke_runs.clear_if_stale(tmp_path, code="a") is True  # no stamp: who trained them?
    assert not run.exists() and not teacher.exists() and kept.exists()
    run.mkdir(parents=True)
    teacher.mkdir(parents=True)
    assert smoke_runs.clear_if_stale(tmp_path, code="a") is False  # same code: kept
    assert run.exists() and teacher.exists()
    assert smoke_runs.clear_if_stale(tmp_path, code="b") is True  # the code changed
    assert not run.exists() and not teacher.exists() and kept.exists()
    assert (tmp_path / "smoke" / smoke_runs.STAMP).read_text() == "b\n"


def test_fingerprint_sees_a_one_byte_change_of_any_source(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    before = smoke_runs.fingerprint(pkg)
    assert smoke_runs.fingerprint(pkg) == before
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    assert smoke_runs.fingerprint(pkg) != before
    assert len(smoke_runs.fingerprint()) == 64  # this kdlib


def test_a_root_that_does_not_exist_is_refused_and_not_created(tmp_path, capsys):
    """--root with a typo would create <typo>/smoke/.trained-by: a usage error instead."""
    typo = tmp_path / "typo"
    with pytest.raises(SystemExit) as exit_info:
        smoke_runs.main(["--root", str(typo)])
    assert exit_info.value.code == 2
    assert (f"--root {typo} is not a folder: give an existing results root"
            in capsys.readouterr().err.strip().splitlines()[-1])
    assert not typo.exists()
