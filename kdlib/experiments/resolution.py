"""Chapter 04 (paper section 3.3, Table 1): teacher and student at different resolutions.

Consistency survives a change of resolution: one crop box is cut from the image and resized
twice, once for the student (``student_size``) and once for the teacher (``teacher_size``;
``kdlib.views.make_views``). Three function-matching arms on chapter 01's 1,000-image regime,
each at chapter 01's schedule lengths, with the same lr sweep:

- ``same resolution``: teacher and student at 28 px (the paper's T224 -> S224). These are
  chapter 01's ``mix`` runs (same configs, stored under its section): they train once.
- ``low-res student``: the student at 20 px (28 * 160 / 224), the teacher still at 28 px
  (T224 -> S160): a cheaper student.
- ``high-res teacher``: the student at 28 px, the teacher fine-tuned at 48 px
  (28 * 384 / 224; T384 -> S224), ``teachers.high_res_teacher_configs``.

Cost is reported per arm: the student's forward FLOPs (``kdlib.profiling.forward_flops``) and
the measured training img/s of the selected run (its summary). The 48 px teacher is trained
on demand by this chapter (:func:`ensure_high_res_teacher`), not by chapter 00. The chapter's
measured cpu budget is in ``benchmarks/README.md`` (chapter budgets).
"""

from __future__ import annotations

from kdlib import presets
from kdlib.experiments import common
from kdlib.experiments import teachers as teacher_chapter

SECTION = "04_resolution"

ARMS = ("same resolution", "low-res student", "high-res teacher")
# Table 1's rows for our arms (book/paper_tables/table1_resolution.csv, column "experiment").
PAPER_ROWS = {"same resolution": "T224 -> S224", "low-res student": "T224 -> S160",
              "high-res teacher": "T384 -> S224"}
LOW_RES = common.LOW_RES  # 28 * 160 / 224
PAPER_EPOCHS = (300.0, 1200.0, 4800.0, 9600.0)
PAPER_HIGH_RES_TEACHER = common.PAPER_HIGH_RES_TEACHER
high_res_teacher = common.high_res_teacher
resolutions = common.resolutions


def ensure_high_res_teacher(preset: str) -> str:
    """The high-resolution teacher's name; trains it (and the teacher it starts from) if missing."""
    common.ensure_teacher(preset)
    return common.ensure_stored(teacher_chapter.high_res_teacher_configs(preset))[0]


def epochs(preset: str) -> tuple[float, ...]:
    """Schedule lengths of every arm."""
    if presets.check(preset) == "paper":
        return PAPER_EPOCHS
    return common.small_data_regime(preset)[1]


def arms(preset: str) -> common.Arms:
    """``{arm: {epochs: (base config, sweep axes)}}`` (see :data:`ARMS`)."""
    preset = presets.check(preset)
    axes = common.imagenet_axes(preset)
    res = resolutions(preset)
    out: common.Arms = {arm: {} for arm in ARMS}
    for ep in epochs(preset):
        same = common.chapter_reference(preset, SECTION, ep)  # chapter 03's / 01's when shared
        high_teacher = PAPER_HIGH_RES_TEACHER if preset == "paper" else high_res_teacher(preset)
        new = same.replace(section=SECTION)
        t_low, s_low = res["low-res student"]
        t_high, s_high = res["high-res teacher"]
        out["same resolution"][ep] = (same, axes)
        out["low-res student"][ep] = (new.replace(student_size=s_low, teacher_size=t_low), axes)
        out["high-res teacher"][ep] = (new.replace(teachers=(high_teacher,), student_size=s_high,
                                                   teacher_size=t_high), axes)
    return out


def experiments(preset: str, planned: bool = False) -> list[common.Arms]:
    """The chapter's one experiment (:mod:`kdlib.experiments.chapters`; nothing is planned
    beyond its lengths)."""
    return [arms(preset)]
