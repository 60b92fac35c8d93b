"""Callbacks the command line adds to every run."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from mwa_lightning.seeding import run_seed


def samples_in_batch(batch: Any) -> int:
    """Samples in a ``(images, targets)`` batch (for ``ThroughputMonitor``)."""
    return batch[0].size(0)


class EpochSeed(Callback):
    """Reseed Python, NumPy and torch (all devices) at the start of every training epoch from
    (seed, epoch, global rank).

    What an epoch draws -- data order, augmentation, dropout, stochastic depth -- then depends on nothing but
    those three numbers and the weights, so a run resumed from the checkpoint of a finished epoch repeats
    the uninterrupted run exactly; each DDP rank draws its own augmentations.

    Args:
        seed: base seed; None takes the run's ``seed_everything`` value (``PL_GLOBAL_SEED``).
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        base = run_seed(self.seed)
        state = np.random.SeedSequence([base, trainer.current_epoch, trainer.global_rank]).generate_state(1)[0]
        random.seed(int(state))
        np.random.seed(int(state))
        torch.manual_seed(int(state))


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt``, rewritten at the end of every epoch: the checkpoint a run resumes from.

    Lightning's own ``ModelCheckpoint(save_last=True)`` refreshes ``last.ckpt`` only when it also saves a top-k
    checkpoint, i.e. when the monitored metric improves (Lightning 2.6), so a run resumed from it could restart
    several epochs back, and a finished run's ``last.ckpt`` need not hold its final weights. This callback has
    no monitor and keeps exactly one file, ``<filename>.ckpt``, overwritten every ``every_n_epochs`` epochs.

    Args:
        dirpath: folder of the checkpoint; None: the run folder's ``checkpoints/``.
        filename: file name without ``.ckpt``.
        every_n_epochs: epochs between saves.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "last", every_n_epochs: int = 1):
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=None,
            save_top_k=1,
            save_last=False,
            every_n_epochs=every_n_epochs,
            enable_version_counter=False,
        )


def last_checkpoint_path(trainer: L.Trainer) -> str:
    """The run's latest ``last.ckpt`` written so far, or "" when none is."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, LastCheckpoint) and callback.best_model_path:
            return callback.best_model_path
    return next((cb.last_model_path for cb in trainer.checkpoint_callbacks if cb.last_model_path), "")
