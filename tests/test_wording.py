"""The counted-noun helper every generated sentence uses."""

from kdlib import wording


def test_count_is_plural_unless_one():
    assert wording.count(1, "point") == "1 point"
    assert wording.count(0, "point") == "0 points"
    assert wording.count(3, "point") == "3 points"
    assert wording.count(1.0, "epoch") == "1 epoch"
    assert wording.count(2.5, "epoch") == "2.5 epochs"
    assert wording.count(1000.0, "epoch") == "1000 epochs"
    assert wording.count(2, "policy", "policies") == "2 policies"
    assert wording.count(1, "policy", "policies") == "1 policy"


def test_is_are_agrees_with_the_count():
    assert [wording.is_are(n) for n in (0, 1, 2)] == ["are", "is", "are"]
