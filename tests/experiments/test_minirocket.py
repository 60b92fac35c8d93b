"""MiniRocket as a study variant, and the sequence study's shape: one replicate per seed (a stratified resample),
one set of predictions per task with each seed's own labels, contrasts within each task."""

import csv

import numpy as np
import pytest
import yaml

from mwa_lightning.experiments.paired import PREDICTIONS, read_predictions, write_contrasts
from mwa_lightning.experiments.study import Study, StudyError
from mwa_lightning.training.metric_names import TEST_ACC
from mwa_lightning.training.runs import TEST_PREDICTIONS, read_test_predictions
from tests.helpers import ROOT, run_cli

aeon = pytest.importorskip(
    "aeon", reason="the time-series tests need the aeon package: pip install 'mwa-lightning[timeseries]'"
)

UCR = str(ROOT / "configs" / "sequences" / "ucr.yaml")
QUICK = ["--trainer.max_epochs", "1", "--model.depth", "1", "--trainer.enable_model_summary", "false"]


def test_minirocket_scores_the_raw_series_of_the_runs_training_split(tmp_path):
    """The tool's predictions equal aeon's classifier fitted on the same official training series (the
    DataModule's validation series left out), read by aeon's own loader: no padding, the same labels."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.datasets import load_classification

    from mwa_lightning.data import UCRDataModule

    result = run_cli("minirocket", "--config", UCR, "--experiment", "mr", "--run", "seed0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "logs" / "mr" / "seed0"
    index, label, prediction = read_test_predictions(run / TEST_PREDICTIONS)
    dm = UCRDataModule("ArrowHead", val_size=6)
    dm.setup("fit")
    x, y = load_classification("ArrowHead", split="train")
    xt, yt = load_classification("ArrowHead", split="test")
    kept = [i for i in range(len(x)) if any(np.allclose(x[i], s[:, :251]) for s in dm.splits["train"].images.numpy())]
    assert len(kept) == 30  # 36 official training series, 6 held out for validation
    expected = MiniRocketClassifier(random_state=0, n_jobs=1).fit(x[kept], y[kept]).predict(xt)
    names = dm.classes
    assert [names[i] for i in label] == list(yt) and [names[i] for i in prediction] == list(expected)
    finished = yaml.safe_load((run / "finished.json").read_text())
    assert finished["metrics"][TEST_ACC] == pytest.approx(np.mean(expected == yt))


def test_minirocket_refuses_image_data_in_one_line(tmp_path):
    result = run_cli("minirocket", "--config", str(ROOT / "configs" / "cifar10_fair.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "minirocket needs a sequence DataModule" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "logs").exists()


def study_file(tmp_path, **extra):
    spec = {
        "base": UCR,
        "seeds": [0, 1],
        "protocol": "test-once",
        "args": {"data.init_args.resample": "seed", "trainer.max_epochs": 1, "model.depth": 1},
        "tasks": {
            "arrowhead": {"data.init_args.name": "ArrowHead", "data.init_args.val_size": 6},
            "motions": {"data.init_args.name": "BasicMotions", "data.init_args.val_size": 8},
        },
        "variants": {
            "conv": {"model.mixer": "configs/shared/mixer/conv.yaml"},
            "minirocket": {"command": "minirocket"},
        },
        "contrasts": {"conv-vs-minirocket": ["conv", "minirocket"]},
        "resample_train_size": {"arrowhead": 30, "motions": 32},  # each resample's training series, less validation
        "logs": str(tmp_path / "logs"),
        "results": str(tmp_path / "results"),
        **extra,
    }
    path = tmp_path / "seq.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_sequence_study_pairs_each_seeds_own_resample_within_each_task(tmp_path):
    path = study_file(tmp_path)
    study = Study.load(path)
    assert set(study.contrasts) == {"arrowhead/conv-vs-minirocket", "motions/conv-vs-minirocket"}
    assert [r.command for r in study.runs()[:2]] == ["fit", "minirocket"]
    result = run_cli("study", str(path), cwd=ROOT, env={"OMP_NUM_THREADS": "1"}, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results" / "seq"
    for task, size in (("arrowhead", 175), ("motions", 40)):
        header = (results / task / PREDICTIONS).read_text().splitlines()[0].split(",")
        assert header == [
            "index",
            "label/seed0",
            "label/seed1",
            "conv/seed0",
            "conv/seed1",
            "minirocket/seed0",
            "minirocket/seed1",
        ]
        labels, correct = read_predictions(results / task / PREDICTIONS)
        assert set(correct) == {"conv", "minirocket"} and len(labels[0]) == size
    # seed 1 tests on the first stratified resample: other series, so (for ArrowHead) another label order
    arrow = read_predictions(results / "arrowhead" / PREDICTIONS)[0]
    assert not np.array_equal(arrow[0], arrow[1]) and np.array_equal(np.sort(arrow[0]), np.sort(arrow[1]))
    first = (results / "contrasts.md").read_text()
    assert "arrowhead/conv-vs-minirocket" in first and "motions/conv-vs-minirocket" in first
    # overlapping resamples: Nadeau & Bengio's corrected variance, not a pairing of rows across seeds
    rows = list(csv.DictReader((results / "contrasts.csv").open()))
    assert [r["method"] for r in rows] == ["resampled", "resampled"] and "Nadeau & Bengio" in first
    report = (results / "report.md").read_text()
    # MiniRocket's rows name it and no backbone; the deep rows name the sequence backbone
    assert "| arrowhead/minirocket | minirocket | - | - | UCR |" in report
    assert "| arrowhead/conv | conv | " in report and "| Seq " in report and "ViT" not in report
    # without logs/: the same contrasts from the committed predictions alone
    study.logs = tmp_path / "nowhere"
    (results / "contrasts.md").unlink()
    assert write_contrasts(study) and (results / "contrasts.md").read_text() == first
    # a study that does not say how many series a resample trains on is told so, by the study file
    study.train_sizes = {}
    with pytest.raises(StudyError, match="set resample_train_size"):
        write_contrasts(study)


def test_a_variant_command_must_be_known(tmp_path):
    path = study_file(tmp_path, variants={"x": {"command": "rocket"}}, contrasts=None)
    with pytest.raises(StudyError, match=r"variants.x.command='rocket'; expected one of fit, minirocket"):
        Study.load(path)
