"""Callbacks the command line adds to every run."""

from __future__ import annotations

import os
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


def batch_size(batch: Any) -> int:
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
        base = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        state = np.random.SeedSequence([base, trainer.current_epoch, trainer.global_rank]).generate_state(1)[0]
        random.seed(int(state))
        np.random.seed(int(state))
        torch.manual_seed(int(state))
