"""Tests of kdlib.claims: validation, per-chapter storage, ordering and the summary tables."""

from __future__ import annotations

import dataclasses
import json

import pytest

from kdlib import claims
from kdlib.claims import Claim


def make(cid: str, chapter: str = "01_consistency", verdict: str = "reproduced") -> Claim:
    """A valid claim with recognizable text."""
    return Claim(id=cid, claim=f"statement {cid}", paper=f"paper number {cid}",
                 ours=f"our number {cid}", verdict=verdict, chapter=chapter)


def test_verdicts_are_the_evidence_scale_and_not_run():
    assert claims.VERDICTS == ("reproduced", "partly", "not reproduced", "inconclusive",
                               "not testable at this scale", "not run")


@pytest.mark.parametrize("bad", ["yes", "Reproduced", "", "partially"])
def test_bad_verdict_names_value_and_allowed(bad):
    with pytest.raises(ValueError) as err:
        make("C1", verdict=bad)
    assert repr(bad) in str(err.value) and "not reproduced" in str(err.value)


@pytest.mark.parametrize("bad", ["1", "c1", "C0", "C01", "C1a", "claim1", "C", " C1"])
def test_bad_id_names_value(bad):
    with pytest.raises(ValueError, match="must be 'C' then a number") as err:
        make(bad)
    assert repr(bad) in str(err.value)


@pytest.mark.parametrize("field,value", [("claim", "  "), ("ours", ""), ("chapter", "a/b"),
                                         ("chapter", ".."), ("paper", 3.5)])
