import math
import statistics

import pytest

from mwa_lightning.cli import main
from mwa_lightning.report import find_runs, report
from tests.helpers import ROOT, tiny_config


def tiny_fit(workdir, experiment, seed, *extra):
    config = tiny_config(workdir)
    main(
        [
            "fit",
            "--config",
            str(config),
            "--experiment",
            experiment,
            "--seed_everything",
            str(seed),
            "--throughput.window_size",
            "2",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        tiny_fit(workdir, "mwa", 1)
        tiny_fit(workdir, "mwa", 2)
        tiny_fit(workdir, "mwa_m2", 1, "--model.mixer.levels", "2")
    return workdir / "logs"


def test_seeds_group_into_mean_and_std(runs_dir, tmp_path):
    rows = report(runs_dir, tmp_path)
    by_name = {r["experiment"]: r for r in rows}
    assert set(by_name) == {"mwa", "mwa_m2"}
    grouped, single = by_name["mwa"], by_name["mwa_m2"]
    assert grouped["runs"] == 2 and grouped["seeds"] == "1,2" and single["runs"] == 1
    assert single["options"] == "levels=2" and grouped["options"] == ""
    # the group's figures are the mean and std of its runs' own figures
    best = [max(r.series("val/acc")) for r in find_runs(runs_dir) if r.experiment == "mwa"]
    assert len(best) == 2
    assert grouped["max_top1_mean"] == pytest.approx(statistics.fmean(best))
    assert grouped["max_top1_std"] == pytest.approx(statistics.stdev(best))
    last = [r.by_epoch("val/acc")[-1] for r in find_runs(runs_dir) if r.experiment == "mwa"]
    assert grouped["last_top1_mean"] == pytest.approx(statistics.fmean(last))
    assert grouped["last_top1_std"] == pytest.approx(statistics.stdev(last))
    assert grouped["epochs_mean"] == 2 and grouped["dataset"] == "Synthetic"
    assert grouped["params_M"] > 0 and grouped["GFLOPs"] > 0 and not math.isnan(grouped["last_top5_mean"])
    assert grouped["images_per_s_mean"] > 0
    table = (tmp_path / "report.md").read_text()
    assert "| mwa | mwa | - | ViT-tiny/4 (depth=1) | Synthetic | 2 | 0 |" in table and "±" in table
    assert (tmp_path / "report.csv").read_text().startswith("experiment,mixer,options")
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_report_of_a_folder_without_runs_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no runs under"):
        report(tmp_path)


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs():
    import nbformat

    assert {p.name for p in NOTEBOOKS} == {"inspect_runs.ipynb", "wavelet_tokens.ipynb", "complexity.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} holds outputs"


def test_notebook_markdown_has_no_literal_escapes():
    import nbformat

    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                assert "\\n" not in cell.source, f"{path.name}: a Markdown cell shows a literal \\n"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_headless(notebook, runs_dir, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    from tests.dataset_files import write_cifar10

    write_cifar10(tmp_path / "cifar")
    monkeypatch.setenv("MWA_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("MWA_REPORT_DIR", str(tmp_path / "report"))
    monkeypatch.setenv("MWA_CIFAR10_DIR", str(tmp_path / "cifar"))
    monkeypatch.setenv("MWA_CHECKPOINT", str(next(runs_dir.rglob("last.ckpt"))))
    monkeypatch.setenv("MWA_BENCH_DIR", str(tmp_path / "bench"))
    monkeypatch.setenv("MWA_SCALING_TOKENS", "256")
    monkeypatch.setenv("MWA_SCALING_REPEATS", "1")
    monkeypatch.setenv("MWA_SCALING_MEMORY", "0")
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
    ).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook drew nothing"


def test_unfinished_runs_are_counted_apart_and_left_out_of_the_figures(runs_dir, tmp_path):
    import shutil

    logs = tmp_path / "logs"
    shutil.copytree(runs_dir, logs)
    finished = [r for r in find_runs(logs) if r.experiment == "mwa"]
    killed = finished[0].path.parent / "version_9"  # a run that stopped before its end: no finished.json
    shutil.copytree(finished[0].path, killed)
    (killed / "finished.json").unlink()
    rows = {r["experiment"]: r for r in report(logs, tmp_path / "out")}
    row = rows["mwa"]
    assert row["runs"] == 2 and row["unfinished"] == 1 and str(killed) in row["folders"]
    last = [r.by_epoch("val/acc")[-1] for r in finished]
    assert row["last_top1_mean"] == pytest.approx(statistics.fmean(last))
    table = (tmp_path / "out" / "report.md").read_text()
    assert "| mwa | mwa | - | ViT-tiny/4 (depth=1) | Synthetic | 2 | 1 |" in table
