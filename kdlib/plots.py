"""Plotting layer of the book: stored runs and sweeps -> the paper's figures and tables.

Pure functions over matplotlib axes and pandas tables; the only global state is what
:func:`set_style` sets on purpose, once per notebook. One palette for all chapters: a policy,
optimizer or arm name has the same color in every figure (:func:`color_for`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kdlib.store import RunRecord
from kdlib.sweep import SweepResult, best_by_validation

# --------------------------------------------------------------------------- palette

# Fixed teachers: blue-greys; independent views: oranges; consistent views: greens;
# function matching (mix): a strong purple. Keys are kdlib.views.POLICIES.
POLICY_COLORS: dict[str, str] = {
    "fix/rs": "#b0bec5",
    "fix/cc": "#78909c",
    "fix/ic_ens": "#37474f",
    "ind/rc": "#fdae6b",
    "ind/ic": "#e6550d",
    "same/rc": "#74c476",
    "same/ic": "#1b7837",
    "mix": "#7b1fa2",
}

OPTIMIZER_COLORS: dict[str, str] = {
    "adam": "#1f77b4",
    "sgd": "#8c564b",
    "shampoo": "#e377c2",
}

TEACHER_COLOR = "#d62728"  # the paper draws the teacher as a red line (Figure 4)

# Arms that recur across chapters get fixed colors, so that no hash collision can merge them.
ARM_COLORS: dict[str, str] = {
    "teacher": TEACHER_COLOR,
    "from scratch": "#7f7f7f",
    "from labels": "#7f7f7f",
    "transfer": "#17becf",
    "in-domain": "#2ca02c",
    "out-of-domain": "#bcbd22",
    "fashion_mnist": "#1f77b4",
    "digits": "#ff7f0e",
    "oxford_flowers102": "#e7298a",
    "oxford_iiit_pet": "#66a61e",
    "food101": "#e6ab02",
    "sun397": "#a6761d",
    "imagenet2012": "#666666",
    # chapters 02-03: distillation arms take their view policy's color, label arms their
    # optimizer's (light: with mixup)
    "function matching": POLICY_COLORS["mix"],
    "fixed teacher": POLICY_COLORS["fix/rs"],
    "consistent teaching": POLICY_COLORS["same/ic"],
    "labels: adam": OPTIMIZER_COLORS["adam"],
    "labels: adam + mixup": "#aec7e8",
    "labels: sgd": OPTIMIZER_COLORS["sgd"],
    "labels: sgd + mixup": "#c49c94",
    "noise": "#525252",
    # chapters 04-09: the reference arm (plain function matching) keeps the mix purple
    "same resolution": "#7b1fa2",
    "low-res student": "#ff7f0e",
    "high-res teacher": "#2ca02c",
    "random init": "#7b1fa2",
    "pretrained init": "#17becf",
    "bit student": "#7b1fa2",
    "bit student, 2 teachers": "#e7298a",
    "mobilenetv3-l (gn)": "#1f77b4",
    "mobilenetv3-l (bn)": "#9ecae1",
    "mobilenetv3-l (bn, momentum 0.99)": "#8c564b",
    "mobilenetv3-s (gn)": "#e6ab02",
    "related": "#98df8a",
    "unrelated": "#bcbd22",
    "kl, strong teacher": "#1f77b4",
    "dist, strong teacher": "#d95f02",
    "kl, weak teacher": "#9ecae1",
    "dist, weak teacher": "#fdae6b",
}

# Qualitative palette (tab10 then Dark2) for any other name, picked by a stable hash.
FALLBACK_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#1b9e77", "#d95f02", "#7570b3", "#e7298a",
    "#66a61e", "#e6ab02", "#a6761d", "#666666",
)

THIN_WIDTH = 0.8
THIN_ALPHA = 0.3
BOLD_WIDTH = 2.2

_NON_DONE = ("skip", "dashed")


def set_style() -> None:
    """Seaborn whitegrid theme with readable font sizes; call once at the top of a notebook."""
    import seaborn as sns

    sns.set_theme(
        style="whitegrid",
        context="notebook",
        font_scale=1.1,
        rc={
            "figure.dpi": 110,
            "axes.titlesize": 13,
            "axes.labelsize": 12,
            "legend.fontsize": 10,
            "lines.linewidth": 1.5,
            "figure.figsize": (6.4, 4.0),
        },
    )


def _stable_index(name: str, size: int) -> int:
    """Index in [0, size) from a sha256 of `name`: equal in every process (unlike hash())."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") % size


