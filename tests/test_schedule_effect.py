"""kdlib.experiments.schedule_effect: the same claim rules read on the shorter lengths."""

import json

import pandas as pd
import pytest

from kdlib import claims
from kdlib.claims import Claim
from kdlib.experiments import schedule_effect as se


def _table(size: str, lengths: list[float], accs: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"arm": "function matching", "epochs": lengths, "test_acc": accs,
                         "regime": [f"{size}, {e:g} epochs" for e in lengths]})


TABLES = {"1k": _table("1000 images", [30.0, 300.0, 1000.0], [0.6, 0.85, 0.87]),
          "250": _table("250 images", [400.0, 4000.0], [0.79, 0.86])}


def _judge(tables) -> list[Claim]:
    """A toy rule: holds per regime when its longest length reaches 86%, else inconclusive."""
    checks = []
    for name, table in tables.items():
        longest = table.loc[table["epochs"].idxmax()]
        checks.append({"name": f"{name}: {longest['epochs']:g} epochs reach 86%",
                       "outcome": "holds" if longest["test_acc"] >= 0.86 else "inconclusive"})
    verdict = "reproduced" if all(c["outcome"] == "holds" for c in checks) else "inconclusive"
    longest = max(t["epochs"].max() for t in tables.values())
    return [Claim("C4", "patience pays", "paper", "ours", verdict, "02_patience",
                  checks=tuple(checks), seeds="1" if longest <= 400 else "3")]


def test_up_to_keeps_each_size_to_its_own_limit_and_leaves_the_input_alone():
    cut = se.up_to(TABLES, {"1000 images": 300.0, "250 images": 400.0})
    assert list(cut["1k"]["epochs"]) == [30.0, 300.0] and list(cut["250"]["epochs"]) == [400.0]
    assert list(TABLES["1k"]["epochs"]) == [30.0, 300.0, 1000.0]
    one = se.up_to(TABLES["1k"], 100.0)  # one limit for every row of one table
    assert isinstance(one, pd.DataFrame) and list(one["epochs"]) == [30.0]


def test_up_to_names_a_size_without_a_limit_and_a_table_without_regimes():
    with pytest.raises(ValueError, match=r"sizes \['250 images'\]"):
        se.up_to(TABLES, {"1000 images": 300.0})
    with pytest.raises(ValueError, match="'regime' column"):
        se.up_to(TABLES["1k"].drop(columns="regime"), {"1000 images": 300.0})
    with pytest.raises(ValueError, match="mapping"):
        se.up_to([TABLES["1k"]], 300.0)


def test_with_shorter_reads_the_same_rule_on_the_shorter_lengths(monkeypatch, tmp_path):
    monkeypatch.setitem(se.SHORTER, "cpu", {
        "02_patience": {"1000 images": 300.0, "250 images": 400.0}})
    (claim,) = se.with_shorter(_judge, TABLES, "02_patience", "cpu")
    assert claim.verdict == "reproduced"  # on every length: 87% and 86%
    assert claim.at_shorter == ("inconclusive up to 300 epochs on 1000 images, 400 epochs on "
                                "250 images (0 of 2 sub-checks hold, 2 inconclusive; "
                                "inconclusive: 1k: 300 epochs reach 86%; inconclusive: 250: 400 "
                                "epochs reach 86%; provisional: seeds per point 1, fewer than 3)")
    text = se.change_text([claim])
    assert "**C4** (changed): inconclusive up to 300" in text
    assert "reproduced on every length shown (2 of 2 sub-checks hold)" in text
    # stored and read back with the claim
    path = claims.save([claim], "cpu", "02_patience", root=tmp_path)
    assert json.loads(path.read_text())["claims"][0]["at_shorter"] == claim.at_shorter
    assert claims.load("cpu", root=tmp_path) == [claim]


def test_with_shorter_says_so_when_nothing_longer_is_shown_or_no_limit_is_set(monkeypatch):
    monkeypatch.setitem(se.SHORTER, "cpu", {"02_patience": 5000.0})
    (claim,) = se.with_shorter(_judge, TABLES, "02_patience", "cpu")
    assert claim.at_shorter == se.SAME and se.SAME in se.change_text([claim])
    for section, preset in (("08_out_of_domain", "cpu"), ("02_patience", "gpu")):
        (claim,) = se.with_shorter(_judge, TABLES, section, preset)
        assert claim.at_shorter == "" and se.change_text([claim]) == ""