def test_bad_fields_raise(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(make("C1"), **{field: value})


def test_claim_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make("C1").verdict = "partly"


def test_round_trip_and_numeric_order(tmp_path):
    first = [make("C10", "01_consistency", "partly"), make("C2", "01_consistency")]
    second = [make("C1", "05_patience", "not run"), make("C3", "05_patience", "not reproduced")]
    p1 = claims.save(first, "cpu", "01_consistency", root=tmp_path)
    claims.save(second, "cpu", "05_patience", root=tmp_path)
    assert p1 == tmp_path / "cpu" / "01_consistency" / "claims.json"
    loaded = claims.load("cpu", root=tmp_path)
    assert [c.id for c in loaded] == ["C1", "C2", "C3", "C10"]  # C2 < C10
    assert set(loaded) == set(first + second)  # every field survives the round trip
    assert claims.load("gpu", root=tmp_path) == []  # another preset: nothing


def test_save_replaces_a_chapters_claims(tmp_path):
    claims.save([make("C1"), make("C2")], "cpu", "01_consistency", root=tmp_path)
    claims.save([make("C2", verdict="partly")], "cpu", "01_consistency", root=tmp_path)
    assert claims.load("cpu", root=tmp_path) == [make("C2", verdict="partly")]


def test_same_claim_in_two_chapters_keeps_both_in_chapter_order(tmp_path):
    claims.save([make("C4", "06_b")], "cpu", "06_b", root=tmp_path)
    claims.save([make("C4", "02_a")], "cpu", "02_a", root=tmp_path)
    assert [c.chapter for c in claims.load("cpu", root=tmp_path)] == ["02_a", "06_b"]


def test_load_reads_results_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    claims.save([make("C7")], "smoke", "01_consistency")
    assert (tmp_path / "smoke" / "01_consistency" / "claims.json").is_file()
    assert claims.load("smoke") == [make("C7")]


def test_empty_store_loads_nothing(tmp_path):
    assert claims.load("cpu", root=tmp_path / "missing") == []


def test_save_rejects_other_chapters_claims_and_repeated_ids(tmp_path):
    with pytest.raises(ValueError, match="'02_x'.*'01_consistency'"):
        claims.save([make("C1", "02_x")], "cpu", "01_consistency", root=tmp_path)
    with pytest.raises(ValueError, match=r"\['C3'\]"):
        claims.save([make("C3"), make("C3")], "cpu", "01_consistency", root=tmp_path)
    with pytest.raises(ValueError, match="Claim objects"):
        claims.save([{"id": "C1"}], "cpu", "01_consistency", root=tmp_path)
    with pytest.raises(ValueError, match="preset"):
        claims.save([make("C1")], "../x", "01_consistency", root=tmp_path)
    assert not any(tmp_path.rglob("claims.json"))


def test_malformed_file_names_the_file(tmp_path):
    path = tmp_path / "cpu" / "01_consistency" / "claims.json"
    path.parent.mkdir(parents=True)
    row = dataclasses.asdict(make("C1"))
    path.write_text(json.dumps({"claims": [{**row, "verdict": "maybe"}]}))
    with pytest.raises(ValueError, match="claims.json.*'maybe'"):
        claims.load("cpu", root=tmp_path)
    path.write_text(json.dumps({"claims": [{**row, "extra": 1}]}))
    with pytest.raises(ValueError, match="must have the keys"):
        claims.load("cpu", root=tmp_path)
    path.write_text(json.dumps([row]))
    with pytest.raises(ValueError, match="must hold"):
        claims.load("cpu", root=tmp_path)


def test_verdict_counts_in_verdict_order():
    found = [make("C1", verdict="partly"), make("C2", verdict="partly"),
             make("C3", verdict="not run")]
    counts = claims.verdict_counts(found)
    assert list(counts) == list(claims.VERDICTS)
    assert counts == {"reproduced": 0, "partly": 2, "not reproduced": 0, "inconclusive": 0,
                      "not testable at this scale": 0, "not run": 1}


def test_table_columns_and_order():
    df = claims.table([make("C12"), make("C3", "05_patience")])
    assert list(df.columns) == ["id", "claim", "paper", "ours", "verdict", "chapter"]
    assert df["id"].tolist() == ["C3", "C12"]
    assert df["chapter"].tolist() == ["05_patience", "01_consistency"]


def test_markdown_table_links_chapters_and_escapes_cells():
    odd = dataclasses.replace(make("C2"), ours="acc | 0.81\nversus 0.80")
    text = claims.markdown_table([odd, make("C1", "00_teachers")])
    lines = text.splitlines()
    assert lines[0] == ("| id | the paper's claim | paper | ours | verdict | sub-checks | "
                        "chapter |")
    assert len(lines) == 4
    assert lines[2].startswith("| C1 |") and lines[2].endswith("[00_teachers](00_teachers.ipynb) |")
    assert "acc \\| 0.81 versus 0.80" in lines[3]  # pipe escaped, newline folded
    assert lines[3].count(" | ") == 6  # still exactly seven cells


def test_chapter_tables_and_paper_table_numbers(tmp_path):
    for rel in ["cpu/05_b/table_4_small.csv", "cpu/01_a/table_1.csv", "cpu/01_a/table_extra.csv",
                "cpu/01_a/notes.csv", "gpu/01_a/table_3.csv"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("a,b\n1,2\n")
    found = claims.chapter_tables("cpu", root=tmp_path)
    assert {k: [p.name for p in v] for k, v in found.items()} == {
        "01_a": ["table_1.csv", "table_extra.csv"], "05_b": ["table_4_small.csv"]}
    numbers = [claims.paper_table_number(p) for p in found["01_a"] + found["05_b"]]
    assert numbers == [1, None, 4]
    assert claims.paper_table_number("table_12_x.csv") == 12
    assert claims.paper_table_number("table_0.csv") is None


def test_markdown_table_links_only_chapters_in_the_book():
    found = [make("C1", chapter="01_a"), make("C2", chapter="05_b")]
    text = claims.markdown_table(found, linked={"01_a"})
    assert "[01_a](01_a.ipynb)" in text
    assert "`05_b`" in text and "(05_b.ipynb)" not in text


def test_every_claim_has_a_statement_and_missing_ones_are_not_run():
    from kdlib.experiments import verdicts

    count = len(verdicts.STATEMENTS)  # a new claim takes the next number
    assert count >= 13 and list(verdicts.STATEMENTS) == [f"C{i}" for i in range(1, count + 1)]
    found = [make("C3", chapter="01_consistency")]
    full = verdicts.with_not_run(found)
    assert [c.id for c in full][0] == "C3" and len(full) == count
    missing = {c.id: c for c in full if c.id != "C3"}
    assert all(c.verdict == "not run" for c in missing.values())
    assert missing["C9"].chapter == "05_shampoo"
    assert missing["C9"].claim == verdicts.STATEMENTS["C9"][0]


def test_evidence_fields_round_trip_and_old_files_still_load(tmp_path):
    checks = ({"name": "a > b", "outcome": "inconclusive", "detail": "+0.5 pts",
               "margin": 0.005, "se": 0.004},)
    claim = dataclasses.replace(make("C1", verdict="inconclusive"), checks=checks, seeds="1-3",
                                noise="assumed", settle="more seeds", rule_note="changed")
    claims.save([claim], "cpu", "01_consistency", root=tmp_path)
    (back,) = claims.load("cpu", root=tmp_path)
    assert back == claim and back.checks[0]["outcome"] == "inconclusive"
    assert "inconclusive: a > b (seeds per point 1-3; assumed)" in claims.checks_text(back)
    old = {k: v for k, v in dataclasses.asdict(make("C2")).items() if k in claims.COLUMNS}
    path = claims.claims_path("cpu", "02_patience", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"claims": [old]}))
    assert [c.id for c in claims.load("cpu", root=tmp_path)] == ["C1", "C2"]


