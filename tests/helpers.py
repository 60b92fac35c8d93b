"""Helpers for tests that run the command line in subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
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
