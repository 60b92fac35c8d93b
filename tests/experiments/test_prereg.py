"""Pre-registered predictions: each verdict rule at and around its edges, the study file's ``predictions:``, the
report's table and columns, and the command that reads a committed contrasts.csv."""

import math

import numpy as np
import pytest
import yaml

from mwa_lightning.experiments.paired import write_contrasts
from mwa_lightning.experiments.prereg import (
    HELD,
    NOT_HELD,
    UNDECIDED,
    Prediction,
    PredictionError,
    main,
    parse_predictions,
    read_contrasts,
)
from mwa_lightning.experiments.stats import ContrastResult
from mwa_lightning.experiments.studyfile import Study, StudyError
from tests.helpers import ROOT


def result(mean: float, low90: float, high90: float, p_holm: float, p: float = 0.5) -> ContrastResult:
    return ContrastResult("c", "a - b", 4, 1000, mean, low90 - 1, high90 + 1, low90, high90, 0.5, 0.5, p, p_holm)


@pytest.mark.parametrize(
    "low90,high90,verdict",
    [
        (-0.9, 0.9, HELD),  # inside (-1, +1)
        (-1.0, 0.5, UNDECIDED),  # touches the edge: not inside the open interval
        (-1.5, 0.5, UNDECIDED),  # straddles -1
        (1.2, 2.0, NOT_HELD),  # wholly above +1
        (-3.0, -1.1, NOT_HELD),  # wholly below -1
        (0.5, 1.5, UNDECIDED),  # straddles +1
    ],
)
def test_equivalence_holds_inside_the_margin_and_fails_wholly_outside(low90, high90, verdict):
    prediction = Prediction.parse("c", "equivalent", delta=1.0)
    assert prediction.verdict(result((low90 + high90) / 2, low90, high90, p_holm=0.5)) == verdict
    assert prediction.says == "equivalent within +-1"


@pytest.mark.parametrize(
    "kind,mean,p_holm,verdict",
    [
        ("positive", 2.0, 0.01, HELD),
        ("positive", -2.0, 0.01, NOT_HELD),
        ("positive", 2.0, 0.05, UNDECIDED),  # p (Holm) must be below 0.05
        ("positive", 2.0, 0.20, UNDECIDED),
        ("negative", -2.0, 0.01, HELD),
        ("negative", 2.0, 0.01, NOT_HELD),
    ],
)
def test_a_sign_holds_only_when_holms_p_is_below_five_percent(kind, mean, p_holm, verdict):
    assert Prediction.parse("c", kind, delta=None).verdict(result(mean, mean - 1, mean + 1, p_holm)) == verdict


@pytest.mark.parametrize(
    "text,low90,high90,verdict",
    [
        ("at-least 1", 1.1, 3.0, HELD),  # the gap exceeds a point, one-sided 5 %
        ("at-least 1", 0.5, 3.0, UNDECIDED),
        ("at-least 1", -1.0, 0.9, NOT_HELD),  # wholly below +1, even if above 0
        ("at-most -1", -3.0, -1.1, HELD),
        ("at-most -1", -0.9, 1.0, NOT_HELD),
        ("at-most -1", -2.0, 0.0, UNDECIDED),
    ],
)
def test_a_bound_holds_when_the_90_percent_interval_lies_beyond_it(text, low90, high90, verdict):
    prediction = Prediction.parse("c", text, delta=None)
    assert prediction.verdict(result((low90 + high90) / 2, low90, high90, p_holm=0.001)) == verdict


def test_one_seed_is_undecided_whatever_the_estimate():
    one_seed = result(5.0, math.nan, math.nan, math.nan, p=math.nan)
    for text in ("equivalent 1", "positive", "at-least 1"):
        assert Prediction.parse("c", text, None).verdict(one_seed) == UNDECIDED


def test_predictions_that_cannot_be_read_are_refused_naming_them():
    with pytest.raises(PredictionError, match=r"predictions\.c: 'bigger'; expected 'equivalent'"):
        Prediction.parse("c", "bigger", 1.0)
    with pytest.raises(PredictionError, match="needs a positive margin"):
        Prediction.parse("c", "equivalent", None)
    with pytest.raises(PredictionError, match="'positive' takes no number"):
        Prediction.parse("c", "positive 1", None)
    with pytest.raises(PredictionError, match=r"expected 'at-least <points>'"):
        Prediction.parse("c", "at-least", None)
    with pytest.raises(PredictionError, match=r"unknown contrast\(s\) 'P9'; the contrasts: P1"):
        parse_predictions({"P9": "positive"}, {"P1": ["a", "b"]}, None, "study.yaml")
    assert Prediction.parse("c", "equivalent 0.5", 1.0).points == 0.5  # its own margin before the study's


