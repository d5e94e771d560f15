"""Where and how a run was produced: code commit, machine, library versions, timing.

Everything here is best effort and never raises on a missing tool (no git, no jax): a run
must not fail because its provenance could not be fully described.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import functools
import math
import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import kdlib

_VERSIONED_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
_GIT_TIMEOUT_S = 10
# CPU features XLA:CPU picks kernels by: two machines that differ in them may differ in the
# last bits of every number (vector widths change the order of float reductions).
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512dq", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")
# Environment variables that change what XLA compiles or how many threads run it.
ENV_PREFIXES = ("XLA_", "JAX_", "TF_XLA", "TF_CPP")
ENV_NAMES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
             "KDLIB_JAX_CACHE")


def _git(repo_dir: Path, *args: str) -> str:
    """Run one read-only git command in `repo_dir` and return its stripped stdout."""
    done = subprocess.run(
        ["git", "-C", str(repo_dir), *args],
        capture_output=True,
        text=True,
        timeout=_GIT_TIMEOUT_S,
        check=True,
    )
    return done.stdout.strip()


def git_commit(repo_dir: str | os.PathLike | None = None) -> str:
    """Short commit hash of `repo_dir` (default: the kdlib source tree), plus "-dirty".

    "-dirty" is appended when tracked files have uncommitted changes (untracked files do
    not count). Returns "unknown" outside a git work tree, without commits, or without git.
    """
    where = Path(repo_dir) if repo_dir is not None else Path(kdlib.__file__).resolve().parent
    try:
        commit = _git(where, "rev-parse", "--short", "HEAD")
        changes = _git(where, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError, ValueError):
        return "unknown"
    if not commit:
        return "unknown"
    return f"{commit}-dirty" if changes else commit


def _package_versions() -> dict[str, str | None]:
    """Installed versions of the numerical stack, read from metadata (no imports)."""
    versions: dict[str, str | None] = {}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _jax_devices() -> dict[str, Any]:
    """Default backend and device kinds/count of jax, or the reason they are unknown."""
    try:
        import jax

        devices = jax.devices()
        return {
            "jax_backend": jax.default_backend(),
            "device_kinds": sorted({d.device_kind for d in devices}),
            "device_count": len(devices),
            "process_count": jax.process_count(),
        }
    except Exception as err:  # provenance must never fail a run
        return {"jax_backend": None, "jax_error": f"{type(err).__name__}: {err}"}


def cpu_info(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> dict[str, Any]:
    """The CPU's model name and which of :data:`CPU_FLAGS` it has (empty when unreadable)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"model": platform.processor() or None, "flags": []}
    model: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "cpu model") and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {"model": model, "flags": [f for f in CPU_FLAGS if f in flags]}


def xla_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The XLA/JAX (and thread-count) environment variables that are set, by name."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in sorted(environ)
            if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


@functools.lru_cache(maxsize=1)
def _machine_cached() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_info(),
        "python": platform.python_version(),
        "versions": _package_versions(),
        "env": xla_env(),
        **_jax_devices(),
    }


def machine() -> dict[str, Any]:
    """Describe this machine: host, OS, CPU model and flags, Python, library versions,
    XLA/JAX environment variables, jax backend and devices: what shapes a run's last bits.

    Computed once per process (the jax backend cannot change after it is initialized).
    """
    return copy.deepcopy(_machine_cached())


def iso_utc(moment: float | _dt.datetime | str) -> str:
    """ISO-8601 UTC string for an epoch time, a datetime or an ISO string."""
    if isinstance(moment, str):
        try:
            moment = _dt.datetime.fromisoformat(moment)
        except ValueError as err:
            raise ValueError(f"started_at={moment!r} is not an ISO-8601 timestamp") from err
    if isinstance(moment, _dt.datetime):
        if moment.tzinfo is None:
            moment = moment.astimezone()  # naive means local time
        return moment.astimezone(_dt.timezone.utc).isoformat(timespec="seconds")
    if isinstance(moment, (int, float)) and not isinstance(moment, bool):
        return _dt.datetime.fromtimestamp(moment, _dt.timezone.utc).isoformat(timespec="seconds")
    raise ValueError(
        f"started_at={moment!r} must be epoch seconds, a datetime or an ISO-8601 string"
    )


def _config_field(config: Any, name: str) -> Any:
    """Top-level field `name` of a dataclass or mapping config, None when absent."""
    if isinstance(config, Mapping):
        return config.get(name)
    if dataclasses.is_dataclass(config):
        return getattr(config, name, None)
    raise ValueError(f"config must be a dataclass or a mapping, got {type(config).__name__}")


def provenance(
    config: Any,
    *,
    wall_time_s: float,
    started_at: float | _dt.datetime | str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Provenance record of one finished run, stored next to its summary.

    `started_at` is epoch seconds, a datetime or an ISO string; the finish time is now.
    `extra` adds fields (e.g. the config hash); it may not replace the standard ones.
    """
    if not isinstance(wall_time_s, (int, float)) or isinstance(wall_time_s, bool):
        raise ValueError(f"wall_time_s={wall_time_s!r} must be a number of seconds")
    if not math.isfinite(wall_time_s) or wall_time_s < 0:
        raise ValueError(f"wall_time_s={wall_time_s!r} must be finite and >= 0")
    record: dict[str, Any] = {
        "commit": git_commit(),
        "kdlib_version": kdlib.__version__,
        "preset": _config_field(config, "preset"),
        "section": _config_field(config, "section"),
        "seed": _config_field(config, "seed"),
        "wall_time_s": float(wall_time_s),
        "started_at": iso_utc(started_at),
        "finished_at": iso_utc(_dt.datetime.now(_dt.timezone.utc)),
        "machine": machine(),
    }
    for key, value in (extra or {}).items():
        if key in record:
            raise ValueError(f"extra provenance key {key!r} would replace a standard field")
        record[key] = value
    return record
