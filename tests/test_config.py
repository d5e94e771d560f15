"""Configs: dotted replace, validation errors, presets."""

import pytest

from kdlib import presets
from kdlib.config import (
    DataConfig,
    RunConfig,
    replace,
    teacher_sizes,
    teacher_view_size,
    validate,
)


def test_dotted_replace_changes_nested_field_only():
    c = RunConfig(teachers=("t",))
    d = c.replace(**{"data.train_size": 1000}, lr=0.5)
    assert d.data.train_size == 1000 and d.lr == 0.5
    assert c.data.train_size is None and c.lr == 1e-3
    assert d.data.name == c.data.name


def test_replace_unknown_field_names_it():
    with pytest.raises(ValueError, match="'nope'"):
        replace(RunConfig(), nope=1)
    with pytest.raises(ValueError, match="'data.bogus'"):
        replace(RunConfig(), **{"data.bogus": 1})


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"loss": "mse"}, "loss='mse'"),
        ({"optimizer": "lion"}, "optimizer='lion'"),
        ({"policy": "fix/xx"}, "policy='fix/xx'"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"temperature": -1.0}, "temperature=-1.0"),
        ({"wd": -1e-4}, "wd=-0.0001"),
        ({"warmup_frac": 1.5}, "warmup_frac=1.5"),
        ({"teachers": ()}, "teacher"),
        ({"teacher_size": (28, 48)}, r"2 sizes for 1 teachers"),
        ({"teacher_size": (0,)}, "ints >= 8"),
        ({"teacher_size": 0}, "must be None, an int >= 8"),
    ],
)
def test_validate_names_bad_field(changes, match):
    config = RunConfig(teachers=("t",)).replace(**changes)
    with pytest.raises(ValueError, match=match):
        validate(config)


def test_labels_runs_need_no_teacher_but_reject_fixed_policies():
    validate(RunConfig(loss="labels", policy="same/ic"))
    with pytest.raises(ValueError, match="fix/rs"):
        validate(RunConfig(loss="labels", policy="fix/rs"))


def test_presets(monkeypatch):
    monkeypatch.delenv("KDLIB_PRESET", raising=False)
    assert presets.current() == "cpu"
    monkeypatch.setenv("KDLIB_PRESET", "smoke")
    assert presets.current() == "smoke"
    monkeypatch.setenv("KDLIB_PRESET", "tpu9000")
    with pytest.raises(ValueError, match="tpu9000"):
        presets.current()


def test_data_config_defaults_are_the_embedded_splits():
    d = DataConfig()
    assert (d.train_split, d.val_split, d.test_split) == ("train[:55000]", "train[55000:]", "test")


def test_teacher_sizes_one_per_teacher():
    two = RunConfig(teachers=("a", "b"), student_size=20)
    assert teacher_sizes(two) == (20, 20) and teacher_view_size(two) == 20
    assert teacher_sizes(two.replace(teacher_size=32)) == (32, 32)
    mixed = two.replace(teacher_size=(28, 48))
    validate(mixed)
    assert teacher_sizes(mixed) == (28, 48) and teacher_view_size(mixed) == 48
    assert teacher_view_size(RunConfig(loss="labels", student_size=16)) == 16