def test_check_with_a_bad_outcome_is_refused():
    with pytest.raises(ValueError, match="outcome must be one of"):
        dataclasses.replace(make("C1"), checks=({"name": "x", "outcome": "maybe"},))


def test_report_lists_each_sub_check_and_what_would_settle_it():
    checks = ({"name": "a > b", "outcome": "fails", "detail": "-3.0 pts | x", "margin": -0.03,
               "se": 0.01},)
    claim = dataclasses.replace(make("C4", verdict="not reproduced"), checks=checks,
                                seeds="3", settle="the gpu preset", scale="ours: 300 epochs")
    text = claims.report([claim])
    assert "| C4 | a > b | fails | -3.0 pts \\| x |" in text
    noisy = dataclasses.replace(claim, checks=({**checks[0], "noise": "each 0.40 pts pooled"},))
    assert ("| C4 | a > b | fails | -3.0 pts \\| x; per-run noise: each 0.40 pts pooled |"
            in claims.report([noisy]))
    assert "- **C4**: seeds per point: 3; ours: 300 epochs; to settle it: the gpu preset." in text


def test_report_says_a_noise_line_every_claim_shares_once():
    checks = ({"name": "a > b", "outcome": "holds", "detail": "+3 pts (±1.0 at 2 SE)"},)
    one, two = (dataclasses.replace(make(cid), checks=checks, seeds="3", noise="POOLS")
                for cid in ("C1", "C2"))
    text = claims.report([one, two])
    assert text.count("POOLS") == 1
    assert text.rstrip().endswith("each sub-check names the pool its points read): POOLS.")
    assert "(seeds per point 3)" in text  # the table's rows keep their seeds, not the pools
    # claims that read different noise keep it each, in their row and their line
    other = dataclasses.replace(two, noise="OTHER")
    text = claims.report([one, other])
    assert text.count("POOLS") == 2 and text.count("OTHER") == 2
    assert "Seed noise" not in text
    assert claims.markdown_table([one]).count("POOLS") == 1
    assert "POOLS" not in claims.markdown_table([one], noise=False)