def color_for(name: str) -> str:
    """The color of a policy, optimizer or arm name, identical in every chapter and process.

    Known names (POLICY_COLORS, OPTIMIZER_COLORS, ARM_COLORS; case and surrounding spaces are
    ignored) get their fixed color; any other name a color of FALLBACK_PALETTE by a sha256 of it.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"color_for needs a non-empty str name, got {name!r}")
    key = name.strip().lower()
    for table in (POLICY_COLORS, OPTIMIZER_COLORS, ARM_COLORS):
        if key in table:
            return table[key]
    return FALLBACK_PALETTE[_stable_index(key, len(FALLBACK_PALETTE))]


# --------------------------------------------------------------------------- helpers


def _axes(ax: Any) -> Any:
    """`ax` itself, or the axes of a new figure when `ax` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    return ax


# A legend with more entries than this goes beside the axes, not over the data.
LEGEND_INSIDE_MAX = 6


def legend(ax: Any) -> None:
    """(Re)draw the legend of `ax` when it has labelled artists (no warning otherwise); a long
    one (more than LEGEND_INSIDE_MAX entries) beside the axes, where it covers no data."""
    handles = ax.get_legend_handles_labels()[0]
    if len(handles) > LEGEND_INSIDE_MAX:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    elif handles:
        ax.legend()


def _runs_of(sweep_runs: SweepResult | Sequence[RunRecord]) -> list[RunRecord]:
    """The run records of a SweepResult or of a sequence of records, checked non-empty."""
    runs = sweep_runs.runs if isinstance(sweep_runs, SweepResult) else sweep_runs
    if isinstance(runs, (str, bytes, Mapping)) or not isinstance(runs, Sequence):
        raise ValueError(
            f"expected a SweepResult or a list of RunRecord, got {type(sweep_runs).__name__}"
        )
    runs = list(runs)
    if not runs:
        raise ValueError("no runs to plot: the sweep / run list is empty")
    for run in runs:
        if not isinstance(run, RunRecord):
            raise ValueError(f"expected RunRecord items, got {type(run).__name__}")
    return runs


def _finite(value: Any) -> bool:
    """Whether `value` is a real finite number (bools excluded)."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_history_keys(runs: Sequence[RunRecord], keys: dict[str, str]) -> None:
    """ValueError when a key is in no history record of any run; names the available keys."""
    available = {k for run in runs for record in run.history for k in record}
    for role, key in keys.items():
        if key not in available:
            raise ValueError(
                f"{role}={key!r} is in no history record of these runs; "
                f"available keys: {sorted(available)}"
            )


def curve(run: RunRecord, metric: str, x: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
    """(x, metric) arrays of a run's history, keeping records where both are finite numbers."""
    points = [
        (record[x], record[metric])
        for record in run.history
        if _finite(record.get(x)) and _finite(record.get(metric))
    ]
    if not points:
        return np.zeros(0), np.zeros(0)
    xs, ys = zip(*points, strict=True)
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


# --------------------------------------------------------------------------- curves


def plot_curves(
    ax: Any,
    sweep_runs: SweepResult | Sequence[RunRecord],
    metric: str = "val_acc",
    x: str = "epoch",
    label: str | None = None,
    color: str | None = None,
    select_metric: str = "val_acc",
    *,
    mode: str | None = None,
    failed: str = "skip",
) -> Any:
    """Every run of one arm as a thin faint line, the best-by-validation run as a bold one.

    As in the paper's Figure 3: the bold line (carrying `label` in the legend) is the run with
    the best summary[select_metric] (mode: that of the SweepResult, else "max"). Runs whose
    status is not "done" (diverged, failed, running) are skipped, or with failed="dashed" drawn
    thin and dashed. Thin lines have gid=run hash, the bold one gid="best:<hash>".
    Returns the axes (a new figure's when ax is None).
    """
    if failed not in _NON_DONE:
        raise ValueError(f"failed={failed!r}; allowed: {_NON_DONE}")
    runs = _runs_of(sweep_runs)
    if mode is None:
        mode = sweep_runs.mode if isinstance(sweep_runs, SweepResult) else "max"
    _check_history_keys(runs, {"metric": metric, "x": x})
    best = best_by_validation(runs, select_metric, mode)
    if color is None:
        color = color_for(label) if label else "#333333"
    ax = _axes(ax)
    for run in runs:
        if run.status != "done" and failed == "skip":
            continue
        xs, ys = curve(run, metric, x)
        if not len(xs):
            continue
        ax.plot(
            xs, ys, color=color, linewidth=THIN_WIDTH, alpha=THIN_ALPHA,
            linestyle="-" if run.status == "done" else "--", label="_nolegend_", gid=run.hash,
        )
    if best is not None:
        xs, ys = curve(best, metric, x)
        ax.plot(
            xs, ys, color=color, linewidth=BOLD_WIDTH, alpha=1.0,
            label=label if label else "_nolegend_", gid=f"best:{best.hash}",
        )
    if not ax.get_xlabel():
        ax.set_xlabel(x)
    if not ax.get_ylabel():
        ax.set_ylabel(metric)
    legend(ax)
    return ax


