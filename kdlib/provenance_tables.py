"""The provenance chapter's tables, read from the store: one row per run (commit, machine,
group, images), per-chapter totals (hours, run-images per second), the published teachers,
and each preset's expected notebook times. Pure reads; :mod:`kdlib.book` runs the notebooks.
"""

from __future__ import annotations

import os
from typing import Any

from kdlib import presets
from kdlib.book import TIMES_FILE
from kdlib.store import RunRecord, list_runs, read_json, results_root

# Presets whose results are scratch (gitignored, different in every checkout): the book's
# provenance tables leave them out, so what it states depends only on committed results.
SCRATCH_PRESETS = ("smoke",)


def _when(iso: str | None) -> str:
    """'2026-11-22 06:36' from an ISO timestamp ('' when unknown)."""
    return iso[:16].replace("T", " ") if isinstance(iso, str) else ""


def _device(machine: dict) -> str:
    """'cpu (cpu x1)' / 'gpu (NVIDIA H100 x1)' from a provenance machine record."""
    backend = machine.get("jax_backend")
    if not backend:
        return ""
    kinds = ", ".join(machine.get("device_kinds") or [])
    return f"{backend} ({kinds} x{machine.get('device_count', '?')})" if kinds else backend


def group_runs(record: RunRecord) -> int:
    """How many runs trained in the run's vectorized group (1 alone): its recorded wall time
    is the group's, so a total over runs counts each group once by dividing by this. From
    the provenance's group mates, else (runs stored before those were recorded) the
    summary's ``group_size``."""
    mates = record.provenance.get("group") or ()
    return max(1, len(mates) or int(record.summary.get("group_size") or 1))


def run_rows(records: list[RunRecord]) -> list[dict]:
    """One row per stored run: section, hash, status, commit, machine, device, the wall time
    of the group it trained in, the group's size, the images it trained on and those its
    recorded time covers, date."""
    rows = []
    for r in records:
        prov = r.provenance
        machine = prov.get("machine") or {}
        wall = prov.get("wall_time_s")
        step, batch = r.summary.get("step"), r.config.get("batch_size")
        images = step * batch if isinstance(step, int) and isinstance(batch, int) else 0
        rows.append({
            "section": r.path.parent.name, "hash": r.hash, "status": r.status,
            "commit": _commits(prov.get("commit", ""), r.summary.get("earlier_commits")),
            "machine": machine.get("hostname", ""),
            "device": _device(machine),
            "wall time (min)": round(wall / 60, 2) if isinstance(wall, (int, float)) else None,
            "group runs": group_runs(r),
            "images": images, "timed images": timed_images(r.summary, images),
            "finished": _when(prov.get("finished_at")),
        })
    return rows


def _commits(commit: str, earlier: Any) -> str:
    """The commit that finished a run, with those that trained it before a resume when they
    differ (a run parked in one session and finished in another)."""
    others = [c for c in earlier or () if isinstance(c, str) and c != commit]
    return f"{commit} (earlier: {', '.join(others)})" if others else commit


def timed_images(summary: dict, images: int) -> int:
    """The training images a run's recorded time covers: all of them, except for a run resumed
    from a checkpoint whose earlier time was not recorded (stored before 2026-12-04, when the
    training loop began to carry it across resumes): its ``img_per_s * train_time_s``."""
    rate, seconds = summary.get("img_per_s"), summary.get("train_time_s")
    if isinstance(rate, (int, float)) and isinstance(seconds, (int, float)) and images:
        return min(images, round(rate * seconds))
    return images


