"""Helpers for tests that run the command line in subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]


class KillAt(Callback):
    """SIGKILL this process once, at a given epoch and batch; a marker file makes it one-shot."""

    def __init__(self, epoch: int, batch: int, marker: str):
        self.epoch, self.batch, self.marker = epoch, batch, Path(marker)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch and not self.marker.exists():
            self.marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)


def run_cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m mwa_lightning ARGS`` in ``cwd`` with the repository importable."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
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