def test_with_shorter_reports_a_rule_that_cannot_read_the_shorter_tables(monkeypatch):
    monkeypatch.setitem(se.SHORTER, "cpu", {"02_patience": 100.0})

    def needs_300(tables):
        if not (tables["1k"]["epochs"] >= 300).any():
            raise ValueError("no row at 300 epochs")
        return _judge(tables)

    (claim,) = se.with_shorter(needs_300, TABLES, "02_patience", "cpu")
    assert claim.at_shorter == "not readable up to 100 epochs: no row at 300 epochs"
    assert "**C4** (changed)" in se.change_text([claim])


def test_every_chapter_limit_names_a_distillation_chapter():
    from kdlib.experiments import chapters

    for preset, limits in se.SHORTER.items():
        assert set(limits) <= set(chapters.SECTIONS), preset


def test_every_limit_is_a_length_its_chapter_shows_at_that_size():
    """A limit cuts at a length the chapter shows (a typo would silently read other lengths)."""
    from kdlib.experiments import chapters

    for section, limit in se.SHORTER["cpu"].items():
        shown = chapters.lengths_by_size(chapters.experiments(section, "cpu"))
        if isinstance(limit, float):
            assert any(limit in lengths for lengths in shown.values()), (section, limit)
            continue
        for size, epochs in limit.items():
            images = int(size.removesuffix(" images"))
            assert epochs in shown.get(images, set()), (section, size, epochs, shown)


def _config(epochs, size):
    return {"epochs": epochs, "data": {"train_size": size}}


def test_is_longer_reads_each_chapters_limit_per_training_set_size():
    assert se.is_longer(_config(1000.0, 1000), "02_patience", "cpu")  # 1k limit: 300
    assert not se.is_longer(_config(300.0, 1000), "02_patience", "cpu")  # equal is not longer
    assert not se.is_longer(_config(400.0, 250), "02_patience", "cpu")  # 250 limit: 400
    assert se.is_longer(_config(16.0, None), "03_imagenet", "cpu")  # one limit: 4 epochs
    assert not se.is_longer(_config(4.0, None), "03_imagenet", "cpu")
    # no limit applies: a chapter without one, a size its limit does not name, another preset
    assert not se.is_longer(_config(300.0, 1000), "04_resolution", "cpu")
    assert not se.is_longer(_config(9000.0, 55000), "02_patience", "cpu")
    assert not se.is_longer(_config(1000.0, 1000), "02_patience", "gpu")
    assert not se.is_longer({"data": {"train_size": 1000}}, "02_patience", "cpu")


def test_longer_totals_count_a_group_once_and_leave_out_short_and_running_runs(tmp_path):
    from kdlib.store import RunRecord

    def run(name, epochs, size, status="done", group=("a", "b"), wall=3600.0, step=1000):
        return RunRecord(config={**_config(epochs, size), "batch_size": 128},
                         summary={"step": step}, history=[],
                         provenance={"wall_time_s": wall, "group": list(group)},
                         status=status, path=tmp_path / "02_patience" / name)

    records = [run("a", 1000.0, 1000), run("b", 1000.0, 1000),  # one 2-run group: 1 h
               run("c", 4000.0, 250, group=("c",), wall=1800.0),  # alone: 0.5 h
               run("d", 300.0, 1000),  # the shorter lengths: not counted
               run("e", 3000.0, 1000, status="running")]  # still training: not counted
    (row,) = se.longer_totals(records, "cpu")
    assert row["section"] == "02_patience" and row["runs"] == 3
    assert row["wall time (h)"] == 1.5
    assert row["run img/s"] == round(3 * 1000 * 128 / 5400)
    assert row["lengths"] == "4,000 epochs on 250 images; 1,000 epochs on 1,000 images"
    assert se.longer_totals(records[3:], "cpu") == []
