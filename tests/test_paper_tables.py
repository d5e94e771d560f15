"""Tests of kdlib.paper_tables: Table 5's splits from the configs, Table 2's analogs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kdlib import paper_tables

REPO = Path(__file__).resolve().parents[1]


def literature() -> list[dict]:
    with open(REPO / "book" / "paper_tables" / "table2_literature.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_table2_row_has_an_analog_entry():
    """A row the mapping does not know would silently show no analog: the mapping covers all."""
    keys = {(r["model"], int(r["resolution"])) for r in literature()}
    assert keys == set(paper_tables.TABLE2_ANALOGS)


def test_table2_reads_analogs_from_stored_chapter_tables(tmp_path):
    section = tmp_path / "cpu" / "03_imagenet"
    section.mkdir(parents=True)
    (section / "table_arms.csv").write_text(  # SGD is ahead on test, Adam on validation
        "arm,epochs,test_acc,val_acc\nfunction matching,4.0,0.7,0.7\nlabels: Adam,1.0,0.4,0.4\n"
        "labels: Adam,4.0,0.615,0.63\nlabels: SGD,4.0,0.62,0.6\n")
    (tmp_path / "cpu" / "02_patience").mkdir()
    (tmp_path / "cpu" / "02_patience" / "table_1k_arms.csv").write_text(
        "arm,epochs,test_acc,val_acc,test_acc_sd,n_seeds\ntransfer,30.0,0.5,0.5,,1\n"
        "transfer,300.0,0.75,0.74,0.01,3\nfunction matching,300.0,0.8,0.8,,1\n")
    rows = {(r["model"], int(r["resolution"])): r
            for r in paper_tables.table2(literature(), "cpu", root=tmp_path)}
    original = rows[("Original ResNet", 224)]
    assert original["ours (%)"] == "61.50" and original["from"] == "03_imagenet"
    # the longest schedule, the best label arm on validation, named with the arms it beat
    assert original["our analog"].endswith(
        "4 epochs (labels: Adam: the best on validation of labels: Adam, labels: SGD)")
    bit = rows[("BiT-M-R50", 224)]
    assert bit["ours (%)"] == "75.00 (±1.0 sd over 3 seeds)" and "300 epochs" in bit["our analog"]
    assert rows[("Meal-v2", 224)]["our analog"] == paper_tables.NO_ANALOG
    missing = rows[("FunMatch (T224)", 160)]  # chapter 04 stored nothing here
    assert "not stored" in missing["our analog"] and missing["ours (%)"] == ""
    assert original["imagenet_top1"] == "77.2"  # the paper's columns are kept


def test_table2_names_an_analog_arm_alone_at_the_longest_length(tmp_path):
    """Where only one of an analog's arms reaches the longest length, the row says so rather
    than calling it the best of them."""
    section = tmp_path / "cpu" / "03_imagenet"
    section.mkdir(parents=True)
    (section / "table_arms.csv").write_text(
        "arm,epochs,test_acc,val_acc\nlabels: Adam,16.0,0.86,0.86\nlabels: SGD,4.0,0.8,0.81\n")
    rows = {(r["model"], int(r["resolution"])): r
            for r in paper_tables.table2(literature(), "cpu", root=tmp_path)}
    assert rows[("Original ResNet", 224)]["our analog"].endswith(
        "16 epochs (labels: Adam: the only one of the 4 arms (labels: Adam, labels: Adam + "
        "mixup, labels: SGD, labels: SGD + mixup) trained there)")


def test_table2_refuses_a_table_without_validation(tmp_path):
    """A pivoted or test-only table cannot pick the best arm on validation: a clear error."""
    section = tmp_path / "cpu" / "03_imagenet"
    section.mkdir(parents=True)
    (section / "table_arms.csv").write_text("arm,4.0\nlabels: Adam,61.5\n")
    with pytest.raises(ValueError, match=r"lacks the columns \['epochs', 'test_acc', 'val_acc'\]"):
        paper_tables.table2(literature(), "cpu", root=tmp_path)


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
def test_our_splits_come_from_the_configs(preset):
    rows = paper_tables.our_splits(preset)
    assert rows and len({tuple(r.items()) for r in rows}) == len(rows)
    used = ", ".join(r["chapters"] for r in rows)
    for section in ("00_teachers", "01_consistency", "03_imagenet", "08_out_of_domain"):
        assert section in used
    assert {"train split", "validation split", "test split"} <= set(rows[0])
