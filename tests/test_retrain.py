"""Stored runs still train to their numbers at the current commit (kdlib.retrain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdlib import retrain, store
from kdlib.config import config_from_dict

RESULTS = Path(__file__).resolve().parents[1] / "results"
STORED = sorted(RESULTS.glob("cpu/*/*/config.json"))


def test_every_stored_config_reads_back_to_its_hash():
    assert STORED, "no stored cpu runs"
    for path in STORED:
        config = config_from_dict(json.loads(path.read_text()))
        assert store.config_hash(config) == path.parent.name, path


FAMILIES = retrain.family_representatives("cpu", RESULTS)
CHEAP = {key: record for key, record in FAMILIES.items()
         if int(record.summary["steps"]) < retrain.CHEAP_STEPS}


def test_every_stored_family_has_its_shortest_run_as_representative():
    """Each family's representative is a finished run of that family, and no run of the same
    family is shorter (what make verify-store and the test below retrain)."""
    assert len(FAMILIES) >= 10, sorted(FAMILIES)
    runs = store.list_runs(RESULTS, "cpu")
    for key, record in FAMILIES.items():
        assert retrain.family(record) == key
        same = [r for r in runs if retrain.family(r) == key and r.status == "done"]
        assert min(int(r.summary["steps"]) for r in same) == int(record.summary["steps"])
    # The families the paper's claims rest on are among them: distillation and labels.
    assert {"kl", "labels"} <= {key[1] for key in CHEAP}, sorted(CHEAP)


@pytest.mark.slow
@pytest.mark.parametrize("run", [r.path for r in CHEAP.values()],
                         ids=[f"{r.path.parent.name}-{r.hash}" for r in CHEAP.values()])
def test_the_shortest_stored_run_of_each_cheap_family_retrains_to_its_numbers(run):
    """Families whose shortest stored run has < CHEAP_STEPS steps (a rolled chunk: a short
    compile); the rest are retrained by ``make verify-store``. Exact on a machine like the one
    that trained the run alone; else the accuracies within :data:`kdlib.retrain.TOLERANCE` and
    the training loss within 1e-3 (these runs are 8-24 steps: some still score at chance, so
    the loss is what shows a changed engine). Measured apart: 0 and 1.2e-7 (8 steps), 2.3e-4
    (the 24-step init run, stored in a group of two at a dirty commit)."""
    result = retrain.retrain_check(run, {**retrain.TOLERANCE, "train_loss": 1e-3})
    assert result["within"], result
    if result["same_machine"]:
        assert result["exact"], result


def test_retrain_check_refuses_an_unfinished_folder(tmp_path):
    with pytest.raises(ValueError, match="holds no finished run"):
        retrain.retrain_check(tmp_path / "abc")


def _run_folders(tmp_path):
    """Folders that are not finished runs, with what a retrain must say of each."""
    (tmp_path / "notrun").mkdir()
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.json").write_text("{}")
    (tmp_path / "afile").write_text("")
    return [(tmp_path / "gone", "no such folder"),
            (tmp_path / "notrun", "config.json missing"),
            (tmp_path / "unfinished", "summary.json missing"),
            (tmp_path / "afile", "a file, not a folder")]


def test_a_folder_that_is_no_finished_run_is_a_usage_error_naming_what_is_missing(
        tmp_path, capsys):
    """Before anything trains: one line naming the folder and the file it lacks (config.json
    and summary.json are told apart), exit status 2, no traceback."""
    for path, why in _run_folders(tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            retrain.main([str(path)])
        assert exit_info.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"{path} holds no finished run ({why}" in last, last
        assert "results/cpu/<chapter>/<hash>" in last


@pytest.mark.parametrize("content, why", [
    ("{bad", "is not valid JSON"), ("[]", "is not a store-check record"),
    (None, "is not a file")])
def test_a_record_that_is_a_folder_or_not_a_store_check_is_a_usage_error(
        tmp_path, capsys, content, why):
    """--record names a file a retrain would overwrite: a folder or a file that is no
    store-check record is refused, naming it, before anything trains."""
    record = tmp_path / "check.json"
    if content is None:
        record.mkdir()
    else:
        record.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        retrain.main([str(tmp_path / "gone"), "--record", str(record)])
    assert exit_info.value.code == 2
    assert f"--record {record} {why}" in capsys.readouterr().err.strip().splitlines()[-1]


def test_record_skips_checks_kept_at_this_commit_and_restarts_at_another(tmp_path, capsys):
    """--record resumes: a check kept at the current commit is not retrained (the folder named
    need not even exist); a record from another commit starts over."""
    record = retrain.load_record(tmp_path / "check.json")
    assert record["checks"] == {} and record["tolerance"] == retrain.TOLERANCE
    kept = {"hash": "feedfacecafe", "within": False, "exact": False}
    record["checks"]["02_patience/feedfacecafe"] = kept
    (tmp_path / "check.json").write_text(json.dumps(record))
    gone = tmp_path / "02_patience" / "feedfacecafe"
    assert retrain.main([str(gone), "--record", str(tmp_path / "check.json")]) == 1
    assert json.loads(capsys.readouterr().out) == kept
    record["commit"] = "0000000"
    (tmp_path / "check.json").write_text(json.dumps(record))
    assert retrain.load_record(tmp_path / "check.json")["checks"] == {}


def test_check_rows_list_every_family_with_its_kept_check_or_not_checked(tmp_path):
    """The provenance chapter's table: one row per stored family; a family whose run was
    checked shows the stored and retrained numbers and the verdict, the others "not checked"."""
    import shutil

    for name in ("02_patience/8a142ce414aa", "02_patience/46b3934f4b4f"):
        shutil.copytree(RESULTS / "cpu" / name, tmp_path / "cpu" / name,
                        ignore=shutil.ignore_patterns("ckpt"))
    checked = {"metrics": {"test_acc": [0.1, 0.1], "val_acc": [0.1, 0.1],
                           "train_loss": [2.3, 2.3]},
               "max_diff": {"test_acc": 0.0, "val_acc": 0.0, "train_loss": 0.0},
               "exact": True, "within": True}
    record = {"commit": "abc1234", "tolerance": retrain.TOLERANCE,
              "checks": {"02_patience/8a142ce414aa": checked}}
    (tmp_path / "cpu" / "store_check.json").write_text(json.dumps(record))
    meta, rows = retrain.check_rows("cpu", tmp_path)
    assert meta == {"commit": "abc1234", "tolerance": retrain.TOLERANCE}
    by_run = {row["run"]: row for row in rows}
    assert sorted(by_run) == ["02_patience/46b3934f4b4f", "02_patience/8a142ce414aa"]
    assert by_run["02_patience/8a142ce414aa"]["verdict"] == "equal to the bit"
    assert by_run["02_patience/8a142ce414aa"]["family"].startswith("bit, labels, adam")
    assert by_run["02_patience/46b3934f4b4f"] == {
        "family": "bit, kl, adam, random init, fmnist_bit_t28, fashion_mnist, "
                  "teacher consistent", "run": "02_patience/46b3934f4b4f",
        "verdict": "not checked"}
    assert retrain.check_rows("cpu", tmp_path / "empty") == (None, [])


def test_a_retrain_outside_the_tolerance_is_read_against_the_regimes_seed_noise(tmp_path):
    """Another float order diverges like another seed: past TOLERANCE a check is "within seed
    noise" when every metric differs by at most 2 sqrt(2) per-run sds of the run's regime,
    measured from the store's replicates (none here: the assumed 1 pt, 0.01 and 0.02)."""
    import shutil

    name = "02_patience/46b3934f4b4f"
    shutil.copytree(RESULTS / "cpu" / name, tmp_path / "cpu" / name,
                    ignore=shutil.ignore_patterns("ckpt"))
    config = json.loads((tmp_path / "cpu" / name / "config.json").read_text())
    noises: dict = {}
    bounds = retrain.noise_bounds("cpu", config, noises, root=tmp_path)
    assert bounds["test_acc"] == pytest.approx(2 * 2 ** 0.5 * 0.01)
    # a training loss reads its own objective's noise (KL at this temperature), cached
    assert ("train_loss", (config["loss"], config["temperature"])) in noises
    assert ("test_acc", None) in noises

    def rows(test_diff):
        check = {"metrics": {"test_acc": [0.5, 0.5 + test_diff]}, "exact": False,
                 "within": False,
                 "max_diff": {"test_acc": test_diff, "val_acc": 0.0, "train_loss": 0.0}}
        (tmp_path / "cpu" / "store_check.json").write_text(json.dumps(
            {"commit": "abc1234", "tolerance": retrain.TOLERANCE, "checks": {name: check}}))
        return retrain.check_rows("cpu", tmp_path)[1][0]

    near, far = rows(0.025), rows(0.03)
    assert near["verdict"] == "within seed noise" and far["verdict"] == "outside seed noise"
    assert near["seed-noise bound test_acc"] == round(bounds["test_acc"], 4)