def test_rule_notes_every_claim_shares_are_said_once_and_each_claims_own_beside_it():
    common = "rules rewritten on day 1; later, noise pooled (per size; per length)"
    a, b, c = (dataclasses.replace(make(cid), rule_note=note) for cid, note in (
        ("C1", common), ("C2", common + "; on day 3 C2 reads x"),
        ("C3", common + "; on day 3 C3 reads y")))
    assert claims.split_rule_notes([a, b, c]) == (
        common, {"C1": "", "C2": "on day 3 C2 reads x", "C3": "on day 3 C3 reads y"})
    # the shared text stops at a clause, not inside one ("; on day 3 C" is not a clause)
    assert claims.split_rule_notes([b, c])[0] == common
    text = claims.report([a, b, c])
    assert text.count("ules rewritten on day 1") == 1
    assert ("- **Rules** (every claim above), their changes in order:\n"
            "   1. Rules rewritten on day 1.\n"
            "   2. Later, noise pooled (per size; per length).") in text
    assert "- **C2**: its own rule changes:\n   1. On day 3 C2 reads x." in text
    assert "- **C1**: ." not in text
    # one claim, or a claim without a note: every note as it is
    assert claims.split_rule_notes([b]) == ("", {"C2": b.rule_note})
    bare = dataclasses.replace(make("C4"), rule_note="")
    assert claims.split_rule_notes([a, bare])[0] == ""
    # a chapter of one claim splits at the history every rule lived through, when given
    assert claims.split_rule_notes([b], common) == (common, {"C2": "on day 3 C2 reads x"})
    assert claims.split_rule_notes([a], common) == (common, {"C1": ""})
    text = claims.report([b], common)
    assert "- **C2**: its own rule changes:\n   1. On day 3 C2 reads x." in text
    assert "- **Rules** (every claim above), their changes in order:\n   1. Rules rewritten" in text
    # a note that does not open with it keeps its whole history as its own
    assert claims.split_rule_notes([bare, b], common) == ("", {"C4": "", "C2": b.rule_note})


def test_a_rule_note_splits_into_its_changes_at_separators_outside_parentheses():
    assert claims.rule_entries("a (b; c); d; e (f (g; h))") == ["a (b; c)", "d", "e (f (g; h))"]
    assert claims.rule_entries("one change") == ["one change"]
    assert claims.rule_entries("") == []
    assert claims.rule_list("on day 1 x; later y") == "1. On day 1 x.\n2. Later y."
    assert claims.rule_list("a; b", indent="   ") == "   1. A.\n   2. B."


def test_a_claim_without_other_facts_still_lists_its_own_rule_changes():
    bare = dataclasses.replace(make("C1"), seeds="", noise="", scale="", settle="",
                               rule_note="on day 2 x; later y")
    text = claims.report([bare])
    assert "- **C1**: its own rule changes:\n   1. On day 2 x.\n   2. Later y." in text


# --------------------------------------------------------------------------- findings first


def _check(name, outcome, margin=None, se=None, detail=""):
    return {"name": name, "outcome": outcome, "margin": margin, "se": se, "detail": detail}


def test_check_numbers_reads_the_difference_and_its_spread():
    assert claims.check_numbers(_check(
        "a", "holds", 0.083, 0.014, "A @30ep 45.0% (n=1) vs B @30ep 36.8% (n=1): +8.3 pts "
        "(±2.8 at 2 SE)")) == "+8.3 pts ± 2.8"
    assert claims.check_numbers(_check(
        "a", "fails", -0.24, 0.014, "x: -24.4 pts (±2.8 at 2 SE; allowed −0.5 pts)")) == (
        "-24.4 pts ± 2.8")
    assert claims.check_numbers(_check("s", "holds", detail="measured 1.06x")) == "measured 1.06x"


def test_key_checks_show_both_sides_of_a_partly_verdict():
    c = dataclasses.replace(make("C9", verdict="partly"), checks=(
        _check("small hold", "holds", 0.01, 0.01), _check("big hold", "holds", 0.1, 0.01),
        _check("a fail", "fails", -0.2, 0.01), _check("unsure", "inconclusive", 0.0, 0.01)))
    assert [k["name"] for k in claims.key_checks(c)] == ["a fail", "big hold"]
    reproduced = dataclasses.replace(c, verdict="reproduced", checks=c.checks[:2])
    assert [k["name"] for k in claims.key_checks(reproduced)] == ["big hold"]
    # a tolerance check is as clear as its distance from its bound, not from zero: -0.2 pts
    # against an allowed -2 is 18 SE clear, ahead of a +0.1 lead 10 SE clear
    tolerant = {**_check("within 2 pts", "holds", -0.002, 0.001), "bound": -0.02}
    both = dataclasses.replace(reproduced, checks=(c.checks[1], tolerant))
    assert [k["name"] for k in claims.key_checks(both)] == ["within 2 pts"]
    with pytest.raises(ValueError, match="verdict='reproduced' contradicts its sub-checks, "
                                         "which give 'partly'"):
        dataclasses.replace(c, verdict="reproduced")


