import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.utilities.model_summary.model_summary import get_human_readable_count

from mwa_lightning.cli import main
from mwa_lightning.tools import TOOLS, entry_point
from mwa_lightning.training.metric_names import LR, LR_GROUPS, TRAIN_LOSS_STEP, VAL_ACC
from tests.helpers import ROOT, instantiate, reported_metrics, run_cli, tiny_config

CONFIGS = ROOT / "configs"


def test_fast_dev_run_through_the_cli(mixer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(
        [
            "fit",
            "--config",
            str(tiny_config(tmp_path)),
            "--trainer.fast_dev_run",
            "true",
            "--model.mixer",
            f"{mixer.__module__}.{mixer.__qualname__}",
        ]
    )
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
    assert {type(block.mixer) for block in cli.model.net.blocks} == {mixer}  # injected by class path
    assert torch.isfinite(cli.trainer.callback_metrics[TRAIN_LOSS_STEP])


def test_run_folder_holds_config_checkpoints_and_events(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", str(tiny_config(tmp_path)), "--experiment", "group/name"])
    run = tmp_path / "logs" / "group" / "name" / "version_0"
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert list(run.glob("events.out.tfevents.*"))
    assert list((run / "checkpoints").glob("best-epoch*.ckpt"))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["seed_everything"] == 0 and "num_classes" not in saved["model"]
    out = capsys.readouterr().out
    assert "run folder: logs/group/name/version_0" in out and "val/acc=" in out


def test_misspelled_key_fails_naming_it_and_creates_no_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(tmp_path)
    config.write_text(config.read_text().replace("warmup_epochs", "warmup_epohcs"))
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config)])
    assert exit_info.value.code != 0
    assert "warmup_epohcs" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_quickstart_config_runs_end_to_end_shortened(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(
        [
            "fit",
            "--config",
            str(CONFIGS / "quickstart.yaml"),
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "3",
            "--trainer.limit_val_batches",
            "2",
            "--trainer.log_every_n_steps",
            "1",
            "--data.init_args.num_train",
            "512",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    run = tmp_path / "logs" / "quickstart" / "version_0"
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 3 and last["epoch"] == 0  # the shortened schedule ran to its end
    finished = yaml.safe_load((run / "finished.json").read_text())
    printed = reported_metrics(capsys.readouterr().out)
    assert finished["epochs"] == 1 and printed[VAL_ACC] == pytest.approx(finished["metrics"][VAL_ACC], abs=1e-4)


def test_two_process_ddp_validates_like_one_process(tmp_path):
    config = tiny_config(tmp_path)
    args = [
        "validate",
        "--config",
        str(config),
        "--data.init_args.num_test",
        "200",
        "--data.init_args.batch_size",
        "25",
    ]
    single = run_cli(*args, cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = run_cli(*args, "--trainer.strategy", "ddp", "--trainer.devices", "2", cwd=tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = reported_metrics(single.stdout), reported_metrics(ddp.stdout)
    assert "val/acc" in one and one["val/acc"] == two["val/acc"] and one["val/acc_top5"] == two["val/acc_top5"]
    assert abs(one["val/loss"] - two["val/loss"]) < 1e-4
    assert "Starting with 2 processes" in ddp.stdout + ddp.stderr


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    def fit(folder: Path, *extra: str) -> Path:
        folder.mkdir()
        config = tiny_config(folder, **{"trainer.max_epochs": 3})
        result = run_cli("fit", "--config", str(config), *extra, cwd=folder)
        return result

    whole = fit(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]

    marker = tmp_path / "killed.marker"
    kill = [
        "--trainer.callbacks+=tests.helpers.KillAt",
        "--trainer.callbacks.epoch=1",
        "--trainer.callbacks.batch=3",
        f"--trainer.callbacks.marker={marker}",
    ]
    killed = fit(tmp_path / "killed", *kill)
    assert killed.returncode == -signal.SIGKILL and marker.exists()
    run = tmp_path / "killed" / "logs" / "tiny" / "version_0"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0

    resumed = run_cli(
        "fit",
        "--config",
        str(run / "config.yaml"),
        "--ckpt_path",
        str(run / "checkpoints" / "last.ckpt"),
        cwd=tmp_path / "killed",
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (run.parent / "version_1").exists(), "the resumed run should continue in its own folder"
    assert reported_metrics(resumed.stdout) == reported_metrics(whole.stdout)
    a = torch.load(tmp_path / "whole" / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def test_last_checkpoint_holds_the_final_epoch_even_when_accuracy_stops_improving(tmp_path, monkeypatch):
    # lr 0: the weights never change, val/acc never improves after epoch 0, so Lightning's save_last would stop
    # refreshing last.ckpt after the first epoch
    monkeypatch.chdir(tmp_path)
    config = tiny_config(tmp_path, **{"trainer.max_epochs": 3})
    main(["fit", "--config", str(config), "--model.lr", "0.0", "--model.min_lr", "0.0", "--run", "r"])
    checkpoints = tmp_path / "logs" / "tiny" / "r" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2 and last["global_step"] == 3 * 6  # 96 images / batch 16
    assert [p.name for p in checkpoints.glob("best-*.ckpt")] == ["best-epoch000.ckpt"]


def test_scaled_learning_rate_doubles_with_two_processes(tmp_path):
    args = ["fit", "--config", str(tiny_config(tmp_path)), "--model.lr", "5e-4", "--model.lr_base_batch", "512"]
    args += ["--trainer.max_steps", "1", "--trainer.limit_val_batches", "1"]
    one = run_cli(*args, cwd=tmp_path)
    two = run_cli(*args, "--trainer.strategy", "ddp", "--trainer.devices", "2", cwd=tmp_path)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-3000:]
    assert "learning rate: 0.0005 x global batch 16 / 512 = 1.563e-05" in one.stdout + one.stderr
    assert "learning rate: 0.0005 x global batch 32 / 512 = 3.125e-05" in two.stdout + two.stderr


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("case", ["empty", "truncated", "bad option"])
def test_an_error_before_training_is_one_line_and_leaves_no_run_folder(case, tmp_path):
    from tests.dataset_files import write_cifar10

    data = tmp_path / "data"
    data.mkdir()
    args = ["fit", "--config", str(CONFIGS / "cifar10_cpu.yaml"), "--data.init_args.data_dir", str(data)]
    args += ["--data.init_args.download", "false"]
    expected = ["cifar-10-batches-py/data_batch_1", "download: true"]
    if case == "truncated":
        write_cifar10(data)
        batch = data / "cifar-10-batches-py" / "data_batch_1"
        batch.write_bytes(batch.read_bytes()[:5000])
        expected = [f"{batch} is truncated or corrupt", "download the dataset again"]
    elif case == "bad option":
        args += ["--model.mixer.init_args.levels", "4"]  # an 8x8 token grid has 3 Haar levels at most
        expected = ["token grid (8, 8) is not divisible by 2**levels = 16", "fewer levels"]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = _error_lines(result.stderr)
    assert all(text in line for text in expected), line
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "logs").rglob("*")) if (tmp_path / "logs").exists() else True
    shown = run_cli(*args, "--traceback", cwd=tmp_path)
    assert shown.returncode != 0 and "Traceback" in shown.stderr  # for debugging


def test_a_failed_start_keeps_an_existing_run_folder(tmp_path, monkeypatch):
    from tests.dataset_files import write_cifar10

    monkeypatch.chdir(tmp_path)
    write_cifar10(tmp_path / "data")
    args = [
        "fit",
        "--config",
        str(tiny_config(tmp_path)),
        "--run",
        "r",
        "--data",
        "mwa_lightning.data.CIFAR10DataModule",
    ]
    args += ["--data.init_args.data_dir", str(tmp_path / "data"), "--data.init_args.batch_size", "16"]
    main(args)
    run = tmp_path / "logs" / "tiny" / "r"
    assert (run / "finished.json").is_file()
    (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").unlink()  # the data goes missing
    with pytest.raises(SystemExit) as info:
        main(args)  # the same command again (a requeued job): fails at setup
    assert info.value.code == 2
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "finished.json").is_file()


def test_the_console_script_is_the_command_line(tmp_path):
    script = shutil.which("mwa-lightning") or str(Path(sys.executable).parent / "mwa-lightning")
    command = [script, "fit", "--config", str(tiny_config(tmp_path)), "--print_config"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "experiment: tiny" in result.stdout and "MultiscaleWaveletAttention" in result.stdout


def test_the_tools_run_through_the_one_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    for name in TOOLS:  # every tool answers --help under its own name (in this process: a start-up each is slow)
        monkeypatch.setattr(sys, "argv", ["mwa-lightning", name, "--help"])
        with pytest.raises(SystemExit) as stop:
            entry_point()
        out = capsys.readouterr().out
        assert stop.value.code in (0, None) and f"mwa-lightning {name}" in out, (name, out[-500:])
    listing = run_cli("--help", cwd=ROOT)
    assert listing.returncode == 0 and all(f"mwa-lightning {name}" in listing.stdout for name in TOOLS)
    dry = run_cli("study", "configs/studies/paper-cifar10.yaml", "--print-commands", cwd=ROOT)
    assert dry.returncode == 0 and dry.stdout.splitlines()[0].startswith("mwa-lightning fit --config ")


@pytest.mark.parametrize("spelling", [["--model.mixer", "gfn"], ["--model.mixer=gfn"]])
def test_a_registered_mixer_name_is_taken_where_a_user_types_it(spelling, tmp_path):
    """``--model.mixer gfn``: the name ``bench --mixers``, ``gpu-check`` and docs/model.md use."""
    result = run_cli(
        "fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), *spelling, "--print_config", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    mixer = yaml.safe_load(result.stdout)["model"]["mixer"]
    assert mixer["class_path"] == "mwa_lightning.models.GlobalFilter"


def test_a_mistyped_mixer_name_is_one_line_naming_the_nearest(tmp_path):
    result = run_cli(
        "fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--model.mixer", "gfnn", cwd=tmp_path
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: --model.mixer 'gfnn' is no registered mixer (attention, afno, gfn, mwa, identity, conv, fnet); "
        "did you mean 'gfn'?"
    ]
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    "typo,nearest",
    [
        (["--trainer.max_epoch", "1"], "--trainer.max_epochs"),  # once silently taken as max_epochs (abbreviation)
        (["--model.drop_pat_rate", "0.1"], "--model.drop_path_rate"),
        (["--config", "TYPO_FILE"], "--model.drop_path_rate"),  # the same typo in a config file
    ],
)
def test_a_mistyped_option_is_one_line_naming_the_nearest_and_nothing_starts(typo, nearest, tmp_path):
    (tmp_path / "typo.yaml").write_text("model:\n  drop_pat_rate: 0.1\n")
    typo = [str(tmp_path / "typo.yaml") if t == "TYPO_FILE" else t for t in typo]
    result = run_cli("fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), *typo, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # no usage dump
    assert lines[0].startswith("error: ") and f"did you mean {nearest}?" in lines[0]
    assert lines[0].endswith("(mwa-lightning fit --help lists the options)")
    assert not (tmp_path / "logs").exists()


def test_a_fit_prints_no_advertisement_and_no_warning_from_inside_lightning(tmp_path):
    args = ["--trainer.max_epochs", "1", "--trainer.enable_model_summary", "true", "--run", "r"]
    result = run_cli("fit", "--config", str(tiny_config(tmp_path)), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout + result.stderr
    assert "val/acc=" in out  # the run's own report is there
    assert "litlogger" not in out and "LeafSpec" not in out
    # the summary's FLOPs are the model's own count (one image, forward), not Lightning's 0 without an example input
    model = instantiate("--config", str(tiny_config(tmp_path))).model
    model.setup("fit")
    expected = get_human_readable_count(model.flops_per_sample["eval"])
    assert model.flops_per_sample["eval"] > 0 and re.search(rf"^{re.escape(expected)}\s+Total Flops$", out, re.M), out
    assert "| FLOPs" not in out  # Lightning's per-layer column, all zeros here, is left out
    # the learning rate is logged per named parameter group, not as lr-AdamW/pg1 and lr-AdamW/pg2
    metrics = json.loads((tmp_path / "logs" / "tiny" / "r" / "finished.json").read_text())["metrics"]
    assert {f"{LR}/{group}" for group in LR_GROUPS} <= metrics.keys()
    assert not [k for k in metrics if "AdamW" in k or "/pg" in k], sorted(metrics)


def test_an_mwa_ablation_on_another_mixers_baseline_says_what_ablations_are(tmp_path):
    configs = ROOT / "configs"
    args = [
        "--config",
        str(configs / "baselines" / "cifar10" / "gfn.yaml"),
        "--config",
        str(configs / "ablations" / "mwa_db2.yaml"),
    ]
    result = run_cli("fit", *args, "--print_config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: model.mixer: GlobalFilter has no option 'wavelet'; the ablations in configs/ablations/ are options of "
        "MWA: stack them on configs/baselines/<dataset>/mwa.yaml (mwa-lightning fit --help lists the options)"
    ]


def test_mlflow_takes_the_experiment_and_run_names_and_the_run_folder_stays_the_run_folder(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (pip install mlflow-skinny)")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a file store keeps the test offline and serverless
    uri = (tmp_path / "mlruns").as_uri()
    logger = "lightning.pytorch.loggers.MLFlowLogger"
    args = ["--trainer.logger", logger, "--trainer.logger.init_args.tracking_uri", uri]
    main(["fit", "--config", str(tiny_config(tmp_path)), *args, "--experiment", "group/name", "--run", "seed0"])
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("group/name")
    assert experiment is not None, [e.name for e in client.search_experiments()]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "seed0" and VAL_ACC in run.data.metrics
    folder = tmp_path / "logs" / "group" / "name" / "seed0"  # config.yaml and finished.json: the run's own folder
    finished = json.loads((folder / "finished.json").read_text())
    assert finished["metrics"][VAL_ACC] == pytest.approx(run.data.metrics[VAL_ACC])
    assert (folder / "checkpoints" / "last.ckpt").is_file()
    assert not list((tmp_path / "mlruns").glob("*.yaml")) and not list((tmp_path / "mlruns").glob("*.json"))
    saved = yaml.safe_load((folder / "config.yaml").read_text())["trainer"]["logger"]
    assert [x["class_path"].rsplit(".", 1)[1] for x in saved] == ["TensorBoardLogger", "MLFlowLogger"]
