"""Tests of kdlib.measurements: live measurements stored with provenance, read back on rebuild."""

from __future__ import annotations

import pytest

from kdlib import measurements


def counter():
    """A measure function that counts its calls and returns one row per call."""
    calls = []

    def measure():
        calls.append(1)
        return [{"arm": "a", "img_per_s": 100.0 + len(calls)}]

    return measure, calls


def test_first_call_measures_and_stores_then_reads_back(tmp_path):
    measure, calls = counter()
    key = {"programs": {"a": ["abc"]}, "calls": 8}
    first = measurements.measure_or_load("t", "cpu", "05_x", measure, key, root=tmp_path)
    assert first.fresh and "none was stored" in first.reason and len(calls) == 1
    assert first.path == tmp_path / "cpu" / "05_x" / "measured_t.json"
    prov = first.provenance
    assert {"commit", "measured_at", "wall_time_s", "machine"} <= set(prov)
    assert prov["machine"]["hostname"]
    again = measurements.measure_or_load("t", "cpu", "05_x", measure, key, root=tmp_path)
    assert not again.fresh and len(calls) == 1  # read back, not measured
    assert again.rows == first.rows == [{"arm": "a", "img_per_s": 101.0}]
    assert again.provenance == first.provenance
    assert "stored" in again.reason and "measured" in again.describe()
    assert list(again.frame(["arm", "img_per_s"]).columns) == ["arm", "img_per_s"]


def test_remeasure_on_request_or_when_the_key_changed(tmp_path):
    measure, calls = counter()
    key = {"calls": 8}
    measurements.measure_or_load("t", "cpu", "s", measure, key, root=tmp_path)
    asked = measurements.measure_or_load("t", "cpu", "s", measure, key, remeasure=True,
                                         root=tmp_path)
    assert asked.fresh and asked.reason == "re-measured on request" and len(calls) == 2
    other = measurements.measure_or_load("t", "cpu", "s", measure, {"calls": 4}, root=tmp_path)
    assert other.fresh and "other programs" in other.reason and len(calls) == 3
    stored = measurements.load("t", "cpu", "s", root=tmp_path)
    assert stored.key == {"calls": 4} and stored.rows[0]["img_per_s"] == 103.0


def test_a_dataframe_result_is_stored_as_rows(tmp_path):
    import pandas as pd

    frame = pd.DataFrame([{"arm": "a", "step_s": 0.5}, {"arm": "b", "step_s": 0.25}])
    got = measurements.measure_or_load("f", "smoke", "s", lambda: frame, {}, root=tmp_path)
    back = measurements.load("f", "smoke", "s", root=tmp_path)
    assert back.rows == got.rows == frame.to_dict("records")


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".."])
def test_bad_names_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="plain name"):
        measurements.path(bad, "cpu", "s", root=tmp_path)


def test_a_malformed_file_says_what_to_do(tmp_path):
    where = measurements.path("t", "cpu", "s", root=tmp_path)
    where.parent.mkdir(parents=True)
    where.write_text('{"rows": 3}')
    with pytest.raises(ValueError, match="delete it to measure again"):
        measurements.load("t", "cpu", "s", root=tmp_path)


def test_model_costs_are_stored_and_read_back(tmp_path, monkeypatch):
    """Chapters 04 and 07 read the students' inference img/s back instead of timing it on
    every build."""
    from kdlib.experiments import common, resolution

    calls = []

    def fake_costs(experiments, num_classes=10, in_channels=1):
        calls.append(1)
        return [{"arm": arm, "student MFLOPs": 1.0, "student img/s": 100.0 * len(calls),
                 "teacher MFLOPs": None} for arm in experiments]

    monkeypatch.setattr(common, "model_costs", fake_costs)
    experiments = resolution.arms("smoke")
    first = measurements.model_costs(experiments, "smoke", "04_resolution", root=tmp_path)
    again = measurements.model_costs(experiments, "smoke", "04_resolution", root=tmp_path)
    assert len(calls) == 1 and first.fresh and not again.fresh
    assert list(again.frame()["arm"]) == list(experiments)
    assert set(again.key["arms"]) == set(experiments)
    measurements.model_costs(experiments, "smoke", "04_resolution", remeasure=True, root=tmp_path)
    assert len(calls) == 2


def test_columns_keep_their_measured_order_when_read_back(tmp_path):
    rows = [{"zeta": 1, "alpha": 2, "mid": 3}]
    fresh = measurements.measure_or_load("o", "cpu", "s", lambda: rows, {}, root=tmp_path)
    back = measurements.measure_or_load("o", "cpu", "s", lambda: rows, {}, root=tmp_path)
    assert list(fresh.frame().columns) == list(back.frame().columns) == ["zeta", "alpha", "mid"]
    assert fresh.describe() == back.describe()  # a rebuild prints the same line
