import csv
import math
import statistics

import pytest

from mwa_lightning.experiments.report import find_runs, report
from tests.helpers import run_cli, tiny_config


def test_seeds_group_into_mean_and_std(runs_dir, tmp_path):
    rows = report(runs_dir, tmp_path)
    by_name = {r["experiment"]: r for r in rows}
    assert set(by_name) == {"mwa", "mwa_m2"}
    grouped, single = by_name["mwa"], by_name["mwa_m2"]
    assert grouped["runs"] == 2 and grouped["seeds"] == "1,2" and single["runs"] == 1
    # options: what tells the rows apart (the levels), not what they share
    assert single["options"] == "levels=2" and grouped["options"] == "levels=1"
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
    assert "| mwa | mwa | levels=1 | ViT 1x32/4 | Synthetic | 2 | 0 |" in table and "±" in table
    assert (tmp_path / "report.csv").read_text().startswith("experiment,mixer,options")
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_report_of_a_folder_without_runs_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no runs under"):
        report(tmp_path)


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
    assert "| mwa | mwa | levels=1 | ViT 1x32/4 | Synthetic | 2 | 1 |" in table


def test_rise_and_run_hours_come_from_the_curve_and_the_event_files(runs_dir, tmp_path):
    """A run written by hand: validation top-1 per epoch, logged by two processes (started, killed, resumed
    1,000 s later). The rise is the last epoch minus 3 before; the run-hours are each file's span, not the gap."""
    import shutil

    from torch.utils.tensorboard import SummaryWriter

    from mwa_lightning.training.metric_names import EPOCH, VAL_ACC

    source = next(r for r in find_runs(runs_dir) if r.experiment == "mwa_m2").path
    run = tmp_path / "logs" / "mwa_m2" / "seed0"
    run.mkdir(parents=True)
    for name in ("config.yaml", "finished.json"):
        shutil.copy(source / name, run / name)
    curve = [0.10, 0.20, 0.30, 0.40, 0.45]
    starts = {0: 1_000_000.0, 3: 1_000_000.0 + 100 + 1_000}  # epochs 0-2 in the first process, 3-4 in the second
    for first, last, start, span in ((0, 2, starts[0], 100.0), (3, 4, starts[3], 50.0)):
        writer = SummaryWriter(str(run), filename_suffix=f".{first}")
        for epoch in range(first, last + 1):
            t = start + span * (epoch - first) / (last - first)
            writer.add_scalar(EPOCH, epoch, global_step=epoch, walltime=t)
            writer.add_scalar(VAL_ACC, curve[epoch], global_step=epoch, walltime=t)
        writer.close()
    (record,) = find_runs(tmp_path / "logs")
    assert record.seconds == pytest.approx(150.0)
    (row,) = report(tmp_path / "logs", tmp_path / "out")
    assert row["rise_top1_mean"] == pytest.approx(0.45 - 0.20)
    assert row["run_hours"] == pytest.approx(150.0 / 3600)
    table = (tmp_path / "out" / "report.md").read_text()
    assert "| 25.0 |" in table and "| 0.04 |" in table and "In all: 1 run, 0.0 run-hours." in table
    short = report(runs_dir, tmp_path / "short")  # 2 epochs: no rise to give
    assert all(math.isnan(r["rise_top1_mean"]) for r in short) and all(r["run_hours"] > 0 for r in short)


def test_a_row_is_labelled_by_what_tells_it_from_the_other_rows_its_backbone_kind_and_minirocket():
    from mwa_lightning.experiments.labels import row_labels

    mwa = {"class_path": "mwa_lightning.models.MultiscaleWaveletAttention", "init_args": {"levels": 3, "skips": False}}
    gfn = {"class_path": "mwa_lightning.models.GlobalFilter", "init_args": {"size": 8}}
    cifar = {"class_path": "mwa_lightning.data.CIFAR10DataModule", "init_args": {"batch_size": 128}}

    def config(mixer, seed=0, **model):
        return {
            "seed_everything": seed,
            "experiment": f"x/{seed}",
            "model": {"mixer": mixer, "depth": 4, "embed_dim": 64, "lr": 1e-3, "local_branch": False, **model},
            "data": cifar,
        }

    # what all rows share (the depth, the batch size, MWA's skips in every MWA row) is no row's option; the seed and
    # the experiment's name never are; the mixer's options count among the rows with that mixer only
    two_levels = {**mwa, "init_args": {**mwa["init_args"], "levels": 2}}
    rows = row_labels(
        [config(mwa), config(two_levels, seed=1, local_branch=True), config(gfn, lr=2e-3, local_branch=True)]
    )
    assert rows == [
        ("mwa", "levels=3, local_branch=False, lr=0.001", "ViT 4x64/4"),
        ("mwa", "levels=2, local_branch=True, lr=0.001", "ViT 4x64/4"),
        ("gfn", "local_branch=True, lr=0.002", "ViT 4x64/4"),
    ]
    # one row alone varies nothing; two varying keys that end alike (lr) are named by their paths
    assert row_labels([config(mwa)])[0][1] == ""
    data_lr = {**cifar, "init_args": {"lr": 5}}
    pair = row_labels([config(mwa), {**config(mwa, lr=2e-3), "data": data_lr}])
    assert [options for _, options, _ in pair] == ["lr=0.001, batch_size=128", "lr=0.002, data.lr=5"]
    # the backbone's kind comes from the DataModule; MiniRocket's rows have neither options nor a backbone and are
    # not compared with the deep rows
    sequence = {**config(mwa), "data": {"class_path": "mwa_lightning.data.SequentialCIFAR10DataModule"}}
    rocket = {"command": "minirocket", "seed_everything": 0, "data": sequence["data"]}
    assert row_labels([sequence, rocket]) == [("mwa", "", "Seq 4x64/4"), ("minirocket", "", "-")]
    # a mixer without options (init_args: {}) varies nothing by it
    identity = config({"class_path": "mwa_lightning.models.IdentityMixer", "init_args": {}})
    assert [o for _, o, _ in row_labels([identity, config(mwa)])] == ["", ""]
    # a mixer mapping without a class path is labelled "?", not an error
    nameless = config({"init_args": {"levels": 3}})
    assert row_labels([nameless, config(mwa)])[0][:2] == ("?", "")


def test_the_report_reads_a_csvlogger_run_beside_a_tensorboard_one(tmp_path):
    """A finished run logged with CSVLogger (metrics.csv, no event files) is reported, not left out."""
    config = str(tiny_config(tmp_path))
    for experiment, logger in (("tb", []), ("csv", ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger"])):
        args = ["fit", "--config", config, "--experiment", experiment, *logger, "--trainer.logger.init_args.save_dir"]
        result = run_cli(*args, "logs", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "logs" / "csv" / "version_0" / "metrics.csv").is_file()
    assert not list((tmp_path / "logs" / "csv").rglob("events.out.tfevents.*"))
    report = run_cli("report", "logs", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    rows = {r["experiment"]: r for r in csv.DictReader((tmp_path / "logs" / "report.csv").open())}
    assert set(rows) == {"tb", "csv"}
    # the same run, logged two ways: the same last-epoch figures and epochs
    for column in ("last_top1_mean", "epochs_mean", "last_top5_mean"):
        assert rows["csv"][column] == rows["tb"][column], column
    assert "In all: 2 runs" in (tmp_path / "logs" / "report.md").read_text()
