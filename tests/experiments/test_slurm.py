"""The SLURM launcher, without SLURM: the array script and command list it generates, and what it refuses."""

import shlex
import sys

import pytest
import yaml

from mwa_lightning.experiments.slurm import OVERLAY, main
from mwa_lightning.experiments.study import Study
from tests.helpers import ROOT, tiny_config

ARGS = ["--partition", "gpu", "--gpus", "8", "--nodes", "2", "--time", "2-00:00:00", "--signal-seconds", "240"]


def test_a_study_becomes_one_array_task_per_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "slurm"
    code = main(["configs/studies/paper-cifar10.yaml", *ARGS, "--data-dir", "/data", "--out", str(out), "--dry-run"])
    assert code == 0
    text = capsys.readouterr().out
    assert "paper-cifar10: 24 array tasks" in text and "dry run: nothing submitted" in text
    assert not out.exists()  # a dry run writes nothing
    for directive in (
        "#SBATCH --array=0-23",
        "#SBATCH --partition=gpu",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --time=2-00:00:00",
        "#SBATCH --signal=USR1@240",
        "#SBATCH --requeue",
        'eval "srun $COMMAND"',
    ):
        assert directive in text
    prefix = shlex.join([sys.executable, "-m", "mwa_lightning", "fit"])  # the interpreter that submitted
    commands = [line for line in text.splitlines() if line.startswith(prefix)]
    study = Study.load("configs/studies/paper-cifar10.yaml", data_dir="/data")
    assert len(commands) == 24
    for command, run in zip(commands, study.runs(), strict=True):
        words = shlex.split(command)
        assert words[: 4 + len(run.args)] == [sys.executable, "-m", "mwa_lightning", "fit", *run.args]  # the study's
        assert words[4 + len(run.args) :] == [
            "--config",
            str(ROOT / OVERLAY),
            "--trainer.devices",
            "8",
            "--trainer.num_nodes",
            "2",
        ]


def test_only_submits_the_matching_variants(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    argv = ["configs/studies/paper-cifar10.yaml", "--gpus", "1", "--out", str(tmp_path), "--dry-run"]
    assert main([*argv, "--only", "mwa*"]) == 0
    text = capsys.readouterr().out
    study = Study.load("configs/studies/paper-cifar10.yaml")
    wanted = [run for run in study.runs() if run.variant.startswith("mwa")]
    assert 0 < len(wanted) < len(study.runs()) and f"paper-cifar10: {len(wanted)} array tasks" in text
    assert f"#SBATCH --array=0-{len(wanted) - 1}" in text


def test_written_files_and_finished_runs_are_left_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("mwa_lightning.experiments.slurm.shutil.which", lambda name: None)  # a machine without SLURM
    monkeypatch.chdir(tmp_path)
    config = tiny_config(tmp_path)
    done = tmp_path / "logs" / "tiny" / "seed1"
    done.mkdir(parents=True)
    (done / "finished.json").write_text("{}")
    out = tmp_path / "slurm"
    code = main(["--config", str(config), "--seeds", "0", "1", "2", "--out", str(out), "--gpus", "1"])
    assert code == 2  # no sbatch: says so, after writing the files
    err = capsys.readouterr()
    assert "tiny: 2 array tasks (1 finished runs left out)" in err.out and "sbatch is not on PATH" in err.err
    lines = (out / "tiny.commands").read_text().splitlines()
    assert [shlex.split(line)[shlex.split(line).index("--run") + 1] for line in lines] == ["seed0", "seed2"]
    script = (out / "tiny.sbatch").read_text()
    assert (
        "#SBATCH --array=0-1" in script and f'sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {out / "tiny.commands"}' in script
    )


def test_the_overlay_parses_with_the_slurm_environment(tmp_path, monkeypatch):
    from mwa_lightning.cli import main as cli_main

    overlay = yaml.safe_load((ROOT / OVERLAY).read_text())["trainer"]
    assert overlay["plugins"][0]["init_args"]["auto_requeue"] is False
    monkeypatch.chdir(tmp_path)
    slurm = {"SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "1"}
    slurm |= {
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_JOB_NAME": "test",
        "SLURM_NODELIST": "localhost",
        "SLURM_JOB_ID": "5",
    }
    for key, value in slurm.items():  # what srun sets for one task
        monkeypatch.setenv(key, value)
    cli = cli_main(
        ["--config", str(tiny_config(tmp_path)), "--config", str(ROOT / OVERLAY), "--trainer.accelerator", "cpu"],
        run=False,
    )
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    env = cli.trainer._accelerator_connector.cluster_environment
    assert isinstance(env, SLURMEnvironment) and env.auto_requeue is False


@pytest.mark.parametrize(
    "argv,message",
    [
        (["configs/studies/paper-cifar10.yaml", "--config", "x.yaml"], "either a study file or --config"),
        ([], "either a study file or --config"),
        (["configs/studies/paper-cifar10.yaml", "--time", "two days"], "--time='two days'"),
        (["configs/studies/paper-cifar10.yaml", "--gpus", "-1"], "--gpus=-1; expected 0 (a CPU-only job)"),
        (["configs/studies/paper-cifar10.yaml", "--nodes", "0"], "--nodes=0; expected a positive number"),
        (["--config", "missing.yaml"], "no config file missing.yaml"),
        (["--config", "x.yaml", "--only", "mwa"], "--only 'mwa' picks a study's variants; it needs a study file"),
        (["configs/studies/paper-cifar10.yaml", "--only", "nope*"], "--only 'nope*' matches no variant"),
    ],
)
def test_bad_arguments_are_named(argv, message, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
