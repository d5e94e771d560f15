"""Open-in-Colab support: the badge and set-up cells of every notebook, and what they run.

`python -m kdlib.book colab` (re)writes two cells at the top of every chapter notebook: a
markdown "Open in Colab" badge and a code cell that, only inside Google Colab, clones the
repository and installs kdlib, then reports the accelerator and the preset the notebook will
use. The repository address lives in ONE place, `_config.yml`'s `repository.url` (+ branch);
the cells are generated from it and `--check` tells when they are out of date. While it is
unset (a copy not published on GitHub yet), the badge cell says so instead of linking to a
repository that does not exist (and is not rendered in the book), and the set-up cell stops in
Colab with that message; outside Colab the set-up cell installs nothing and prints what it
would do in Colab, without touching the network.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

COLAB_TAG = "colab"
BADGE_ID = "colab-badge"
SETUP_ID = "colab-setup"
PARAMETERS_TAG = "parameters"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
CLONE_DIR = "/content/kdbook"
# Where Colab downloads Fashion-MNIST from (Keras' mirror first, then Zalando's own).
FASHION_MNIST_URLS = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
)


# --------------------------------------------------------------------------- repository


UNSET = ("no repository address is set: `repository.url` in _config.yml is empty. Set it to "
         "the https://github.com/<owner>/<name> address this book is published at, then run "
         "`python -m kdlib.book colab` to write the Colab badge and set-up cells from it")


def repository(config_path: str | os.PathLike) -> tuple[str | None, str]:
    """(url, branch) of the repository named in a Jupyter Book `_config.yml`.

    The url is None while ``repository.url`` is unset or empty (see :data:`UNSET`); anything
    else must be a ``https://github.com/<owner>/<name>`` address.
    """
    import yaml

    config_path = Path(config_path)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    repo = config.get("repository") if isinstance(config, dict) else None
    if repo is not None and not isinstance(repo, dict):
        raise ValueError(f"{config_path}: repository={repo!r} must be a mapping with url and "
                         "branch (the Colab badge opens the notebook from GitHub)")
    url = (repo or {}).get("url")
    branch = str((repo or {}).get("branch") or "main")
    if url is None or (isinstance(url, str) and not url.strip()):
        return None, branch
    if not isinstance(url, str) or not url.startswith("https://github.com/"):
        raise ValueError(
            f"{config_path}: repository.url={url!r} must be a https://github.com/<owner>/<name> "
            "address (the Colab badge opens the notebook from GitHub)"
        )
    return url.rstrip("/").removesuffix(".git"), branch


def colab_url(notebook: str, url: str, branch: str) -> str:
    """Colab's address for `notebooks/<notebook>` of the GitHub repository `url` at `branch`."""
    path = url.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{branch}/notebooks/{notebook}"


# --------------------------------------------------------------------------- the two cells


def badge_cell(notebook: str, url: str | None, branch: str) -> dict[str, Any]:
    """The first cell: an "Open in Colab" badge (raw HTML: a remote image, alt text offline),
    or, while no repository is set, a note saying so (not rendered in the book)."""
    if url is None:
        return {
            "cell_type": "markdown",
            "id": BADGE_ID,
            "metadata": {"tags": [COLAB_TAG, "remove-cell"]},
            "source": f"*Open in Colab:* no badge yet, {UNSET}.",
        }
    source = (
        f'<a href="{colab_url(notebook, url, branch)}" target="_blank">'
        f'<img src="{BADGE_IMAGE}" alt="Open In Colab"/></a>'
    )
    return {
        "cell_type": "markdown",
        "id": BADGE_ID,
        "metadata": {"tags": [COLAB_TAG]},
        "source": source,
    }


_SETUP = '''\
# Set-up. In Google Colab: clone the repository and install kdlib (a minute); elsewhere this
# installs nothing: it says what it would do in Colab and reports the accelerator and the
# preset. Written by `python -m kdlib.book colab` from _config.yml's repository.url.
import sys

REPO, BRANCH, CLONE = {url}, {branch}, {clone}
if "google.colab" in sys.modules:
    import importlib
    import os
    import subprocess

    if REPO is None:
        raise RuntimeError({unset})
    if not os.path.isdir(CLONE):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", BRANCH, REPO, CLONE],
                       check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", CLONE], check=True)
    sys.path.insert(0, CLONE)  # an editable install is seen by new kernels only
    importlib.invalidate_caches()
    os.chdir(os.path.join(CLONE, "notebooks"))  # stored results are found from here

from kdlib import colab

colab.setup(REPO, BRANCH)'''