def teacher_line(ax: Any, value: float, label: str = "teacher", linestyle: str = "--") -> Any:
    """A horizontal line (dashed; another `linestyle` for a second teacher) at the teacher's
    `value`, with `label` in the legend."""
    if not _finite(value):
        raise ValueError(f"teacher value must be a finite number, got {value!r}")
    ax = _axes(ax)
    ax.axhline(
        float(value), color=TEACHER_COLOR, linestyle=linestyle, linewidth=1.5, label=label,
        zorder=1,
    )
    legend(ax)
    return ax


def teacher_acc_of(sweeps: Iterable[SweepResult | Sequence[RunRecord]],
                   split: str = "val") -> float:
    """The teacher's accuracy on ``split`` as the runs of ``sweeps`` recorded it
    (``<split>_teacher_acc``), for the teacher line of a panel on that split: a student's
    validation curve drawn against the teacher's *test* accuracy reads as beating the
    teacher where it only matches it. ValueError when no finished run recorded it, or the
    runs disagree (different teachers: draw one line per teacher)."""
    key = f"{split}_teacher_acc"
    found = {round(float(r.summary[key]), 9) for sweep in sweeps for r in _runs_of(sweep)
             if r.status == "done" and _finite(r.summary.get(key))}
    if not found:
        raise ValueError(f"no finished run of these sweeps recorded {key!r}")
    if len(found) > 1:
        raise ValueError(f"the runs recorded {len(found)} different {key!r} values "
                         f"{sorted(found)}: they have different teachers; draw one line each")
    return found.pop()


# --------------------------------------------------------------------------- schedule plots


def _check_columns(table: pd.DataFrame, columns: dict[str, str]) -> None:
    """ValueError naming the role and column when a column is missing from `table`."""
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    for role, column in columns.items():
        if column not in table.columns:
            raise ValueError(
                f"{role}={column!r} is not a column of the table; columns: {list(table.columns)}"
            )


# Points read on fewer seeds are drawn hollow (the evidence standard: >= 3 seeds per point).
THIN_SEEDS = 3


