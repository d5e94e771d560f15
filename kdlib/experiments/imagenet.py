"""Chapter 03 (paper section 3.2): the largest regime, standing in for ImageNet.

All 55,000 Fashion-MNIST training images: a fixed teacher, consistent teaching and function
matching over increasing schedules, and the label-only baselines of the paper's Figure 7
(SGD-momentum and Adam, each with and without mixup), every arm with the same sweep.
"""

from __future__ import annotations

from kdlib import presets
from kdlib.experiments import common, paper_recipes

SECTION = "03_imagenet"

EPOCHS = {"smoke": (1.0, 2.0), "cpu": (1.0, 2.0, 4.0), "gpu": (3.0, 10.0, 30.0, 100.0),
          "paper": paper_recipes.TABLE_3_EPOCHS}
SMOKE_TRAIN_SIZE = 256

# arm -> (policy, loss, optimizer): the rows of the paper's Table 3 and Figure 7.
ARMS = {
    "fixed teacher": ("fix/rs", "kl", "adam"),
    "consistent teaching": ("same/ic", "kl", "adam"),
    "function matching": ("mix", "kl", "adam"),
    "labels: Adam": ("same/ic", "labels", "adam"),
    "labels: Adam + mixup": ("mix", "labels", "adam"),
    "labels: SGD": ("same/ic", "labels", "sgd"),
    "labels: SGD + mixup": ("mix", "labels", "sgd"),
}
DISTILL_ARMS = tuple(a for a, (_, loss, _) in ARMS.items() if loss != "labels")


def paper_imagenet_config(**changes) -> common.RunConfig:
    """The paper's ImageNet config (appendix F, Listing 1): R152x2@224 -> R50x1@224.

    Batch 4096, 1200 epochs, lr 0.03, wd 0.0003, T 1, warmup 5000 steps then cosine, Adam with
    its first moment in bfloat16, mixup; big_vision's ``resize_small(256)|central_crop(224)``
    evaluation (``paper_recipes.LISTING_1``).
    """
    r = paper_recipes.LISTING_1
    config = common.paper_config(
        SECTION, r["dataset"], teachers=("bit_m_r152x2_imagenet2012",),
        student_size=r["student_size"], batch_size=r["batch_size"], epochs=r["epochs"],
        lr=r["lr"], wd=r["wd"], temperature=r["temperature"], warmup_steps=r["warmup_steps"],
        policy=r["policy"], loss=r["loss"], optimizer=r["optimizer"], grad_clip=r["grad_clip"],
        mu_dtype=r["mu_dtype"],
    )
    return config.replace(**changes)


def paper_axes(loss: str = "kl", optimizer: str = "adam") -> dict[str, list]:
    """The ImageNet sweep at the paper preset: Listing 1's single point (the paper gives no
    ImageNet grid); from labels, a small grid around it (SGD: learning rates x 10); Shampoo:
    appendix D's weight decay."""
    r = paper_recipes.LISTING_1
    if loss == "labels":
        lrs = [0.01, 0.03]
        return {"lr": [10 * lr for lr in lrs] if optimizer == "sgd" else lrs,
                "wd": [1e-4, r["wd"]]}
    wd = paper_recipes.APPENDIX_D["wd"] if optimizer == "shampoo" else r["wd"]
    return {"lr": [r["lr"]], "wd": [wd], "temperature": [r["temperature"]]}


def axes(preset: str, loss: str = "kl", optimizer: str = "adam") -> dict[str, list]:
    """The sweep of the ImageNet-based chapters: :func:`paper_axes` at the paper preset,
    else the preset's common grid (:func:`common.sweep_axes`)."""
    if presets.check(preset) == "paper":
        return paper_axes(loss, optimizer)
    return common.sweep_axes(preset, loss)


def arms(preset: str) -> common.Arms:
    """``{arm: {epochs: (base config, sweep axes)}}`` (see :data:`ARMS`)."""
    preset = presets.check(preset)
    out: common.Arms = {}
    for arm, (policy, loss, optimizer) in ARMS.items():
        out[arm] = {}
        extra = {"teachers": ()} if loss == "labels" else {}
        # SGD needs a larger learning rate than Adam: its sweep is the same grid times 10.
        if preset == "paper":
            sweep = paper_axes(loss, optimizer)
        else:
            sweep = common.sweep_axes(preset, loss)
            if optimizer == "sgd":
                sweep = {**sweep, "lr": [10 * lr for lr in sweep["lr"]]}
        for ep in EPOCHS[preset]:
            if preset == "paper":
                cfg = paper_imagenet_config(policy=policy, loss=loss, optimizer=optimizer,
                                            epochs=ep, **extra)
            else:
                size = SMOKE_TRAIN_SIZE if preset == "smoke" else None
                cfg = common.base_config(preset, SECTION, common.fmnist(preset, size),
                                         policy=policy, loss=loss, optimizer=optimizer,
                                         epochs=ep, **extra)
            out[arm][ep] = (cfg, sweep)
    return out
