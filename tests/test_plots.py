"""Tests of kdlib.plots on fake run records (Agg backend, no training)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from kdlib import plots  # noqa: E402
from kdlib.config import RunConfig  # noqa: E402
from kdlib.store import RunRecord, config_hash  # noqa: E402
from kdlib.sweep import SweepResult  # noqa: E402

PAPER_DIR = Path("/work/shared/paper")


def fake_run(lr: float, val: float, test: float, status: str = "done", n: int = 4) -> RunRecord:
    """A finished run whose val_acc curve climbs to `val`; test_acc ends at `test`."""
    config = RunConfig().replace(lr=lr)
    epochs = np.linspace(0.25, 1.0, n)
    history = [
        {"step": i + 1, "epoch": float(e), "train_loss": 2.0 / (i + 1) + lr,
         "val_acc": val * (i + 1) / n, "test_acc": test * (i + 1) / n}
        for i, e in enumerate(epochs)
    ]
    if status == "diverged":
        history.append({"step": n + 1, "train_loss": float("nan"), "status": "diverged"})
        summary = {"status": "diverged"}
    else:
        summary = {"status": status, "val_acc": val, "test_acc": test}
    return RunRecord(config, summary, history, {}, status, Path("/fake") / config_hash(config))


@pytest.fixture
def ax():
    fig, axes = plt.subplots()
    yield axes
    plt.close(fig)


@pytest.fixture
def runs() -> list[RunRecord]:
    """Best val is lr=3e-3 (val .80, test .70); best test is lr=1e-2 (val .75, test .78)."""
    return [
        fake_run(1e-3, 0.60, 0.58),
        fake_run(3e-3, 0.80, 0.70),
        fake_run(1e-2, 0.75, 0.78),
        fake_run(3e-2, 0.0, 0.0, status="diverged"),
    ]


def sweep_of(runs: list[RunRecord]) -> SweepResult:
    return SweepResult(points=[{"lr": r.config.lr} for r in runs], runs=runs)


def thin_and_bold(ax):
    thin = [ln for ln in ax.get_lines() if ln.get_linewidth() == plots.THIN_WIDTH]
    bold = [ln for ln in ax.get_lines() if ln.get_linewidth() == plots.BOLD_WIDTH]
    return thin, bold


# --------------------------------------------------------------------------- palette


def test_policy_colors_cover_views_policies_and_are_distinct():
    from kdlib.views import POLICIES

    assert set(plots.POLICY_COLORS) == set(POLICIES)
    colors = [plots.color_for(p) for p in POLICIES]
    assert len({mcolors.to_hex(c) for c in colors}) == len(POLICIES)
    assert all(mcolors.is_color_like(c) for c in colors)
    assert plots.color_for("mix") not in {plots.TEACHER_COLOR, *plots.OPTIMIZER_COLORS.values()}


def test_optimizer_colors_distinct_and_looked_up():
    assert set(plots.OPTIMIZER_COLORS) == {"adam", "sgd", "shampoo"}
    assert len(set(plots.OPTIMIZER_COLORS.values())) == 3
    assert plots.color_for("Shampoo ") == plots.OPTIMIZER_COLORS["shampoo"]


def test_named_arms_are_distinct():
    arms = ["teacher", "from scratch", "transfer", "in-domain", "out-of-domain"]
    assert len({plots.color_for(a) for a in arms}) == len(arms)
    assert plots.color_for("teacher") == plots.TEACHER_COLOR


@pytest.mark.parametrize("module", ["patience", "imagenet", "resolution", "shampoo", "init",
                                    "cross_family", "out_of_domain", "dist_loss"])
def test_every_chapters_arms_have_fixed_distinct_colors(module):
    """No chapter's arms fall back to hashed colors (two of them could collide)."""
    import importlib

    arms = list(importlib.import_module(f"kdlib.experiments.{module}").ARMS)
    known = {**plots.POLICY_COLORS, **plots.OPTIMIZER_COLORS, **plots.ARM_COLORS}
    assert all(a.strip().lower() in known for a in arms), arms
    colors = [plots.color_for(a) for a in arms]
    assert len(set(colors)) == len(arms), dict(zip(arms, colors, strict=True))
    assert plots.TEACHER_COLOR not in colors


def test_color_for_is_stable_across_processes():
    names = ["some arm", "pets37 x long", "R50x1@160"]
    here = [plots.color_for(n) for n in names]
    assert all(c in plots.FALLBACK_PALETTE for c in here)
    code = f"from kdlib import plots; print([plots.color_for(n) for n in {names!r}])"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""}, cwd=Path(__file__).parents[1],
        ).stdout
        assert out.strip() == repr(here)