def plot_final_vs_schedule(
    ax: Any,
    table: pd.DataFrame,
    x: str = "epochs",
    y: str = "test_acc",
    hue: str = "arm",
    logx: bool = True,
    teacher: float | None = None,
    *,
    linestyle: str = "-",
    marker: str = "o",
) -> Any:
    """Final accuracy per arm (hue) against schedule length (x): markers + lines, log-x.

    As in the paper's Figures 4 and 9-12. `table` is long format (e.g. :func:`arm_table`);
    a `yerr` column, if present, gives error bars (the seeds' sd in the chapters' tables), and
    an `n_seeds` column draws the points read on fewer than :data:`THIN_SEEDS` seeds hollow
    (their spread is unmeasured, not zero), an `at_edge` column marks with an x the points
    selected at a grid edge (their grid may not hold the optimum), each with a legend entry
    saying so, as the error bars get one (±1 sd over seeds). Rows with a missing
    y are left out; arms keep their first-appearance order and their :func:`color_for` color.
    `teacher` adds a dashed teacher line. x ticks are the schedule lengths present. Returns
    the axes.
    """
    _check_columns(table, {"x": x, "y": y, "hue": hue})
    if table.empty:
        raise ValueError("table is empty: nothing to plot")
    rows = table[table[y].notna()]
    if logx and (pd.to_numeric(rows[x], errors="coerce") <= 0).any():
        bad = rows.loc[pd.to_numeric(rows[x], errors="coerce") <= 0, x].tolist()
        raise ValueError(f"logx=True needs positive {x!r} values, got {bad}")
    ax = _axes(ax)
    drew_thin = drew_edge = drew_bars = False
    for arm in pd.unique(table[hue]):
        part = rows[rows[hue] == arm].sort_values(x)
        if part.empty:
            continue
        xs, ys = part[x].to_numpy(dtype=float), part[y].to_numpy(dtype=float)
        style = dict(color=color_for(str(arm)), linestyle=linestyle, marker=marker)
        if "yerr" in part.columns:
            yerr = part["yerr"].to_numpy(dtype=float)
            ax.errorbar(xs, ys, yerr=yerr, capsize=3, label=str(arm), **style)
            drew_bars = drew_bars or bool((np.nan_to_num(yerr) > 0).any())
        else:
            ax.plot(xs, ys, label=str(arm), **style)
        if "n_seeds" in part.columns:
            thin = part["n_seeds"].fillna(0).to_numpy(dtype=float) < THIN_SEEDS
            if thin.any():
                ax.plot(xs[thin], ys[thin], linestyle="none", marker=marker,
                        markerfacecolor="white", markeredgecolor=style["color"], zorder=3)
                drew_thin = True
        if "at_edge" in part.columns:  # selected at a grid edge: its grid may not hold the optimum
            edge = part["at_edge"].map(lambda e: isinstance(e, str) and bool(e)).to_numpy()
            if edge.any():
                ax.plot(xs[edge], ys[edge], linestyle="none", marker="x", color="0.15",
                        markersize=8, zorder=4)
                drew_edge = True
    said = set(ax.get_legend_handles_labels()[1])  # a second call on these axes adds none twice
    for drew, label, style in (
            (drew_bars, "bars: ±1 sd over seeds", {}),
            (drew_thin, f"hollow: < {THIN_SEEDS} seeds",
             dict(marker=marker, color="0.3", markerfacecolor="white")),
            (drew_edge, "x: selected at its grid's edge (may be under-tuned)",
             dict(marker="x", color="0.15"))):
        if drew and label not in said:
            ax.plot([], [], linestyle="none", label=label, **style)
    if teacher is not None:
        teacher_line(ax, teacher)
        low, high = ax.get_ylim()  # room above the line, so it does not sit on the frame
        if high < teacher + 0.03 * (high - low):
            ax.set_ylim(low, teacher + 0.03 * (high - low))
    if logx:
        ax.set_xscale("log")
    ticks = sorted(pd.unique(rows[x].astype(float)))
    if ticks:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    if not ax.get_xlabel():
        ax.set_xlabel(f"{x} (log scale)" if logx else x)
    if not ax.get_ylabel():
        ax.set_ylabel(y)
    legend(ax)
    return ax


def plot_final_bars(
    ax: Any,
    table: pd.DataFrame,
    y: str = "test_acc",
    hue: str = "arm",
    teacher: float | None = None,
) -> Any:
    """Final accuracy per arm as horizontal bars, for a comparison at one schedule length.

    `table` is long format with one row per arm (e.g. :func:`arm_table` of one length); arms
    keep their order and :func:`color_for` color; each bar is labelled with its value (and
    its number of seeds where an `n_seeds` column has it); a `yerr` column gives error bars.
    `teacher` adds a dashed teacher line. Returns the axes.
    """
    _check_columns(table, {"y": y, "hue": hue})
    rows = table[table[y].notna()]
    if rows.empty:
        raise ValueError(f"table has no {y!r} values: nothing to plot")
    if rows[hue].duplicated().any():
        dup = sorted(map(str, rows.loc[rows[hue].duplicated(), hue].unique()))
        raise ValueError(f"one row per {hue!r} is needed (one schedule length); repeated: {dup}")
    ax = _axes(ax)
    names = [str(a) for a in rows[hue]]
    values = rows[y].to_numpy(dtype=float)
    positions = np.arange(len(names))[::-1]  # first arm on top
    xerr = (np.nan_to_num(rows["yerr"].to_numpy(dtype=float)) if "yerr" in rows.columns
            else None)
    ax.barh(positions, values, xerr=xerr, capsize=3 if xerr is not None else 0,
            color=[color_for(n) for n in names])
    ax.set_yticks(positions, names)
    seeds = rows["n_seeds"].tolist() if "n_seeds" in rows.columns else [None] * len(values)
    for pos, value, err, n in zip(positions, values, xerr if xerr is not None else
                                  [0.0] * len(values), seeds, strict=True):
        text = f"{value:.1%}" if value <= 1 else f"{value:.3g}"
        text += f" (n={n:g})" if n is not None and np.isfinite(n) else ""
        ax.annotate(text, (value + err, pos),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=9)
    if teacher is not None:
        if not _finite(teacher):
            raise ValueError(f"teacher value must be a finite number, got {teacher!r}")
        ax.axvline(float(teacher), color=TEACHER_COLOR, linestyle="--", linewidth=1.5,
                   label="teacher")
        legend(ax)
    ends = values - (xerr if xerr is not None else 0.0)  # each bar's lower whisker shows
    low = min(ends.min(), teacher if teacher is not None else ends.min())
    ax.set_xlim(max(0.0, low - 0.1 * (values.max() - low + 0.01)), None)
    if not ax.get_xlabel():
        ax.set_xlabel(y)
    return ax


