"""A run's identity is one thing, whoever launches it: folder, command and seed agree."""

import shlex
import sys
from pathlib import Path

from mwa_lightning import COMMAND
from mwa_lightning.experiments.runspec import FIT, MINIROCKET, RunSpec
from mwa_lightning.experiments.slurm import array_command, experiment_tasks


def test_folder_and_command_name_the_same_run():
    run = RunSpec("study/mwa", 2, ("--config", "base.yaml"))
    assert run.folder == Path("logs/study/mwa/seed2") and run.name == "study/mwa/seed2"
    args = run.args
    assert args[:2] == ["--config", "base.yaml"]
    assert args[args.index("--experiment") + 1] == "study/mwa" and args[args.index("--run") + 1] == "seed2"
    assert args[args.index("--seed_everything") + 1] == "2"
    assert shlex.split(run.shell()) == [COMMAND, FIT, *args]
    assert run.argv("py") == ["py", "-m", "mwa_lightning", FIT, *args]
    reference = RunSpec("study/minirocket", 2, ("--config", "base.yaml"), command=MINIROCKET)
    assert reference.argv("py") == ["py", "-m", "mwa_lightning", MINIROCKET, *reference.args]


def test_another_logs_folder_reaches_the_logger():
    run = RunSpec("e", 0, (), logs=Path("elsewhere"))
    assert run.folder == Path("elsewhere/e/seed0")
    assert run.args[run.args.index("--trainer.logger.init_args.save_dir") + 1] == "elsewhere"


def test_the_launcher_runs_exactly_the_runs_command(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("experiment: baselines/x\n")
    name, runs = experiment_tasks([str(config)], [0, 1], None, "/data")
    assert name == "baselines-x" and [r.folder for r in runs] == [
        Path("logs/baselines/x/seed0"),
        Path("logs/baselines/x/seed1"),
    ]
    words = shlex.split(array_command(runs[1], gpus=2, nodes=1))
    assert (
        words[:4] == [sys.executable, "-m", "mwa_lightning", "fit"] and words[4 : 4 + len(runs[1].args)] == runs[1].args
    )