def test_findings_box_has_every_claim_verdict_numbers_and_noise():
    found = [dataclasses.replace(make("C2", verdict="partly"), seeds="1-3",
                                 noise="pooled 0.8 pts", checks=(
        _check("x > y", "holds", 0.1, 0.01, "x vs y: +10.0 pts (±2.0 at 2 SE)"),
        _check("y < z", "fails", -0.1, 0.01, "y vs z: -10.0 pts (±2.0 at 2 SE)"))),
        make("C1", verdict="inconclusive")]
    box = claims.findings_html(found, "cpu")
    assert box.startswith('<div class="admonition tip kd-findings">')
    assert box.index("C1 · inconclusive") < box.index("C2 · partly")  # claim order
    assert "1 of 2 sub-checks hold, 1 fails" in box
    assert "+10.0 pts ± 2.0" in box and "-10.0 pts ± 2.0" in box
    assert "seeds per point: C2 1-3" in box and "pooled 0.8 pts" in box
    assert "1 partly, 1 inconclusive" in box
    assert "<script" not in claims.findings_html([dataclasses.replace(
        make("C3"), claim="a <script> & b")], "cpu")  # text is escaped
    assert "No claims stored" in claims.findings_html([], "smoke")


def test_a_check_says_under_how_many_other_readings_its_outcome_differs():
    fragile = dict(_check("1k: 1000 beats 300", "holds", 0.010, 0.0045,
                          "a vs b: +1.0 pts (±0.9 at 2 SE)"),
                   coarse_outcome="inconclusive", strict_outcome="inconclusive",
                   heldout_outcome="holds", selection_outcome="fails")
    assert claims.robustness(fragile) == "fails or inconclusive under 3 of 4 other readings"
    assert claims.robustness(fragile, names=True).endswith(
        "(noise per training-set size only; at 3 SE; with the selection's noise)")
    firm = dict(fragile, coarse_outcome="holds", strict_outcome="holds",
                selection_outcome="holds")
    assert claims.robustness(firm) == "" and claims.robustness(_check("x", "holds")) == ""
    found = [dataclasses.replace(make("C4", verdict="reproduced"), checks=(fragile,))]
    assert ("(+1.0 pts ± 0.9; fails or inconclusive under 3 of 4 other readings)"
            in claims.findings_html(found, "cpu"))
    assert "| holds (fails or inconclusive under 3 of 4 other readings (noise per" in \
        claims.report(found)


def test_findings_box_says_where_a_claims_own_rule_changed_after_results():
    changed = dataclasses.replace(make("C5", verdict="inconclusive"), own_rule_changed=True)
    box = claims.findings_html([changed, make("C1", verdict="inconclusive")], "cpu")
    assert box.count("its own rule (or what it reads) changed after its results existed") == 1
    assert box.index("C5 · inconclusive") < box.index("its own rule (or what it reads) changed")
    with pytest.raises(ValueError, match="own_rule_changed='yes' must be a bool"):
        dataclasses.replace(make("C5"), own_rule_changed="yes")
    stored = claims.parse({"claims": [dataclasses.asdict(changed)]}, "x.json")
    assert stored[0].own_rule_changed is True


def test_tally_links_each_claim_to_its_chapters_findings():
    found = [make("C1", "01_consistency", "partly"), make("C2", "02_patience", "partly"),
             make("C3", "03_imagenet", "not run")]
    text = claims.tally_markdown(found, "cpu", linked=["01_consistency", "03_imagenet"])
    assert text.startswith("3 claims at the `cpu` preset: ")
    assert "**2** partly ([C1](01_consistency.ipynb#what-we-found), C2)" in text
    assert "**1** not run (C3)" in text and "**0** reproduced," in text