# --------------------------------------------------------------------------- tables


def _as_sweep(value: Any, where: str) -> SweepResult:
    """A SweepResult, or a list of RunRecord wrapped in one (val_acc, max)."""
    if isinstance(value, SweepResult):
        return value
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and all(
        isinstance(r, RunRecord) for r in value
    ):
        return SweepResult(points=[{} for _ in value], runs=list(value))
    raise ValueError(
        f"results{where} must be a SweepResult or a list of RunRecord, got {type(value).__name__}"
    )


def arm_table(
    results: Mapping[str, Mapping[float, SweepResult]], metric: str = "test_acc"
) -> pd.DataFrame:
    """Long table, one row per (arm, epochs): the validation-selected run and its `metric`.

    Columns: arm, epochs, the select metric of the sweeps (best value, e.g. val_acc), `metric`
    of that same run (NaN when no run finished without diverging), n_runs, n_diverged,
    n_failed (failed or unfinished), best_hash. Feeds :func:`plot_final_vs_schedule`.
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError(
            "results must be a non-empty dict {arm: {epochs: SweepResult}}, "
            f"got {results!r:.80}"
        )
    rows, select_metrics = [], set()
    for arm, by_epochs in results.items():
        if not isinstance(by_epochs, Mapping) or not by_epochs:
            raise ValueError(
                f"results[{arm!r}] must be a non-empty dict {{epochs: SweepResult}}, "
                f"got {type(by_epochs).__name__}"
            )
        for epochs, value in by_epochs.items():
            sweep = _as_sweep(value, f"[{arm!r}][{epochs!r}]")
            if not sweep.runs:
                raise ValueError(f"results[{arm!r}][{epochs!r}] has no runs")
            select_metrics.add(sweep.select_metric)
            best = sweep.best
            row: dict[str, Any] = {"arm": arm, "epochs": epochs}
            if best is None:
                row[sweep.select_metric], row[metric], row["best_hash"] = np.nan, np.nan, None
            else:
                if metric not in best.summary:
                    raise ValueError(
                        f"metric={metric!r} is not in the summary of the selected run "
                        f"{best.hash} (results[{arm!r}][{epochs!r}]); "
                        f"summary keys: {sorted(best.summary)}"
                    )
                row[sweep.select_metric] = best.summary[sweep.select_metric]
                row[metric] = best.summary[metric]
                row["best_hash"] = best.hash
            row["n_runs"] = len(sweep.runs)
            row["n_diverged"] = sum(r.status == "diverged" for r in sweep.runs)
            row["n_failed"] = sum(r.status in ("failed", "running") for r in sweep.runs)
            rows.append(row)
    if len(select_metrics) > 1:
        raise ValueError(
            f"the sweeps select by different metrics {sorted(select_metrics)}; "
            "build one table per select metric"
        )
    (select,) = select_metrics
    columns = ["arm", "epochs", select, metric, "n_runs", "n_diverged", "n_failed", "best_hash"]
    if select == metric:
        columns.remove(metric)
    return pd.DataFrame(rows, columns=columns)


def paper_long(
    paper: pd.DataFrame,
    id_cols: Sequence[str],
    var_name: str = "epochs",
    value_name: str = "test_acc",
) -> pd.DataFrame:
    """A wide paper table (one column per schedule, e.g. table3's "30", "90", ...) in long form.

    Numeric column names become numbers in `var_name`; empty cells are dropped.
    """
    id_cols = list(id_cols)
    _check_columns(paper, {f"id_cols[{i}]": c for i, c in enumerate(id_cols)})
    long = paper.melt(id_vars=id_cols, var_name=var_name, value_name=value_name)
    long = long[long[value_name].notna()].reset_index(drop=True)
    as_number = pd.to_numeric(long[var_name], errors="coerce")
    if as_number.notna().all():
        whole = (as_number % 1 == 0).all()
        long[var_name] = as_number.astype(int) if whole else as_number
    return long


def paper_vs_ours(
    ours: pd.DataFrame, paper: pd.DataFrame, on: list[str], how: str = "outer"
) -> pd.DataFrame:
    """Our table beside the paper's, joined on `on`: other columns become ours_* / paper_*.

    Values are compared as given: the paper's CSVs hold accuracies in %, kdlib's in [0, 1].
    """
    if isinstance(on, str) or not on:
        raise ValueError(f"on must be a non-empty list of column names, got {on!r}")
    allowed = ("outer", "inner", "left", "right")
    if how not in allowed:
        raise ValueError(f"how={how!r}; allowed: {allowed}")
    for name, table in (("ours", ours), ("paper", paper)):
        _check_columns(table, {f"{name} key": key for key in on})
    left = ours.rename(columns={c: f"ours_{c}" for c in ours.columns if c not in on})
    right = paper.rename(columns={c: f"paper_{c}" for c in paper.columns if c not in on})
    try:
        return left.merge(right, on=list(on), how=how)
    except ValueError as err:  # incompatible key dtypes (e.g. str vs int epochs)
        raise ValueError(
            f"cannot join on {list(on)}: {err}; key dtypes ours "
            f"{dict(ours[on].dtypes.astype(str))}, paper {dict(paper[on].dtypes.astype(str))}"
        ) from err


# --------------------------------------------------------------------------- curves per length


# Axis labels of the metrics runs log.
METRIC_LABELS = {"val_acc": "validation accuracy", "test_acc": "test accuracy",
                 "train_loss": "training loss (log scale)"}


def curves_by_length(
    by_arm: Mapping[str, Mapping[float, Any]],
    metrics: Sequence[str] = ("val_acc", "train_loss"),
    teacher: float | None = None,
    colors: Mapping[str, str] | None = None,
    panel_size: tuple[float, float] = (5.5, 3.8),
    teacher_label: str = "teacher",
) -> Any:
    """The paper's Figures 9-12 shape: one row per schedule length, one column per metric
    (two panels to a row, so they read at the page's width), every arm's sweep (thin) and its
    validation-selected run (bold) in each panel.

    ``by_arm`` is ``{arm: {epochs: sweep}}`` (what ``common.run_arms`` returns); the teacher's
    accuracy is drawn on accuracy panels; loss panels use a log axis. Returns the figure.
    """
    import matplotlib.pyplot as plt

    lengths = sorted({ep for sweeps in by_arm.values() for ep in sweeps})
    if not lengths:
        raise ValueError("curves_by_length needs at least one arm with one schedule length")
    fig, axes = plt.subplots(len(lengths), len(metrics), squeeze=False,
                             figsize=(panel_size[0] * len(metrics), panel_size[1] * len(lengths)))
    for row, ep in enumerate(lengths):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            for arm, sweeps in by_arm.items():
                if ep in sweeps:
                    color = (colors or {}).get(arm)
                    plot_curves(ax, sweeps[ep], metric, label=arm, color=color)
            if metric.endswith("acc") and teacher is not None:
                teacher_line(ax, teacher, label=teacher_label)
            if "loss" in metric:
                ax.set_yscale("log")
            ax.set(title=f"{ep:g} epochs", ylabel=METRIC_LABELS.get(metric, metric))
            if ax.get_legend() is not None and (row, col) != (0, len(metrics) - 1):
                ax.get_legend().remove()
    if teacher is not None and not metrics[-1].endswith("acc"):
        # the one legend kept (the top right panel's) names the teacher line too
        ax = axes[0][len(metrics) - 1]
        ax.plot([], [], color=TEACHER_COLOR, linestyle="--", label=teacher_label)
        legend(ax)
    fig.tight_layout()
    return fig


def styled(frame: pd.DataFrame, fmt: str = "{:.2%}") -> Any:
    """``frame.style.format(fmt)`` with a fixed table id: pandas gives every Styler a random
    id (``T_a1b2c``), so the same table would render differently on every rebuild."""
    uid = hashlib.sha256(frame.to_csv().encode("utf-8")).hexdigest()[:10]
    return frame.style.format(fmt).set_uuid(uid)
