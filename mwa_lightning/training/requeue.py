"""Requeue on the scheduler's warning signal, and resume exactly where the run stopped.

A SLURM job is given a warning signal before its time limit or a preemption (``#SBATCH --signal=USR1@180``, the
launcher's default). :class:`RequeueOnSignal` catches it and, at the next step boundary on every process together,
writes a consistent ``last.ckpt`` (weights, optimizer, schedule, loop progress, the data order's position within the
epoch and the random-number states), asks SLURM to requeue the job (``scontrol requeue``, the array task when there
is one), and leaves with :class:`RequeuedError`. The requeued job runs the same command; the command line resumes
the fixed run folder from its ``last.ckpt`` (``--run``), in the middle of the epoch, and the run ends with the
weights an uninterrupted one would have. A signal agreed on at the epoch's last step lets the epoch end as usual
(validation, and :class:`~mwa_lightning.training.callbacks.LastCheckpoint`'s ``last.ckpt``) and stops at the start
of the next one: a checkpoint written in between would resume into an epoch with no batches left and skip its
validation.

Why not Lightning's own ``SLURMEnvironment(auto_requeue=True)``: its handler writes the checkpoint inside the
signal handler, wherever the main thread happens to be -- possibly between the parameter groups of an
optimizer step, or before the learning-rate scheduler's step -- so what it saves cannot be resumed exactly.
Lightning's SLURM environment (ranks, nodes, the array task ids) is used as it is, with ``auto_requeue:
false`` (``configs/overlays/slurm.yaml``); the requeue command is Lightning's.
"""

from __future__ import annotations

import os
import signal
import subprocess
from types import FrameType

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from mwa_lightning import early_signal
from mwa_lightning.lightning_compat import at_last_batch
from mwa_lightning.training.callbacks import last_checkpoint_target
from mwa_lightning.training.runs import CHECKPOINTS, LAST_CKPT

REQUEUED_EXIT_CODE = 3  # the command line's exit status after stopping on the signal


class RequeuedError(RuntimeError):
    """Training stopped on the scheduler's warning signal after writing a checkpoint to resume from."""


def slurm_job_id() -> str | None:
    """The job to requeue: ``<array job>_<task>`` for an array task, else the job id; None outside SLURM."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_job is not None:
        return f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


class RequeueOnSignal(Callback):
    """On ``signal`` (default SIGUSR1), checkpoint at the next step boundary, requeue the job and stop.

    Args:
        signal_name: the warning signal, e.g. "SIGUSR1" (SLURM's ``--signal=USR1@<seconds>``).
        check_every_n_steps: how often the processes agree on whether a signal arrived (one tiny all-reduce);
            1 under a single process costs nothing.
        requeue: run ``scontrol requeue`` when inside a SLURM job.
    """

    def __init__(
        self, signal_name: str = early_signal.WARNING_SIGNAL, check_every_n_steps: int = 1, requeue: bool = True
    ):
        self.signal_name = signal_name
        self.check_every_n_steps = max(1, check_every_n_steps)
        self.requeue = requeue
        self.received = False
        self._at_epoch_end = False  # agreed on at an epoch's last step: stop once the epoch has ended
        self._previous = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.received = True  # acted on at the next step boundary, never inside the handler

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        signum = getattr(signal, self.signal_name)
        self._previous = signal.signal(signum, self._handler)
        if early_signal.take(self.signal_name):  # arrived during start-up (checked after ours is installed)
            rank_zero_info(f"{self.signal_name} arrived before training started: stopping at the first step")
            self.received = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(getattr(signal, self.signal_name), self._previous)
            self._previous = None

    def _agreed(self, trainer: L.Trainer) -> bool:
        """Whether any process received the signal (all processes call this at the same steps)."""
        if trainer.world_size == 1:
            return self.received
        flag = torch.tensor(float(self.received), device=trainer.strategy.root_device)
        return bool(trainer.strategy.reduce(flag, reduce_op="sum") > 0)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        last_step = at_last_batch(trainer)
        if self._at_epoch_end or ((batch_idx + 1) % self.check_every_n_steps and not last_step):
            return
        if not self._agreed(trainer):
            return
        last = last_checkpoint_target(trainer)
        path = last or os.path.join(trainer.log_dir or ".", CHECKPOINTS, LAST_CKPT)
        if last_step and last is not None:
            self._at_epoch_end = True  # the epoch ends as usual and writes last.ckpt; stop when the next one starts
            rank_zero_info(f"{self.signal_name} at the last step of epoch {trainer.current_epoch}: stopping after it")
            return
        trainer.save_checkpoint(path)  # every process takes part; rank 0 writes
        self._stop(trainer, path)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._at_epoch_end:  # the previous epoch's end wrote last.ckpt
            self._stop(trainer, last_checkpoint_target(trainer))

    def _stop(self, trainer: L.Trainer, path: str | None) -> None:
        job = slurm_job_id()
        if trainer.is_global_zero and self.requeue and job is not None:
            result = subprocess.run(["scontrol", "requeue", job], check=False, capture_output=True, text=True)
            if result.returncode:
                rank_zero_warn(f"scontrol requeue {job} failed ({result.returncode}): {result.stderr.strip()}")
            else:
                rank_zero_info(f"requeued SLURM job {job}")
        raise RequeuedError(
            f"stopped on {self.signal_name} at epoch {trainer.current_epoch}, step {trainer.global_step}; "
            f"checkpoint {path}. Run the same command again to resume (a requeued SLURM job does)."
        )
