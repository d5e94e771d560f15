"""The paper's claims, our evidence and a verdict, stored per chapter for the summary chapter.

Each chapter notebook ends with the claims it tests and saves them with `save(claims, preset,
section)` to `results/<preset>/<section>/claims.json`; the summary chapter reads them all back
with `load(preset)`, so its table is generated from the chapters, never typed by hand. Chapters
may also save their analog of a paper table as `results/<preset>/<section>/table_*.csv`
(`chapter_tables` finds them); `table_<N>_<what>.csv` is the analog of the paper's Table N.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdlib import wording
from kdlib.evidence import OUTCOMES as EVIDENCE_OUTCOMES
from kdlib.evidence import VERDICTS as EVIDENCE_VERDICTS
from kdlib.store import read_json, results_root, write_json_atomic

if TYPE_CHECKING:
    import pandas as pd

VERDICTS = (*EVIDENCE_VERDICTS, "not run")
CLAIMS_FILE = "claims.json"
TABLE_GLOB = "table_*.csv"
COLUMNS = ("id", "claim", "paper", "ours", "verdict", "chapter")
# Evidence fields (issue 13): sub-checks, noise, seeds per point, scale, what would settle it,
# a note when the rule changed after results existed, and the verdict on the shorter
# schedules (issue 14: kdlib.experiments.schedule_effect). Optional when read back.
EVIDENCE = ("checks", "noise", "seeds", "scale", "settle", "rule_note", "own_rule_changed",
            "at_shorter")

_ID = re.compile(r"^C([1-9][0-9]*)$")
_PAPER_TABLE = re.compile(r"^table_([1-9][0-9]*)(_.*)?$")
_CHAPTER = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of the paper, the paper's evidence, ours, and the verdict on it.

    id: "C1", "C2", ...; claim: the paper's statement in one sentence; paper: the paper's
    number or evidence; ours: our measured evidence, with numbers; verdict: one of VERDICTS;
    chapter: the notebook stem that tests it (e.g. "01_consistency").
    """

    id: str
    claim: str
    paper: str
    ours: str
    verdict: str
    chapter: str
    # Each sub-check as {"name", "outcome", "detail", "margin", "se", "seeds",
    # "coarse_outcome", "strict_outcome", "heldout_outcome", "selection_outcome",
    # "followup_outcome", "noise", ...}
    # (kdlib.evidence.Check).
    checks: tuple[dict[str, Any], ...] = ()
    noise: str = ""  # the seed noise the checks used, and where it came from
    seeds: str = ""  # seeds per point read, e.g. "3" or "1-3"
    scale: str = ""  # our longest schedule and data size against the paper's
    settle: str = ""  # what would settle the claim (when not reproduced outright)
    rule_note: str = ""  # set when the rule was changed after its results existed
    # True when this claim's own rule (not only the rules common to all) changed after its
    # results existed: the findings box says so beside the verdict.
    own_rule_changed: bool = False
    # The verdict the same rules give on the schedule lengths the chapter showed before the
    # longer ones of issue 14 (kdlib.experiments.schedule_effect); "" where it has none.
    at_shorter: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", tuple(  # a Check or its dict
            c.as_dict() if hasattr(c, "as_dict") else dict(c) for c in self.checks))
        for check in self.checks:
            if check.get("outcome") not in EVIDENCE_OUTCOMES or any(
                    check.get(r) not in (*EVIDENCE_OUTCOMES, None) for r in ALTERNATIVES):
                raise ValueError(f"Claim {self.id} check {check!r}: outcome must be one of "
                                 f"{EVIDENCE_OUTCOMES} (and so must "
                                 f"{' and '.join(ALTERNATIVES)} where given)")
        if self.checks and self.verdict in VERDICTS and self.verdict != "not run":
            follows = verdict_under(self, "outcome")
            if self.verdict != follows:
                raise ValueError(f"Claim {self.id} verdict={self.verdict!r} contradicts its "
                                 f"sub-checks, which give {follows!r} "
                                 "(kdlib.evidence.combine)")
        if not isinstance(self.own_rule_changed, bool):
            raise ValueError(f"Claim.own_rule_changed={self.own_rule_changed!r} must be a bool")
        for field in dataclasses.fields(self):
            if field.name in ("checks", "own_rule_changed"):
                continue
            value = getattr(self, field.name)
            if not isinstance(value, str):
                raise ValueError(
                    f"Claim.{field.name}={value!r} must be a str, got {type(value).__name__}"
                )
        if not _ID.match(self.id):
            raise ValueError(f"Claim id={self.id!r} must be 'C' then a number: C1, C2, ..., C13")
        if self.verdict not in VERDICTS:
            raise ValueError(f"Claim {self.id} verdict={self.verdict!r}; allowed: {VERDICTS}")
        if not _CHAPTER.match(self.chapter) or self.chapter in (".", ".."):
            raise ValueError(
                f"Claim {self.id} chapter={self.chapter!r} must be a notebook stem such as "
                "'01_consistency' (letters, digits, '_', '-', '.', '+')"
            )
        for name in ("claim", "paper", "ours"):
            if not getattr(self, name).strip():
                raise ValueError(f"Claim {self.id} has an empty {name!r}; say what it is")

    @property
    def number(self) -> int:
        """The claim's number (C10 -> 10), for sorting C2 before C10."""
        return int(self.id[1:])