@pytest.mark.slow
def test_a_group_retrained_as_a_group_on_this_machine_is_equal_to_the_bit(tmp_path, monkeypatch):
    """A sweep stores its group mates in the provenance; retrained with them (same machine,
    same order) every run of the group matches its stored metrics exactly. Retrained alone
    the same run is only within tolerance (float reduction order), which is what make
    verify-store allows for runs whose group or machine is not what it was."""
    from test_train import tiny_config  # tests/ is on sys.path (pytest's rootdir insertion)

    from kdlib import train

    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path))
    base = tiny_config(epochs=0.5)
    result = train.sweep(base, {"lr": [1e-3, 3e-3]}, progress=False)
    check = retrain.retrain_check(result.runs[0].path, with_group=True)
    assert check["group_source"] == "recorded" and len(check["group"]) == 2
    assert check["same_machine"] and check["exact"], check
    assert all(mate["exact"] for mate in check["mates"].values()), check["mates"]


def test_group_mates_are_recorded_or_reconstructed_and_a_lost_group_is_an_error(tmp_path):
    """Runs stored before groups were recorded: the mates are the runs of the same folder with
    the same start and group key, in hyper-parameter order; a group that cannot be found
    completely is refused rather than retrained in a wrong group."""
    import shutil

    record = store.load_run(RESULTS / "cpu" / "07_cross_family" / "20ea8cfcb06e")
    assert "group" not in record.provenance and record.provenance["batch_size"] == 2
    mates, source = retrain.group_mates(record)
    assert source == "reconstructed"
    assert [m.hash for m in mates] == ["31c7aead97ce", "20ea8cfcb06e"]  # lr 1e-3, then 3e-3
    assert [m.config["lr"] for m in mates] == [1e-3, 3e-3]
    lone = tmp_path / "07_cross_family" / "20ea8cfcb06e"
    shutil.copytree(record.path, lone, ignore=shutil.ignore_patterns("ckpt"))
    with pytest.raises(ValueError, match="group of 2 that is not recorded"):
        retrain.group_mates(store.load_run(lone))
