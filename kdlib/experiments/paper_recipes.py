"""The paper's recipes at its own scale (the ``paper`` preset), where each number comes from,
what a chapter costs to run, and what still differs from the paper.

Every constant cites its source: the paper (Beyer et al. 2022, ``shared/paper/
beyer2022_patient_consistent.md``: section, table, listing or appendix) or, where the paper
is silent, the authors' code (big_vision ``configs/proj/distill/``). The chapters build their
paper configs from these constants; ``tests/data/paper_recipes.csv`` is an independent
transcription of the same sources that ``tests/test_paper_recipes.py`` checks every paper
config against, field by field. ``python -m kdlib.experiments.paper_recipes`` writes the
book's page "Running at the paper's scale" (``book/paper_scale.md``) from this module.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kdlib.experiments.chapters import SECTIONS

# ----------------------------------------------------------------------------- the recipes

# Section 3.1: "for each individual distillation setting we sweep over all combinations of
# learning rates {0.0003, 0.001, 0.003, 0.01}, weight decays {1e-5, 3e-5, 1e-4, 3e-4, 1e-3},
# and distillation temperatures {1, 2, 5, 10}" (the four small datasets).
SMALL_DATA_GRID = {
    "lr": [3e-4, 1e-3, 3e-3, 1e-2],
    "wd": [1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
    "temperature": [1.0, 2.0, 5.0, 10.0],
}

# The small-dataset recipe. Section 2 "Training setup": Adam, cosine schedule, decoupled weight
# decay, gradient clipping at global norm 1.0, batch 512; section 2: 128 px inputs, inception
# crop, mixup with coefficients uniform in [0, 1]. Section 3 / Table 4: BiT-M-R152x2 teacher,
# BiT ResNet-50 student. Not in the paper, from big_vision bigsweep_flowers_pet.py and
# bigsweep_food_sun.py: warmup 1500 steps, Adam's first moment in bfloat16, the input pipeline
# (kdlib.data.pipelines), and several teachers' KL terms summed (trainers/proj/distill).
SMALL_DATA: dict[str, Any] = {
    "batch_size": 512, "student_size": 128, "optimizer": "adam", "grad_clip": 1.0,
    "policy": "mix", "loss": "kl", "warmup_steps": 1500, "mu_dtype": "bfloat16",
    "pipeline": "big_vision", "teacher_ensemble": "sum_losses",
    "student": {"depth": 50, "width": 1}, "teacher": {"depth": 152, "width": 2},
}

# Section 3.1.1: fix/ic_ens, "the teacher's prediction is the average of 1k inception crops".
FIX_IC_ENS_CROPS = 1000

# Appendix F, Listing 1 ("Full config for ImageNet distillation"), field by field.
LISTING_1: dict[str, Any] = {
    "dataset": "imagenet2012", "train_split": "train[:98%]", "num_classes": 1000,
    "batch_size": 4096, "epochs": 1200.0, "student": {"depth": 50, "width": 1},
    "teacher": {"depth": 152, "width": 2}, "student_size": 224,  # inception_crop(224)
    "policy": "mix",  # mixup p=1.0 on the student's inception crop, the teacher sees the same
    "loss": "kl", "temperature": 1.0, "grad_clip": 1.0, "optimizer": "adam",
    "mu_dtype": "bfloat16", "lr": 0.03, "wd": 0.0003, "warmup_steps": 5000,
}

# Appendix D: Shampoo runs: "a linear warm-up up to 1800 steps followed by a quadratic decay
# towards zero", preconditioners of "atmost 128x128", inverse "every step", "nesterov
# momentum", "weight decay of 0.000375".
APPENDIX_D = {
    "warmup_steps": 1800, "block_size": 128, "preconditioning_compute_steps": 1,
    "nesterov": True, "wd": 0.000375,
}

# Schedule lengths (epochs) of each chapter at the paper preset, with their source.
FIGURES_9_12 = {  # Appendix C, captions of Figures 9-12 (Figure 3: flowers at 10 000)
    "oxford_flowers102": (1000.0, 10000.0, 100000.0),
    "oxford_iiit_pet": (1000.0, 3000.0, 10000.0, 30000.0),
    "food101": (100.0, 1000.0, 3000.0),
    "sun397": (100.0, 1000.0, 3000.0),
}
TABLE_4 = {  # Appendix A, Table 4 (the models of Figure 4)
    "oxford_flowers102": (1000.0, 10000.0, 100000.0, 1000000.0),
    "oxford_iiit_pet": (300.0, 1000.0, 3000.0, 10000.0, 30000.0),
    "food101": (100.0, 1000.0, 3000.0),
    "sun397": (100.0, 1000.0, 3000.0),
}
TABLE_3_EPOCHS = (30.0, 90.0, 300.0, 600.0, 1200.0, 4800.0, 9600.0)  # Table 3's columns
TABLE_1_EPOCHS = (300.0, 1200.0, 4800.0, 9600.0)  # Table 1's columns
FIGURE_5_MIDDLE_EPOCHS = (300.0, 1200.0, 4800.0)  # caption: Shampoo at 1200 vs Adam at 4800
FIGURE_5_RIGHT_EPOCHS = (30.0, 90.0, 300.0, 600.0, 1200.0, 4800.0)  # Table 3, "BiT-M-R50 init"

# Training images of each paper split (tfds catalog sizes, Table 5's splits; percent slices
# rounded as tfds does): 1020 flowers, 90% of 3680 pets, 90% of 75750 food, 76128 sun397
# (tfds config "tfds"), 98% of 1,281,167 ImageNet images.
TRAIN_IMAGES = {"oxford_flowers102": 1020, "oxford_iiit_pet": 3312, "food101": 68175,
                "sun397": 76128, "imagenet2012": 1255544}

# Measured wall times of the authors' released configs (big_vision configs/proj/distill/
# docstrings): (dataset, epochs, student px, device, hours). Each includes its evaluations.
MEASURED = (
    ("oxford_flowers102", 10000.0, 128, "TPU v2-8", 70 / 60),  # bigsweep_flowers_pet "fast"
    ("oxford_flowers102", 1000000.0, 128, "TPU v3-32", 25.0),  # "long"
    ("oxford_iiit_pet", 1000.0, 128, "TPU v2-8", 28 / 60),  # "fast"
    ("oxford_iiit_pet", 30000.0, 128, "TPU v2-8", 11.0),  # "long" (~8 h on a v3-32)
    ("food101", 100.0, 128, "TPU v2-8", 45 / 60),  # bigsweep_food_sun.py "fast"
    ("food101", 3000.0, 128, "TPU v3-8", 14.0),  # "long" (food and sun)
    ("imagenet2012", 300.0, 224, "TPU v3-32", 15.0),  # bit_i1k.py: "300ep take about 15h"
)
# The device each resolution's estimate is quoted for (the authors' runs at that resolution).
ESTIMATE_DEVICE = {128: "TPU v2-8", 224: "TPU v3-32"}


def images_per_second(device: str, size: int) -> float:
    """Training images per second of R152x2 -> R50x1 at ``size`` px on ``device``: the mean of
    the :data:`MEASURED` runs there (evaluations included)."""
    rates = [TRAIN_IMAGES[d] * ep / (h * 3600) for d, ep, px, dev, h in MEASURED
             if dev == device and px == size]
    if not rates:
        raise ValueError(f"no measured run at size={size!r} px on device={device!r}; "
                         f"measured: {sorted({(m[2], m[3]) for m in MEASURED})}")
    return sum(rates) / len(rates)


def estimate_size(student_size: int) -> int:
    """The measured resolution a run's cost is estimated at: 224 from 160 px up, else 128."""
    return 224 if student_size >= 160 else 128


