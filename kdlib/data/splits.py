"""Split strings with tensorflow-datasets semantics, and the paper's train/validation/test splits.

A split string names one split or a ``+`` union of slices: ``train``, ``test``, ``train[:90%]``,
``train[90%:]``, ``train[1000:2000]``, ``train[-500:]``, ``train[:10%]+test``, ``all``.
Percent boundaries round exactly as tfds's default (``rounding='closest'``):
``int(round(pct * num_examples / 100.0))`` with Python's round-half-to-even, so
``train[:90%]`` selects the same examples here as in ``tfds.load``.

Deliberate differences from tfds, all of which raise ``ValueError`` instead of guessing:
mixed units in one slice (tfds reads ``train[10%:50]`` as ``[10%:50%]``), ``shard`` units and
(by default) slices that select no example.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

SPLIT_FORMAT_HELP = (
    "expected '<split>' or '<split>[<from>:<to>]' with integer or percent bounds, "
    "joined by '+', e.g. 'train', 'train[:90%]', 'train[1000:2000]', 'train[-500:]', "
    "'train[:10%]+test'"
)

# Same grammar as tfds (tensorflow_datasets/core/splits.py).
_SUB_SPEC_RE = re.compile(r"^(?P<name>[\w-]+)(\[(?P<selector>[\d\w%:.-]+)\])?$")
_BOUND_RE = re.compile(r"^((?P<val>-?[\d_.]+)(?P<unit>%|shard)?)?$")
_ADD_SEP_RE = re.compile(r"\s*\+\s*")


@dataclasses.dataclass(frozen=True)
class SliceSpec:
    """One parsed term of a split string: a split name and optional bounds in one unit."""

    split: str
    start: int | float | None = None
    stop: int | float | None = None
    unit: str = "abs"  # "abs" (example indices) or "%" (percent of the split)


@dataclasses.dataclass(frozen=True)
class SplitRange:
    """A resolved term: examples ``[start, stop)`` of split ``split`` (0 <= start, stop <= n)."""

    split: str
    start: int
    stop: int

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def _parse_bound(text: str, unit: str, term: str) -> int | float:
    """Converts one bound's digits to int (indices) or float (percent), like tfds."""
    try:
        value: int | float = float(text) if unit == "%" else int(text)
    except ValueError:
        kind = "a number" if unit == "%" else "an integer"
        raise ValueError(
            f"Split term {term!r}: bound {text!r} is not {kind}; {SPLIT_FORMAT_HELP}."
        ) from None
    if unit == "%" and abs(value) > 100:
        raise ValueError(f"Split term {term!r}: percent bound {text}% is outside [-100%, 100%].")
    return value


def _parse_term(term: str) -> SliceSpec:
    """Parses one ``+``-separated term, e.g. ``train[:90%]``."""
    match = _SUB_SPEC_RE.match(term)
    if not match:
        raise ValueError(f"Malformed split {term!r}: {SPLIT_FORMAT_HELP}.")
    name, selector = match.group("name"), match.group("selector")
    if selector is None:
        return SliceSpec(name)
    if name == "all":
        raise ValueError(f"Split {term!r}: 'all' cannot be sliced; slice each split instead.")
    parts = selector.split(":")
    if len(parts) != 2:
        raise ValueError(
            f"Split {term!r}: a slice needs exactly one ':' (single indices are not "
            f"supported); {SPLIT_FORMAT_HELP}."
        )
    bounds = [_BOUND_RE.match(p) for p in parts]
    if not all(bounds) or not any(p for p in parts):
        raise ValueError(f"Malformed split {term!r}: {SPLIT_FORMAT_HELP}.")
    units = {b.group("unit") or "abs" for b in bounds if b is not None and b.group("val")}
    if "shard" in units:
        raise ValueError(f"Split {term!r}: 'shard' slices are not supported; use % or indices.")
    if len(units) > 1:
        raise ValueError(
            f"Split {term!r} mixes percent and index bounds; use one unit on both sides, "
            f"e.g. 'train[10%:50%]' or 'train[100:500]'."
        )
    unit = units.pop()
    start_val, stop_val = (b.group("val") if b is not None else None for b in bounds)
    start = _parse_bound(start_val, unit, term) if start_val else None
    stop = _parse_bound(stop_val, unit, term) if stop_val else None
    return SliceSpec(name, start, stop, unit)


def parse_split(spec: str) -> tuple[SliceSpec, ...]:
    """Parses a tfds-style split string into its ``+`` terms (syntax only; sizes not needed)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"Split must be a non-empty string; got {spec!r}: {SPLIT_FORMAT_HELP}.")
    return tuple(_parse_term(term) for term in _ADD_SEP_RE.split(spec))


def _pct_to_index(pct: float, num_examples: int) -> int:
    """tfds's 'closest' rounding of a percent boundary (round half to even)."""
    return int(round(pct * num_examples / 100.0))


