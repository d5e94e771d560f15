"""Files that a killed process never leaves half written: atomic writes, strict JSON, and
the append-only metrics log.

Every write goes to a temp file in the same folder, is flushed and fsynced, then
``os.replace``d over the target (and the folder fsynced): a reader sees the old file or the
new one, never a part. JSON is strict (NaN and Infinity become null, :func:`json_ready`), so
browsers and ``jq`` read it. :class:`MetricsLog` appends one fsynced JSON line per record and
survives a truncated last line. The run store (:mod:`kdlib.store`) is built on these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from kdlib.config import config_to_dict

METRICS_FILE = "metrics.jsonl"


def _json_default(value: Any) -> Any:
    """JSON fallback: numpy/jax arrays and scalars, paths, dataclasses."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy and jax arrays / scalars
        return value.tolist()
    raise TypeError(f"value of type {type(value).__name__} is not JSON serializable")


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike, mode: str) -> Iterator[IO]:
    """Yields a temp file beside `path` that replaces `path` only if the block completes.

    The temp file is flushed and fsynced, then os.replace()d; on any error it is removed and
    the old `path` (if any) is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(handle, mode, encoding=encoding) as tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def json_ready(value: Any) -> Any:
    """`value` as plain JSON types for strict JSON: NaN and +-Infinity become null.

    Strict readers (browsers, jq, most JSON libraries) refuse Python's bare ``NaN``; a
    diverged run's metrics say why in their ``status``/``reason`` keys instead. numpy/jax
    values, paths and dataclasses become plain values. (Old files holding ``NaN`` still read:
    ``json.loads`` accepts it.)
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Mapping):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return json_ready(_json_default(value))


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_ready`(obj): never writes NaN or Infinity."""
    return json.dumps(json_ready(obj), allow_nan=False, **kwargs)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as strict JSON to `path` (readers see the old file or the new, never a
    part); an unchanged file is not written again (:func:`write_bytes_atomic`)."""
    text = dumps_strict(obj, indent=2, sort_keys=True) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, payload: bytes) -> None:
    """Write `payload` to `path` so that readers see the old file or the new, never a part.

    A file that already holds exactly `payload` is left alone: rerunning a notebook whose
    tables and claims do not change writes nothing, so a read-only results/ works.
    """
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == len(payload) and path.read_bytes() == payload:
            return
    except OSError:
        pass  # unreadable: try to write it
    with _atomic_file(path, "wb") as tmp:
        tmp.write(payload)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable by fsyncing its folder (best effort: not all systems allow it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, with a ValueError naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); restore it (git checkout -- {path}) or delete "
            "it (a run folder's: delete the folder to retrain the run)"
        ) from err


# --------------------------------------------------------------------------- metrics log


class MetricsLog:
    """Append-only JSON-lines log of training metrics, durable after every record.

    Each append is flushed and fsynced. A process killed mid-write leaves a truncated last
    line: `read()` ignores it and the next `append()` cuts it off before writing. Records are
    strict JSON: a non-finite number (a diverged loss) is written as null (:func:`json_ready`).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def in_run(cls, run_path: str | os.PathLike) -> MetricsLog:
        """The metrics log of a run folder (`<run_dir>/metrics.jsonl`)."""
        return cls(Path(run_path) / METRICS_FILE)

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record (a mapping with str keys) as one JSON line, then fsync."""
        if not isinstance(record, Mapping):
            raise ValueError(f"metrics record must be a mapping, got {type(record).__name__}")
        line = dumps_strict(dict(record), sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        with open(self.path, "a", encoding="utf-8") as log:
            log.write(line)
            log.flush()
            os.fsync(log.fileno())

    def _repair_tail(self) -> None:
        """End the file on a newline: complete a parsable last line, drop a truncated one."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as log:
            size = log.seek(0, os.SEEK_END)
            if size == 0:
                return
            log.seek(size - 1)
            if log.read(1) == b"\n":
                return
            log.seek(0)
            data = log.read()
            cut = data.rfind(b"\n") + 1
            if _parses(data[cut:]):
                log.write(b"\n")
            else:
                log.truncate(cut)
            log.flush()
            os.fsync(log.fileno())

    def read(self, *, finished: bool = False) -> list[dict[str, Any]]:
        """All complete records in order; a truncated last line is ignored.

        A corrupt line anywhere else raises ValueError naming the file and line number; so
        does a truncated last line with ``finished`` (the log of a finished run, whose writer
        ended cleanly: its tail was cut later, and its last record would be lost silently).
        """
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().split(b"\n")
        records = []
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                records.append(json.loads(raw))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                if number == len(lines) and not finished:  # no newline: a killed writer
                    break
                raise ValueError(
                    f"{self.path}:{number} is not valid JSON ({err}); restore the file "
                    f"(git checkout -- {self.path}) or delete {self.path.parent} to retrain"
                ) from err
        return records

    def drop_after(self, step: int, key: str = "step") -> None:
        """Keep only records with record[key] <= step (for resuming from a checkpoint)."""
        kept = [r for r in self.read() if not (key in r and r[key] > step)]
        text = "".join(dumps_strict(r, sort_keys=True) + "\n" for r in kept)
        with _atomic_file(self.path, "w") as tmp:
            tmp.write(text)


def _parses(data: bytes) -> bool:
    """Whether `data` is one complete JSON value."""
    try:
        json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True