def test_a_verdict_on_fewer_than_three_seeds_is_marked_provisional():
    """The verdict is the written rules' (not changed); the tally and the table say that it
    reads points with fewer seeds than the evidence standard asks."""
    one = dataclasses.replace(make("C1", "01_consistency", "reproduced"), seeds="1")
    mixed = dataclasses.replace(make("C4", "02_patience", "partly"), seeds="1-3")
    three = dataclasses.replace(make("C5", "02_patience", "partly"), seeds="3")
    assert [claims.provisional(c) for c in (one, mixed, three)] == [True, True, False]
    assert not claims.provisional(dataclasses.replace(one, verdict="not run"))
    text = claims.tally_markdown([one, mixed, three], "cpu")
    assert "**1** reproduced ([C1](01_consistency.ipynb#what-we-found)*)" in text
    assert "(C5" not in text and "#what-we-found))" in text  # C5 unmarked
    assert text.endswith("provisional until those points have their replicates and grown "
                         "grids.")
    assert "2 of 3 verdicts read points with fewer than 3 seeds" in text
    table = claims.markdown_table([one, three])
    assert "**reproduced** (provisional: seeds per point 1, fewer than 3)" in table
    assert "**partly** |" in table
    assert "provisional" not in claims.tally_markdown([three], "cpu")


def test_a_verdict_reading_a_point_at_a_grid_edge_is_provisional_at_any_seeds():
    edge = {"name": "a > b at 30 epochs", "outcome": "holds", "detail": "", "at_edge": True}
    inside = {"name": "a > b at 300 epochs", "outcome": "holds", "detail": "", "at_edge": False}
    three = dataclasses.replace(make("C5", "02_patience", "reproduced"), seeds="3",
                                checks=(inside,))
    assert not claims.provisional(three)
    at_edge = dataclasses.replace(three, checks=(edge, inside))
    assert claims.provisional(at_edge) and claims.edge_checks(at_edge) == [edge["name"]]
    assert claims.why_provisional(at_edge) == "1 check read a point selected at its grid's edge"
    both = dataclasses.replace(at_edge, seeds="1-3")
    assert claims.why_provisional(both) == ("seeds per point 1-3, fewer than 3; 1 check read "
                                            "a point selected at its grid's edge")
    assert "(provisional: 1 check read a point" in claims.markdown_table([at_edge])


def test_sensitivity_names_the_checks_and_verdicts_that_rest_on_a_choice_of_rule():
    def check(name, outcome, coarse, strict, heldout, selection, followup=None):
        return {"name": name, "outcome": outcome, "detail": "", "coarse_outcome": coarse,
                "strict_outcome": strict, "heldout_outcome": heldout,
                "selection_outcome": selection, "followup_outcome": followup}

    both = check("a > b", "holds", "inconclusive", "holds", "holds", "holds")
    close = check("c > d", "fails", "fails", "inconclusive", "inconclusive", "inconclusive")
    same = check("e > f", "holds", "holds", "holds", "holds", "holds")
    flag = {"name": "ratio", "outcome": "fails", "detail": "measured 1.1x"}  # no noise read
    one = dataclasses.replace(make("C1"), checks=(both, same))
    two = dataclasses.replace(make("C2", verdict="partly"), checks=(same, close, flag))
    assert claims.verdict_under(one, "coarse_outcome") == "inconclusive"
    assert claims.verdict_under(one, "strict_outcome") == "reproduced"
    assert claims.verdict_under(two, "strict_outcome") == "partly"  # the flag still fails
    text = claims.sensitivity([two, one])
    assert text.startswith("Of 4 sub-checks that read seed noise")
    assert ("*noise per training-set size only*: **1** change outcome, **1** verdicts change "
            "(C1 reproduced -> inconclusive); *at 3 SE*: **1** change outcome, no verdict "
            "changes; *selected runs left out*: **1** change outcome, no verdict changes; "
            "*with the selection's noise*: **1** change outcome, no verdict changes; "
            "*follow-up seeds only*: no sub-check has its points yet.") in text
    assert "| C1 | a > b | holds | inconclusive | holds | holds | holds | - |" in text
    assert "| C2 | c > d | fails | fails | inconclusive | inconclusive | inconclusive | - |" \
        in text
    # a follow-up reading recorded by some checks says how many it reads
    grown = check("g > h", "holds", "holds", "holds", "holds", "holds", "inconclusive")
    three = dataclasses.replace(make("C3"), checks=(grown, same))
    assert ("*follow-up seeds only*: **1** change outcome, **1** verdicts change (C3 "
            "reproduced -> inconclusive) (of 1 that it reads).") in claims.sensitivity([three])
    assert "e > f" not in text
    assert claims.sensitivity([make("C3")]).startswith("No stored sub-check")
    with pytest.raises(ValueError, match="strict_outcome"):
        dataclasses.replace(make("C1"), checks=({**both, "strict_outcome": "maybe"},))