def _resolve_term(term: SliceSpec, num_examples: int, spec: str) -> SplitRange:
    """Turns one parsed term into absolute ``[start, stop)`` bounds, as tfds's _rel_to_abs_instr."""
    if term.unit == "%":
        start = 0 if term.start is None else _pct_to_index(term.start, num_examples)
        stop = num_examples if term.stop is None else _pct_to_index(term.stop, num_examples)
    else:
        start = 0 if term.start is None else int(term.start)
        stop = num_examples if term.stop is None else int(term.stop)
    if abs(start) > num_examples or abs(stop) > num_examples:
        raise ValueError(
            f"Split {spec!r}: slice [{start}:{stop}] of {term.split!r} is out of range; "
            f"that split has {num_examples} examples (allowed bounds: -{num_examples}.."
            f"{num_examples})."
        )
    start = start + num_examples if start < 0 else start
    stop = stop + num_examples if stop < 0 else stop
    return SplitRange(term.split, start, stop)


def resolve_split(
    spec: str, sizes: Mapping[str, int], *, allow_empty: bool = False
) -> tuple[SplitRange, ...]:
    """Resolves a split string against split sizes ``{name: num_examples}`` to index ranges.

    Raises ValueError for malformed strings, unknown split names, out-of-range bounds and
    (unless ``allow_empty``) terms that select no example.
    """
    ranges: list[SplitRange] = []
    for term in parse_split(spec):
        if term.split == "all":
            ranges.extend(SplitRange(name, 0, n) for name, n in sizes.items())
            continue
        if term.split not in sizes:
            raise ValueError(
                f"Unknown split {term.split!r} in {spec!r}; allowed: {sorted(sizes)} or 'all'."
            )
        ranges.append(_resolve_term(term, int(sizes[term.split]), spec))
    if not allow_empty:
        for r in ranges:
            if len(r) == 0:
                raise ValueError(
                    f"Split {spec!r} selects no example of {r.split!r} (resolved to "
                    f"[{r.start}:{r.stop}) of {sizes[r.split]}); choose bounds with from < to."
                )
    return tuple(ranges)


def overlap(a: str, b: str, sizes: Mapping[str, int]) -> int:
    """How many examples split strings ``a`` and ``b`` share (each resolved against
    ``sizes``): a training split must share none with the splits that select and test."""
    ranges_b = resolve_split(b, sizes, allow_empty=True)
    return sum(max(0, min(ra.stop, rb.stop) - max(ra.start, rb.start))
               for ra in resolve_split(a, sizes, allow_empty=True)
               for rb in ranges_b if ra.split == rb.split)


def split_names(spec: str) -> tuple[str, ...]:
    """The split names a split string refers to, in order (``all`` kept as is)."""
    return tuple(term.split for term in parse_split(spec))


# The paper's Table 5 (appendix E), plus our own splits for the embedded datasets.
# Food101: the paper's text prints test='test', but tfds food101 has only train and validation;
# its CSV transcription (and big_vision) use 'validation' as the test split.
# ImageNet: the paper's config also names a 'minival' of train[99%:] for quick checks.
PAPER_SPLITS: dict[str, dict[str, str]] = {
    "oxford_flowers102": {"train": "train", "validation": "validation", "test": "test"},
    "oxford_iiit_pet": {"train": "train[:90%]", "validation": "train[90%:]", "test": "test"},
    "food101": {"train": "train[:90%]", "validation": "train[90%:]", "test": "validation"},
    "sun397": {"train": "train", "validation": "validation", "test": "test"},
    "imagenet2012": {"train": "train[:98%]", "validation": "train[98%:]", "test": "validation"},
    # Ours: the last 5000 official training images are the validation set.
    "fashion_mnist": {"train": "train[:55000]", "validation": "train[55000:]", "test": "test"},
    # Ours: 1297 digits train (see kdlib.data.embedded), the last 200 of them validate.
    "digits": {"train": "train[:1097]", "validation": "train[1097:]", "test": "test"},
    # Ours: 5000 noise images train, the last 500 of them validate (see kdlib.data.embedded).
    "noise": {"train": "train[:4500]", "validation": "train[4500:]", "test": "test"},
}


def paper_splits(name: str) -> dict[str, str]:
    """The ``train``/``validation``/``test`` split strings used for dataset ``name``."""
    if name not in PAPER_SPLITS:
        raise ValueError(f"Unknown dataset {name!r}; allowed: {tuple(PAPER_SPLITS)}.")
    return dict(PAPER_SPLITS[name])
