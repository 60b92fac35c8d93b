"""The fair-comparison protocol: select on validation, test once after the last epoch, record every test image."""

import csv
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mwa_lightning.experiments.archive import LEGACY_RUNS, RUNS, read_runs
from mwa_lightning.experiments.paired import PREDICTIONS, read_predictions, write_contrasts
from mwa_lightning.experiments.study import Study, StudyError, main
from mwa_lightning.training.runs import TEST_PREDICTIONS, read_test_predictions
from tests.helpers import ROOT, run_cli, tiny_config

NUM_TEST = 40


def protocol_config(folder: Path) -> Path:
    """The tiny run with a validation split carved from train and a test after fit."""
    path = tiny_config(folder, **{"trainer.max_epochs": 3})
    config = yaml.safe_load(path.read_text())
    config["data"]["init_args"] |= {"num_test": NUM_TEST, "val_size": 32}
    config["test_after_fit"] = True
    path.write_text(yaml.safe_dump(config))
    return path


def scalar_steps(run: Path, tag: str) -> list[int]:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def test_the_test_split_is_evaluated_once_after_fit_and_recorded_per_image(tmp_path):
    config = protocol_config(tmp_path)
    result = run_cli("fit", "--config", str(config), "--run", "seed0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "logs" / "tiny" / "seed0"
    index, label, prediction = read_test_predictions(run / TEST_PREDICTIONS)
    assert list(index) == list(range(NUM_TEST)) and len(label) == NUM_TEST  # one row per test image, in order
    assert set(prediction) <= set(range(10))
    finished = yaml.safe_load((run / "finished.json").read_text())
    assert finished["metrics"]["test/acc"] == pytest.approx(np.mean(label == prediction))
    # the validation metric every epoch; the test metric once, at the last step, after training
    val_steps, test_steps = scalar_steps(run, "val/acc"), scalar_steps(run, "test/acc")
    assert len(val_steps) == 3 and test_steps == [finished["global_step"]]


def test_the_per_image_file_is_identical_after_a_sigkill_and_resume(tmp_path):
    whole = tmp_path / "whole"
    whole.mkdir()
    done = run_cli("fit", "--config", str(protocol_config(whole)), "--run", "seed0", cwd=whole)
    assert done.returncode == 0, done.stderr[-3000:]

    killed = tmp_path / "killed"
    killed.mkdir()
    config = protocol_config(killed)
    marker = tmp_path / "marker"
    kill = ["--trainer.callbacks+=tests.helpers.KillAt", "--trainer.callbacks.epoch=1", "--trainer.callbacks.batch=2"]
    first = run_cli(
        "fit", "--config", str(config), "--run", "seed0", *kill, f"--trainer.callbacks.marker={marker}", cwd=killed
    )
    assert first.returncode == -signal.SIGKILL and not (killed / "logs" / "tiny" / "seed0" / TEST_PREDICTIONS).exists()
    again = run_cli(
        "fit", "--config", str(config), "--run", "seed0", *kill, f"--trainer.callbacks.marker={marker}", cwd=killed
    )
    assert again.returncode == 0, again.stderr[-3000:]
    a = (whole / "logs" / "tiny" / "seed0" / TEST_PREDICTIONS).read_bytes()
    b = (killed / "logs" / "tiny" / "seed0" / TEST_PREDICTIONS).read_bytes()
    assert a == b


def study_file(tmp_path: Path, contrasts: dict) -> Path:
    spec = {
        "base": str(protocol_config(tmp_path)),
        "seeds": [0, 1],
        "protocol": "test-once",
        "test_images": NUM_TEST,
        "variants": {"mwa": {}, "gfn": {"model.mixer": "configs/shared/mixer/gfn.yaml"}},
        "contrasts": contrasts,
        "logs": str(tmp_path / "logs"),
        "results": str(tmp_path / "results"),
    }
    path = tmp_path / "fair.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_contrast_naming_an_unknown_variant_fails_before_any_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    path = study_file(tmp_path, {"mwa-vs-afno": ["mwa", "afno"]})
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "contrasts.mwa-vs-afno names unknown variant(s) 'afno'" in err and "the variants: mwa, gfn" in err
    assert not (tmp_path / "logs").exists()
    with pytest.raises(StudyError, match=r"expected \[a, b\] or \[\[a, b\], \[c, d\]\]"):
        Study.load(study_file(tmp_path, {"bad": ["mwa"]}))


def test_a_study_without_a_validation_split_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    path = study_file(tmp_path, {"mwa-vs-gfn": ["mwa", "gfn"]})
    spec = yaml.safe_load(path.read_text())
    spec["args"] = {"data.init_args.val_size": 0}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main([str(path), "--dry-run"]) == 2
    assert "variant 'mwa' has val_size 0, so it would validate (select) on the test split" in capsys.readouterr().err


def test_the_study_reports_contrasts_and_recomputes_them_from_the_predictions_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    path = study_file(tmp_path, {"mwa-vs-gfn": ["mwa", "gfn"]})
    assert main([str(path), "--dry-run"]) == 0
    assert f"2 seeds x {NUM_TEST} test images" in capsys.readouterr().out
    result = run_cli("study", str(path), cwd=ROOT, env={"OMP_NUM_THREADS": "1"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results" / "fair"
    labels, correct = read_predictions(results / PREDICTIONS)
    assert len(labels[0]) == NUM_TEST and set(correct) == {"mwa", "gfn"} and set(correct["mwa"]) == {0, 1}
    first = (results / "contrasts.md").read_text()
    assert "mwa-vs-gfn" in first and (results / "contrasts.png").stat().st_size > 5_000
    # without logs/: the same contrasts from the committed predictions alone
    study = Study.load(path)
    study.logs = tmp_path / "nowhere"
    (results / "contrasts.md").unlink()
    assert write_contrasts(study) and (results / "contrasts.md").read_text() == first
    # a second study reuses the first one's gfn runs (same_as) instead of training them again
    spec = yaml.safe_load(path.read_text())
    spec["variants"] = {"m2": {"model.mixer.init_args.levels": 2}, "gfn": {"same_as": "fair/gfn"}}
    spec["contrasts"] = {"m2-vs-gfn": ["m2", "gfn"]}
    reuse = tmp_path / "reuse.yaml"
    reuse.write_text(yaml.safe_dump(spec, sort_keys=False))
    second = Study.load(reuse)
    assert second.run_spec("gfn", 1).folder == tmp_path / "logs" / "fair" / "gfn" / "seed1"
    result = run_cli("study", str(reuse), cwd=ROOT, env={"OMP_NUM_THREADS": "1"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("done, skipped: ") == 2 and "fair/gfn/seed0" in result.stdout
    assert not (tmp_path / "logs" / "reuse" / "gfn").exists()
    reused = read_predictions(tmp_path / "results" / "reuse" / PREDICTIONS)[1]
    assert set(reused) == {"m2", "gfn"} and all(np.array_equal(reused["gfn"][k], correct["gfn"][k]) for k in (0, 1))
    report = (tmp_path / "results" / "reuse" / "report.md").read_text()
    assert "| gfn |" in report and "m2-vs-gfn" in (tmp_path / "results" / "reuse" / "contrasts.md").read_text()
    spec["variants"]["gfn"] = {"same_as": "fair/nope"}
    reuse.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(StudyError, match=r"has no own variant 'nope'; its variants: mwa, gfn"):
        Study.load(reuse)
    goes_on_elsewhere(path, results, correct, capsys)


def goes_on_elsewhere(path: Path, results: Path, correct: dict, capsys) -> None:
    """The finished study's committed results, copied to 'another machine' (no logs/): its report comes back from
    them alone, its runs count as finished, and it goes on with a new seed beside them."""
    import shutil

    from mwa_lightning.experiments import slurm

    committed = read_runs(results, with_scalars=True)
    assert sorted(committed) == [("gfn", 0), ("gfn", 1), ("mwa", 0), ("mwa", 1)]
    logs = path.parent / "logs" / "fair"
    for (variant, seed), run in committed.items():
        folder = logs / variant / f"seed{seed}"
        assert run.finished_json == yaml.safe_load((folder / "finished.json").read_text())
        assert run.config == yaml.safe_load((folder / "config.yaml").read_text())
        assert len(run.scalars["val/acc"]) == 3 and run.seconds > 0
    elsewhere = path.parent / "elsewhere"
    shutil.copytree(results, elsewhere / "results" / "fair")
    spec = yaml.safe_load(path.read_text()) | {"logs": str(elsewhere / "logs"), "results": str(elsewhere / "results")}
    moved = elsewhere / "fair.yaml"
    moved.write_text(yaml.safe_dump(spec, sort_keys=False))

    before = {name: (results / name).read_text() for name in ("contrasts.csv", PREDICTIONS, RUNS, "scalars.csv")}
    assert main([str(moved), "--report-only"]) == 0
    again = elsewhere / "results" / "fair"
    assert report_rows(again) == report_rows(results)
    assert {name: (again / name).read_text() for name in before} == before
    assert main([str(moved), "--dry-run"]) == 0
    assert "4 runs: 0 done, 0 partial, 0 todo, 4 committed, 0 stale" in capsys.readouterr().out
    assert slurm.main([str(moved), "--gpus", "0", "--dry-run", "--out", str(elsewhere / "slurm")]) == 0
    assert "fair: all 4 runs have finished; nothing to submit" in capsys.readouterr().out
    # a study reusing the committed gfn runs (same_as) takes them, and their predictions, from the other's results
    reuse = elsewhere / "reuse.yaml"
    variants = {"m2": {"model.mixer.init_args.levels": 2}, "gfn": {"same_as": "fair/gfn"}}
    reuse.write_text(yaml.safe_dump(spec | {"variants": variants, "contrasts": {"m2-vs-gfn": ["m2", "gfn"]}}))
    earlier = elsewhere / "results" / "reuse" / "contrasts.md"  # figures of an earlier state, m2 not yet trained
    earlier.parent.mkdir(parents=True)
    earlier.write_text("| m2-vs-gfn | +1.00 |")
    assert main([str(reuse), "--dry-run"]) == 0
    out = capsys.readouterr().out  # the time left from the committed runs' seconds
    assert "4 runs: 0 done, 0 partial, 2 todo, 2 committed, 0 stale" in out and "left: 2 runs, about" in out
    assert main([str(reuse), "--report-only"]) == 0
    reused = read_predictions(elsewhere / "results" / "reuse" / PREDICTIONS)[1]
    assert set(reused) == {"gfn"} and all(np.array_equal(reused["gfn"][k], correct["gfn"][k]) for k in (0, 1))
    assert not earlier.exists()  # no contrast follows from these predictions: none is left beside them
    # a third seed of gfn trains beside the committed runs; nothing else trains
    moved.write_text(yaml.safe_dump(spec | {"seeds": [0, 1, 2]}, sort_keys=False))
    result = run_cli("study", str(moved), "--only", "gfn", cwd=ROOT, env={"OMP_NUM_THREADS": "1"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("committed, skipped") == 2 and sorted(
        p.name for p in (elsewhere / "logs").rglob("seed*")
    ) == ["seed2"]
    rows = report_rows(again)
    assert rows["gfn"]["seeds"] == "0,1,2" and rows["mwa"]["seeds"] == "0,1"
    report = (again / "report.md").read_text()
    assert "**Partial**: 5 of the study's 6 runs (2 variants x 3 seeds) have finished" in report
    assert "each variant: mwa 0,1; gfn 0,1,2." in report
    assert set(read_runs(again)) == set(committed) | {("gfn", 2)}
    assert set(read_predictions(again / PREDICTIONS)[1]["gfn"]) == {0, 1, 2}
    # a committed run is held to the study file like a run folder
    moved.write_text(yaml.safe_dump(spec | {"args": {"model.lr": 0.5}}, sort_keys=False))
    assert main([str(moved)]) == 2
    err = capsys.readouterr().err
    assert "4 run(s) were trained with another config" in err and "model.lr" in err and f"{again / RUNS}" in err


def report_rows(folder: Path, partway: set[str] = frozenset()) -> dict[str, dict]:
    """A report.csv's rows of finished runs, by experiment, without the folders column (paths on the machine that
    trained them), and for the rows named in ``partway`` without their unfinished count and run-hours. With a run
    part-way, no row's options either: the labels are the config settings that differ between the rows with a config,
    and a part-way run's config was in its run folder when the report was written, not in the committed files."""
    rows = {r["experiment"]: r for r in csv.DictReader((folder / "report.csv").open()) if r["runs"] != "0"}
    for name, row in rows.items():
        for key in (
            "folders",
            *(("unfinished", "run_hours") if name in partway else ()),
            *(("options",) if partway else ()),
        ):
            del row[key]
    return rows


def committed_studies(holding: str):
    """The committed studies whose results folder holds the file ``holding``: (study file, its results folder)."""
    found = []
    for path in sorted((ROOT / "configs" / "studies").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text()) or {}
        results = ROOT / spec.get("results", "results") / path.stem
        if (results / holding).is_file():
            found.append(pytest.param(path, results, id=path.stem))
    return found


@pytest.mark.parametrize("path,results", committed_studies("contrasts.csv"))
def test_a_committed_studys_contrasts_follow_from_its_committed_predictions(path, results, tmp_path, monkeypatch):
    """Recompute the contrasts of every committed study from its committed predictions.csv file(s) alone: the
    published numbers are what the statistics give, nothing edited by hand."""
    import shutil

    monkeypatch.chdir(ROOT)
    study = Study.load(path.relative_to(ROOT))
    study.logs, study.results = tmp_path / "no-logs", tmp_path
    for predictions in results.rglob(PREDICTIONS):
        target = tmp_path / study.name / predictions.relative_to(results)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(predictions, target)
    assert write_contrasts(study)
    assert (tmp_path / study.name / "contrasts.csv").read_text() == (results / "contrasts.csv").read_text()


@pytest.mark.parametrize("path,results", committed_studies(RUNS) + committed_studies(LEGACY_RUNS))
def test_a_committed_studys_report_follows_from_its_committed_runs(path, results, tmp_path, monkeypatch):
    """Write the report of every study that commits its runs from those files alone, on a machine without its run
    folders: the same table, predictions, contrasts and committed runs as the ones committed (a study still in
    runs.csv, before the migration to JSON Lines, comes back as the same records in runs.jsonl)."""
    import shutil

    from mwa_lightning.experiments.study import write_report

    monkeypatch.chdir(ROOT)
    study = Study.load(path.relative_to(ROOT))
    study.logs, study.results = tmp_path / "no-logs", tmp_path
    shutil.copytree(results, tmp_path / study.name)
    assert write_report(study)

    # a row with a run part-way when the report was written: without that run's count and hours (it is not committed)
    partway = {r["experiment"] for r in csv.DictReader((results / "report.csv").open()) if r["unfinished"] != "0"}
    again = tmp_path / study.name
    assert report_rows(again, partway) == report_rows(results, partway)
    for name in ("predictions.csv", RUNS, "scalars.csv", "contrasts.csv"):
        if (results / name).is_file():
            assert (again / name).read_text() == (results / name).read_text(), name
    assert read_runs(again, with_scalars=True) == read_runs(results, with_scalars=True)
    assert not (again / LEGACY_RUNS).exists()
