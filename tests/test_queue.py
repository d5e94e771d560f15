"""The cpu evidence queue: its plan, its estimates, and committing only finished run folders."""

from __future__ import annotations

import subprocess

from kdlib.experiments import common, queue


def test_plan_lists_every_item_with_runs_and_hours(capsys):
    assert queue.main(["--list"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and
            r[2].isdigit()]
    assert len(rows) == len(queue.PLAN)
    assert all(float(r.split("|")[-2]) > 0 for r in rows)


def test_new_lengths_train_the_next_lr_in_the_same_group():
    arms = queue.PLAN[0][1]()
    for by_epochs in arms.values():
        for cfg, axes in by_epochs.values():
            assert cfg.epochs == 300.0 and axes["lr"] == [1e-3, 3e-3, 1e-2]


def test_shared_function_matching_run_belongs_to_chapter_01():
    """02's 1k run at 1000 epochs is the run 01 also plans: one run, under 01's section."""
    fm = queue.PLAN[1][1]()["function matching"][1000.0][0]
    assert fm.section == "01_consistency"


def test_estimate_counts_replicates():
    arms = queue.PLAN[0][1]()
    runs, hours = queue.estimate_hours(arms, seeds=3)
    assert runs == 2 * (6 + 2) and hours > 0
    assert queue.estimate_hours(arms, seeds=1)[1] < hours


def test_commit_finished_commits_only_finished_untracked_runs(tmp_path):
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout
    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    done = tmp_path / "results" / "cpu" / "09_dist" / "aaaaaaaaaaaa"
    running = tmp_path / "results" / "cpu" / "09_dist" / "bbbbbbbbbbbb"
    for d in (done, running):
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
    (done / "summary.json").write_text("{}")
    assert queue.commit_finished(tmp_path, "test item") == 1
    tracked = git("ls-files").split()
    assert tracked == ["results/cpu/09_dist/aaaaaaaaaaaa/config.json",
                       "results/cpu/09_dist/aaaaaaaaaaaa/summary.json"]
    assert "test item" in git("log", "-1", "--format=%s")
    assert queue.commit_finished(tmp_path, "again") == 0
    assert common.SEEDS["cpu"] == 3