def test_color_for_rejects_bad_names():
    for bad in ("", "  ", None, 3):
        with pytest.raises(ValueError, match="non-empty str"):
            plots.color_for(bad)


# --------------------------------------------------------------------------- curves


def test_plot_curves_thin_lines_and_bold_best(ax, runs):
    out = plots.plot_curves(ax, sweep_of(runs), label="mix")
    assert out is ax
    thin, bold = thin_and_bold(ax)
    assert len(thin) == 3  # the diverged run is skipped
    assert len(ax.get_lines()) == 4
    assert len(bold) == 1
    best = runs[1]
    np.testing.assert_allclose(bold[0].get_ydata(), [r["val_acc"] for r in best.history])
    np.testing.assert_allclose(bold[0].get_xdata(), [r["epoch"] for r in best.history])
    assert bold[0].get_gid() == f"best:{best.hash}"
    assert {ln.get_gid() for ln in thin} == {r.hash for r in runs[:3]}
    assert all(ln.get_alpha() == plots.THIN_ALPHA for ln in thin)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mix"]
    assert mcolors.to_hex(bold[0].get_color()) == plots.POLICY_COLORS["mix"]


def test_plot_curves_selects_by_validation_even_for_train_loss(ax, runs):
    plots.plot_curves(ax, runs, metric="train_loss", label="ind/ic")
    _, bold = thin_and_bold(ax)
    np.testing.assert_allclose(bold[0].get_ydata(), [r["train_loss"] for r in runs[1].history])
    assert ax.get_ylabel() == "train_loss"


def test_plot_curves_select_metric_min(ax, runs):
    for r in runs[:3]:
        r.summary["final_loss"] = r.history[-1]["train_loss"]
    plots.plot_curves(ax, runs, metric="val_acc", select_metric="final_loss", mode="min")
    _, bold = thin_and_bold(ax)
    assert bold[0].get_gid() == f"best:{runs[0].hash}"  # smallest lr, smallest loss
    assert ax.get_legend() is None  # no label, no legend


def test_plot_curves_diverged_dashed(ax, runs):
    plots.plot_curves(ax, runs, metric="train_loss", failed="dashed")
    thin, bold = thin_and_bold(ax)
    assert len(thin) == 4 and len(bold) == 1
    dashed = [ln for ln in thin if ln.get_linestyle() == "--"]
    assert [ln.get_gid() for ln in dashed] == [runs[3].hash]
    assert np.all(np.isfinite(dashed[0].get_ydata()))  # the NaN loss record is dropped


def test_plot_curves_all_diverged_draws_no_bold(ax):
    runs = [fake_run(1.0, 0, 0, status="diverged"), fake_run(2.0, 0, 0, status="diverged")]
    plots.plot_curves(ax, runs, label="mix")
    assert ax.get_lines() == []


def test_plot_curves_creates_axes_when_none(runs):
    ax = plots.plot_curves(None, runs)
    assert len(ax.get_lines()) == 4
    plt.close(ax.figure)


def test_plot_curves_bad_input(ax, runs):
    with pytest.raises(ValueError, match=r"'val_acc_typo'.*available keys.*'train_loss'"):
        plots.plot_curves(ax, runs, metric="val_acc_typo")
    with pytest.raises(ValueError, match=r"x='epochs'"):
        plots.plot_curves(ax, runs, x="epochs")
    with pytest.raises(ValueError, match="empty"):
        plots.plot_curves(ax, [])
    with pytest.raises(ValueError, match="empty"):
        plots.plot_curves(ax, SweepResult(points=[], runs=[]))
    with pytest.raises(ValueError, match="failed='hide'"):
        plots.plot_curves(ax, runs, failed="hide")
    with pytest.raises(ValueError, match="RunRecord"):
        plots.plot_curves(ax, [{"val_acc": 1.0}])
    with pytest.raises(ValueError, match="no finished run reports"):
        plots.plot_curves(ax, runs, select_metric="val_accc")


def test_teacher_line(ax):
    plots.teacher_line(ax, 0.91)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [0.91, 0.91])
    assert line.get_linestyle() == "--"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["teacher"]
    for bad in (float("nan"), None, "0.9"):
        with pytest.raises(ValueError, match="teacher value"):
            plots.teacher_line(ax, bad)


# --------------------------------------------------------------------------- arm table