def setup_cell(url: str | None, branch: str) -> dict[str, Any]:
    """The second cell: installs kdlib in Colab only, then runs `kdlib.colab.setup()`."""
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": SETUP_ID,
        "metadata": {"tags": [COLAB_TAG, "remove-cell"]},  # not shown in the book
        "outputs": [],
        "source": _SETUP.format(url="None" if url is None else json.dumps(url),
                                branch=json.dumps(branch), clone=json.dumps(CLONE_DIR),
                                unset=_wrapped_literal(f"Cannot install kdlib: {UNSET}.",
                                                       indent=len("        raise RuntimeError("))),
    }


def _wrapped_literal(text: str, indent: int, width: int = 66) -> str:
    """`text` as adjacent string literals, one per line indented by `indent` (inside a call's
    parentheses), so the generated cell keeps within the 100-column lint limit."""
    pieces = textwrap.wrap(text, width, drop_whitespace=False, break_on_hyphens=False,
                           break_long_words=False)
    return ("\n" + " " * indent).join(json.dumps(p) for p in pieces)


def _lines(text: str) -> list[str]:
    """A cell source as nbformat stores it: a list of lines keeping their newlines."""
    return text.splitlines(keepends=True)


def _text(source: str | list[str]) -> str:
    """A cell source as one string (nbformat allows a string or a list of lines)."""
    return source if isinstance(source, str) else "".join(source)