# ----------------------------------------------------------------------------- per chapter

NOTEBOOKS = ("00_teachers", *SECTIONS)  # every chapter needs its paper-scale recipe here

# What still differs from the paper in every paper-preset chapter, and why.
COMMON_DIFFERENCES = (
    "Images are decoded once and kept in memory (ImageNet: decoded per batch on the host), "
    "the training split squashed to a square of at least 160 px with each image's true aspect "
    "(`kdlib.data.pipelines`): inception crops cover the whole image with true pixel aspects, "
    "as big_vision's `inception_crop(128)` of the decoded JPEG does, but a small crop is "
    "upsampled from the stored square rather than from the full-resolution JPEG. Why: one "
    "array per split keeps batches, views and teacher on device (no host pipeline per step).",
    "Inception crops sample the aspect ratio log-uniformly with continuous (sub-pixel) boxes; "
    "TF's `sample_distorted_bounding_box` samples it uniformly and rounds to pixels "
    "(`kdlib.augment`). Resizing is kdlib's antialiased bilinear, not TF's.",
    "Batches are seeded per-epoch permutations (resumable from any step) instead of a shuffle "
    "buffer of 50,000 (ImageNet 250,000) examples; a run's length is "
    "`ceil(epochs * images / batch)` steps where big_vision rounds to the nearest step.",
)

