"""Tests of kdlib.book (batch reruns, provenance tables) and kdlib.colab (the Colab cells)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import types
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest

from kdlib import book, colab, presets, provenance_tables, store

REPO = Path(__file__).resolve().parent.parent
URL, BRANCH = "https://github.com/someone/kdbook", "dev"


def notebook(*cells: dict) -> dict:
    """A minimal nbformat 4.5 notebook holding `cells`."""
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3",
            "display_name": "Python 3", "language": "python"}}, "nbformat": 4,
            "nbformat_minor": 5}


def code(source: str, tags: list[str] | None = None, cid: str = "c") -> dict:
    """A code cell (with tags in its metadata when given)."""
    return {"cell_type": "code", "execution_count": None, "id": cid,
            "metadata": {"tags": tags} if tags else {}, "outputs": [], "source": source}


def markdown(source: str, cid: str = "m") -> dict:
    """A markdown cell."""
    return {"cell_type": "markdown", "id": cid, "metadata": {}, "source": source}


def write(path: Path, nb: dict) -> Path:
    """Write a notebook dict as JSON."""
    path.write_text(json.dumps(nb, indent=1))
    return path


@pytest.fixture
def config(tmp_path) -> Path:
    """A _config.yml naming the test repository."""
    path = tmp_path / "_config.yml"
    path.write_text(f"title: t\nrepository:\n  url: {URL}\n  branch: {BRANCH}\n")
    return path


@pytest.fixture
def nb_dir(tmp_path) -> Path:
    """A notebooks folder: 00_teachers without its Colab cells, and a small chapter."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    teachers_nb = json.loads((REPO / "notebooks" / "00_teachers.ipynb").read_text())
    teachers_nb["cells"] = [c for c in teachers_nb["cells"]
                            if "colab" not in c.get("metadata", {}).get("tags", [])]
    write(folder / "00_teachers.ipynb", teachers_nb)
    write(folder / "07_small.ipynb", notebook(
        markdown("# 07 · Small", "m1"), code("preset = None", ["parameters"], "p1"),
        code("x = 1", None, "c1")))
    (folder / "scratch.ipynb").write_text("{}")  # not a chapter: never touched
    return folder


# --------------------------------------------------------------------------- colab cells


def test_repository_reads_config(config):
    assert colab.repository(config) == (URL, BRANCH)


@pytest.mark.parametrize("text", ["repository:\n  url: git@github.com:a/b.git\n",
                                  "repository:\n  url: 3\n", "repository: nope\n"])
def test_repository_rejects_non_github_url(tmp_path, text):
    path = tmp_path / "_config.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match="repository"):
        colab.repository(path)


@pytest.mark.parametrize("text", ["title: x\n", "repository:\n  url: ''\n  branch: dev\n",
                                  "repository:\n  url:\n"])
def test_repository_unset_is_none(tmp_path, text):
    path = tmp_path / "_config.yml"
    path.write_text(text)
    assert colab.repository(path) == (None, "dev" if "dev" in text else "main")


def test_repo_config_names_a_github_repository_or_none():
    url, branch = colab.repository(REPO / "_config.yml")
    assert (url is None or url.startswith("https://github.com/")) and branch


def test_unset_repository_badge_says_so_and_setup_stops_in_colab(monkeypatch):
    """No placeholder address: the badge cell says what to set (and is not rendered), and in
    Colab the set-up cell stops with that message before running anything."""
    badge = colab.badge_cell("01_x.ipynb", None, "main")
    assert "repository.url" in badge["source"] and "remove-cell" in badge["metadata"]["tags"]
    assert "colab.research.google.com" not in badge["source"]
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("must not run commands"))
    source = "".join(colab.setup_cell(None, "main")["source"])
    with pytest.raises(RuntimeError, match="repository.url. in _config.yml is empty") as err:
        exec(source, {})
    assert str(err.value) == f"Cannot install kdlib: {colab.UNSET}."  # wrapped, not cut
    assert max(len(line) for line in source.splitlines()) <= 100  # lint-clean notebooks
    nb = colab.inject(notebook(markdown("# T")), "a.ipynb", None, "main")
    assert colab.up_to_date(nb, "a.ipynb", None, "main")
    assert not colab.up_to_date(nb, "a.ipynb", URL, BRANCH)


