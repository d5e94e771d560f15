"""Every command the README and the book show works as written from the repository root.

Cheap checks, no execution of notebooks: each shown command is parsed by what would run it
(make targets in the Makefile, kdlib.book's own argument parser, papermill's notebook and
parameters), and the notebooks find the paper's tables whatever the working directory.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from kdlib import book, colab, presets

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "book").glob("*.md"))]


def _commands() -> list[tuple[str, str]]:
    """(document, command) for every line of a ```bash block and every inline `make ...`,
    `python -m ...`, `papermill ...`, `pip ...` or `conda ...` span."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, re.DOTALL):
            for line in block.splitlines():
                line = line.split(" #")[0].strip()
                if line and not line.startswith("#"):
                    found.append((doc.name, line))
        prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
        for span in re.findall(r"`([^`]+)`", prose.replace("\n", " ")):
            if re.match(r"(make|python -m|papermill|pip|conda) ", span):
                found.append((doc.name, span))
    return found


COMMANDS = _commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 10
    assert any(c.startswith("papermill ") for _, c in COMMANDS)


def _make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))


def _parameters(notebook: Path) -> set[str]:
    """Names assigned in a notebook's papermill parameters cell."""
    source = colab.parameters_source(json.loads(notebook.read_text())) or ""
    return set(re.findall(r"^(\w+)\s*=", source, re.MULTILINE))


def _check_make(args: list[str]) -> None:
    makefile = (REPO / "Makefile").read_text()
    for arg in args:
        if "=" in arg:
            var = arg.split("=")[0]
            assert re.search(rf"^{var}\s*\?=", makefile, re.MULTILINE), f"Makefile has no {var}"
        else:
            assert arg in _make_targets(), f"Makefile has no target {arg!r}"


def _check_kdlib_book(args: list[str], monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr(book, "_run_command", lambda a: seen.setdefault("args", a) and 0)
    monkeypatch.setattr(book, "_colab_command", lambda a: seen.setdefault("args", a) and 0)
    book.main(args)
    parsed = seen["args"]
    if parsed.command == "run":
        presets.check(parsed.preset)
        book.output_dir(parsed.preset, parsed.out)
    assert book.notebooks(parsed.only)  # --only prefixes match notebooks


def _check_papermill(args: list[str]) -> None:
    notebook, out, *rest = args
    path = REPO / notebook  # as written, from the repository root
    assert path.is_file(), f"{notebook} does not exist (relative to the repository root)"
    assert out.endswith(".ipynb")
    params = _parameters(path)
    while rest:
        flag, name, value, *rest = rest
        assert flag == "-p", f"unexpected papermill flag {flag!r}"
        assert name in params, f"{notebook} has no parameter {name!r}; it has {sorted(params)}"
        if name == "preset":
            presets.check(value)


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[c for _, c in COMMANDS])
def test_shown_command_works_from_the_repository_root(doc, command, monkeypatch):
    words = shlex.split(command)
    if words[0] == "make":
        _check_make(words[1:])
    elif words[:3] == ["python", "-m", "kdlib.book"]:
        _check_kdlib_book(words[3:], monkeypatch)
    elif words[:3] == ["python", "-m", "kdlib.migrate_inputs"]:
        from kdlib import migrate_inputs

        args = migrate_inputs.parser().parse_args(words[3:])
        assert args.results is None or (REPO / args.results).is_dir()
    elif words[:3] == ["python", "-m", "kdlib.experiments.queue"]:
        from kdlib.experiments import queue

        queue.parser().parse_args(words[3:])
    elif words[:3] == ["python", "-m", "kdlib.experiments.ladder_probe"]:
        from kdlib.experiments import ladder_probe

        presets.check(ladder_probe.parser().parse_args(words[3:]).preset)
    elif words[:3] == ["python", "-m", "kdlib.retrain"]:
        from kdlib import retrain

        args = retrain.parser().parse_args(words[3:])
        for run in args.run_dirs:
            assert (REPO / run / "summary.json").is_file(), f"{run} is not a stored run"
        assert args.record is None or (REPO / args.record).parent.is_dir(), args.record
    elif words[:3] == ["python", "-m", "kdlib.verdict_diff"]:
        from kdlib import verdict_diff

        args = verdict_diff.parser().parse_args(words[3:])
        assert verdict_diff.claims_at(args.rev, args.preset, REPO), "no claims committed"
    elif words[:3] == ["python", "-m", "kdlib.experiments.paper_recipes"]:
        from kdlib.experiments import paper_recipes

        target = words[words.index("--write") + 1]
        assert (REPO / target).is_file(), f"{target} does not exist"
        assert paper_recipes.main(["--check", str(REPO / target)]) == 0, f"{target} is stale"
    elif words[0] == "papermill":
        _check_papermill(words[1:])
    elif words[:3] == ["pip", "install", "-e"]:
        extras = re.fullmatch(r"\.\[([\w,]+)\]", words[3]).group(1).split(",")
        pyproject = (REPO / "pyproject.toml").read_text()
        section = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
        declared = set(re.findall(r"^(\w+)\s*=", section, re.MULTILINE))
        assert set(extras) <= declared, f"pyproject.toml has extras {sorted(declared)}"
    elif words[:3] == ["conda", "env", "create"]:
        assert (REPO / words[words.index("-f") + 1]).is_file()
    else:
        pytest.fail(f"{doc} shows {command!r}: teach this test to check it")


NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _sources(notebook: Path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]
                     if c["cell_type"] == "code")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_use_no_working_directory_relative_paths(notebook):
    """papermill from the root runs the kernel there: '../book/...' would not be found."""
    assert not re.search(r"[\"']\.\./", _sources(notebook))


def test_paper_tables_resolve_from_any_working_directory(tmp_path, monkeypatch):
    stems = set()
    for notebook in NOTEBOOKS:
        stems |= set(re.findall(r'book\.paper_table\("(\w+)"\)', _sources(notebook)))
    assert len(stems) >= 3
    monkeypatch.chdir(tmp_path)
    for stem in stems:
        assert book.paper_table(stem).is_file()
    with pytest.raises(FileNotFoundError, match="no paper table 'table99'.*known: "):
        book.paper_table("table99")


def test_notebooks_resolve_their_preset_parameter():
    """Every notebook passes its preset parameter through presets.resolve (so -p preset 0
    is an error, not the default)."""
    for notebook in NOTEBOOKS:
        assert "preset = presets.resolve(preset)" in _sources(notebook), notebook.name
