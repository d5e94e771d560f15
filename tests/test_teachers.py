"""Stored models: round trips, clear errors, and the committed teachers' accuracy."""

import json
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from kdlib import data, models, store, teachers
from kdlib.experiments import teachers as chapter

KW = {"depth": [1, 1, 1, 1], "width": 0.0625, "stem": "small", "num_classes": 10,
      "in_channels": 1}
COMMITTED = Path(__file__).resolve().parent.parent / "results" / "teachers"


def _logits(model, x):
    model.eval()
    return np.asarray(model(x))


@pytest.mark.slow
def test_save_load_round_trip_gives_identical_logits(tmp_path):
    model = models.create("bit", rngs=nnx.Rngs(3), **KW)
    model.head.kernel.value = np.random.default_rng(0).normal(
        size=model.head.kernel.value.shape).astype(np.float32)
    teachers.save("t", model, {"model": "bit", "model_kwargs": KW, "image_size": 8},
                  root=tmp_path)
    loaded, card = teachers.load("t", root=tmp_path)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(_logits(model, x), _logits(loaded, x))
    assert card["image_size"] == 8
    assert teachers.available(tmp_path) == ["t"]


def test_missing_teacher_error_lists_available(tmp_path):
    with pytest.raises(FileNotFoundError, match="'nope'.*available"):
        teachers.load("nope", root=tmp_path)


def test_card_needs_architecture(tmp_path):
    model = models.create("bit", rngs=nnx.Rngs(0), **KW)
    with pytest.raises(ValueError, match="model_kwargs"):
        teachers.save("t", model, {"model": "bit", "image_size": 8}, root=tmp_path)


def test_weights_of_another_architecture_are_refused(tmp_path):
    model = models.create("bit", rngs=nnx.Rngs(0), **KW)
    teachers.save("t", model, {"model": "bit", "model_kwargs": KW, "image_size": 8},
                  root=tmp_path)
    card_path = tmp_path / "teachers" / "t" / "card.json"
    card = json.loads(card_path.read_text())
    card["model_kwargs"] = {**KW, "width": 0.125}
    card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match="do not fit the model"):
        teachers.load("t", root=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.parent.name for p in COMMITTED.glob("*/card.json")
                                        if not p.parent.name.startswith("smoke_")) or ["none"])
def test_committed_teacher_reproduces_its_card(name):
    """Loading a committed teacher gives back exactly the test accuracy on its card."""
    if name == "none":
        pytest.skip("no committed teachers yet")
    model, card = teachers.load(name, root=COMMITTED.parent)
    test = data.load(card["dataset"], card["splits"]["test"])
    acc = chapter.evaluate(model, test, card["image_size"])
    assert acc == pytest.approx(card["test_acc"], abs=1.5 / len(test))
    for key in ("val_acc", "test_acc", "train_wall_time_s", "provenance", "config_hash"):
        assert key in card
    assert card["provenance"]["commit"] != "unknown"
    assert (store.results_root(COMMITTED.parent) / card["run_dir"].split("results/", 1)[-1]
            / "summary.json").exists()


def test_import_bit_npz_stores_exactly_the_file_weights(tmp_path):
    """The imported teacher is built abstractly and every leaf comes from the .npz: loading it
    back gives the source model's parameters to the bit (no leaf left at a random init)."""
    kw = {"depth": [1, 1, 1, 1], "width": 0.0625, "num_classes": 5, "in_channels": 3}
    source = models.create("bit", rngs=nnx.Rngs(7), **kw)
    npz = models.save_bit_npz(source, tmp_path / "bit.npz")
    teachers.import_bit_npz("imported", npz, **kw, image_size=16, dataset="mock",
                            root=tmp_path / "store")
    loaded, card = teachers.load("imported", root=tmp_path / "store")
    want = teachers._keyed_leaves(nnx.state(source))
    got = teachers._keyed_leaves(nnx.state(loaded))
    assert sorted(want) == sorted(got) and card["dataset"] == "mock"
    for key in want:
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]), err_msg=key)