def _sorted(claims: Iterable[Claim]) -> list[Claim]:
    """Claims by number (C2 < C10); a claim tested in two chapters keeps chapter order."""
    return sorted(claims, key=lambda c: (c.number, c.chapter))


def claims_path(preset: str, section: str, root: str | os.PathLike | None = None) -> Path:
    """Where one chapter's claims live: `<results root>/<preset>/<section>/claims.json`."""
    for name, value in (("preset", preset), ("section", section)):
        if not isinstance(value, str) or not _CHAPTER.match(value) or value in (".", ".."):
            raise ValueError(f"{name}={value!r} must be a folder name such as 'cpu' or '01_x'")
    return results_root(root) / preset / section / CLAIMS_FILE


def save(
    claims: Iterable[Claim], preset: str, section: str, root: str | os.PathLike | None = None
) -> Path:
    """Store one chapter's claims (replacing what it stored before); returns the file's path.

    Every claim's chapter must be `section` and ids must not repeat within a chapter.
    """
    claims = list(claims)
    for claim in claims:
        if not isinstance(claim, Claim):
            raise ValueError(f"save() takes Claim objects, got {type(claim).__name__}")
        if claim.chapter != section:
            raise ValueError(
                f"Claim {claim.id} has chapter={claim.chapter!r} but is saved in section "
                f"{section!r}; a chapter stores only its own claims"
            )
    ids = [c.id for c in claims]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"claim ids {repeated} appear more than once in section {section!r}")
    path = claims_path(preset, section, root)
    write_json_atomic(path, {"claims": [dataclasses.asdict(c) for c in _sorted(claims)]})
    return path


def _read(path: Path) -> list[Claim]:
    """The claims in one claims.json, with a ValueError naming the file when malformed."""
    return parse(read_json(path), path)