CHAPTERS: dict[str, dict[str, Any]] = {
    "00_teachers": {
        "what": "Imports the released teachers instead of training them",
        "source": "big_vision configs/proj/distill/common.py (teacher checkpoints)",
        "differences": (
            "The paper fine-tunes BiT-M-R152x2 teachers; kdlib does not retrain them at the "
            "paper's scale. Download the released `.npz` files (big_vision "
            "`configs/proj/distill/common.py`, e.g. `R152x2_T_flowers128.npz`, "
            "`R152x2_T_224.npz`, `R152x2_T_384.npz`) and import each with "
            "`kdlib.teachers.import_bit_npz(name, path, depth=152, width=2, ...)` under the "
            "name the chapters use (`bit_m_r152x2_<tfds name>`, `bit_m_r152x2_imagenet2012`, "
            "`bit_m_r152x2_imagenet2012_384`); chapter 02's transfer baseline and chapter 06 "
            "start from BiT-M-R50x1 (`bit_m_r50x1_imagenet21k`).",
        ),
    },
    "01_consistency": {
        "what": "Figures 3 and 9-12: the eight policies on the four small datasets",
        "source": "section 3.1.1; appendix C (Figures 9-12); lengths from their captions",
        "differences": (),
    },
    "02_patience": {
        "what": "Figure 4 / Table 4: function matching over Table 4's lengths, with the "
                "from-scratch and transfer baselines (mixup on and off, as Table 4's notes)",
        "source": "section 3.1.2; appendix A (Table 4)",
        "differences": (
            "The baselines train at every length of the function-matching runs, and each "
            "student length is compared with the best of them on validation; Table 4 reports "
            "only their best (10 000 epochs on flowers and pets, 1000 on food and sun). Why: "
            "the best baseline length is found, not taken from the paper.",
        ),
    },
    "03_imagenet": {
        "what": "Figure 5 (left), Figure 7 and Table 3: ImageNet at Listing 1's config",
        "source": "section 3.2; appendix F (Listing 1); Table 3",
        "differences": (
            "Distillation runs Listing 1's single point (lr 0.03, wd 0.0003, T 1) at each "
            "length, not a grid: the paper gives no ImageNet grid and Listing 1 is its config. "
            "The label baselines (Figure 7) sweep lr {0.01, 0.03} x wd {1e-4, 3e-4} (SGD: lr x "
            "10), a guess around Listing 1: the paper does not give their grid either.",
        ),
    },
    "04_resolution": {
        "what": "Table 1: T224 -> S224, T224 -> S160, T384 -> S224",
        "source": "section 3.3; Table 1",
        "differences": (
            "The 384 px teacher's arm costs more than the estimate (its forward pass is about "
            "2.9x the 224 px teacher's FLOPs); the estimate uses the 224 px rate.",
        ),
    },
    "05_shampoo": {
        "what": "Figure 5 (middle): Shampoo against Adam on ImageNet",
        "source": "section 3.4; appendix D",
        "differences": (
            "Appendix D's settings are kdlib's (warmup 1800 steps then quadratic decay, "
            "128x128 blocks, inverse roots every step, Nesterov momentum, weight decay "
            "0.000375). The cited implementation (Anil et al. 2021, google-research "
            "`scalable_shampoo`) differs from kdlib's `kdlib.optim.shampoo` where the appendix "
            "says nothing: (1) its grafting rescales the Shampoo step to the grafted step's "
            "norm per layer (whole parameter), kdlib per 128x128 block; (2) it grafts SGD or "
            "AdaGrad, kdlib Adam (so that Adam's learning rates transfer; lr 0.03 as Listing "
            "1, the paper does not give Shampoo's); (3) it merges small dimensions "
            "(3x3x128x128 -> 9x128x128, one preconditioner per axis, exponent 1/(2 x rank) or "
            "its override 4), kdlib reshapes a conv kernel to (H*W*I, O) and preconditions both "
            "sides with exponent 1/4; (4) it preconditions vectors (biases, norm scales) with "
            "a full matrix, kdlib gives them the grafted step; (5) its weight decay is added to "
            "the update before momentum and scaled by the learning rate, kdlib applies "
            "big_vision's decoupled decay (not multiplied by the learning rate, multiplied by "
            "the schedule), the convention of every other run of the paper; (6) it computes "
            "inverse roots by coupled Newton iterations (float32, keeping the old root when "
            "they fail), kdlib by an eigendecomposition; (7) heavy-ball momentum `m = beta1 m "
            "+ u` there, the moving average `m = beta1 m + (1 - beta1) u` here (same direction, "
            "Adam's scale); (8) preconditioning starts at step 1 here (its ResNet recipe: 25). "
            "Why: kdlib's Shampoo is written for this book (optax has none, and the published "
            "optax ports fail with today's JAX); per-block grafting and Adam grafting keep "
            "Adam's learning-rate grid meaningful. Which choices the paper's runs used beyond "
            "appendix D is not published.",
        ),
    },
    "06_init": {
        "what": "Figure 5 (right): random against BiT-M-R50x1 initialization",
        "source": "section 3.5; Table 3 (row 'BiT-M-R50 init')",
        "differences": (),
    },
    "07_cross_family": {
        "what": "Table 3: MobileNet v3 students and the 224 + 384 px ensemble teacher",
        "source": "section 3.6; Table 3",
        "differences": (
            "Lengths 300 and 1200 epochs only (Table 3 also has 4800 and 9600 for some rows): "
            "the chapter compares every arm at equal lengths.",
            "The ensemble sums the two teachers' KL terms (big_vision's distill trainer); the "
            "paper's text says it averages their logits (`teacher_ensemble='mean_logits'` "
            "gives that).",
        ),
    },
    "08_out_of_domain": {
        "what": "Figure 6: pets and sun397 distilled on in-domain, ImageNet and food images",
        "source": "section 3.8; Figure 6",
        "differences": (
            "Figure 6's schedule lengths are read from the figure (no table gives them).",
        ),
    },
    "09_dist": {
        "what": "Beyond the paper: DIST against KL on ImageNet, strong and weak teacher",
        "source": "Huang et al. 2022 (not in the paper)",
        "differences": (
            "Not a paper experiment: its configs are chapter 03's Listing 1 config with the "
            "section 3.1 grid, as the chapter compares both losses at equal sweep budgets.",
        ),
    },
}