@pytest.mark.parametrize("url", [URL, None])
def test_setup_cell_runs_offline_and_says_what_it_would_do(monkeypatch, capsys, url):
    """Outside Colab, with every network connection refused: installs nothing, prints the plan."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("must not run commands"))
    monkeypatch.setenv("KDLIB_PRESET", "smoke")
    exec("".join(colab.setup_cell(url, BRANCH)["source"]), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Outside Colab: nothing to install. In Colab this cell ")
    if url:
        assert f"clones {URL} (branch {BRANCH}) into {colab.CLONE_DIR}" in out[0]
        assert colab.FASHION_MNIST_URLS[0] in out[0]
    else:
        assert "would stop" in out[0] and "repository.url" in out[0]
    assert out[1].startswith("accelerator: cpu; preset: smoke")


def test_colab_url():
    assert colab.colab_url("01_x.ipynb", URL, BRANCH) == (
        "https://colab.research.google.com/github/someone/kdbook/blob/dev/notebooks/01_x.ipynb")


def test_inject_puts_badge_and_setup_first_and_is_idempotent():
    nb = notebook(markdown("# T"), code("preset = None", ["parameters"], "p"))
    once = colab.inject(nb, "07_small.ipynb", URL, BRANCH)
    assert [c["id"] for c in once["cells"]] == ["colab-badge", "colab-setup", "m", "p"]
    badge, setup = once["cells"][:2]
    assert badge["cell_type"] == "markdown" and "colab" in badge["metadata"]["tags"]
    assert colab.colab_url("07_small.ipynb", URL, BRANCH) in "".join(badge["source"])
    assert setup["cell_type"] == "code" and "colab" in setup["metadata"]["tags"]
    assert f'"{URL}"' in "".join(setup["source"]) and f'"{BRANCH}"' in "".join(setup["source"])
    assert colab.up_to_date(once, "07_small.ipynb", URL, BRANCH)
    assert not colab.up_to_date(nb, "07_small.ipynb", URL, BRANCH)
    assert colab.inject(once, "07_small.ipynb", URL, BRANCH) == once
    assert nb["cells"][0]["id"] == "m"  # the input is not modified
    # another repository: the old cells are replaced, not duplicated
    moved = colab.inject(once, "07_small.ipynb", "https://github.com/other/repo", "main")
    assert len(moved["cells"]) == 4 and "other/repo" in "".join(moved["cells"][1]["source"])
    assert not colab.up_to_date(once, "07_small.ipynb", "https://github.com/other/repo", "main")


def test_stray_colab_cell_makes_notebook_stale():
    nb = colab.inject(notebook(markdown("# T")), "a.ipynb", URL, BRANCH)
    nb["cells"].append(markdown("old badge") | {"metadata": {"tags": ["colab"]}})
    assert not colab.up_to_date(nb, "a.ipynb", URL, BRANCH)
    assert len(colab.inject(nb, "a.ipynb", URL, BRANCH)["cells"]) == 3


def test_inject_without_cell_ids_for_older_nbformat():
    nb = notebook(markdown("# T")) | {"nbformat_minor": 4}
    assert all("id" not in c for c in colab.inject(nb, "a.ipynb", URL, BRANCH)["cells"][:2])


def test_inject_rejects_non_notebook():
    with pytest.raises(ValueError, match="not a notebook"):
        colab.inject({"cells": "x"}, "a.ipynb", URL, BRANCH)


def test_cli_sync_then_check_on_copies(nb_dir, config, capsys):
    args = ["--dir", str(nb_dir), "--config", str(config)]
    assert book.main(["colab", "--check", *args]) == 1
    assert "out of date" in capsys.readouterr().out
    before = {p.name: p.read_text() for p in nb_dir.iterdir()}
    assert book.main(["colab", *args]) == 0
    after = {p.name: p.read_text() for p in nb_dir.iterdir()}
    assert after["scratch.ipynb"] == before["scratch.ipynb"]
    for name in ("00_teachers.ipynb", "07_small.ipynb"):
        nb = json.loads(after[name])
        tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
        assert "colab" in tags[0] and "colab" in tags[1]
        first_params = next(i for i, t in enumerate(tags) if "parameters" in t)
        assert first_params > 1  # the papermill parameters cell stays after the two cells
        old = json.loads(before[name])["cells"]
        assert nb["cells"][2:] == old  # the chapter's own cells are untouched
    assert book.main(["colab", "--check", *args]) == 0
    assert book.main(["colab", *args]) == 0  # a second sync writes nothing
    assert {p.name: p.read_text() for p in nb_dir.iterdir()} == after


def test_cli_warns_about_missing_parameters_cell(tmp_path, config, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    write(folder / "01_x.ipynb", notebook(markdown("# X")))
    assert book.main(["colab", "--dir", str(folder), "--config", str(config)]) == 0
    assert "01_x.ipynb has no cell tagged 'parameters'" in capsys.readouterr().out


def test_setup_cell_in_colab_clones_installs_and_reports(monkeypatch, capsys):
    """Run the set-up cell's source as if in Colab, with git/pip/chdir recorded, not run."""
    calls, dirs = [], []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setattr(os, "chdir", dirs.append)
    monkeypatch.setattr(os.path, "isdir", lambda p: False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(colab, "ensure_data", lambda: print("data ok"))
    monkeypatch.setattr(colab, "accelerator", lambda: "tpu")  # a fake google.colab upsets jax
    monkeypatch.setenv("KDLIB_PRESET", "cpu")
    exec("".join(colab.setup_cell(URL, BRANCH)["source"]), {})
    assert calls[0][:2] == ["git", "clone"] and URL in calls[0] and BRANCH in calls[0]
    assert calls[1][:4] == [sys.executable, "-m", "pip", "install"]
    assert calls[1][-1] == colab.CLONE_DIR and sys.path[0] == colab.CLONE_DIR
    assert dirs == [os.path.join(colab.CLONE_DIR, "notebooks")]
    out = capsys.readouterr().out
    assert "data ok" in out and "accelerator: tpu; preset: cpu" in out and "preset = 'gpu'" in out


def test_setup_cell_outside_colab_only_reports(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("must not run commands"))
    monkeypatch.setenv("KDLIB_PRESET", "smoke")
    exec("".join(colab.setup_cell(URL, BRANCH)["source"]), {})
    assert "accelerator: cpu; preset: smoke" in capsys.readouterr().out


@pytest.mark.parametrize("backend,preset,suggests", [
    ("gpu", "cpu", True), ("tpu", "smoke", True), ("gpu", "gpu", False), ("cpu", "cpu", False),
    ("gpu", "paper", False)])
def test_report_suggests_gpu_preset_on_accelerators(backend, preset, suggests):
    text = colab.report(backend, preset)
    assert text.startswith(f"accelerator: {backend}; preset: {preset}")
    assert ("preset = 'gpu'" in text) == suggests


def test_ensure_data_keeps_existing_copy(tmp_path, monkeypatch):
    from kdlib.data.embedded import FASHION_MNIST_FILES

    for name in (f for pair in FASHION_MNIST_FILES.values() for f in pair):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    monkeypatch.setattr(colab, "fetch_fashion_mnist", lambda f: pytest.fail("no download"))
    colab.ensure_data(tmp_path / "elsewhere")
    assert os.environ["KDLIB_DATA"] == str(tmp_path)


def test_fetch_fashion_mnist_falls_back_to_the_second_mirror(tmp_path, monkeypatch):
    import urllib.request

    tried = []

    def fake_retrieve(url, target):
        tried.append(url)
        if url.startswith(colab.FASHION_MNIST_URLS[0]):
            raise OSError("unreachable")
        Path(target).write_bytes(b"gz")

    monkeypatch.setattr(urllib.request, "urlretrieve", fake_retrieve)
    folder = colab.fetch_fashion_mnist(tmp_path / "fm")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
         "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"])
    assert len(tried) == 8
    tried.clear()
    colab.fetch_fashion_mnist(tmp_path / "fm")  # all there: nothing downloaded again
    assert tried == []
    monkeypatch.setattr(urllib.request, "urlretrieve",
                        lambda url, target: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(FileNotFoundError, match="could not download train-images.*offline"):
        colab.fetch_fashion_mnist(tmp_path / "empty")


# --------------------------------------------------------------------------- batch reruns


@pytest.mark.parametrize("preset", [p for p in presets.PRESETS if p != presets.DEFAULT_PRESET])
def test_non_default_presets_never_write_into_book(preset):
    out = book.output_dir(preset)
    assert out == REPO / "_build" / "notebooks" / preset
    assert REPO / "book" not in out.parents and out != REPO / "book"


def test_default_preset_writes_the_book_and_out_overrides(tmp_path):
    assert book.output_dir(presets.DEFAULT_PRESET) == REPO / "book"
    assert book.output_dir("gpu", tmp_path) == tmp_path
    with pytest.raises(ValueError, match="preset='tpu'"):
        book.output_dir("tpu")
    assert book.output_dir("cpu", REPO / "book") == REPO / "book"


@pytest.mark.parametrize("out", ["book", "book/sub", "book/../book/x"])
def test_out_inside_book_is_refused_for_other_presets(out, capsys):
    with pytest.raises(ValueError, match="only the 'cpu' preset"):
        book.output_dir("smoke", REPO / out)
    with pytest.raises(SystemExit) as exit_info:  # the command line: one error line, status 2
        book.main(["run", "--preset", "gpu", "--out", str(REPO / out), "--only", "00"])
    assert exit_info.value.code == 2
    assert "only the 'cpu' preset" in capsys.readouterr().err.splitlines()[-1]


def test_run_prints_summary_records_times_and_fails_on_any_failure(
        nb_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(book, "REPO", tmp_path)
    executed = []

    def fake_execute(path, preset, out_dir, parameters=None):
        executed.append((path.name, preset, out_dir))
        if path.name.startswith("07"):
            raise RuntimeError("cell 3 raised\nlong traceback")
        return out_dir / path.name

    monkeypatch.setattr(book, "execute", fake_execute)
    # a plain run records no timings (a rebuild changes no file) ...
    assert book.main(["run", "--preset", "gpu", "--dir", str(nb_dir), "--only", "00"]) == 0
    assert not (tmp_path / "results" / "gpu" / book.TIMES_FILE).exists()
    assert "timings recorded" not in capsys.readouterr().out
    executed.clear()
    # ... --record-times does
    assert book.main(["run", "--preset", "gpu", "--dir", str(nb_dir), "--record-times"]) == 1
    assert [e[0] for e in executed] == ["00_teachers.ipynb", "07_small.ipynb"]
    assert {e[2] for e in executed} == {tmp_path / "_build" / "notebooks" / "gpu"}
    out = capsys.readouterr().out
    table = out[out.index("notebook  "):].splitlines()
    assert table[0].split() == ["notebook", "status", "seconds"]
    assert table[1].split()[:2] == ["00_teachers.ipynb", "ok"]
    assert table[2].split()[:2] == ["07_small.ipynb", "failed"]
    assert table[3].split()[:3] == ["total", "1", "bad"]
    assert "RuntimeError: cell 3 raised" in out and "long traceback" not in out
    times = store.read_json(tmp_path / "results" / "gpu" / book.TIMES_FILE)
    assert set(times) == {"00_teachers", "07_small"}
    assert times["00_teachers"]["status"] == "ok" and times["07_small"]["status"] == "failed"
    assert times["00_teachers"]["backend"] == "cpu"
    # a later batch of one notebook keeps the other's entry
    assert book.main(["run", "--preset", "gpu", "--dir", str(nb_dir), "--only", "00",
                      "--record-times"]) == 0
    assert set(store.read_json(tmp_path / "results" / "gpu" / book.TIMES_FILE)) == {
        "00_teachers", "07_small"}


def test_toc_selects_the_book_chapters_only(nb_dir, tmp_path, monkeypatch):
    """`run --toc` executes only the notebooks the table of contents puts in the book."""
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/running\n"
                   "  - file: book/00_teachers\n    sections:\n      - file: book/x\n")
    assert book.toc_stems(toc) == ["intro", "running", "00_teachers", "x"]
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(book, "REPO", tmp_path)
    executed = []
    monkeypatch.setattr(book, "execute", lambda path, *a, **k: executed.append(path.name))
    assert book.main(["run", "--preset", "gpu", "--dir", str(nb_dir), "--toc",
                      "--toc-file", str(toc)]) == 0
    assert executed == ["00_teachers.ipynb"]  # 07_small is not in the toc


@pytest.mark.parametrize("text, names", [
    ("", "names no 'root' file"), ("{}\n", "names no 'root' file"),
    ("root: [a\n  b: c\n", "is not valid YAML (line 2)"),
    ("root: book/intro\nchapters: hello\n", "holds 'hello' where a list belongs")])
def test_a_toc_file_that_is_no_table_of_contents_is_a_usage_error(
        nb_dir, tmp_path, monkeypatch, capsys, text, names):
    """An empty, rootless or malformed --toc-file: one line naming the file and what a toc
    needs (exit status 2), not a TypeError, KeyError or YAML error from inside a library."""
    toc = tmp_path / "toc.yml"
    toc.write_text(text)
    monkeypatch.setattr(book, "execute", lambda *a, **k: pytest.fail("executed"))
    with pytest.raises(SystemExit) as exit_info:
        book.main(["run", "--preset", "gpu", "--out", str(tmp_path / "out"), "--dir",
                   str(nb_dir), "--toc", "--toc-file", str(toc)])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"table of contents {toc} {names}" in last and "a 'root' file" in last, last


def test_an_empty_selection_is_an_error_with_toc_as_without_and_a_blank_prefix_too(
        nb_dir, tmp_path, monkeypatch, capsys):
    """--toc with --only 00 where the toc lacks 00 runs nothing: the same usage error as an
    --only matching no notebook (not "total ok 0"); --only "" would match every notebook."""
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/07_small\n")
    monkeypatch.setattr(book, "execute", lambda *a, **k: pytest.fail("executed"))
    common = ["run", "--preset", "gpu", "--out", str(tmp_path / "out"), "--dir", str(nb_dir)]
    for argv, message in (
            (["--only", "00", "--toc", "--toc-file", str(toc)],
             f"--only ['00'] matches no notebook in {nb_dir} that {toc} puts in the book"),
            (["--only", "09"], f"--only ['09'] matches no notebook in {nb_dir}"),
            (["--only", ""], "--only ['']: a blank prefix ('') matches every notebook; give "
                             "name prefixes such as 00")):
        with pytest.raises(SystemExit) as exit_info:
            book.main(common + argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(SystemExit) as exit_info:
        book.main(["normalize", "--dir", str(nb_dir), "--only", "07", ""])
    assert exit_info.value.code == 2
    assert "a blank prefix ('')" in capsys.readouterr().err.strip().splitlines()[-1]


def test_repo_toc_chapters_have_executed_notebooks():
    """Every notebook chapter of the book has its executed copy in book/ (what is rendered)."""
    sources = {p.stem for p in book.notebooks()}
    for stem in book.toc_stems():
        if stem in sources:
            assert (REPO / "book" / f"{stem}.ipynb").is_file(), stem


def test_summary_table_alignment():
    rows = [book.Outcome("00_a.ipynb", "ok", 12.4), book.Outcome("91_provenance.ipynb", "ok", 3)]
    lines = book.summary_table(rows).splitlines()
    assert lines[1] == "00_a.ipynb           ok            12"
    assert lines[-1] == "total                ok            15"
    assert len({len(line) for line in lines}) == 1


def test_a_failed_notebook_names_its_cells_error():
    """papermill's error message starts with a blank line; the batch prints the cell's
    exception (its ename and evalue) instead of an empty reason."""
    from papermill.exceptions import PapermillExecutionError

    exc = PapermillExecutionError(3, 4, "raise ValueError('boom')", "ValueError",
                                  "boom: lr=-1 is not allowed", ["tb"])
    assert str(exc).startswith("\n")
    assert book.failure_text(exc) == ("PapermillExecutionError: ValueError: boom: lr=-1 is "
                                      "not allowed")
    assert book.failure_text(RuntimeError("\n\ncell 3 raised\nmore")) == \
        "RuntimeError: cell 3 raised"
    assert book.failure_text(RuntimeError()) == "RuntimeError: "


def test_the_kernel_imports_this_checkouts_kdlib_and_reports_the_preset(monkeypatch):
    """An editable install may point at another clone: the kernel's PYTHONPATH starts with
    this checkout, and its set-up cell (before papermill's parameters) sees the preset run;
    both are restored afterwards."""
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.delenv("KDLIB_PRESET", raising=False)
    with book.kernel_env("smoke"):
        assert os.environ["PYTHONPATH"].split(os.pathsep) == [str(book.REPO), "/elsewhere"]
        assert os.environ["KDLIB_PRESET"] == "smoke"
    assert os.environ["PYTHONPATH"] == "/elsewhere" and "KDLIB_PRESET" not in os.environ


def test_run_executes_for_real_outside_book(tmp_path, monkeypatch, config, capsys):
    """One real papermill run of a tiny chapter (with its Colab cells) at the smoke preset."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write(folder / "01_tiny.ipynb", notebook(
        markdown("# Tiny"), code("preset = None", ["parameters"], "p"),
        code("print('ran at', preset)", None, "c")))
    assert book.main(["colab", "--dir", str(folder), "--config", str(config)]) == 0
    monkeypatch.setattr(book, "REPO", tmp_path)
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path / "results"))
    assert book.main(["run", "--preset", "smoke", "--dir", str(folder)]) == 0
    assert not (tmp_path / "book").exists()
    executed = json.loads((tmp_path / "_build/notebooks/smoke/01_tiny.ipynb").read_text())
    texts = ["".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])]
    assert any("accelerator: cpu" in t for t in texts)  # the set-up cell ran
    assert "ran at smoke\n" in texts
    assert "01_tiny.ipynb  ok" in capsys.readouterr().out
    # the copy is normalized: no clock readings, repository-relative paths, parameters hidden
    assert "start_time" not in executed["metadata"]["papermill"]
    assert executed["metadata"]["papermill"]["input_path"] == "notebooks/01_tiny.ipynb"
    assert all("execution" not in c["metadata"] for c in executed["cells"])
    removed = [c["metadata"]["tags"] for c in executed["cells"]
               if {"parameters", "injected-parameters"} & set(c["metadata"].get("tags", []))]
    assert len(removed) == 2 and all("remove-cell" in t for t in removed)
    # a second run with nothing changed leaves the file alone (same bytes, same mtime)
    copy = tmp_path / "_build/notebooks/smoke/01_tiny.ipynb"
    before, mtime = copy.read_bytes(), copy.stat().st_mtime_ns
    assert book.main(["run", "--preset", "smoke", "--dir", str(folder)]) == 0
    assert copy.read_bytes() == before and copy.stat().st_mtime_ns == mtime
    assert not (tmp_path / "results" / "smoke" / book.TIMES_FILE).exists()


# --------------------------------------------------------------------------- provenance tables


def _stored_run(root: Path, section: str, seconds: float, status: str = "done",
                group: tuple[str, ...] = (), seed: int = 0, steps: int | None = None) -> None:
    """Store a fake finished run with provenance under `root`/cpu/<section>/ (``steps`` of
    batch 100 when given)."""
    cfg = {"preset": "cpu", "section": section, "seed": int(seconds) + seed, "batch_size": 100}
    prov = {"commit": "abc1234", "wall_time_s": seconds, "finished_at": "2026-01-02T03:04:05+00:00",
            "machine": {"hostname": "h", "jax_backend": "gpu", "device_kinds": ["H100"],
                        "device_count": 1}, "group": list(group)}
    summary = {"acc": 0.5} if steps is None else {"acc": 0.5, "step": steps}
    store.save_run(store.run_dir(cfg, root), cfg, summary, prov, status)


def test_provenance_tables(tmp_path):
    _stored_run(tmp_path, "01_a", 1800)
    _stored_run(tmp_path, "01_a", 5400, "diverged")
    _stored_run(tmp_path, "02_b", 360)
    # a vectorized group of two: each run records the group's wall time, counted once
    for seed in (1, 2):
        _stored_run(tmp_path, "02_b", 720, group=("a", "b"), seed=seed, steps=360)
    # one stored before group mates were recorded: the summary's group size counts it
    cfg = {"preset": "cpu", "section": "03_c", "seed": 7}
    store.save_run(store.run_dir(cfg, tmp_path), cfg, {"acc": 0.5, "group_size": 4},
                   {"wall_time_s": 3600.0, "commit": "abc1234-dirty"}, "done")
    store.prepare_run({"preset": "cpu", "section": "02_b", "seed": 99}, tmp_path)  # running
    rows = provenance_tables.run_rows(store.list_runs(tmp_path, preset="cpu",
                                                      include_unfinished=True))
    assert len(rows) == 7
    done = next(r for r in rows if r["wall time (min)"] == 30.0)
    assert done == {"section": "01_a", "hash": done["hash"], "status": "done",
                    "commit": "abc1234", "machine": "h", "device": "gpu (H100 x1)",
                    "wall time (min)": 30.0, "group runs": 1, "images": 0,
                    "timed images": 0, "finished": "2026-01-02 03:04"}
    running = next(r for r in rows if r["status"] == "running")
    assert running["wall time (min)"] is None and running["device"] == ""
    # a run parked in one session and finished in another names both commits
    cfg = {"preset": "cpu", "section": "04_d", "seed": 3}
    store.save_run(store.run_dir(cfg, tmp_path / "parked"), cfg,
                   {"acc": 0.5, "earlier_commits": ["0ld0ld0", "abc1234"]},
                   {"commit": "abc1234", "wall_time_s": 60.0}, "done")
    parked = provenance_tables.run_rows(store.list_runs(tmp_path / "parked", preset="cpu"))
    assert parked[0]["commit"] == "abc1234 (earlier: 0ld0ld0)"
    # 02_b: 2 x 36,000 images of the group over its 720 s + 360 s of the lone run
    assert provenance_tables.section_totals(rows) == [
        {"section": "01_a", "runs": 2, "finished": 2, "wall time (h)": 2.0, "scaled runs": 0,
         "dirty commit": 0, "run img/s": None},
        {"section": "02_b", "runs": 4, "finished": 3, "wall time (h)": 0.3, "scaled runs": 0,
         "dirty commit": 0, "run img/s": 67},
        {"section": "03_c", "runs": 1, "finished": 1, "wall time (h)": 0.25, "scaled runs": 0,
         "dirty commit": 1, "run img/s": None}]
    store.write_json_atomic(tmp_path / "cpu" / book.TIMES_FILE, {
        "02_b": {"seconds": 12.5, "status": "ok", "backend": "cpu",
                 "finished_at": "2026-01-03T00:00:00+00:00"},
        "03_c": {"seconds": 9.0, "status": "failed", "backend": "cpu"}})
    times = provenance_tables.expected_times(tmp_path)
    assert [(t["preset"], t["notebook"], t["runs"], t["train (h)"], t["last run (s)"])
            for t in times] == [("cpu", "01_a", 2, 2.0, None), ("cpu", "02_b", 3, 0.3, 12.5),
                                ("cpu", "03_c", 1, 0.25, None)]
    # the smoke preset's results are scratch (gitignored): left out unless asked for
    smoke = {"preset": "smoke", "section": "01_a", "seed": 1}
    store.save_run(store.run_dir(smoke, tmp_path), smoke, {"acc": 0.5}, {"wall_time_s": 3.0},
                   "done")
    assert {t["preset"] for t in provenance_tables.expected_times(tmp_path)} == {"cpu"}
    assert {t["preset"] for t in provenance_tables.expected_times(tmp_path, ("smoke", "cpu"))} == {
        "smoke", "cpu"}


def test_section_totals_scale_a_resumed_runs_untimed_share(tmp_path):
    """A run resumed before the loop carried its earlier time: its 900 s cover a quarter of
    its 36,000 images (10 img/s over 900 s), so its section counts 3,600 s for it."""
    cfg = {"preset": "cpu", "section": "04_d", "seed": 8, "batch_size": 100}
    store.save_run(store.run_dir(cfg, tmp_path), cfg,
                   {"step": 360, "img_per_s": 10.0, "train_time_s": 900.0},
                   {"wall_time_s": 900.0}, "done")
    rows = provenance_tables.run_rows(store.list_runs(tmp_path, preset="cpu"))
    assert rows[0]["images"] == 36000 and rows[0]["timed images"] == 9000
    assert provenance_tables.section_totals(rows) == [{
        "section": "04_d", "runs": 1, "finished": 1, "wall time (h)": 1.0, "scaled runs": 1,
        "dirty commit": 0, "run img/s": 10}]
    # the whole run timed (40 img/s over 900 s): not scaled
    store.write_json_atomic(store.run_dir(cfg, tmp_path) / "summary.json",
                            {"status": "done", "step": 360, "img_per_s": 40.0,
                             "train_time_s": 900.0})
    records = store.list_runs(tmp_path, preset="cpu")
    totals = provenance_tables.section_totals(provenance_tables.run_rows(records))
    assert totals[0]["scaled runs"] == 0 and totals[0]["wall time (h)"] == 0.25


def test_teacher_rows(tmp_path):
    card = {"name": "t1", "dataset": "fashion_mnist", "model": "bit", "image_size": 28,
            "val_acc": 0.9, "test_acc": 0.8, "config_hash": "abcdef123456",
            "train_wall_time_s": 120.0, "provenance": {"preset": "cpu", "commit": "c1"}}
    store.write_json_atomic(tmp_path / "teachers" / "t1" / "card.json", card)
    (rows,) = provenance_tables.teacher_rows(tmp_path)
    assert rows["teacher"] == "t1" and rows["test acc"] == 0.8 and rows["train time (min)"] == 2.0
    assert provenance_tables.teacher_rows(tmp_path / "none") == []


# --------------------------------------------------------------------------- the repository


def test_repo_notebooks_have_current_colab_cells(capsys):
    """Fails until `python -m kdlib.book colab` has been run after a notebook changed."""
    assert book.main(["colab", "--check"]) == 0, capsys.readouterr().out


def test_repo_summary_and_provenance_notebooks_are_parameterized():
    for name in ("90_summary.ipynb", "91_provenance.ipynb"):
        nb = json.loads((REPO / "notebooks" / name).read_text())
        tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
        assert "colab" in tags[0] and "colab" in tags[1]
        assert any("parameters" in t for t in tags[2:])
        assert all(c.get("outputs", []) == [] for c in nb["cells"])  # sources carry no outputs


def test_paper_tables_are_in_the_book():
    folder = REPO / "book" / "paper_tables"
    heads = {p.name: p.read_text().splitlines()[0] for p in sorted(folder.glob("*.csv"))}
    assert heads == {
        "table1_resolution.csv": "experiment,300,1200,4800,9600",
        "table2_literature.csv": "model,arch,resolution,imagenet_top1",
        "table3_imagenet_runs.csv": "experiment,teacher,student,30,90,300,600,1200,4800,9600",
        "table4_small_datasets.csv": "dataset,model,epochs,test_accuracy,temperature,lr,wd,note",
        "table5_splits.csv": "dataset,tfds_name,num_classes,train_split,validation_split,"
                             "test_split",
    }


def test_batch_runs_turn_off_progress_bars_where_a_notebook_has_them(tmp_path):
    def notebook(source):
        cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source,
                "outputs": [], "execution_count": None}
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.ipynb"
        path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}))
        return path

    assert book.batch_parameters(notebook("preset = None\nprogress = True  # bars\n")) == {
        "progress": False}
    assert book.batch_parameters(notebook("preset = None\n")) == {}
    assert book.batch_parameters(notebook("show_progress = True\n")) == {}
    for name in ("01_consistency", "03_imagenet"):
        assert book.batch_parameters(REPO / "notebooks" / f"{name}.ipynb") == {"progress": False}


def test_execute_gives_the_kernel_one_openblas_thread(tmp_path, monkeypatch):
    """Kernels inherit OPENBLAS_NUM_THREADS=1 unless the user set it (Shampoo's eigh)."""
    import papermill

    seen = []
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda *a, **k: seen.append(os.environ.get("OPENBLAS_NUM_THREADS")))
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    book.execute(tmp_path / "x.ipynb", "smoke", tmp_path / "out")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    book.execute(tmp_path / "x.ipynb", "smoke", tmp_path / "out")
    assert seen == ["1", "4"]


def test_every_notebook_cell_has_a_unique_id():
    """nbformat 4.5 cell ids (a missing one is a warning today, an error in future nbformat)."""
    import json

    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")):
        ids = [c.get("id") for c in json.loads(path.read_text())["cells"]]
        assert None not in ids and len(set(ids)) == len(ids), path.name


# --------------------------------------------------------------------------- stable rebuilds


def _executed() -> dict:
    """A notebook as papermill leaves it: clock readings in the notebook and cell metadata."""
    clock = {"start_time": "2026-12-03T07:17:53+00:00", "end_time": "2026-12-03T07:17:55+00:00",
             "duration": 1.37}
    cells = [markdown("# T", "m"), code("preset = None", ["parameters"], "p"),
             code('preset = "cpu"', ["injected-parameters"], "i"), code("1 + 1", None, "c")]
    cells[3]["outputs"] = [{"output_type": "execute_result", "execution_count": 3, "metadata": {},
                            "data": {"text/html": "<table></table>", "text/plain": [
                                "<pandas.io.formats.style.Styler at 0x7f472d7b3210>"]}}]
    for cell in cells:
        cell["metadata"]["papermill"] = {**clock, "status": "completed", "exception": False}
        if cell["cell_type"] == "code":
            cell["metadata"]["execution"] = {"iopub.status.busy": "2026-12-03T07:17:53.6Z"}
    nb = notebook(*cells)
    nb["metadata"]["papermill"] = {
        **clock, "input_path": str(REPO / "notebooks" / "05_x.ipynb"),
        "output_path": "/tmp/kdbook-run-abc/05_x.ipynb", "parameters": {"preset": "cpu"},
        "exception": None, "version": "2.7.0"}
    return nb


def test_normalize_strips_clock_readings_and_is_idempotent():
    nb = _executed()
    out = book.normalize(nb, target=REPO / "book" / "05_x.ipynb")
    assert nb["metadata"]["papermill"]["duration"] == 1.37  # the input is not changed
    pm = out["metadata"]["papermill"]
    assert not set(book.VOLATILE_PAPERMILL_KEYS) & set(pm)
    assert pm["input_path"] == "notebooks/05_x.ipynb" and pm["output_path"] == "book/05_x.ipynb"
    assert pm["parameters"] == {"preset": "cpu"}  # what is not volatile stays
    for cell in out["cells"]:
        assert "execution" not in cell["metadata"]
        assert not set(book.VOLATILE_PAPERMILL_KEYS) & set(cell["metadata"]["papermill"])
        assert cell["metadata"]["papermill"]["status"] == "completed"
    tags = {c["id"]: c["metadata"].get("tags", []) for c in out["cells"]}
    assert tags["p"] == ["parameters", "remove-cell"]
    assert tags["injected-parameters"] == ["injected-parameters", "remove-cell"]
    assert tags["c"] == []  # papermill's random id of its cell is replaced by a fixed one
    assert out["cells"][3]["outputs"][0]["data"]["text/plain"] == [
        "<pandas.io.formats.style.Styler>"]  # no memory address
    assert book.normalize(out, target=REPO / "book" / "05_x.ipynb") == out  # idempotent
    # two executions that differ only in their clocks normalize to the same bytes
    later = _executed()
    later["metadata"]["papermill"]["duration"] = 99.0
    later["cells"][3]["metadata"]["execution"]["iopub.status.busy"] = "2027-01-01T00:00:00Z"
    later["cells"][2]["id"] = "5f0e2a9c"
    later["cells"][3]["outputs"][0]["data"]["text/plain"] = [
        "<pandas.io.formats.style.Styler at 0x7fe4d0ca7410>"]
    assert colab.dumps(book.normalize(later, target=REPO / "book" / "05_x.ipynb")) == (
        colab.dumps(out))


def test_normalize_merges_adjacent_prints_to_one_stream():
    """The kernel may deliver one cell's prints as one stream message or several (flush
    timing): both normalize to the same single output, split into lines as nbformat does."""
    def stream(name: str, text) -> dict:
        return {"output_type": "stream", "name": name, "text": text}

    table = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": ["t"]}}
    split = [stream("stdout", ["a\n", "b"]), stream("stdout", "\n"), stream("stderr", "w\n"),
             stream("stdout", "c\n"), table, stream("stdout", ["d\n"])]
    whole = [stream("stdout", "a\nb\n"), stream("stderr", ["w\n"]), stream("stdout", "c\n"),
             table, stream("stdout", "d\n")]
    for outputs in (split, whole):
        nb = _executed()
        nb["cells"][3]["outputs"] = outputs
        assert book.normalize(nb)["cells"][3]["outputs"] == [
            stream("stdout", ["a\n", "b\n"]), stream("stderr", ["w\n"]),
            stream("stdout", ["c\n"]), table, stream("stdout", ["d\n"])]
    assert split[1]["text"] == "\n"  # the input is not changed
    assert book.coalesce_streams([]) == []


def test_normalize_command_rewrites_only_what_is_not_normalized(tmp_path, capsys):
    write(tmp_path / "01_a.ipynb", _executed())
    (tmp_path / "02_b.ipynb").write_text(colab.dumps(book.normalize(
        _executed(), target=tmp_path / "02_b.ipynb")))
    assert book.main(["normalize", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "normalized: " in out and "01_a.ipynb" in out and "02_b" not in out
    assert book.normalize(json.loads((tmp_path / "01_a.ipynb").read_text())) == json.loads(
        (tmp_path / "01_a.ipynb").read_text())
    assert book.main(["normalize", "--dir", str(tmp_path)]) == 0
    assert "2 of 2 executed notebook(s) were already normalized" in capsys.readouterr().out


def test_write_notebook_leaves_an_unchanged_file_alone(tmp_path):
    path = tmp_path / "x.ipynb"
    nb = book.normalize(_executed())
    assert book.write_notebook(path, nb) is True
    mtime = path.stat().st_mtime_ns
    assert book.write_notebook(path, copy.deepcopy(nb)) is False
    assert path.stat().st_mtime_ns == mtime
    nb["cells"][3]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "2\n"}]
    assert book.write_notebook(path, nb) is True


def test_committed_book_notebooks_are_normalized():
    """The executed copies in book/ carry no clock readings (a rebuild would rewrite them)."""
    for path in sorted((REPO / "book").glob(book.NOTEBOOK_GLOB)):
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert book.normalize(nb) == nb, f"{path.name} is not normalized: rebuild it"


def test_committed_book_notebooks_print_no_warnings():
    """A warning in an executed page is a defect the reader sees, and its text names the
    kernel's temporary file (a pid), so every rebuild would change a committed page and
    `make book-check` would fail on a fresh clone (a pandas fillna warning did, 2026-12-06)."""
    for path in sorted((REPO / "book").glob(book.NOTEBOOK_GLOB)):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                text = "".join(out.get("text", ""))
                assert not (out.get("name") == "stderr" and "Warning" in text), (
                    f"{path.name}, cell {cell.get('id')}: {text[:300]}")


def test_shampoo_step_time_is_a_stored_measurement(tmp_path, monkeypatch):
    """Chapter 05's step-time ratio is read back from the store, timed only when asked or
    when none is stored for the programs it times."""
    from kdlib.experiments import shampoo

    timed = []

    def fake_step_times(experiments, calls=8, repeats=2):
        import pandas as pd

        timed.append(calls)
        return pd.DataFrame([{"arm": a, "round": r, "step_s": 128 / v, "img_per_s": v,
                              "compile_s": 1.0} for r in range(repeats)
                             for a, v in (("Adam", 400.0), ("Shampoo", 320.0 + len(timed)))])

    monkeypatch.setattr(shampoo, "step_times", fake_step_times)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # as make sets it (else refused: below)
    experiments = shampoo.arms("cpu")
    first = shampoo.stored_step_times(experiments, "cpu", calls=2, root=tmp_path)
    again = shampoo.stored_step_times(experiments, "cpu", calls=2, root=tmp_path)
    assert timed == [2] and first.fresh and not again.fresh
    times = again.frame(shampoo.STEP_TIME_COLUMNS)
    assert shampoo.speed(times) == {"Adam": 400.0, "Shampoo": 321.0}
    assert shampoo.step_time_text(times).startswith("step time Shampoo / Adam: 1.25x")
    assert len(times) == 2 * shampoo.TIMING_ROUNDS  # the rounds asked by default
    assert "medians of 6 rounds; per round 1.25-1.25x" in shampoo.step_time_text(times)
    assert "(Adam 400 vs Shampoo 321 img/s" in shampoo.step_time_text(times)  # named, in order
    assert set(again.key["programs"]) == {"Adam", "Shampoo"}
    shampoo.stored_step_times(experiments, "cpu", calls=2, remeasure=True, root=tmp_path)
    shampoo.stored_step_times(experiments, "cpu", calls=3, root=tmp_path)
    assert timed == [2, 2, 3]
    # smoke times one call, one round, whatever is asked (wiring, not timing)
    shampoo.stored_step_times(shampoo.arms("smoke"), "smoke", calls=8, root=tmp_path)
    assert timed == [2, 2, 3, 1]
    # a cpu timing with OpenBLAS's own threads on would measure their contention: refused
    import jax

    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")  # whatever this machine has
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    with pytest.raises(ValueError, match=r"OPENBLAS_NUM_THREADS='2': time Shampoo with"):
        shampoo.stored_step_times(experiments, "cpu", calls=2, remeasure=True, root=tmp_path)
    shampoo.stored_step_times(shampoo.arms("smoke"), "smoke", calls=8, root=tmp_path,
                              remeasure=True)  # smoke: wiring only, not refused
    assert timed == [2, 2, 3, 1, 1]


def test_shampoo_step_ratios_pair_the_arms_within_each_round():
    """Each round's ratio divides Shampoo's step time by Adam's of the same round (the load
    they shared), whatever order the rows come in."""
    import pandas as pd

    from kdlib.experiments import shampoo

    times = pd.DataFrame([
        {"arm": "Shampoo", "round": 1, "step_s": 0.30, "img_per_s": 1.0, "compile_s": 0.0},
        {"arm": "Adam", "round": 0, "step_s": 0.20, "img_per_s": 1.0, "compile_s": 9.0},
        {"arm": "Adam", "round": 1, "step_s": 0.25, "img_per_s": 1.0, "compile_s": 0.0},
        {"arm": "Shampoo", "round": 0, "step_s": 0.22, "img_per_s": 1.0, "compile_s": 9.0}])
    assert shampoo.step_ratios(times) == pytest.approx([1.1, 1.2])


def test_every_chapter_opens_with_its_findings_then_its_main_figure():
    """Sources: a "## What we found" heading, then the cell rendering the findings box, both
    before the first figure; the executed copies hide both parameters cells."""
    from kdlib.experiments.chapters import SECTIONS

    for section in SECTIONS:
        cells = json.loads((REPO / "notebooks" / f"{section}.ipynb").read_text())["cells"]
        text = ["".join(c["source"]) for c in cells]
        heading = next(i for i, t in enumerate(text) if t.startswith("## What we found"))
        box = next(i for i, t in enumerate(text) if "claims.findings_html(" in t)
        figure = next(i for i, t in enumerate(text) if "plt.subplots(" in t)
        assert heading < box < figure, section
        first_heading = next(i for i, t in enumerate(text) if t.startswith("## "))
        assert first_heading == heading, f"{section}: a section comes before the findings"
        if section not in book.toc_stems():  # not in the book yet: only smoke-tested (Makefile)
            continue
        executed = json.loads((REPO / "book" / f"{section}.ipynb").read_text())["cells"]
        for cell in executed:
            tags = cell["metadata"].get("tags", [])
            if {"parameters", "injected-parameters"} & set(tags):
                assert "remove-cell" in tags, section


def test_every_chapter_ends_with_its_claims_under_the_generated_rules():
    """The "## Claims" section opens with the generated rules paragraph (it drifted while
    typed into each notebook), names the chapter to the edge report (another chapter's queue
    item does not grow its grids) and splits the rule notes at the shared history."""
    from kdlib.experiments.chapters import SECTIONS

    for section in SECTIONS:
        cells = json.loads((REPO / "notebooks" / f"{section}.ipynb").read_text())["cells"]
        text = ["".join(c["source"]) for c in cells]
        heading = next(i for i, t in enumerate(text) if t.startswith("## Claims"))
        after = [i for i, t in enumerate(text) if i > heading and t.startswith("## ")]
        last = "\n".join(text[heading + 1:after[0] if after else None])
        for call in ("verdicts.rules_intro()", "section=chapter.SECTION",
                     "claims.report(found, common=verdicts.RULE_NOTE)"):
            assert call in last, (section, call)


def test_chapters_that_read_an_older_noise_pool_are_executed_again(tmp_path, monkeypatch):
    """A replicate that finishes while the book runs changes the pooled seed noise: the
    chapters executed before it (and the summary, which reads every chapter) run again."""
    from kdlib import claims
    from kdlib.experiments import common

    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path / "results"))
    base = common.base_config("cpu", "x", common.fmnist("cpu", 1000), epochs=30.0,
                              teachers=("t",))
    for seed, acc in ((0, 0.80), (1, 0.82)):
        c = base if seed == 0 else common.replicate(base, seed)
        store.save_run(store.prepare_run(c), c, {"test_acc": acc}, {}, "done")
    now = common.store_noise("cpu").source
    older = "1.00 pts per run, pooled over 0 replicated points"

    def stored(section: str, noise: str) -> None:
        claims.save([claims.Claim("C1", "c", "p", "o", "inconclusive", section, noise=noise)],
                    "cpu", section)

    paths = [Path(f"{s}.ipynb") for s in ("01_a", "02_b", "90_summary", "91_provenance")]
    stored("01_a", now)
    stored("02_b", now)
    assert book.stale_notebooks(paths, "cpu") == []
    stored("01_a", older)
    assert [p.stem for p in book.stale_notebooks(paths, "cpu")] == ["01_a", "90_summary"]
    assert book.stale_notebooks(paths, "gpu") == []  # nothing stored at that preset