def test_arm_table_reports_test_of_val_selected_run(runs):
    short = [fake_run(1e-3, 0.5, 0.55), fake_run(3e-3, 0.52, 0.40)]
    table = plots.arm_table({"mix": {300: sweep_of(runs), 30: sweep_of(short)},
                             "fix/rs": {300: [fake_run(9.0, 0, 0, status="diverged")]}})
    assert list(table.columns) == [
        "arm", "epochs", "val_acc", "test_acc", "n_runs", "n_diverged", "n_failed", "best_hash"]
    row = table[(table.arm == "mix") & (table.epochs == 300)].iloc[0]
    assert row.val_acc == 0.80
    assert row.test_acc == 0.70  # not 0.78, the best test accuracy of the sweep
    assert row.best_hash == runs[1].hash
    assert (row.n_runs, row.n_diverged, row.n_failed) == (4, 1, 0)
    row = table[(table.arm == "mix") & (table.epochs == 30)].iloc[0]
    assert (row.val_acc, row.test_acc, row.best_hash) == (0.52, 0.40, short[1].hash)
    row = table[table.arm == "fix/rs"].iloc[0]
    assert np.isnan(row.test_acc) and pd.isna(row.best_hash) and row.n_diverged == 1


def test_arm_table_bad_input(runs):
    with pytest.raises(ValueError, match="non-empty dict"):
        plots.arm_table({})
    with pytest.raises(ValueError, match=r"results\['mix'\]"):
        plots.arm_table({"mix": {}})
    with pytest.raises(ValueError, match=r"metric='top5'.*summary keys"):
        plots.arm_table({"mix": {300: sweep_of(runs)}}, metric="top5")
    with pytest.raises(ValueError, match="SweepResult or a list of RunRecord"):
        plots.arm_table({"mix": {300: 0.5}})
    other = SweepResult(points=[{}], runs=[runs[0]], select_metric="test_acc")
    with pytest.raises(ValueError, match="different metrics"):
        plots.arm_table({"mix": {300: sweep_of(runs)}, "ind/ic": {300: other}})


# --------------------------------------------------------------------------- schedule plot


def test_plot_final_vs_schedule(ax, runs):
    short = [fake_run(1e-3, 0.5, 0.55)]
    table = plots.arm_table({"mix": {300: sweep_of(runs), 30: short},
                             "fix/rs": {30: [fake_run(5.0, 0.3, 0.2)],
                                        300: [fake_run(9.0, 0, 0, status="diverged")]}})
    plots.plot_final_vs_schedule(ax, table, teacher=0.9)
    assert ax.get_xscale() == "log"
    by_label = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(by_label["mix"].get_xdata(), [30, 300])  # sorted by epochs
    np.testing.assert_allclose(by_label["mix"].get_ydata(), [0.55, 0.70])
    np.testing.assert_allclose(by_label["fix/rs"].get_ydata(), [0.2])  # NaN row left out
    assert mcolors.to_hex(by_label["mix"].get_color()) == plots.POLICY_COLORS["mix"]
    assert by_label["mix"].get_marker() == "o"
    np.testing.assert_allclose(by_label["teacher"].get_ydata(), [0.9, 0.9])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mix", "fix/rs", "teacher"]
    np.testing.assert_allclose(ax.get_xticks(), [30, 300])


def test_plot_final_bars(ax):
    table = pd.DataFrame({"arm": ["mix", "fix/rs", "ind/ic"], "test_acc": [0.7, 0.5, None]})
    plots.plot_final_bars(ax, table, teacher=0.9)
    bars = ax.patches
    assert [b.get_width() for b in bars] == [0.7, 0.5]  # the missing value is left out
    assert bars[0].get_y() > bars[1].get_y()  # first arm on top
    assert mcolors.to_hex(bars[0].get_facecolor()) == plots.POLICY_COLORS["mix"]
    ticks = dict(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True))
    assert ticks == {bars[0].get_y() + bars[0].get_height() / 2: "mix",
                     bars[1].get_y() + bars[1].get_height() / 2: "fix/rs"}
    assert [t.get_text() for t in ax.texts] == ["70.0%", "50.0%"]
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0.9, 0.9])
    with pytest.raises(ValueError, match="one row per 'arm'.*mix"):
        plots.plot_final_bars(ax, pd.concat([table, table]))
    with pytest.raises(ValueError, match="no 'test_acc' values"):
        plots.plot_final_bars(ax, table.iloc[2:])
    with pytest.raises(ValueError, match="finite"):
        plots.plot_final_bars(ax, table, teacher=float("nan"))