def _tags(cell: dict[str, Any]) -> list[str]:
    """A cell's metadata tags ([] when it has none)."""
    return list(cell.get("metadata", {}).get("tags", []))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two cells have the same type, metadata and source (outputs are ignored)."""
    return (
        a.get("cell_type") == b.get("cell_type")
        and a.get("metadata", {}) == b.get("metadata", {})
        and _text(a.get("source", "")) == _text(b.get("source", ""))
    )


def wanted_cells(notebook: str, url: str | None, branch: str) -> list[dict[str, Any]]:
    """The badge and set-up cells that notebook file `notebook` should start with."""
    return [badge_cell(notebook, url, branch), setup_cell(url, branch)]


def inject(nb: dict[str, Any], notebook: str, url: str | None, branch: str) -> dict[str, Any]:
    """A copy of notebook `nb` starting with the current badge and set-up cells.

    Cells tagged "colab" anywhere are removed first, so injecting twice changes nothing.
    """
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{notebook}: not a notebook (no 'cells' list)")
    out = copy.deepcopy(nb)
    kept = [c for c in out["cells"] if COLAB_TAG not in _tags(c)]
    cells = wanted_cells(notebook, url, branch)
    with_ids = (out.get("nbformat", 4), out.get("nbformat_minor", 0)) >= (4, 5)
    for cell in cells:
        cell["source"] = _lines(cell["source"])
        if not with_ids:
            del cell["id"]
    out["cells"] = cells + kept
    return out


def up_to_date(nb: dict[str, Any], notebook: str, url: str | None, branch: str) -> bool:
    """Whether `nb` starts with the current two cells and has no other "colab" cell."""
    cells = nb.get("cells", [])
    wanted = wanted_cells(notebook, url, branch)
    head_ok = len(cells) >= 2 and all(_same(c, w) for c, w in zip(cells[:2], wanted, strict=True))
    return head_ok and not any(COLAB_TAG in _tags(c) for c in cells[2:])


def parameters_source(nb: dict[str, Any]) -> str | None:
    """The source of the cell tagged "parameters" (papermill injects its overrides after it),
    or None when there is none."""
    for cell in nb.get("cells", []):
        if PARAMETERS_TAG in _tags(cell):
            return _text(cell.get("source", ""))
    return None


def has_parameters_cell(nb: dict[str, Any]) -> bool:
    """Whether some cell is tagged "parameters"."""
    return parameters_source(nb) is not None


def dumps(nb: dict[str, Any]) -> str:
    """Notebook JSON the way nbformat writes it (indent 1, sorted keys, final newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def sync(paths: Iterable[str | os.PathLike], url: str | None, branch: str, *, check: bool = False
         ) -> list[Path]:
    """Bring the colab cells of every notebook in `paths` up to date; return those that were not.

    With check=True nothing is written: the returned list is what a sync would change.
    """
    stale = []
    for path in map(Path, paths):
        nb = json.loads(path.read_text(encoding="utf-8"))
        if up_to_date(nb, path.name, url, branch):
            continue
        stale.append(path)
        if not check:
            path.write_text(dumps(inject(nb, path.name, url, branch)), encoding="utf-8")
    return stale


# --------------------------------------------------------------------------- inside the notebook


def in_colab() -> bool:
    """Whether this process is a Google Colab kernel."""
    return "google.colab" in sys.modules


def accelerator() -> str:
    """The accelerator jax runs on: "tpu", "gpu" or "cpu" (jax.default_backend())."""
    import jax

    backend = jax.default_backend()
    return "gpu" if backend in ("gpu", "cuda", "rocm") else backend


def suggested_preset(backend: str) -> str:
    """The preset that fits an accelerator: "gpu" for a GPU or TPU, else the cpu default."""
    return "gpu" if backend in ("gpu", "tpu") else "cpu"


def report(backend: str, preset: str) -> str:
    """The accelerator, the preset the notebook starts from, and a better one if there is."""
    lines = [f"accelerator: {backend}; preset: {preset} ($KDLIB_PRESET, else the default; "
             "a preset set in the parameters cell wins)"]
    better = suggested_preset(backend)
    if better != preset and preset in ("smoke", "cpu"):
        lines.append(
            f"A {backend.upper()} is available: for the {better} preset set preset = {better!r} "
            f"in the parameters cell below (or KDLIB_PRESET={better})."
        )
    return "\n".join(lines)


def fetch_fashion_mnist(folder: str | os.PathLike) -> Path:
    """Download the four Fashion-MNIST files into `folder` (Colab has no Debian package)."""
    import urllib.error
    import urllib.request

    from kdlib.data.embedded import FASHION_MNIST_FILES

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (f for pair in FASHION_MNIST_FILES.values() for f in pair):
        target = folder / name
        errors = []
        for base in FASHION_MNIST_URLS:
            if target.is_file():
                break
            partial = target.with_suffix(".part")
            try:
                urllib.request.urlretrieve(f"{base}/{name}", partial)
                partial.replace(target)
            except (OSError, urllib.error.URLError) as err:
                errors.append(f"{base}/{name}: {err}")
        if not target.is_file():
            raise FileNotFoundError(f"could not download {name}: {'; '.join(errors)}")
    return folder


def ensure_data(folder: str | os.PathLike = "/content/fashion-mnist") -> None:
    """Make the embedded data available (in Colab): download it unless a copy is found."""
    from kdlib.data import embedded

    if embedded.fashion_mnist_dir() is None:
        os.environ["KDLIB_DATA"] = str(fetch_fashion_mnist(folder))


def plan(url: str | None, branch: str = "main") -> str:
    """What the set-up cell does in Colab, in words (printed outside Colab, offline)."""
    if url is None:
        return f"Outside Colab: nothing to install. In Colab this cell would stop: {UNSET}."
    mirror = FASHION_MNIST_URLS[0]
    return (f"Outside Colab: nothing to install. In Colab this cell clones {url} (branch "
            f"{branch}) into {CLONE_DIR}, installs kdlib from it (pip install -e), downloads "
            f"Fashion-MNIST from {mirror} and works from {CLONE_DIR}/notebooks.")


def setup(url: str | None = None, branch: str = "main") -> None:
    """What the set-up cell runs after installing: fetch data in Colab (else say what Colab
    would do), then print the accelerator and preset report."""
    from kdlib import presets

    if in_colab():
        ensure_data()
    else:
        print(plan(url, branch))
    print(report(accelerator(), presets.current()))