def papermill_command(notebook: str) -> str:
    """The command that runs ``notebook`` at the paper preset (executed copy under _build)."""
    if notebook not in NOTEBOOKS:
        raise ValueError(f"notebook={notebook!r} is not one of {NOTEBOOKS}")
    return (f"papermill notebooks/{notebook}.ipynb _build/notebooks/paper/{notebook}.ipynb "
            "-p preset paper")


def chapter_experiments(notebook: str) -> list[Any]:
    """The paper-preset experiments (``{arm: {epochs: (config, axes)}}``) of ``notebook``."""
    from kdlib.experiments import chapters

    if notebook not in NOTEBOOKS:
        raise ValueError(f"notebook={notebook!r} is not one of {NOTEBOOKS}")
    return chapters.experiments(notebook, "paper")


def chapter_cost(notebook: str) -> dict[str, Any]:
    """Distinct runs, training images and estimated device-hours of ``notebook`` at paper.

    Runs shared between arms count once (by config hash). Hours use :func:`images_per_second`:
    TPU v2-8 for 128 px runs (the released "fast" configs), TPU v3-32 for 160-224 px ones.
    """
    from kdlib import store, sweep

    seen: dict[str, Any] = {}
    for experiment in chapter_experiments(notebook):
        for by_epochs in experiment.values():
            for cfg, axes in by_epochs.values():
                for point in sweep.expand(cfg, sweep.grid(**axes)):
                    seen.setdefault(store.config_hash(point), point)
    hours: dict[str, float] = {}
    longest = (0.0, "")
    images = 0.0
    for cfg in seen.values():
        n = cfg.epochs * TRAIN_IMAGES[cfg.data.name]
        images += n
        size = estimate_size(cfg.student_size)
        device = ESTIMATE_DEVICE[size]
        h = n / images_per_second(device, size) / 3600
        hours[device] = hours.get(device, 0.0) + h
        longest = max(longest, (h, device))
    return {"runs": len(seen), "images": images, "hours": hours, "longest": longest}