def tiny_study(tmp_path, predictions, seeds=(0, 1, 2, 3)) -> Study:
    """A test-once study of three variants whose predictions.csv is written by hand: ``a`` right on 60 % of 2,000
    images, ``b`` on 40 %, ``c`` like ``a`` but for 4 images a seed."""
    spec = {
        "base": str(ROOT / "configs" / "quickstart.yaml"),
        "seeds": list(seeds),
        "protocol": "test-once",
        "delta": 1.0,
        "variants": {"a": {}, "b": {}, "c": {}},
        "contrasts": {"a-vs-b": ["a", "b"], "a-vs-c": ["a", "c"], "b-vs-a": ["b", "a"]},
        "predictions": predictions,
        "results": str(tmp_path / "results"),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    study = Study.load(path)
    n, rng = 2000, np.random.default_rng(0)
    label = rng.integers(0, 10, n)
    columns = {"index": np.arange(n), "label": label}
    for seed in seeds:
        right_a, right_b = rng.random(n) < 0.6, rng.random(n) < 0.4
        right_c = right_a.copy()
        right_c[rng.choice(n, 4, replace=False)] ^= True
        for variant, right in (("a", right_a), ("b", right_b), ("c", right_c)):
            columns[f"{variant}/seed{seed}"] = np.where(right, label, (label + 1) % 10)
    out = study.results_dir
    out.mkdir(parents=True)
    header = ",".join(columns)
    np.savetxt(
        out / "predictions.csv",
        np.stack(list(columns.values()), 1),
        fmt="%d",
        delimiter=",",
        header=header,
        comments="",
    )
    return study


def test_the_report_gives_each_pre_registered_prediction_its_verdict(tmp_path, capsys):
    study = tiny_study(tmp_path, {"a-vs-b": "positive", "a-vs-c": "equivalent", "b-vs-a": "at-least 1"})
    assert list(study.predictions) == ["a-vs-b", "a-vs-c", "b-vs-a"]
    results = {r.name: r for r in write_contrasts(study)}
    md = (study.results_dir / "contrasts.md").read_text()
    assert "## Pre-registered predictions" in md
    assert "| a-vs-b | > 0 |" in md and "| a-vs-c | equivalent within +-1 |" in md and "| b-vs-a | >= +1 |" in md
    rows = {r["name"]: r for r in _csv_rows(study.results_dir / "contrasts.csv")}
    assert rows["a-vs-b"]["prediction verdict"] == HELD  # about +20 points
    assert rows["a-vs-c"]["prediction verdict"] == HELD  # 4 images in 2,000: inside +-1
    assert rows["b-vs-a"]["prediction verdict"] == NOT_HELD  # about -20 points, wholly below +1
    assert results["a-vs-b"].mean > 15 and abs(results["a-vs-c"].mean) < 0.5
    # the command reads the committed contrasts.csv back and gives the same verdicts
    assert main([str(study.results_dir / "contrasts.csv"), "a-vs-b=positive", "a-vs-c=equivalent 1"]) == 0
    out = capsys.readouterr().out
    assert "| a-vs-b | > 0 |" in out and f"| {HELD} |" in out and "b-vs-a" not in out


def test_a_committed_contrasts_csv_reads_back_as_the_results_written(tmp_path):
    study = tiny_study(tmp_path, {"a-vs-b": "positive"})
    written = write_contrasts(study)
    assert read_contrasts(study.results_dir / "contrasts.csv") == written


def test_a_study_without_predictions_writes_the_contrasts_as_before(tmp_path):
    study = tiny_study(tmp_path, None)
    write_contrasts(study)
    assert "Pre-registered" not in (study.results_dir / "contrasts.md").read_text()
    assert "prediction verdict" not in (study.results_dir / "contrasts.csv").read_text()


def test_a_prediction_for_an_unknown_contrast_is_a_study_error(tmp_path):
    with pytest.raises(StudyError, match=r"tiny.yaml: predictions name unknown contrast\(s\) 'a-vs-z'"):
        tiny_study(tmp_path, {"a-vs-z": "positive"})


def test_the_command_refuses_a_bad_prediction_in_one_line(tmp_path, capsys):
    study = tiny_study(tmp_path, None)
    write_contrasts(study)
    with pytest.raises(SystemExit) as exit_:
        main([str(study.results_dir / "contrasts.csv"), "a-vs-b=bigger"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: ") and "predictions.a-vs-b: 'bigger'; expected" in err
    assert err.count("\n") == 1  # one line, no usage


def _csv_rows(path):
    import csv

    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_study_with_tasks_predicts_each_tasks_contrast(tmp_path):
    spec = {
        "base": str(ROOT / "configs" / "quickstart.yaml"),
        "seeds": [0, 1],
        "protocol": "test-once",
        "tasks": {"small": {"trainer.max_epochs": 1}, "large": {"trainer.max_epochs": 2}},
        "variants": {"a": {}, "b": {}},
        "contrasts": {"a-vs-b": ["a", "b"]},
        "predictions": {"a-vs-b": "positive"},
    }
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump(spec))
    study = Study.load(path)
    assert set(study.contrasts) == set(study.predictions) == {"small/a-vs-b", "large/a-vs-b"}
    assert all(p.contrast == name and p.kind == "positive" for name, p in study.predictions.items())
