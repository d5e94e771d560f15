"""The `paper` preset of every chapter trains for real, offline: tfds mock data, BiT `.npz`
teachers in the published key layout, and (ImageNet) a streamed training split.

Each test takes a chapter's own paper config and shrinks only what makes it slow (model
widths, resolution, batch, epochs); dataset, splits, policy, loss, optimizer, schedule and the
teacher's name stay the paper's. A few steps must run and store finite metrics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kdlib import data, models, store, teachers, train, views
from kdlib.config import ModelConfig, RunConfig
from kdlib.experiments import consistency, imagenet, patience

tfds = pytest.importorskip("tensorflow_datasets")

TINY = {"depth": [1, 1, 1, 1], "width": 0.0625}
SIZE = 16
NUM_CLASSES = {"oxford_flowers102": 102, "oxford_iiit_pet": 37, "imagenet2012": 1000}


@pytest.fixture
def mock_world(tmp_path, monkeypatch):
    """A results root in tmp_path and tfds mock data (12 examples per split)."""
    monkeypatch.setenv(store.RESULTS_ENV, str(tmp_path / "results"))
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        yield tmp_path


def synthetic_checkpoint(tmp_path, num_classes: int, seed: int = 0) -> str:
    """A random BiT in the big_transfer .npz layout (what a downloaded teacher looks like)."""
    model = teachers.build("bit", {**TINY, "num_classes": num_classes, "in_channels": 3}, seed)
    return models.save_bit_npz(model, tmp_path / f"bit_{num_classes}_{seed}.npz")


def import_teacher(tmp_path, name: str, dataset: str) -> None:
    path = synthetic_checkpoint(tmp_path, NUM_CLASSES[dataset])
    teachers.import_bit_npz(name, path, depth=TINY["depth"], width=TINY["width"],
                            num_classes=NUM_CLASSES[dataset], image_size=SIZE, dataset=dataset)


def shrink(config: RunConfig, steps: int = 3) -> RunConfig:
    """The paper config with a tiny student, 16 px, batch 4 and about ``steps`` steps."""
    return config.replace(student=ModelConfig("bit", TINY), student_size=SIZE, batch_size=4,
                          epochs=steps * 4 / 10, steps_per_call=1, fixed_num_crops=2)


def check_done(summary: dict, config: RunConfig) -> None:
    assert summary["status"] == "done"
    assert summary["final_step"] == summary["steps"] >= 2
    for key in ("val_acc", "test_acc", "train_loss"):
        assert math.isfinite(summary[key]), (key, summary)
    if config.loss != "labels":
        assert 0.0 <= summary["test_agreement"] <= 1.0


@pytest.mark.slow
def test_paper_consistency_config_trains_on_mock_flowers(mock_world):
    paper = consistency.arms("paper", "flowers102")["mix"][1000.0][0]
    assert paper.data.name == "oxford_flowers102" and paper.student_size == 128
    assert paper.batch_size == 512 and paper.student.kwargs == {"depth": 50, "width": 1}
    import_teacher(mock_world, paper.teachers[0], "oxford_flowers102")
    config = shrink(paper)
    check_done(train.train(config, mock_world / "run", progress=False), config)


def test_paper_patience_transfer_config_trains_on_mock_pets(mock_world):
    arms = patience.arms("paper", "pets")
    transfer = arms["transfer"][300.0][0]
    assert transfer.init == "bit_m_r50x1_imagenet21k" and transfer.loss == "labels"
    # The upstream weights: a 21k-class head that the 37-class student does not take.
    path = synthetic_checkpoint(mock_world, 21843, seed=1)
    teachers.import_bit_npz(transfer.init, path, depth=TINY["depth"], width=TINY["width"],
                            num_classes=21843, image_size=SIZE, dataset="imagenet21k")
    assert arms["function matching"][300.0][0].teachers == ("bit_m_r152x2_oxford_iiit_pet",)
    config = shrink(transfer)
    check_done(train.train(config, mock_world / "transfer", progress=False), config)


@pytest.mark.slow
def test_paper_imagenet_config_trains_streamed_on_mock_imagenet(mock_world):
    """The fixed-teacher arm: streamed batches plus targets precomputed block by block."""
    arms = imagenet.arms("paper")
    assert {cfg.data.name for by_ep in arms.values() for cfg, _ in by_ep.values()} == {
        "imagenet2012"}
    paper = arms["fixed teacher"][1200.0][0]
    assert paper.batch_size == 4096 and paper.student_size == 224 and paper.policy == "fix/rs"
    import_teacher(mock_world, paper.teachers[0], "imagenet2012")
    config = shrink(paper)
    assert isinstance(train.load_data(config).train, data.StreamingDataset)
    check_done(train.train(config, mock_world / "run", progress=False), config)


def _streaming_copy(ds: data.Dataset) -> data.StreamingDataset:
    """An in-memory dataset behind the StreamingDataset interface (decode = identity)."""
    examples = [{"image": img, "label": int(lab)}
                for img, lab in zip(ds.images, ds.labels, strict=True)]
    return data.StreamingDataset(name=ds.name, split=ds.split, num_examples=len(ds),
                                 num_classes=ds.num_classes, image_size=None,
                                 class_names=ds.class_names, source=examples, num_workers=1)


@pytest.mark.slow
def test_streamed_fixed_targets_equal_in_memory_ones(tmp_path, monkeypatch):
    """Block-wise targets over a streamed split equal the in-memory ones, crop for crop."""
    monkeypatch.setenv(store.RESULTS_ENV, str(tmp_path))
    rng = np.random.default_rng(0)
    n = 16 * train.EVAL_BATCH + 37  # more than one block, a partial last batch
    ds = data.Dataset(rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
                      rng.integers(0, 5, n).astype(np.int32), 5, "synthetic", "train")
    model = teachers.build("bit", {**TINY, "num_classes": 5, "in_channels": 3})
    teachers.save("t", model, {"model": "bit", "model_kwargs": {**TINY, "num_classes": 5,
                                                                "in_channels": 3},
                               "image_size": 8})
    teacher = train.Teacher(("t",))
    config = RunConfig(policy="fix/ic_ens", teachers=("t",), fixed_num_crops=2, student_size=8)
    in_memory = train.fixed_targets(config, teacher, ds, 8)
    streamed = train.fixed_targets(config, teacher, _streaming_copy(ds), 8)
    assert in_memory.shape == (n, 5)
    np.testing.assert_allclose(streamed, in_memory, rtol=1e-6, atol=1e-6)
    assert config.policy in views.FIXED_POLICIES


def test_stream_chunk_follows_seed_and_step():
    rng = np.random.default_rng(1)
    ds = data.Dataset(rng.integers(0, 256, (10, 4, 4, 1), dtype=np.uint8),
                      np.arange(10, dtype=np.int32) % 3, 3, "synthetic", "train")
    src = _streaming_copy(ds)
    config = RunConfig(batch_size=4, seed=3)
    images, labels, targets, aspects = train.stream_chunk(config, src, 2, 3, None)
    idx = np.concatenate([src.batch_indices(s, 4, seed=3) for s in (2, 3, 4)])
    np.testing.assert_array_equal(images, ds.images[idx])
    np.testing.assert_array_equal(labels, ds.labels[idx])
    assert targets.shape == (1, 3)  # no fixed teacher: a placeholder row of num_classes
    assert aspects.shape == (1,)  # kdlib's pipeline: a placeholder, the crops do not read it
    again = train.stream_chunk(config, src, 2, 3, np.arange(30.0).reshape(10, 3))
    np.testing.assert_array_equal(again[0], images)
    np.testing.assert_array_equal(again[2], np.arange(30.0).reshape(10, 3)[idx])


def test_streamed_split_rejects_train_size(mock_world):
    config = shrink(imagenet.arms("paper")["labels: Adam"][1200.0][0]).replace(
        **{"data.train_size": 100})
    with pytest.raises(ValueError, match="train_size=100 needs an in-memory dataset"):
        train.load_data(config)


@pytest.mark.slow
def test_a_teacher_trained_on_a_streamed_split_is_published(mock_world):
    """train_and_publish on ImageNet's streamed training split (the paper's "labels: Adam"
    config, shrunk) stores a card and weights that load back; until 2026-12-06 it read the
    input channels from the training split's images, which a streamed split does not hold, and
    crashed after training (found by mypy)."""
    from kdlib.experiments import teachers as teacher_runs

    config = shrink(imagenet.arms("paper")["labels: Adam"][30.0][0])
    assert isinstance(train.load_data(config).train, data.StreamingDataset)
    card = teacher_runs.train_and_publish("streamed", config)
    assert card["dataset"] == "imagenet2012" and card["model_kwargs"]["in_channels"] == 3
    model, loaded = teachers.load("streamed")
    assert loaded["test_acc"] == card["test_acc"] and "streamed" in teachers.available()
