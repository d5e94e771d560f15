"""Stored runs still train to their numbers at the current commit (kdlib.retrain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdlib import retrain, store
from kdlib.config import config_from_dict

RESULTS = Path(__file__).resolve().parents[1] / "results"
STORED = sorted(RESULTS.glob("cpu/*/*/config.json"))


def test_every_stored_config_reads_back_to_its_hash():
    assert STORED, "no stored cpu runs"
    for path in STORED:
        config = config_from_dict(json.loads(path.read_text()))
        assert store.config_hash(config) == path.parent.name, path


@pytest.mark.slow
def test_a_stored_label_run_retrains_to_its_numbers():
    """The cheapest stored family (from scratch on labels, 4k images, 0.3 epochs: 10 steps)."""
    run = RESULTS / "cpu" / "02_patience" / "d6d7985b9885"
    result = retrain.retrain_check(run)
    assert result["within"], result
    if result["same_machine"]:
        assert result["exact"], result


def test_retrain_check_refuses_an_unfinished_folder(tmp_path):
    with pytest.raises(ValueError, match="holds no finished run"):
        retrain.retrain_check(tmp_path / "abc")
