"""What changed in the verdicts: claims and sub-checks at a git revision against the store now.

When replicates land or a rule changes, the book is re-executed and every chapter rewrites its
``claims.json``; this compares those files with the ones a revision committed, so a maintainer
(and a closing note) can say which verdicts and sub-check outcomes moved, and on how many seeds::

    python -m kdlib.verdict_diff HEAD~3            # cpu preset, working tree vs HEAD~3
    python -m kdlib.verdict_diff 074e409 --preset cpu --all

A revision that committed no claims at the preset is an error (every claim would read as new).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from kdlib import claims as claims_mod
from kdlib import presets
from kdlib.claims import Claim
from kdlib.store import find_repo_root


@dataclasses.dataclass(frozen=True)
class Change:
    """One claim's verdict, or one of its sub-checks, before and after (None: absent)."""

    id: str
    check: str | None  # None for the claim's verdict
    before: str | None
    after: str | None
    seeds_before: int | str | None = None
    seeds_after: int | str | None = None
    detail: str = ""  # the sub-check's numbers now
    # A verdict's claims.verdict_robustness before and after ('' where no other reading of the
    # rules changes it): a verdict row is listed when this alone changed too.
    other_before: str = ""
    other_after: str = ""

    @property
    def moved(self) -> bool:
        """Whether the verdict or outcome itself changed (not only its seeds)."""
        return self.before != self.after


def diff(before: Iterable[Claim], after: Iterable[Claim], *, every: bool = False
         ) -> list[Change]:
    """Verdict and sub-check changes from ``before`` to ``after``, claims in number order.

    A sub-check changes when its outcome or its seeds differ (new and dropped ones included);
    a verdict when it, or what other readings of the rules make of it
    (:func:`kdlib.claims.verdict_robustness`), differs; ``every`` also lists each unchanged
    verdict, so the result reads as the whole tally.
    """
    old = {c.id: c for c in before}
    new = {c.id: c for c in after}
    out = []
    for cid in sorted(set(old) | set(new), key=lambda i: int(i[1:])):
        was, now = old.get(cid), new.get(cid)
        other = [claims_mod.verdict_robustness(c) if c else "" for c in (was, now)]
        if (every or was is None or now is None or was.verdict != now.verdict
                or other[0] != other[1]):
            out.append(Change(cid, None, None if was is None else was.verdict,
                              None if now is None else now.verdict,
                              None if was is None else was.seeds,
                              None if now is None else now.seeds,
                              other_before=other[0], other_after=other[1]))
        checks_before = {k["name"]: k for k in (was.checks if was else ())}
        checks_after = {k["name"]: k for k in (now.checks if now else ())}
        for name in [*checks_after, *(n for n in checks_before if n not in checks_after)]:
            a, b = checks_before.get(name), checks_after.get(name)
            pair = [(k or {}).get(f) for k in (a, b) for f in ("outcome", "seeds")]
            if pair[0] != pair[2] or pair[1] != pair[3]:
                out.append(Change(cid, name, pair[0], pair[2], pair[1], pair[3],
                                  (b or a or {}).get("detail", "")))
    return out


def claims_at(rev: str, preset: str, repo: str | Path | None = None) -> list[Claim]:
    """Every chapter's claims at git revision ``rev`` (``results/<preset>/*/claims.json``)."""
    repo = Path(repo) if repo is not None else find_repo_root()
    base = Path("results") / preset

    def git(*args: str) -> str:
        found = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
        if found.returncode:
            raise ValueError(f"git {' '.join(args)} failed in {repo}: {found.stderr.strip()}")
        return found.stdout

    try:
        git("rev-parse", "--verify", f"{rev}^{{commit}}")
    except ValueError:
        raise ValueError(f"revision {rev!r} is not a commit in {repo}: give a git revision "
                         "such as HEAD, HEAD~3 or a commit hash") from None
    paths = [p for p in git("ls-tree", "-r", "--name-only", rev, "--", f"{base}/").splitlines()
             if p.endswith(f"/{claims_mod.CLAIMS_FILE}") and p.count("/") == base.as_posix()
             .count("/") + 2]
    found: list[Claim] = []
    for path in paths:
        try:
            stored = json.loads(git("show", f"{rev}:{path}"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{rev}:{path} is not valid JSON ({err})") from None
        found.extend(claims_mod.parse(stored, f"{rev}:{path}"))
    return sorted(found, key=lambda c: c.number)


def markdown(changes: Sequence[Change]) -> str:
    """The changes as two markdown tables (verdicts, then sub-checks); a line when none."""
    verdicts = [c for c in changes if c.check is None]
    checks = [c for c in changes if c.check is not None]
    if not changes:
        return "No verdict or sub-check changed.\n"
    lines = []
    if verdicts:
        lines += ["| claim | before | after | seeds per point | under other readings |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {c.id} | {c.before or '-'} | {c.after or '-'}"
                  f"{' (changed)' if c.moved else ''} | {c.seeds_before or '-'} -> "
                  f"{c.seeds_after or '-'} | {_other(c)} |" for c in verdicts]
        lines.append("")
    if checks:
        lines += ["| claim | sub-check | before | after | numbers now |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {c.id} | {_cell(c.check)} | {_outcome(c.before, c.seeds_before)} | "
                  f"{_outcome(c.after, c.seeds_after)} | {_cell(c.detail)} |" for c in checks]
    return "\n".join(lines) + "\n"


def _other(change: Change) -> str:
    """'the same under every reading -> inconclusive under 2 of 5 other readings'."""
    def one(text: str) -> str:
        return text or "the same under every reading"

    if change.other_before == change.other_after:
        return one(change.other_after)
    return f"{one(change.other_before)} -> {one(change.other_after)}"


def _outcome(outcome: str | None, seeds: int | str | None) -> str:
    return "-" if outcome is None else f"{outcome} (n={seeds})" if seeds else outcome


def _cell(text: str | None) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def parser() -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(prog="python -m kdlib.verdict_diff",
                                  description=__doc__.splitlines()[0])
    out.add_argument("rev", help="git revision whose committed claims to compare against")
    out.add_argument("--preset", default=presets.DEFAULT_PRESET, choices=presets.PRESETS)
    out.add_argument("--all", action="store_true", help="list unchanged verdicts too")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: the changes as markdown; a bad revision, or one that stored no claims at
    the preset (every claim would read as new), is a usage error."""
    cli = parser()
    args = cli.parse_args(argv)
    try:
        before = claims_at(args.rev, args.preset)
    except ValueError as err:  # bad input: one line, no traceback
        cli.error(str(err))
    if not before:
        cli.error(f"revision {args.rev!r} holds no stored claims at preset {args.preset!r} "
                  f"(no results/{args.preset}/*/{claims_mod.CLAIMS_FILE} there): give a "
                  "revision that committed that preset's claims")
    after = claims_mod.load(args.preset)
    print(markdown(diff(before, after, every=args.all)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
