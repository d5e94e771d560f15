"""Where a chapter's smoke training time goes: XLA compiles by function vs the rest.

Run with an empty cache and results root to see the cold numbers (issue 15):

    KDLIB_PRESET=smoke KDLIB_JAX_CACHE=$(mktemp -d) KDLIB_RESULTS=$(mktemp -d) \\
        python benchmarks/smoke_compile_profile.py 01_consistency

Prints the teacher's and the arms' wall seconds, JAX's duration events (compiles, cache
hits, tracing) and the compile, trace and lowering seconds per jitted function.
"""

from __future__ import annotations

import argparse
import collections
import time

from jax._src import monitoring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("section", help="a chapter, e.g. 01_consistency")
    args = parser.parse_args()
    events: dict[str, list[float]] = collections.defaultdict(list)
    by_function: dict[str, list[float]] = collections.defaultdict(list)
    traced: dict[str, list[float]] = collections.defaultdict(list)

    def on_duration(name: str, secs: float, **kwargs: object) -> None:
        events[name].append(secs)
        if name.endswith("backend_compile_duration"):
            by_function[str(kwargs.get("fun_name"))].append(secs)
        if name.endswith(("jaxpr_trace_duration", "jaxpr_to_mlir_module_duration")):
            traced[str(kwargs.get("fun_name"))].append(secs)

    monitoring.register_event_duration_secs_listener(on_duration)
    from kdlib.experiments import chapters, common, dist_loss, init, resolution

    # The chapters' other stored models (the notebooks train them in their set-up cells).
    more = {"04_resolution": resolution.ensure_high_res_teacher,
            "06_init": init.ensure_pretrained_student,
            "07_cross_family": resolution.ensure_high_res_teacher,
            "09_dist": dist_loss.ensure_teachers}
    t0 = time.time()
    common.ensure_teacher("smoke")
    if args.section in more:
        more[args.section]("smoke")
    t1 = time.time()
    for experiments in chapters.experiments(args.section, "smoke"):
        common.run_arms(experiments, progress=False)
    print(f"teachers {t1 - t0:.1f} s, arms {time.time() - t1:.1f} s")
    for title, table in (("events", events), ("compiles by function", by_function),
                         ("traces and lowerings by function", traced)):
        print(f"--- {title}")
        for key, values in sorted(table.items(), key=lambda kv: -sum(kv[1]))[:20]:
            if "orbax" not in key and "checkpoint" not in key:
                print(f"{key}: n={len(values)} total={sum(values):.1f} s max={max(values):.1f}")


if __name__ == "__main__":
    main()