def test_a_verdict_another_reading_would_change_is_marked_in_tally_table_and_box():
    """C1 reproduced, inconclusive under 2 of its 3 recorded readings; C2 the same under all."""
    def check(name, coarse, strict, heldout=None):
        return {"name": name, "outcome": "holds", "detail": "", "coarse_outcome": coarse,
                "strict_outcome": strict, "heldout_outcome": heldout}

    fragile = dataclasses.replace(make("C1", "01_consistency", "reproduced"), checks=(
        check("a > b", "inconclusive", "holds", "holds"),
        check("c > d", "holds", "inconclusive", "holds")))
    firm = dataclasses.replace(make("C2", "01_consistency", "reproduced"), checks=(
        check("e > f", "holds", "holds"),))
    assert claims.verdict_robustness(fragile) == "inconclusive under 2 of 3 other readings"
    assert claims.verdict_robustness(fragile, names=True).endswith(
        "(noise per training-set size only; at 3 SE)")
    assert claims.verdict_robustness(firm) == ""
    assert claims.verdict_robustness(make("C3")) == ""  # no sub-checks, nothing recorded
    text = claims.tally_markdown([firm, fragile], "cpu")
    assert "**2** reproduced ([C1](01_consistency.ipynb#what-we-found)†, [C2](" in text
    assert text.endswith("† 1 of 2 verdicts are another under some alternative reading of "
                         "the rules (the sensitivity table below lists them): C1 "
                         "inconclusive under 2 of 3 other readings.")
    assert "†" not in claims.tally_markdown([firm], "cpu")
    table = claims.markdown_table([fragile, firm])
    assert "| **reproduced** (inconclusive under 2 of 3 other readings) |" in table
    assert "| **reproduced** |" in table  # C2 unmarked
    box = claims.findings_html([fragile, firm], "cpu")
    assert ("C1 · reproduced</b> (2 of 2 sub-checks hold; the verdict is inconclusive under 2 "
            "of 3 other readings of the rules)") in box
    assert "C2 · reproduced</b> (1 of 1 sub-checks hold)." in box


def test_grid_report_counts_checks_at_a_grid_edge_and_at_the_ladders_end():
    def check(name, edge=False, end=False):
        return {"name": name, "outcome": "holds", "detail": "", "at_edge": edge,
                "at_ladder_end": end}

    c1 = dataclasses.replace(make("C1"), checks=(check("a", edge=True), check("b", end=True)))
    c2 = dataclasses.replace(make("C2", "02_patience", verdict="not testable at this scale"),
                             checks=(check("c", end=True), check("d"),
                                     {"name": "e", "outcome": "not testable", "detail": ""}))
    text = claims.grid_report([c2, c1])
    assert text == ("Of 4 sub-checks that compare measured points, 1 read a point selected at "
                    "an edge of its learning-rate grid (C1 1): their verdicts are provisional, "
                    "as the optimum may lie past the edge (each chapter's last cell says whether "
                    "a queue item grows it); 2 read a point selected at the ladder's end that "
                    "no probe one step beyond brackets (the rule grows no further there, so its "
                    "optimum may lie beyond the grid) (C1 1, C2 1; named in each claim's what "
                    "would settle it).")
    assert claims.grid_report([make("C3")]).startswith("No stored sub-check")


def test_a_claim_takes_its_checks_as_check_objects_or_dicts():
    from kdlib import evidence as ev

    check = ev.greater("a > b", ev.Estimate((0.9, 0.9, 0.9)), ev.constant(0.5),
                       ev.Noise(0.01, "t"))
    claim = dataclasses.replace(make("C1"), checks=(check,))
    assert claim.checks == (check.as_dict(),) and claim.verdict == "reproduced"