def section_totals(rows: list[dict]) -> list[dict]:
    """Per section: number of runs, how many finished, their wall time in hours (a
    vectorized group's time counted once, not once per run) and the run-images per second
    that wall time achieved (every run's training images; None when no run recorded them).
    A run whose recorded time covers only part of its images (resumed, earlier time not
    recorded) counts its time scaled up to all of them, at the rate it recorded; *scaled runs*
    says how many."""
    totals: dict[str, dict] = {}
    images: dict[str, int] = {}
    for row in rows:
        t = totals.setdefault(row["section"], {"section": row["section"], "runs": 0,
                                               "finished": 0, "wall time (h)": 0.0,
                                               "scaled runs": 0, "dirty commit": 0})
        t["runs"] += 1
        t["dirty commit"] += "-dirty" in str(row.get("commit", ""))
        t["finished"] += row["status"] in ("done", "diverged")
        hours = (row["wall time (min)"] or 0.0) / 60 / row.get("group runs", 1)
        n, timed = row.get("images", 0), row.get("timed images", row.get("images", 0))
        if 0 < timed < 0.99 * n:
            hours *= n / timed
            t["scaled runs"] += 1
        t["wall time (h)"] += hours
        images[row["section"]] = images.get(row["section"], 0) + row.get("images", 0)
    for section, t in totals.items():
        seconds = t["wall time (h)"] * 3600
        t["run img/s"] = round(images[section] / seconds) if images[section] and seconds else None
        t["wall time (h)"] = round(t["wall time (h)"], 3)
    return [totals[k] for k in sorted(totals)]


def teacher_rows(root: str | os.PathLike | None = None) -> list[dict]:
    """One row per published teacher (`<results>/teachers/*/card.json`)."""
    rows = []
    for card_path in sorted((results_root(root) / "teachers").glob("*/card.json")):
        card = read_json(card_path)
        prov = card.get("provenance") or {}
        wall = card.get("train_wall_time_s")
        rows.append({
            "teacher": card.get("name", card_path.parent.name), "dataset": card.get("dataset"),
            "model": card.get("model"), "image size": card.get("image_size"),
            "val acc": card.get("val_acc"), "test acc": card.get("test_acc"),
            "preset": prov.get("preset", ""), "hash": card.get("config_hash", ""),
            "commit": prov.get("commit", ""), "device": _device(prov.get("machine") or {}),
            "train time (min)": round(wall / 60, 2) if isinstance(wall, (int, float)) else None,
            "finished": _when(prov.get("finished_at")),
        })
    return rows


def expected_times(root: str | os.PathLike | None = None,
                   shown: tuple[str, ...] | None = None) -> list[dict]:
    """Per preset and notebook: training time of its stored runs and its last batch run.

    ``shown``: the presets to list (default: every preset but :data:`SCRATCH_PRESETS`).

    "train (h)" sums the wall time of the notebook's finished runs, a vectorized group's once
    and a resumed run's scaled to all its images (:func:`section_totals`: what a rerun
    without stored results costs on that machine); "last run (s)" is
    `python -m kdlib.book run`'s measured time for the notebook (with the results stored at
    that moment).
    """
    base = results_root(root)
    rows: dict[tuple[str, str], dict] = {}

    def row(preset: str, notebook: str) -> dict:
        return rows.setdefault((preset, notebook), {
            "preset": preset, "notebook": notebook, "runs": 0, "train (h)": 0.0,
            "device": "", "last run (s)": None, "last run on": ""})

    shown = tuple(p for p in presets.PRESETS if p not in SCRATCH_PRESETS) if shown is None \
        else shown
    for preset in shown:
        records = list_runs(base, preset=preset)
        for total in section_totals(run_rows(records)):  # the provenance page's hours
            entry = row(preset, total["section"])
            entry["runs"], entry["train (h)"] = total["finished"], total["wall time (h)"]
        for r in records:
            entry = row(preset, r.path.parent.name)
            entry["device"] = entry["device"] or _device(r.provenance.get("machine") or {})
        times_path = base / preset / TIMES_FILE
        for notebook, t in (read_json(times_path) if times_path.is_file() else {}).items():
            entry = row(preset, notebook)
            entry["last run (s)"] = t.get("seconds") if t.get("status") == "ok" else None
            entry["last run on"] = f"{t.get('backend') or ''} {_when(t.get('finished_at'))}"
    for entry in rows.values():
        entry["train (h)"] = round(entry["train (h)"], 3)
    order = {p: i for i, p in enumerate(presets.PRESETS)}
    return [rows[k] for k in sorted(rows, key=lambda k: (order[k[0]], k[1]))]
