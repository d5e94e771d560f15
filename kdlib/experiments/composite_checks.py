"""Sub-checks made of sub-checks (:mod:`kdlib.experiments.verdicts`): all of several must
hold (a lead over each other arm, every step to a longer schedule), or a gap that is not
testable while the student still improves; each keeps every alternative reading
(:data:`kdlib.evidence.READINGS`), its points' grid flags and its thinnest point's seeds."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from kdlib import evidence as ev
from kdlib import wording
from kdlib.experiments.verdict_tables import est, finished_at


def records(checks: Sequence[ev.Check], reading: str) -> bool:
    """Whether any of ``checks`` records ``reading`` (a composite of checks that all lack it,
    e.g. the follow-up reading where no point was followed up, records none either)."""
    return any(getattr(c, reading) is not None for c in checks)


def all_hold(checks: Sequence[ev.Check], reading: str) -> str:
    """One outcome of ``checks`` that must all hold, under ``reading``: fails when one fails,
    holds when every one holds, else inconclusive."""
    outcomes = [getattr(c, reading) or c.outcome for c in checks]
    return ("fails" if "fails" in outcomes else
            "holds" if all(o == "holds" for o in outcomes) else "inconclusive")


def fewest_seeds(checks: Sequence[ev.Check]) -> int | None:
    """The fewest seeds of any point ``checks`` compare (None if none records seeds): a
    composite rests on its thinnest point."""
    seeds = [c.seeds for c in checks if c.seeds is not None]
    return min(seeds) if seeds else None


def _all_of(checks: Sequence[ev.Check]) -> dict:
    """The fields a check that needs all of ``checks`` to hold takes from them: its outcome
    under the rule and under each alternative reading they record (:func:`all_hold`), the
    seeds of their thinnest point and their points' grid flags."""
    return {"outcome": all_hold(checks, "outcome"),
            **{r: all_hold(checks, r) if records(checks, r) else None
               for r in ev.READINGS[1:]},
            "seeds": fewest_seeds(checks), "at_edge": any(c.at_edge for c in checks),
            "at_ladder_end": any(c.at_ladder_end for c in checks)}


def leads_each(name: str, lead: ev.Estimate, table: pd.DataFrame, others: Sequence[str],
                epochs: float, noise: ev.Noise) -> ev.Check:
    """That ``lead`` is above each of ``others`` at ``epochs``, one check under each reading
    alike (:func:`all_hold`), with the numbers of the comparison that decides it: a failing
    one, else the closest in standard errors. (Until the session after 2026-12-05 C3 and C6
    compared only with the other arm best on validation, so an arm ahead on test went
    unseen.)"""
    finished = finished_at(table, others, epochs)
    pairs = [(a, ev.greater(name, lead, est(table, a, epochs), noise)) for a in finished]
    if not pairs:
        raise ValueError(f"{name}: none of {list(others)} has a finished run at {epochs:g} "
                         "epochs to compare with")

    def distance(check: ev.Check) -> float:  # standard errors beyond the decision's bound
        gap = (check.margin or 0.0) - (check.bound or 0.0)
        return gap / check.se if check.se else math.copysign(math.inf, gap)

    checks = [c for _, c in pairs]
    arm, decides = min(pairs, key=lambda p: (p[1].outcome != "fails", distance(p[1])))
    # an arm without a finished number there (every run diverged, or none finished) is named,
    # not compared: it cannot be shown behind, and a reader should see it was left out
    missing = [a for a in others if a not in finished]
    left_out = (f"; not compared (no finished run at {epochs:g} epochs): {', '.join(missing)}"
                if missing else "")
    return dataclasses.replace(
        decides, detail=f"deciding comparison of {len(pairs)} (the clearest fail, else the "
                        f"narrowest lead in SE): {arm}; {decides.detail}{left_out}",
        **_all_of(checks))


def every_step(name: str, checks: Sequence[ev.Check]) -> ev.Check:
    """One check over consecutive steps, under each reading alike (the rule's and the
    alternatives :data:`kdlib.evidence.READINGS`): fails when a step fails, holds when every
    step holds, else inconclusive; not testable without any step. (Until 2026-12-05 it held
    whenever no step failed, so steps all within the noise read as evidence.)"""
    if not checks:
        return ev.not_testable(name, "one schedule length only")
    failed = [c for c in checks if c.outcome == "fails"]
    open_ = [c for c in checks if c.outcome == "inconclusive"]
    shown = (failed or open_)[0] if failed or open_ else None
    detail = (shown.detail if shown else
              f"{wording.count(len(checks), 'step')} to a longer schedule, each "
              "within the tolerance")
    return ev.Check(name, detail=detail, noise=shown.noise if shown else None,
                    **_all_of(checks))


def unless_improving(gap: ev.Check, improving: ev.Check) -> ev.Check:
    """``gap``, "not testable" (still improving at our longest) under each reading where it
    does not hold while ``improving`` holds (C4: the paper needed far longer schedules)."""
    def reading(r: str) -> str:
        g, i = getattr(gap, r) or gap.outcome, getattr(improving, r) or improving.outcome
        return "not testable" if g != "holds" and i == "holds" else g

    readings: dict[str, Any] = {r: reading(r) if records((gap, improving), r) else None
                                for r in ev.READINGS[1:]}
    if reading("outcome") != "not testable":
        return dataclasses.replace(gap, **readings)
    return ev.Check(gap.name, "not testable", gap.detail + "; still improving at our longest",
                    **readings, noise=gap.noise, at_edge=gap.at_edge or improving.at_edge,
                    at_ladder_end=gap.at_ladder_end or improving.at_ladder_end)
