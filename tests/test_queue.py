"""The cpu evidence queue: its plan, its estimates, and committing only finished run folders."""

from __future__ import annotations

import subprocess

import pytest

from kdlib.experiments import (
    common,
    consistency,
    cross_family,
    out_of_domain,
    patience,
    queue,
    shampoo,
)


def test_plan_lists_every_item_with_runs_and_hours(capsys):
    assert queue.main(["--list"]) == 0
    out = capsys.readouterr().out
    rows = [r for r in out.splitlines() if r.startswith("| ") and
            r[2].isdigit()]
    assert len(rows) == len(queue.PLAN)
    hours = [float(r.split("|")[-5]) for r in rows]
    stored = [tuple(map(int, r.split("|")[-4].split("/"))) for r in rows]
    left = [float(r.split("|")[-3]) for r in rows]
    spent = [float(r.split("|")[-2]) for r in rows]
    assert all(h > 0 for h in hours)
    # an item whose base grid is stored took time; one with nothing stored took none
    assert all(sp > 0 for sp, (done, _) in zip(spent, stored, strict=True) if done)
    assert all(sp == 0 for sp, (done, _) in zip(spent, stored, strict=True) if not done)
    assert all(0 <= done <= total for done, total in stored) and min(t for _, t in stored) > 0
    # an item none of whose base runs is stored has all its hours left
    assert all(h == lt for h, (done, _), lt in zip(hours, stored, left, strict=True) if not done)
    assert all(0 <= lt <= h for h, lt in zip(hours, left, strict=True))
    total = float(out.split(" hours left in all")[0].split()[-1])
    assert total == pytest.approx(sum(left), abs=0.05 * len(left) + 0.1)


def test_extras_items_hold_every_arm_the_chapter_shows_at_their_lengths():
    """Grids grow for every arm at a length alike, so an extras item that left an arm out
    would store grown grids and replicates the chapter never loads."""
    items = dict(queue.PLAN)
    c9 = items["05 Adam vs Shampoo at 300 epochs (extras: C9's 300-epoch check)"]()
    assert set(c9) == set(shampoo.ARMS) and all(set(by) == {300.0} for by in c9.values())
    c11 = items["07 at 100 epochs (extras: C11's GN vs BN check)"]()
    assert set(c11) == set(cross_family.arms("cpu"))
    c5 = items["02 4k images at 30 epochs (extras: C5's 4k checks)"]()
    assert set(c5) == set(patience.ARMS) and all(set(by) == {30.0} for by in c5.values())
    assert c5 == {a: {30.0: by[30.0]} for a, by in patience.arms("cpu", "4k").items()}


def test_every_planned_consistency_length_has_an_item():
    """Each regime's planned lengths (issue 14: 1k and 250 images to 1000 epochs) are queued."""
    planned = {(regime, ep) for regime, (_, lengths) in
               consistency.regimes("cpu", planned=True).items() for ep in lengths
               if ep in consistency.PLANNED["cpu"].get(regime, ())}
    queued = set()
    for _, build in queue.PLAN:
        for cfg, _ in (v for by in build().values() for v in by.values()):
            if cfg.section == consistency.SECTION and cfg.policy == "fix/cc":
                queued.add((("1k" if cfg.data.train_size == 1000 else "250"), cfg.epochs))
    assert planned and planned <= queued


def test_every_point_a_verdict_reads_is_replicated_by_an_item():
    """Issue 13: every number a verdict reads is a mean over >= 3 seeds, so each such point is
    in some item (every item replicates what it trains), with every arm its chapter shows."""
    covered = set()
    for _, build in queue.PLAN:
        arms = build()
        for by_epochs in arms.values():
            for cfg, _ in by_epochs.values():
                covered.add((cfg.section, cfg.data.train_size, cfg.epochs))
    missing = [p for p in queue.VERDICT_POINTS if p not in covered]
    assert not missing, missing
    c12 = dict(queue.PLAN)["08 at 30 and 300 epochs (extras: C12)"]()
    assert set(c12) == set(out_of_domain.ARMS)


def test_items_that_cannot_move_a_verdict_run_last_or_are_cut():
    names = [name for name, _ in queue.PLAN]
    assert names[-1].startswith("03 55k images at 16")  # cannot move C6/C7 (see PLAN)
    assert not any("tables only" in n for n in names)
    cut = {name: why for name, _, why in queue.CUT}
    assert cut and all("tables only" in n and why for n, why in cut.items())
    # nothing a verdict reads was cut: every cut length is not a verdict point
    for _, build, _ in queue.CUT:
        for by_epochs in build().values():
            for cfg, _ in by_epochs.values():
                assert (cfg.section, cfg.data.train_size, cfg.epochs) not in queue.VERDICT_POINTS
    assert "Cut for the budget" in queue.plan_summary([])


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


def test_plan_summary_totals_hours_left_and_the_finished_items_against_their_estimate():
    def row(est, stored, left, spent):
        return dict(zip(queue.PLAN_COLUMNS, (0, "x", 3, est, stored, left, spent), strict=True))

    rows = [row(2.0, "4/4", 0.0, 3.0), row(1.0, "2/2", 0.0, 1.0), row(5.0, "1/4", 4.0, 0.5),
            row(1.0, "4/4", 0.5, 0.8)]  # replicates still missing: not finished
    text = queue.plan_summary(rows)
    assert text.startswith("4.5 hours left in all")
    assert text.index("finished items") < text.index("Cut for the budget")
    assert "The 2 finished items took 4.0 h of stored wall time against 3.0 h estimated " \
           "(1.33x)" in text
    assert "finished items" not in queue.plan_summary([row(5.0, "0/4", 5.0, 0.0)])