def parse(stored: Any, where: str | os.PathLike) -> list[Claim]:
    """The claims of one claims.json's content (``{"claims": [...]}``); a ValueError naming
    ``where`` (the file, or a git revision and path) when malformed."""
    rows = stored.get("claims") if isinstance(stored, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{where} must hold {{'claims': [...]}}")
    claims = []
    for row in rows:
        if (not isinstance(row, dict) or not set(COLUMNS) <= set(row)
                or not set(row) <= set(COLUMNS) | set(EVIDENCE)):
            raise ValueError(f"{where}: claim entry {row!r} must have the keys {COLUMNS} "
                             f"and optionally {EVIDENCE}")
        try:
            claims.append(Claim(**row))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
    return claims


def load(preset: str, root: str | os.PathLike | None = None) -> list[Claim]:
    """Every chapter's stored claims under `<results root>/<preset>/`, sorted by claim number.

    An empty list when nothing is stored (e.g. at the smoke preset).
    """
    base = claims_path(preset, "any", root).parent.parent
    claims: list[Claim] = []
    for path in sorted(base.glob(f"*/{CLAIMS_FILE}")):
        claims.extend(_read(path))
    return _sorted(claims)


def verdict_counts(claims: Iterable[Claim]) -> dict[str, int]:
    """How many claims got each verdict, in VERDICTS order (zeros included)."""
    counts = dict.fromkeys(VERDICTS, 0)
    for claim in claims:
        counts[claim.verdict] += 1
    return counts


def table(claims: Iterable[Claim]) -> pd.DataFrame:
    """One row per claim (columns COLUMNS); `chapter` is the notebook stem a link points to."""
    import pandas as pd

    return pd.DataFrame([dataclasses.asdict(c) for c in _sorted(claims)], columns=list(COLUMNS))


def _cell(text: Any) -> str:
    """Text safe inside one markdown table cell: no newlines, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown_table(claims: Iterable[Claim], link_suffix: str = ".ipynb",
                   linked: Collection[str] | None = None, noise: bool = True) -> str:
    """The claims as a markdown table whose chapter cells link to `<chapter><link_suffix>`.

    Rendered with IPython.display.Markdown, the links work in Jupyter and in Jupyter Book
    (which maps `01_x.ipynb` to the chapter's page). With ``linked``, only those chapters
    are links: a chapter not in the book yet, or a chapter's table of its own claims
    (``linked=()``: Jupyter Book leaves a page's link to itself unresolved), names it.
    Without ``noise`` the rows leave out the claims' noise line (a page that shows the
    pools once: it is the same store-wide text in every claim).
    """
    header = ["id", "the paper's claim", "paper", "ours", "verdict", "sub-checks", "chapter"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for c in _sorted(claims):
        link = (f"[{c.chapter}]({c.chapter}{link_suffix})"
                if linked is None or c.chapter in linked else f"`{c.chapter}`")
        notes = ([f"provisional: {why_provisional(c)}"] if provisional(c) else []) + (
            [fragile] if (fragile := verdict_robustness(c)) else [])
        verdict = f"**{c.verdict}**" + (f" ({'; '.join(notes)})" if notes else "")
        cells = [c.id, c.claim, c.paper, c.ours, verdict, checks_text(c, noise), link]
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


# The evidence standard: a verdict reads means over at least this many seeds per point.
MIN_SEEDS = 3


def _few_seeds(claim: Claim) -> bool:
    if not claim.seeds or claim.verdict == "not run":
        return False
    try:
        return int(str(claim.seeds).split("-")[0]) < MIN_SEEDS
    except ValueError:
        return False


def edge_checks(claim: Claim) -> list[str]:
    """The sub-checks that compare a point selected at a grid edge the ladder goes beyond."""
    return [c["name"] for c in claim.checks if c.get("at_edge")]


def provisional(claim: Claim) -> bool:
    """Whether the claim reads a point with fewer than :data:`MIN_SEEDS` seeds (``seeds``
    "1" or "1-3") or a point selected at a grid edge (:func:`edge_checks`): its verdict
    stands by the written rules but is provisional until the replicates and grown grids are
    stored."""
    return claim.verdict != "not run" and (_few_seeds(claim) or bool(edge_checks(claim)))


def why_provisional(claim: Claim) -> str:
    """``seeds per point 1-3, fewer than 3; 2 checks read a point at a grid edge``."""
    parts = [f"seeds per point {claim.seeds}, fewer than {MIN_SEEDS}"] if _few_seeds(claim) \
        else []
    edges = edge_checks(claim)
    if edges:
        parts.append(f"{wording.count(len(edges), 'check')} read a point "
                     "selected at its grid's edge")
    return "; ".join(parts)


def checks_text(claim: Claim, noise: bool = True) -> str:
    """The sub-checks in one line: ``holds: name; inconclusive: name (seeds n, noise)``
    (without the noise line unless ``noise``)."""
    if not claim.checks:
        return ""
    parts = [f"{c['outcome']}: {c['name']}" for c in claim.checks]
    tail = "; ".join(x for x in (f"seeds per point {claim.seeds}" if claim.seeds else "",
                                 claim.noise if noise else "") if x)
    return "; ".join(parts) + (f" ({tail})" if tail else "")


def split_rule_notes(claims: Iterable[Claim], common: str | None = None
                     ) -> tuple[str, dict[str, str]]:
    """(the rule note every one of ``claims`` opens with, each claim's own remainder by id):
    the changes all rules lived through are said once, each claim's own beside it. The shared
    part is ``common`` (the history every rule lived through, e.g. ``verdicts.RULE_NOTE``)
    where every note opens with its whole changes (:func:`rule_entries`, the split the
    chapters list them by), so a chapter of one claim splits too; else the whole changes every
    note opens with; ("", every note) where fewer than 2 claims carry a note or they share
    no whole change."""
    claims = list(claims)
    entries = [rule_entries(c.rule_note) for c in claims]
    n = 0
    shared = rule_entries(common) if common else []
    if claims and shared and all(e[:len(shared)] == shared for e in entries):
        n = len(shared)
    elif len(claims) > 1 and all(entries):
        while all(len(e) > n and e[n] == entries[0][n] for e in entries):
            n += 1
    return "; ".join(entries[0][:n]) if n else "", {
        c.id: "; ".join(e[n:]) for c, e in zip(claims, entries, strict=True)}


def rule_entries(note: str) -> list[str]:
    """A rule note's changes, one per entry, in order: the note split at each "; " outside
    parentheses (the notes' separator between changes; one inside parentheses belongs to its
    change)."""
    entries, depth, start = [], 0, 0
    for i, char in enumerate(note):
        depth += (char == "(") - (char == ")")
        if depth == 0 and note.startswith("; ", i):
            entries.append(note[start:i])
            start = i + 2
    entries.append(note[start:])
    return [e.strip() for e in entries if e.strip()]


def rule_list(note: str, indent: str = "") -> str:
    """A rule note as a numbered markdown list, one change per item (:func:`rule_entries`),
    each line prefixed with ``indent`` (to nest it under a bullet): a history of several
    changes reads as a list, not as one paragraph."""
    return "\n".join(f"{indent}{n}. {e[0].upper()}{e[1:]}."
                     for n, e in enumerate(rule_entries(note), 1))


def report(claims: Iterable[Claim], common: str | None = None) -> str:
    """A chapter's claims as markdown: the claims table (no self-links), then each sub-check
    with its numbers, then the noise, seeds, scale and what would settle each claim, and the
    rule changes (``common``: those every rule lived through, :func:`split_rule_notes`)."""
    claims = _sorted(claims)
    shared = {c.noise for c in claims} if len(claims) > 1 else set()
    one_noise = len(shared) == 1 and "" not in shared  # said once, below the claims
    common_note, own_note = split_rule_notes(claims, common)
    lines = [markdown_table(claims, linked=(), noise=not one_noise), "",
             "| id | sub-check | outcome | numbers |", "| --- | --- | --- | --- |"]
    lines += [f"| {c.id} | {_cell(k['name'])} | {k['outcome']}"
              + (f" ({robustness(k, names=True)})" if robustness(k) else "")
              + f" | {_cell(k['detail'])}"
              + (f"; per-run noise: {_cell(k['noise'])}" if k.get("noise") else "") + " |"
              for c in claims for k in c.checks]
    lines.append("")
    for c in claims:
        facts = [f"seeds per point: {c.seeds}" if c.seeds else "",
                 "" if one_noise else c.noise and f"noise: {c.noise}",
                 c.scale, c.settle and f"to settle it: {c.settle}"]
        said = "; ".join(f for f in facts if f)
        if own_note[c.id]:
            lines += [f"- **{c.id}**: " + (f"{said}. Its own rule changes:" if said
                                             else "its own rule changes:"),
                      rule_list(own_note[c.id], indent="   ")]
        elif said:
            lines.append(f"- **{c.id}**: {said}.")
    if common_note:
        lines += ["- **Rules** (every claim above), their changes in order:",
                  rule_list(common_note, indent="   ")]
    if one_noise:
        lines.append(f"- **Seed noise** (every claim above; each sub-check names the pool "
                     f"its points read): {claims[0].noise}.")
    return "\n".join(lines) + "\n"


# The alternative readings of every sub-check (kdlib.evidence.READINGS), as the summary names
# them: noise pooled per training-set size only (the rule until late on 2026-12-04), the
# stricter 3 SE bar, the held-out seeds only (each point without its validation-selected
# run, which reads optimistic: the winner's curse), and each point's selection noise added to
# the SE (how far it moves when its grid is selected again: kdlib.evidence.selection_sd),
# and, where a seed follow-up grew the points (kdlib.experiments.queue_plan.ITEM_SEEDS), its new
# seeds only (the first seeds prompted the follow-up, so they lean the way they looked;
# added 2026-12-05, before any follow-up seed was trained: kdlib.evidence.Estimate.followup).
ALTERNATIVES = {"coarse_outcome": "noise per training-set size only",
                "strict_outcome": "at 3 SE",
                "heldout_outcome": "selected runs left out",
                "selection_outcome": "with the selection's noise",
                "followup_outcome": "follow-up seeds only"}


def _under(outcome: str, under: dict[str, str], names: bool) -> str:
    """'fails or inconclusive under 3 of 4 other readings' from each recorded reading's
    outcome (``under``: reading -> outcome); '' when every one agrees with ``outcome``."""
    differ = [r for r, o in under.items() if o != outcome]
    if not differ:
        return ""
    outcomes = sorted({under[r] for r in differ})
    which = f" ({'; '.join(ALTERNATIVES[r] for r in differ)})" if names else ""
    return (f"{' or '.join(outcomes)} under {len(differ)} of {len(under)} other "
            f"reading{'s' if len(under) != 1 else ''}{which}")


def robustness(check: dict[str, Any], names: bool = False) -> str:
    """'inconclusive under 4 of 5 other readings' ('' when every reading the check records
    agrees with its outcome): how far its outcome rests on the rule's choices rather than on
    the runs; ``names`` adds which readings, e.g. '(at 3 SE; selected runs left out)'."""
    return _under(check["outcome"], {r: check[r] for r in ALTERNATIVES if check.get(r)}, names)


def verdict_robustness(claim: Claim, names: bool = False) -> str:
    """The claim's :func:`robustness`: 'inconclusive under 4 of 5 other readings' when its
    verdict is another under some alternative reading its sub-checks record ('' when none
    is), so a tally shows at a glance which verdicts rest on a choice of the rules."""
    from kdlib import evidence

    if not claim.checks:
        return ""
    return _under(claim.verdict, evidence.verdicts_under(_as_checks(claim)), names)


def _as_checks(claim: Claim) -> list[Any]:
    """The claim's stored sub-checks as :class:`kdlib.evidence.Check` (their outcomes only)."""
    from kdlib import evidence

    fields = ("name", "outcome", "detail", *ALTERNATIVES)

    def check(c: dict[str, Any]) -> evidence.Check:
        kw: dict[str, Any] = {k: c.get(k) for k in fields}
        return evidence.Check(**kw)

    return [check(c) for c in claim.checks]


def verdict_under(claim: Claim, reading: str) -> str:
    """The verdict the claim's sub-checks give under ``reading`` (an alternative outcome each
    check records, :data:`ALTERNATIVES`; a check without it counts with its outcome)."""
    from kdlib import evidence

    if not claim.checks:
        return claim.verdict
    return evidence.combine(_as_checks(claim), reading=reading)


def sensitivity(claims: Iterable[Claim]) -> str:
    """Markdown: the sub-checks and verdicts that change under each alternative reading
    (:data:`ALTERNATIVES`: the seed noise pooled per training-set size only instead of per
    size and schedule length; a 3 SE bar instead of 2; the selected runs left out; the
    selection's noise added), so a reader sees which verdicts rest on a choice of the rules
    rather than on the runs."""
    claims = _sorted(claims)
    read = sum(any(k.get(r) for r in ALTERNATIVES) for c in claims for k in c.checks)
    if not read:
        return "No stored sub-check records its outcome under the alternative rules yet."
    heads, rows = [], []
    for reading, name in ALTERNATIVES.items():
        moved = {(c.id, k["name"]) for c in claims for k in c.checks
                 if k.get(reading) and k[reading] != k["outcome"]}
        changed = [f"{c.id} {c.verdict} -> {verdict_under(c, reading)}" for c in claims
                   if verdict_under(c, reading) != c.verdict]
        recorded = sum(bool(k.get(reading)) for c in claims for k in c.checks)
        if not recorded:  # e.g. the follow-up reading before any follow-up seed is stored
            heads.append(f"*{name}*: no sub-check has its points yet")
            continue
        heads.append(f"*{name}*: **{len(moved)}** change outcome, " + (
            f"**{len(changed)}** verdicts change ({', '.join(changed)})" if changed
            else "no verdict changes") + ("" if recorded == read else
                                          f" (of {recorded} that it reads)"))
        rows += [key for key in moved if key not in rows]
    lines = [f"Of {read} sub-checks that read seed noise (decided at 2 SE, noise pooled per "
             "training-set size and schedule length): " + "; ".join(heads) + "."]
    if rows:
        checks = {(c.id, k["name"]): k for c in claims for k in c.checks}
        order = {c.id: i for i, c in enumerate(claims)}
        lines += ["", "| id | sub-check | the rule | " + " | ".join(ALTERNATIVES.values())
                  + " |", "| --- | --- | --- | " + " | ".join("---" for _ in ALTERNATIVES)
                  + " |"]
        for cid, name in sorted(rows, key=lambda r: (order[r[0]], r[1])):
            k = checks[(cid, name)]
            lines.append(f"| {cid} | {_cell(name)} | {k['outcome']} | " + " | ".join(
                k.get(r) or "-" for r in ALTERNATIVES) + " |")
    return "\n".join(lines) + "\n"


def grid_report(claims: Iterable[Claim]) -> str:
    """One paragraph on the grids the verdicts read: how many sub-checks read a point selected
    at a grid edge (their verdicts are provisional) and how many a point
    at the ladder's end that no stored probe beyond it brackets (the optimum may lie beyond
    the grid: said, not resolved), by claim."""
    claims = _sorted(claims)
    measured = [k for c in claims for k in c.checks if k.get("at_edge") is not None]
    if not measured:
        return "No stored sub-check compares measured points yet."

    def ids(key: str) -> tuple[int, str]:
        hit = {c.id: sum(bool(k.get(key)) for k in c.checks) for c in claims}
        found = [f"{cid} {n}" for cid, n in hit.items() if n]
        return sum(hit.values()), ", ".join(found)

    edge, edge_ids = ids("at_edge")
    end, end_ids = ids("at_ladder_end")
    text = (f"Of {len(measured)} sub-checks that compare measured points, {edge} read a point "
            "selected at an edge of its learning-rate grid"
            + (f" ({edge_ids}): their verdicts are provisional, as the optimum may lie past "
               "the edge (each chapter's last cell says whether a queue item grows it)"
               if edge else "")
            + f"; {end} read a point selected at the ladder's end that no probe one step "
            "beyond brackets (the rule grows no further there, so its optimum may lie beyond "
            "the grid)")
    return text + (f" ({end_ids}; named in each claim's what would settle it)." if end else ".")


def checks_table(claims: Iterable[Claim]) -> pd.DataFrame:
    """One row per sub-check of each claim: id, check, outcome and its numbers."""
    import pandas as pd

    rows = [{"id": c.id, "check": k["name"], "outcome": k["outcome"], "numbers": k["detail"]}
            for c in _sorted(claims) for k in c.checks]
    return pd.DataFrame(rows, columns=["id", "check", "outcome", "numbers"])


def chapter_tables(preset: str, root: str | os.PathLike | None = None) -> dict[str, list[Path]]:
    """Each chapter's stored analog tables `<preset>/<section>/table_*.csv`, by section name."""
    base = claims_path(preset, "any", root).parent.parent
    found: dict[str, list[Path]] = {}
    for path in sorted(base.glob(f"*/{TABLE_GLOB}")):
        found.setdefault(path.parent.name, []).append(path)
    return found


def paper_table_number(path: str | os.PathLike) -> int | None:
    """N for a chapter table named `table_<N>.csv` or `table_<N>_<what>.csv`, else None."""
    found = _PAPER_TABLE.match(Path(path).stem)
    return int(found.group(1)) if found else None


# --------------------------------------------------------------------------- findings first

# Each chapter opens with a "What we found" heading (a markdown cell: Jupyter Book makes it the
# anchor ``#what-we-found`` with ``myst_heading_anchors``) above the box :func:`findings_html`
# renders; the summary's tally links each claim to it (:func:`tally_markdown`).
FINDINGS_ANCHOR = "what-we-found"
FINDINGS_CLASS = "kd-findings"
_ORDER = {"fails": 0, "holds": 1, "inconclusive": 2, "not testable": 3}
_NUMBER = re.compile(r":\s*([+\-−]?\d[\d.]*(?:\s*pts)?)\s*\(±\s*([\d.]+)(?:\s*pts)?")


def check_numbers(check: dict[str, Any]) -> str:
    """The key number of a sub-check: '+8.3 pts ± 2.8' (difference ± 2 standard errors) when
    its detail has one, else the detail itself ('measured 1.06x')."""
    detail = " ".join(str(check.get("detail", "")).split())
    found = _NUMBER.search(detail)
    if found:
        value, spread = found.group(1).replace("−", "-"), found.group(2)
        return f"{value} ± {spread}"
    return detail


def key_checks(claim: Claim, most: int = 2) -> list[dict[str, Any]]:
    """The sub-checks that best show a verdict: for *partly* the clearest failing and the
    clearest holding one, else the clearest of the outcome that decided it."""

    def strength(check: dict[str, Any]) -> float:  # standard errors clear of its bound
        margin, se, bound = check.get("margin"), check.get("se"), check.get("bound")
        bound = bound if isinstance(bound, (int, float)) else 0.0
        if isinstance(margin, (int, float)) and isinstance(se, (int, float)) and se > 0:
            return abs(margin - bound) / se
        return 0.0

    def best(outcome: str) -> list[dict[str, Any]]:
        picked = [c for c in claim.checks if c["outcome"] == outcome]
        return sorted(picked, key=strength, reverse=True)[:1]

    if claim.verdict == "partly":
        chosen = best("fails") + best("holds")
    elif claim.verdict == "reproduced":
        chosen = best("holds")
    elif claim.verdict == "not reproduced":
        chosen = best("fails")
    elif claim.verdict == "not testable at this scale":
        chosen = best("not testable") + best("holds")
    else:  # inconclusive (or not run): the closest call, and what held if anything
        chosen = best("inconclusive") + best("holds")
    return chosen[:most]


def outcome_counts(claim: Claim) -> str:
    """'3 of 5 sub-checks hold, 1 fails, 1 inconclusive'."""
    counts = {o: sum(c["outcome"] == o for c in claim.checks) for o in _ORDER}
    parts = [f"{counts['holds']} of {len(claim.checks)} sub-checks hold"]
    parts += [f"{n} {o}" for o, n in counts.items() if o != "holds" and n]
    return ", ".join(parts)


def findings_html(claims: Iterable[Claim], preset: str, more: str = "#claims") -> str:
    """The chapter's "what we found" box (HTML, styled as a Jupyter Book admonition; it reads
    the same in Jupyter and Colab): one line per claim with its verdict, the sub-check counts
    and the key numbers (difference ± 2 standard errors of the seed noise), then a line on
    seeds and noise. ``more`` links to the chapter's full claims section."""
    import html

    claims = _sorted(claims)
    if not claims:
        return (f'<div class="admonition note {FINDINGS_CLASS}"><p class="admonition-title">'
                f"No claims stored at the {html.escape(preset)} preset yet</p></div>")
    counts = verdict_counts(claims)
    title = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    items = []
    for c in claims:
        numbers = "; ".join(f"{html.escape(k['outcome'])}: {html.escape(k['name'])} "
                            f"({html.escape(check_numbers(k))}"
                            + (f"; {html.escape(robustness(k))}" if robustness(k) else "")
                            + ")" for k in key_checks(c))
        changed = ("its own rule (or what it reads) changed after its results existed, see its "
                   "note")
        notes = ([outcome_counts(c)] if c.checks else []) + (
            [changed] if c.own_rule_changed else []) + (
            [f"the verdict is {fragile} of the rules"] if (fragile := verdict_robustness(c))
            else [])
        counted = f" ({'; '.join(notes)})" if notes else ""
        items.append(f"<li><b>{c.id} · {html.escape(c.verdict)}</b>{counted}. "
                     f"{html.escape(c.claim)}" + (f" <i>Key numbers:</i> {numbers}." if numbers
                                                  else "") + "</li>")
    seeds = [f"{c.id} {c.seeds}" for c in claims if c.seeds]
    noise = sorted({c.noise for c in claims if c.noise})
    foot = ("A difference's ± is 2 standard errors of the seed noise (a point's 85.5±0.1% "
            "(n=3), in the Claims, is the mean and standard deviation over its n seeds)"
            + (f"; seeds per point: {', '.join(seeds)}" if seeds else "")
            + (f" ({'; '.join(noise)})" if noise else "")
            + f'. Every sub-check: <a href="{html.escape(more)}">Claims</a>, at the end.')
    return (f'<div class="admonition tip {FINDINGS_CLASS}">'
            f'<p class="admonition-title">At the {html.escape(preset)} preset: '
            f"{html.escape(title)}</p><ul>{''.join(items)}</ul><p>{foot}</p></div>")


def tally_markdown(claims: Iterable[Claim], preset: str, link_suffix: str = ".ipynb",
                   linked: Collection[str] | None = None) -> str:
    """'13 claims at the `cpu` preset: **1** reproduced ([C13](09_dist.ipynb#what-we-found)),
    ...': each claim id links to its chapter's findings box (chapters in ``linked`` only)."""
    claims = _sorted(claims)
    fragile = {c.id: verdict_robustness(c) for c in claims}
    by_verdict: dict[str, list[str]] = {v: [] for v in VERDICTS}
    for c in claims:
        ref = (f"[{c.id}]({c.chapter}{link_suffix}#{FINDINGS_ANCHOR})"
               if c.verdict != "not run" and (linked is None or c.chapter in linked) else c.id)
        by_verdict[c.verdict].append(ref + ("*" if provisional(c) else "")
                                     + ("†" if fragile[c.id] else ""))
    parts = [f"**{len(ids)}** {verdict}" + (f" ({', '.join(ids)})" if ids else "")
             for verdict, ids in by_verdict.items()]
    weak = sum(provisional(c) for c in claims)
    note = (f" \\* {weak} of {len(claims)} verdicts read points with fewer than {MIN_SEEDS} "
            "seeds or selected at a grid edge the ladder goes beyond: they follow the written "
            "rules (with the pooled seed noise) but are provisional until those points have "
            "their replicates and grown grids." if weak else "")
    marked = [f"{cid} {text}" for cid, text in fragile.items() if text]
    if marked:
        note += (f" † {len(marked)} of {len(claims)} verdicts are another under some "
                 "alternative reading of the rules (the sensitivity table below lists them): "
                 + "; ".join(marked) + ".")
    return f"{len(claims)} claims at the `{preset}` preset: " + ", ".join(parts) + "." + note