def test_thin_points_are_hollow_and_bars_show_spread_and_seeds(ax):
    """A point read on fewer than 3 seeds is drawn hollow (its spread unmeasured, not zero),
    said in the legend; bars get their error bars and their seed counts."""
    table = pd.DataFrame({"epochs": [10, 100], "test_acc": [0.5, 0.6], "arm": ["mix", "mix"],
                          "yerr": [0.0, 0.02], "n_seeds": [1, 3]})
    plots.plot_final_vs_schedule(ax, table)
    hollow = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"
              and len(ln.get_xdata())]
    assert len(hollow) == 1
    np.testing.assert_allclose(hollow[0].get_xdata(), [10])
    assert "hollow: < 3 seeds" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax.clear()
    bars = pd.DataFrame({"arm": ["mix", "fix/rs"], "test_acc": [0.7, 0.5],
                         "yerr": [0.01, float("nan")], "n_seeds": [3, 1]})
    plots.plot_final_bars(ax, bars)
    assert [t.get_text() for t in ax.texts] == ["70.0% (n=3)", "50.0% (n=1)"]
    assert ax.texts[0].xy == (0.71, 1)  # the label sits past the error bar
    assert len(ax.collections) == 1  # the error bars


def test_plot_final_vs_schedule_yerr_and_bad_input(ax):
    table = pd.DataFrame({"epochs": [10, 100], "acc": [0.5, 0.6], "arm": ["a", "a"],
                          "yerr": [0.01, 0.02]})
    plots.plot_final_vs_schedule(ax, table, y="acc", logx=False)
    assert ax.get_xscale() == "linear"
    assert len(ax.collections) == 1  # the error bars
    with pytest.raises(ValueError, match=r"hue='policy'.*columns"):
        plots.plot_final_vs_schedule(ax, table, y="acc", hue="policy")
    with pytest.raises(ValueError, match=r"y='test_acc'"):
        plots.plot_final_vs_schedule(ax, table)
    with pytest.raises(ValueError, match="empty"):
        plots.plot_final_vs_schedule(ax, table.iloc[:0], y="acc")
    with pytest.raises(ValueError, match="positive"):
        plots.plot_final_vs_schedule(ax, table.assign(epochs=[0, 10]), y="acc")


# --------------------------------------------------------------------------- paper tables


def test_paper_long_and_paper_vs_ours():
    paper = pd.DataFrame({"experiment": ["fm", "fixed"], "30": [73.9, 73.8],
                          "90": [78.0, np.nan]})
    long = plots.paper_long(paper, ["experiment"])
    assert list(long.columns) == ["experiment", "epochs", "test_acc"]
    assert long.epochs.tolist() == [30, 30, 90] and long.epochs.dtype.kind == "i"
    ours = pd.DataFrame({"experiment": ["fm", "fm"], "epochs": [30.0, 300.0],
                         "test_acc": [0.7, 0.8], "best_hash": ["a", "b"]})
    merged = plots.paper_vs_ours(ours, long, on=["experiment", "epochs"])
    assert set(merged.columns) == {"experiment", "epochs", "ours_test_acc", "ours_best_hash",
                                   "paper_test_acc"}
    row = merged[(merged.experiment == "fm") & (merged.epochs == 30)].iloc[0]
    assert (row.ours_test_acc, row.paper_test_acc) == (0.7, 73.9)
    assert len(merged) == 4  # outer: fm@30, fm@300 (ours only), fixed@30, fm@90
    inner = plots.paper_vs_ours(ours, long, on=["experiment", "epochs"], how="inner")
    assert len(inner) == 1
    with pytest.raises(ValueError, match=r"paper key='dataset'"):
        plots.paper_vs_ours(ours.assign(dataset="x"), long, on=["dataset"])
    with pytest.raises(ValueError, match="non-empty list"):
        plots.paper_vs_ours(ours, long, on="experiment")
    with pytest.raises(ValueError, match="cannot join"):
        plots.paper_vs_ours(ours.assign(epochs=["30", "300"]), long, on=["epochs"])


@pytest.mark.skipif(not (PAPER_DIR / "table3_imagenet_runs.csv").is_file(),
                    reason="paper CSVs not available")
def test_paper_long_on_table3():
    table3 = pd.read_csv(PAPER_DIR / "table3_imagenet_runs.csv")
    long = plots.paper_long(table3, ["experiment", "teacher", "student"])
    fm = long[long.experiment == "function matching (FunMatch)"].set_index("epochs")
    assert fm.loc[9600, "test_acc"] == pytest.approx(82.31)
    assert long.test_acc.notna().all()


def test_set_style_sets_theme():
    with matplotlib.rc_context():
        plots.set_style()
        assert matplotlib.rcParams["axes.labelsize"] == 12
        assert matplotlib.rcParams["axes.grid"]


