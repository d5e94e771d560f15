"""Stored measurements: numbers measured live (step times, throughput) kept like any result.

A chapter that times something (chapter 05's Shampoo/Adam step-time ratio) must not re-measure
it on every build: on a shared machine the number moves with the load, and a rebuild would
change what the book states although no result changed. :func:`measure_or_load` stores the
first measurement in ``results/<preset>/<section>/measured_<name>.json`` with its provenance
(commit, machine, date, wall time) and the key it was measured for (e.g. the config hashes of
the programs timed and the number of timed calls); later builds read it back. It measures
again only on request (``remeasure=True``, a notebook parameter) or when nothing matching the
key is stored.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kdlib.store import json_ready, read_json, results_root, write_json_atomic

PREFIX = "measured_"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Measurement:
    """One stored measurement: its rows, the key it was measured for, and its provenance.

    ``fresh`` is True when this process measured it (False: read back from ``path``);
    ``reason`` says why it was measured or read.
    """

    name: str
    rows: list[dict[str, Any]]
    key: dict[str, Any]
    provenance: dict[str, Any]
    path: Path
    fresh: bool = False
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()  # the rows' keys in the order measured (JSON sorts them)

    def frame(self, columns: Sequence[str] | None = None) -> Any:
        """The rows as a pandas DataFrame, in ``columns`` order when given, else in the order
        they were measured (the same whether measured now or read back)."""
        import pandas as pd

        order = list(columns or self.columns) or None
        return pd.DataFrame(self.rows, columns=order)

    def describe(self) -> str:
        """One line of provenance: when, at which commit and on which machine it was measured
        (the same line whether measured now or read back, so a rebuild states the same)."""
        prov = self.provenance
        when = str(prov.get("measured_at", ""))[:16].replace("T", " ")
        mach = prov.get("machine") or {}
        cpu = (mach.get("cpu") or {}).get("model") or mach.get("machine") or ""
        where = ", ".join(x for x in (mach.get("hostname"), mach.get("jax_backend"),
                                      f"{mach.get('cpu_count')} cores" if mach.get("cpu_count")
                                      else "", cpu) if x)
        return f"measured {when} UTC at commit {prov.get('commit', 'unknown')} on {where}"


def path(name: str, preset: str, section: str, root: str | os.PathLike | None = None) -> Path:
    """Where measurement `name` of a chapter lives:
    ``<results>/<preset>/<section>/measured_<name>.json``."""
    for what, value in (("name", name), ("preset", preset), ("section", section)):
        if not isinstance(value, str) or not _NAME.match(value) or value in (".", ".."):
            raise ValueError(f"{what}={value!r} must be a plain name (letters, digits, _ . -)")
    return results_root(root) / preset / section / f"{PREFIX}{name}.json"


def load(name: str, preset: str, section: str, root: str | os.PathLike | None = None
         ) -> Measurement | None:
    """The stored measurement, or None when there is none."""
    where = path(name, preset, section, root)
    if not where.is_file():
        return None
    stored = read_json(where)
    if not isinstance(stored, dict) or not isinstance(stored.get("rows"), list):
        raise ValueError(f"{where} must hold {{'rows': [...], 'key': {{...}}, "
                         "'provenance': {...}}; delete it to measure again")
    return Measurement(name, stored["rows"], stored.get("key") or {},
                       stored.get("provenance") or {}, where, False, "stored",
                       stored.get("extra") or {}, tuple(stored.get("columns") or ()))


def save(name: str, preset: str, section: str, rows: Sequence[Mapping[str, Any]],
         key: Mapping[str, Any], *, wall_time_s: float, started_at: float,
         extra: Mapping[str, Any] | None = None, root: str | os.PathLike | None = None
         ) -> Measurement:
    """Store a measurement (atomically) with its provenance; returns it as read back."""
    from kdlib.provenance import git_commit, machine

    provenance = {
        "commit": git_commit(),
        "measured_at": _dt.datetime.fromtimestamp(started_at, _dt.timezone.utc).isoformat(
            timespec="seconds"),
        "wall_time_s": round(float(wall_time_s), 1),
        "machine": machine(),
    }
    where = path(name, preset, section, root)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    record = {"name": name, "preset": preset, "section": section, "key": json_ready(dict(key)),
              "rows": json_ready([dict(r) for r in rows]), "provenance": provenance,
              "extra": json_ready(dict(extra or {})), "columns": columns}
    write_json_atomic(where, record)
    return Measurement(name, record["rows"], record["key"], provenance, where, True, "",
                       record["extra"], tuple(columns))


def measure_or_load(name: str, preset: str, section: str,
                    measure: Callable[[], Sequence[Mapping[str, Any]]],
                    key: Mapping[str, Any], *, remeasure: bool = False,
                    root: str | os.PathLike | None = None) -> Measurement:
    """The stored measurement for `key`, or a new one from ``measure()`` (then stored).

    Measures when ``remeasure`` is set, when nothing is stored, or when what is stored was
    measured for another key (the programs timed changed); ``reason`` says which.
    """
    stored = load(name, preset, section, root)
    wanted = json_ready(dict(key))
    if remeasure:
        reason = "re-measured on request"
    elif stored is None:
        reason = "measured now: none was stored"
    elif stored.key != wanted:
        reason = "measured now: the stored one was for other programs or settings"
    else:
        return replace(stored, reason="stored; pass remeasure to measure again")
    started = time.time()
    rows = measure()
    if hasattr(rows, "to_dict"):  # a DataFrame
        rows = rows.to_dict("records")
    done = save(name, preset, section, rows, wanted, wall_time_s=time.time() - started,
                started_at=started, root=root)
    return replace(done, reason=reason)


def model_costs(experiments: Any, preset: str, section: str, *, remeasure: bool = False,
                root: str | os.PathLike | None = None) -> Measurement:
    """``kdlib.experiments.common.model_costs`` (FLOPs, parameters and the student's measured
    inference img/s per arm) as a stored measurement of chapter ``section``: the img/s is timed
    once and read back on rebuild (``measured_model_costs.json``), re-timed on request or when
    the arms' configs changed."""
    from kdlib import store
    from kdlib.experiments import common

    key = {"arms": {arm: store.config_hash(next(iter(by_epochs.values()))[0])
                    for arm, by_epochs in experiments.items()}}
    got = measure_or_load("model_costs", preset, section,
                          lambda: common.model_costs(experiments), key,
                          remeasure=remeasure, root=root)
    if got.columns:
        return got
    # stored before the column order was kept: the order common.model_costs writes them in
    keys = list(dict.fromkeys(k for r in got.rows for k in r))
    order = [c for c in MODEL_COST_COLUMNS if c in keys] + [
        c for c in keys if c not in MODEL_COST_COLUMNS]
    return replace(got, columns=tuple(order))


MODEL_COST_COLUMNS = ("arm", "teacher px", "student px", "student MFLOPs", "student params",
                      "student img/s", "teacher MFLOPs")