def _fmt_hours(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 100:
        return f"{hours:.1f} h"
    return f"{hours:,.0f} h"


def book_page() -> str:
    """The markdown of ``book/paper_scale.md`` (generated: do not edit the page by hand)."""
    v28 = images_per_second("TPU v2-8", 128)
    v332 = images_per_second("TPU v3-32", 224)
    lines = [
        "(paper-scale)=",
        "# Running at the paper's scale",
        "",
        "<!-- Generated by `python -m kdlib.experiments.paper_recipes --write "
        "book/paper_scale.md` from kdlib/experiments/paper_recipes.py; edit that file. -->",
        "",
        "Every notebook runs the paper's own configurations with `-p preset paper`: the "
        "paper's datasets through `tensorflow_datasets` (the splits of its Table 5), a "
        "BiT-M-R152x2 teacher and a BiT ResNet-50 student, batch 512 at 128 px (ImageNet: "
        "Listing 1, batch 4096 at 224 px), the section 3.1 grid of learning rate x weight "
        "decay x temperature for every setting on the small datasets, and big_vision's input "
        "pipeline (training crops of the whole image, evaluation "
        "`resize_small(160) | central_crop(128)`; ImageNet `resize_small(256) | "
        "central_crop(224)`). `kdlib/experiments/paper_recipes.py` holds each number with "
        "its source; `tests/test_paper_recipes.py` checks every paper config against an "
        "independent transcription of the paper (`tests/data/paper_recipes.csv`).",
        "",
        "Set-up: `pip install -e '.[tfds]'`, prepare the datasets in array_record format "
        "(`tfds build <name> --file_format=array_record`; ImageNet needs its manual download) "
        "and point `TFDS_DATA_DIR` at them; import the teachers (chapter 00 below). Runs are "
        "stored under `results/paper/`, so a rerun trains only what is missing.",
        "",
        "## What it costs",
        "",
        "Device-hours are estimated from the authors' own measured runs (big_vision "
        "`configs/proj/distill/` docstrings): the flowers \"fast\" config (10 000 epochs) took "
        "~1 h 10 min on a TPU v2-8, pets \"fast\" (1000 epochs) ~28 min, food101 \"fast\" (100 "
        "epochs) ~45 min and pets \"long\" (30 000 epochs) ~11 h: the mean of the four, "
        f"{v28:,.0f} training images per second on a v2-8 at 128 px, "
        "evaluations included. ImageNet at 300 epochs took ~15 h on a TPU v3-32: "
        f"{v332:,.0f} images per second at 224 px. A chapter's estimate is its distinct runs' "
        "training images (epochs x images, every grid point) over the rate at their "
        "resolution (160 px runs at the 224 px rate: an upper bound). kdlib's own training "
        "step for the small datasets' pair (R152x2 -> R50x1, function matching, batch 512 at "
        "128 px, fp32 at the default matmul precision) measured 4,024 images per second on one "
        "NVIDIA H200 (2026-12-04, `benchmarks/distill_step.py --paper-only`, training steps "
        "only, data on the device): about 1.7x the v2-8 rate above, which includes input "
        "pipeline and evaluations (see `benchmarks/README.md`).",
        "",
        "| chapter | runs | training images | estimated device time | its longest run |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for nb in NOTEBOOKS:
        if nb == "00_teachers":
            lines.append(f"| {nb} | 0 | 0 | downloads only | |")
            continue
        cost = chapter_cost(nb)
        when = "; ".join(f"{_fmt_hours(h)} on a {d}" for d, h in sorted(cost["hours"].items()))
        h, device = cost["longest"]
        lines.append(f"| {nb} | {cost['runs']:,} | {cost['images']:.3g} | {when} | "
                     f"{_fmt_hours(h)} on a {device} |")
    lines += [
        "",
        "A single setting of the grid is 1/80 of a small-dataset sweep: e.g. Table 4's best "
        "flowers run at 10 000 epochs is the ~1 h 10 min of a v2-8 above.",
        "",
        "## What differs from the paper in every chapter",
        "",
    ]
    lines += [f"- {d}" for d in COMMON_DIFFERENCES]
    for nb in NOTEBOOKS:
        ch = CHAPTERS[nb]
        lines += ["", f"## {nb}", "", f"{ch['what']} (source: {ch['source']}).", "",
                  "```bash", papermill_command(nb), "```", ""]
        if nb != "00_teachers":
            cost = chapter_cost(nb)
            when = "; ".join(f"{_fmt_hours(h)} on a {d}"
                             for d, h in sorted(cost["hours"].items()))
            lines += [f"Expected: {cost['runs']:,} runs, about {when}.", ""]
        diffs = ch["differences"] or ("Nothing beyond the common differences above.",)
        lines += ["Differences from the paper:", ""] + [f"- {d}" for d in diffs]
    return "\n".join(lines) + "\n"


def path_problem(option: str, path: Path | None) -> str | None:
    """Why ``path`` cannot be ``--write``'s target or ``--check``'s page, as one line, or None:
    a folder, a missing folder to write into, or a page to check that does not exist."""
    if path is None:
        return None
    if path.is_dir():
        return (f"{option} {path} is a folder, not a file: give the page's path, e.g. "
                "book/paper_scale.md")
    if option == "--write" and not path.parent.is_dir():
        return f"{option} {path}: its folder {path.parent} does not exist"
    if option == "--check" and not path.is_file():
        return (f"{option} {path} is missing (no such file): give the generated page, e.g. "
                "book/paper_scale.md (--write writes it)")
    return None


def main(argv: list[str] | None = None) -> int:
    """``--write PATH`` writes :func:`book_page`; ``--check PATH`` fails when it is stale."""
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--write", type=Path, help="write the page to this file")
    parser.add_argument("--check", type=Path,
                        help="exit 1 when this file is not the page as generated now")
    args = parser.parse_args(argv)
    problem = path_problem("--write", args.write) or (  # --check of the page --write writes
        None if args.check == args.write else path_problem("--check", args.check))
    if problem:
        parser.error(problem)
    text = book_page()
    if args.write:
        try:
            args.write.write_text(text, encoding="utf-8")
        except OSError as err:  # e.g. a read-only folder: one line, no traceback
            parser.error(f"--write {args.write}: {err.strerror or err}")
    if args.check:
        if args.check.read_text(encoding="utf-8") != text:
            print(f"{args.check} is out of date: run python -m kdlib.experiments.paper_recipes "
                  f"--write {args.check}")
            return 1
    if not (args.write or args.check):
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

