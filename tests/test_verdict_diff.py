"""kdlib.verdict_diff: verdict and sub-check changes between a git revision and the store."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from kdlib import claims, verdict_diff
from kdlib.claims import Claim


def claim(cid: str, verdict: str, *checks: tuple[str, str, int], seeds: str = "3") -> Claim:
    return Claim(id=cid, claim=f"statement {cid}", paper="p", ours="o", verdict=verdict,
                 chapter="01_consistency", seeds=seeds,
                 checks=tuple({"name": n, "outcome": o, "detail": f"{n} numbers", "seeds": s}
                              for n, o, s in checks))


def test_diff_lists_moved_verdicts_and_checks_whose_outcome_or_seeds_changed():
    before = [claim("C1", "inconclusive", ("a", "inconclusive", 1), ("b", "holds", 1)),
              claim("C10", "partly", ("c", "holds", 3), ("d", "fails", 3)),
              claim("C2", "reproduced", ("e", "holds", 1), ("gone", "holds", 1))]
    after = [claim("C1", "reproduced", ("a", "holds", 1), ("b", "holds", 3)),
             claim("C10", "partly", ("c", "holds", 3), ("d", "fails", 3)),
             claim("C2", "reproduced", ("e", "holds", 1), ("new", "holds", 3))]
    changes = verdict_diff.diff(before, after)
    assert [(c.id, c.check, c.before, c.after) for c in changes] == [
        ("C1", None, "inconclusive", "reproduced"),
        ("C1", "a", "inconclusive", "holds"),
        ("C1", "b", "holds", "holds"),  # same outcome, 1 -> 3 seeds
        ("C2", "new", None, "holds"),
        ("C2", "gone", "holds", None),
    ]
    assert [c.moved for c in changes] == [True, True, False, True, True]
    assert (changes[2].seeds_before, changes[2].seeds_after) == (1, 3)
    every = verdict_diff.diff(before, after, every=True)
    assert [c.id for c in every if c.check is None] == ["C1", "C2", "C10"]
    assert verdict_diff.diff(after, after) == []
    text = verdict_diff.markdown(changes)
    assert ("| C1 | inconclusive | reproduced (changed) | 3 -> 3 | the same under every "
            "reading |") in text
    assert "| C1 | b | holds (n=1) | holds (n=3) | b numbers |" in text
    assert "| C2 | gone | holds (n=1) | - | gone numbers |" in text
    assert verdict_diff.markdown([]) == "No verdict or sub-check changed.\n"


def test_a_verdict_row_is_listed_when_only_what_other_readings_make_of_it_changed():
    """Replicates can firm a verdict without moving it: C1 stays reproduced, but a 3 SE bar
    no longer makes it inconclusive; the diff lists the row and says so."""
    firm = claim("C1", "reproduced", ("a", "holds", 3))
    fragile = dataclasses.replace(firm, checks=({**firm.checks[0],
                                                 "strict_outcome": "inconclusive"},))
    assert claims.verdict_robustness(fragile) == "inconclusive under 1 of 1 other reading"
    changes = verdict_diff.diff([fragile], [firm])
    assert [(c.id, c.check, c.moved) for c in changes] == [("C1", None, False)]
    assert ("| C1 | reproduced | reproduced | 3 -> 3 | inconclusive under 1 of 1 other reading "
            "-> the same under every reading |") in verdict_diff.markdown(changes)
    assert verdict_diff.diff([fragile], [fragile]) == []


def test_claims_at_reads_a_revisions_committed_claims(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "kdlib").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    monkeypatch.delenv("KDLIB_RESULTS", raising=False)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    first = claim("C1", "inconclusive", ("a", "inconclusive", 1))
    claims.save([first], "cpu", "01_consistency", root=repo / "results")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    claims.save([dataclasses.replace(first, verdict="reproduced", checks=(
        {"name": "a", "outcome": "holds", "detail": "", "seeds": 3},))], "cpu",
        "01_consistency", root=repo / "results")
    assert verdict_diff.claims_at("HEAD", "cpu", repo) == [first]
    assert verdict_diff.claims_at("HEAD", "gpu", repo) == []
    changes = verdict_diff.diff(verdict_diff.claims_at("HEAD", "cpu", repo),
                                claims.load("cpu", root=repo / "results"))
    assert [(c.check, c.before, c.after) for c in changes] == [
        (None, "inconclusive", "reproduced"), ("a", "inconclusive", "holds")]
    with pytest.raises(ValueError, match="no-such-rev"):
        verdict_diff.claims_at("no-such-rev", "cpu", repo)


def _repo_with_one_commit(tmp_path, monkeypatch):
    """A git checkout (cwd) whose only commit holds no claims; cpu claims in the working tree."""
    repo = tmp_path / "repo"
    (repo / "kdlib").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    monkeypatch.delenv("KDLIB_RESULTS", raising=False)
    monkeypatch.chdir(repo)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "no claims yet"], check=True)
    claims.save([claim("C1", "reproduced")], "cpu", "01_consistency", root=repo / "results")
    return repo


@pytest.mark.parametrize("argv, names", [
    (["HEAD", "--preset", "bogus"], ["'bogus'", "'cpu'", "'paper'"]),
    (["bogusrev"], ["'bogusrev'", "git revision"]),
    (["HEAD"], ["'HEAD'", "no stored claims at preset 'cpu'", "results/cpu/*/claims.json"]),
])
def test_the_command_line_refuses_a_bad_preset_or_revision_in_one_line(
        argv, names, tmp_path, monkeypatch, capsys):
    """An unknown preset or revision, or one that stored no claims (every claim would read as
    changed from "-"), is a usage error naming it and what is allowed, not a silent result."""
    _repo_with_one_commit(tmp_path, monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        verdict_diff.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr()
    assert not err.out and all(n in err.err.splitlines()[-1] for n in names), err.err
