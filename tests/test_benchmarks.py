"""The benchmarks time what the experiments train (checked without compiling anything)."""

import importlib.util
from pathlib import Path

from kdlib.experiments.teachers import STUDENT_MODEL, TEACHER_MODEL
from kdlib.train.step import split_chunk

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_distill_step_times_the_fused_chunk_the_cpu_runs_train_with():
    """It once timed the smoke preset's split chunk (two programs) and broke on it."""
    bench = _load("distill_step")
    for teacher in (TEACHER_MODEL, None):
        config = bench.bench_config(STUDENT_MODEL, teacher, policy="mix", loss="kl", batch=8,
                                    size=28, steps_per_call=2)
        assert config.preset == "cpu" and not split_chunk(config)
        assert config.teachers == (("bench",) if teacher else ())