def test_curves_by_length_one_row_per_length_and_a_column_per_metric(runs):
    by_arm = {"same/ic": {30.0: sweep_of(runs), 300.0: sweep_of(runs)},
              "fix/rs": {300.0: sweep_of(runs[:2])}}
    fig = plots.curves_by_length(by_arm, teacher=0.9)
    try:
        axes = fig.axes
        assert len(axes) == 4  # 2 lengths (rows) x 2 metrics (columns)
        assert [a.get_title() for a in axes] == ["30 epochs"] * 2 + ["300 epochs"] * 2
        assert axes[1].get_yscale() == "log" and axes[0].get_yscale() == "linear"
        # at 30 epochs one arm (one bold line), at 300 both; the teacher on accuracy panels
        assert len(thin_and_bold(axes[0])[1]) == 1 and len(thin_and_bold(axes[2])[1]) == 2
        assert any(ln.get_label() == "teacher" for ln in axes[2].get_lines())
        assert [a.get_legend() is not None for a in axes] == [False, True, False, False]
        # the one legend kept names the teacher line; the axes say what they show
        assert "teacher" in [t.get_text() for t in axes[1].get_legend().get_texts()]
        assert [a.get_ylabel() for a in axes[:2]] == ["validation accuracy",
                                                      "training loss (log scale)"]
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="at least one"):
        plots.curves_by_length({})


def test_styled_tables_render_the_same_every_time():
    frame = pd.DataFrame({"30": [0.5, 0.25]}, index=["a", "b"])
    first, second = plots.styled(frame).to_html(), plots.styled(frame.copy()).to_html()
    assert first == second and "50.00%" in first
    assert plots.styled(frame * 2).to_html() != first


def test_a_validation_panel_reads_the_teachers_validation_accuracy(runs):
    """The teacher line of a validation panel is the teacher's validation accuracy the runs
    recorded (its test accuracy there made students read as beating it)."""
    for r in runs[:3]:
        r.summary["val_teacher_acc"] = 0.881
    assert plots.teacher_acc_of([sweep_of(runs), runs[:1]]) == 0.881
    with pytest.raises(ValueError, match="no finished run.*'test_teacher_acc'"):
        plots.teacher_acc_of([runs], split="test")
    runs[0].summary["val_teacher_acc"] = 0.86
    with pytest.raises(ValueError, match="2 different 'val_teacher_acc'.*different teachers"):
        plots.teacher_acc_of([runs])


def test_schedule_points_at_a_grid_edge_are_marked_and_the_bars_explained(ax):
    """A point selected at a grid edge gets an x (its grid may not hold the optimum), the
    error bars say they are 1 sd, the log axis says it is one, and a bar chart's axis starts
    left of every whisker."""
    table = pd.DataFrame({"epochs": [30, 100, 300], "test_acc": [0.6, 0.7, 0.8],
                          "arm": ["mix"] * 3, "yerr": [0.01, 0.0, 0.02], "n_seeds": [3, 1, 3],
                          "at_edge": ["", "lr", float("nan")]})
    plots.plot_final_vs_schedule(ax, table)
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x" and len(ln.get_xdata())]
    assert len(crosses) == 1
    np.testing.assert_allclose(crosses[0].get_xdata(), [100])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "bars: ±1 sd over seeds" in texts
    assert "x: selected at its grid's edge (may be under-tuned)" in texts
    assert ax.get_xlabel() == "epochs (log scale)"
    plots.plot_final_vs_schedule(ax, table.assign(arm="fix/rs"), linestyle="--", teacher=0.83)
    assert ax.get_ylim()[1] > 0.83 + 0.005  # the teacher line clears the frame
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts.count("bars: ±1 sd over seeds") == 1 and "fix/rs" in texts
    ax.clear()
    bars = pd.DataFrame({"arm": ["mix", "fix/rs"], "test_acc": [0.79, 0.66],
                         "yerr": [0.01, 0.03]})
    plots.plot_final_bars(ax, bars)
    assert ax.get_xlim()[0] < 0.63  # fix/rs's lower whisker is inside the axes


def test_a_long_legend_goes_beside_the_axes(ax):
    """More than LEGEND_INSIDE_MAX entries (chapter 01's eight policies) would cover the
    data: the legend sits right of the axes; a short one stays inside."""
    arms = list(plots.POLICY_COLORS)[:8]
    table = pd.DataFrame({"epochs": [30, 300] * len(arms), "test_acc": [0.6, 0.8] * len(arms),
                          "arm": [a for a in arms for _ in range(2)]})
    plots.plot_final_vs_schedule(ax, table)
    anchor = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    assert anchor.x0 > 1.0
    ax.clear()
    plots.plot_final_vs_schedule(ax, table[table["arm"] == arms[0]])
    assert ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted()).x0 < 1.0
