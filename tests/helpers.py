"""Helpers for tests that run the command line in subprocesses."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning import Trainer
from lightning.pytorch.callbacks import Callback

from mwa_lightning.cli import MWACLI, main
from mwa_lightning.data import Augment, SyntheticDataModule

ROOT = Path(__file__).resolve().parents[1]


class KillAt(Callback):
    """SIGKILL this process once, at a given epoch and batch; a marker file makes it one-shot."""

    def __init__(self, epoch: int, batch: int, marker: str):
        self.epoch, self.batch, self.marker = epoch, batch, Path(marker)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch and not self.marker.exists():
            self.marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)


def run_cli(*args: str, cwd: Path, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m mwa_lightning ARGS`` in ``cwd`` with the repository importable (``env`` adds variables)."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "mwa_lightning", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def reported_metrics(stdout: str) -> dict[str, float]:
    """The ``name=value`` metrics the command line prints at the end of a run."""
    return {k: float(v) for k, v in re.findall(r"((?:val|test)/[\w/]+)=([-\d.]+)", stdout)}


def tiny_config(tmp_path: Path, **extra) -> Path:
    """A seconds-long run on the synthetic task."""
    config = {
        "experiment": "tiny",
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 2,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 1,
        },
        "data": {
            "class_path": "mwa_lightning.data.SyntheticDataModule",
            "init_args": {"num_train": 96, "num_test": 40, "batch_size": 16},
        },
        "model": {
            "size": "tiny",
            "depth": 1,
            "lr": 3e-3,
            "warmup_epochs": 0.5,
            "mixer": {"class_path": "mwa_lightning.models.MultiscaleWaveletAttention"},
        },
    }
    for key, value in extra.items():
        section, _, name = key.partition(".")
        config[section][name] = value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class SignalAt(Callback):
    """Send this process a signal once, at a given epoch and batch (as a scheduler's warning would arrive)."""

    def __init__(self, epoch: int, batch: int, marker: str, signal_name: str = "SIGUSR1"):
        self.epoch, self.batch, self.marker, self.signal_name = epoch, batch, Path(marker), signal_name

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch and not self.marker.exists():
            self.marker.write_text("sent")
            os.kill(os.getpid(), getattr(signal, self.signal_name))


class SignalAtSetup(SignalAt):
    """Send the signal once, while the trainer sets up: after start-up, before training starts."""

    def __init__(self, marker: str, signal_name: str = "SIGUSR1"):
        super().__init__(-1, -1, marker, signal_name)

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        if not self.marker.exists():
            self.marker.write_text("sent")
            os.kill(os.getpid(), getattr(signal, self.signal_name))


class PoisonOnRank(Callback):
    """Fill the classifier head with NaN on one process only, at a given batch of the first epoch."""

    def __init__(self, rank: int, batch: int):
        self.rank, self.batch = rank, batch

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_rank == self.rank and trainer.current_epoch == 0 and batch_idx == self.batch:
            with torch.no_grad():
                pl_module.net.head.weight.fill_(float("nan"))


class CountValidated(Callback):
    """Print how many validation images all processes together evaluated: ``VALIDATED <n>`` (rank 0)."""

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module) -> None:
        self.seen = 0

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.seen += batch[1].shape[0]

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        total = trainer.strategy.reduce(torch.tensor(float(self.seen)), reduce_op="sum")
        if trainer.is_global_zero:
            print(f"VALIDATED {int(total)}")


class TrainIndices(Callback):
    """Print how many distinct training indices the processes' samplers hand out this epoch, of how many:
    ``TRAIN INDICES <distinct> distinct of <total>`` (rank 0)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module) -> None:
        indices = torch.tensor(list(iter(trainer.train_dataloader.sampler)))
        gathered = trainer.strategy.all_gather(indices).flatten()
        if trainer.is_global_zero:
            print(f"TRAIN INDICES {len(set(gathered.tolist()))} distinct of {len(gathered)}")


def instantiate(*args: str) -> MWACLI:
    """Parse and instantiate the command line (no run)."""
    return main(list(args), run=False)


def resolved(*args: str) -> dict:
    """The config the command line would run, as a dict (``--print_config``)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["fit", *args, "--print_config"])
    return yaml.safe_load(out.getvalue())


def tiny_fit(workdir, experiment, seed, *extra):
    """A seconds-long ``fit`` of the tiny config in this process, into ``logs/<experiment>/version_N/``."""
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


PLAIN = Augment(crop_padding=0, randaugment_ops=0, mixup_alpha=0.0, cutmix_alpha=0.0)


def tiny_data(**kwargs):
    """64 training and 32 test images of the synthetic task, batches of 16."""
    return SyntheticDataModule(num_train=64, num_test=32, batch_size=16, **kwargs)


def tiny_trainer(tmp_path, **kwargs):
    """A quiet one-process CPU trainer without logger."""
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    return Trainer(**{**defaults, **kwargs})


class WaitForWarningOnFirstAttempt(Callback):
    """Inside a SLURM job, on its first attempt only (``SLURM_RESTART_COUNT`` unset or 0), at the end of a given
    epoch's given step: write the file ``MWA_TEST_READY_FILE`` names (if set), then wait until the warning has reached
    the run's :class:`~mwa_lightning.training.requeue.RequeueOnSignal` (at most ``MWA_TEST_WAIT_S`` seconds, 600 by
    default). Whoever sends the warning -- a test, once the file exists, or SLURM's own ``--signal`` timer, whenever
    it fires -- the run then stops at that step, mid-epoch, however fast or loaded the machine: no timing. It
    touches no random state and no weight; the requeued attempt runs through."""

    def __init__(self, epoch: int = 0, batch: int = 0):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if "SLURM_JOB_ID" not in os.environ or os.environ.get("SLURM_RESTART_COUNT", "0") != "0":
            return  # outside SLURM (the uninterrupted twin run) and on a requeued attempt: straight through
        if (trainer.current_epoch, batch_idx) != (self.epoch, self.batch):
            return
        from mwa_lightning.training.requeue import RequeueOnSignal

        requeue = next(c for c in trainer.callbacks if isinstance(c, RequeueOnSignal))
        if ready := os.environ.get("MWA_TEST_READY_FILE"):
            Path(ready).write_text(f"epoch {self.epoch}, step {self.batch}: waiting for the warning\n")
        deadline = time.monotonic() + float(os.environ.get("MWA_TEST_WAIT_S", "600"))
        while not requeue.received and time.monotonic() < deadline:
            time.sleep(0.2)