def test_book_run_executes_stale_chapters_again_until_current(tmp_path, monkeypatch, capsys):
    calls: list[list[str]] = []
    stale = [["01_a", "90_summary"], []]

    def fake_run(paths, preset, out_dir):
        calls.append([p.stem for p in paths])
        return [book.Outcome(p.name, "ok", float(len(calls))) for p in paths]

    monkeypatch.setattr(book, "run", fake_run)

    def fake_stale(paths, preset):
        now = stale.pop(0)
        return [p for p in paths if p.stem in now]

    monkeypatch.setattr(book, "stale_notebooks", fake_stale)
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    for stem in ("01_a", "02_b", "90_summary"):
        (notebooks / f"{stem}.ipynb").write_text("{}")
    code = book.main(["run", "--preset", "smoke", "--dir", str(notebooks), "--out",
                      str(tmp_path / "out")])
    assert code == 0
    assert calls == [["01_a", "02_b", "90_summary"], ["01_a", "90_summary"]]
    assert "executing 01_a.ipynb, 90_summary.ipynb again" in capsys.readouterr().out


def test_book_run_executes_the_chapters_again_when_a_table_changed_the_shared_points(
        tmp_path, monkeypatch, capsys):
    """Chapter 05 names chapter 06's selection of a shared point; when 06 writes a new table
    later in the same run, 05 (and every chapter) runs once more so the book converges."""
    calls: list[list[str]] = []
    states = ["old", "new", "new"]

    def fake_run(paths, preset, out_dir):
        calls.append([p.stem for p in paths])
        return [book.Outcome(p.name, "ok", 1.0) for p in paths]

    monkeypatch.setattr(book, "run", fake_run)
    monkeypatch.setattr(book, "stale_notebooks", lambda paths, preset: [])
    monkeypatch.setattr(book, "shared_points_state", lambda preset: states.pop(0))
    monkeypatch.setattr(book, "chapters_reading_shared_points", lambda: ("05_e", "06_f"))
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    for stem in ("05_e", "06_f", "90_summary"):
        (notebooks / f"{stem}.ipynb").write_text("{}")
    args = ["run", "--preset", "smoke", "--dir", str(notebooks), "--out", str(tmp_path / "out")]
    assert book.main(args) == 0
    assert calls == [["05_e", "06_f", "90_summary"], ["05_e", "06_f"]]
    assert "changed the points several chapters read" in capsys.readouterr().out
    states[:] = ["same", "same"]
    calls.clear()
    assert book.main(args) == 0 and calls == [["05_e", "06_f", "90_summary"]]
