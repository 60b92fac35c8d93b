"""Random numbers of a run: one seed drives model initialisation, data order and augmentation.

``seed_everything`` (the command line's ``--seed_everything``, default 0) seeds the process and records the
seed in the ``PL_GLOBAL_SEED`` environment variable; every component that reseeds itself later -- the
per-epoch reseeding callback, the training loader's per-pass shuffling -- takes its seed from there unless
given one explicitly.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from mwa_lightning.lightning_compat import restarted_mid_epoch, run_seed


class EpochSeed(Callback):
    """Reseed Python, NumPy and torch (all devices) at the start of every training epoch from
    (seed, epoch, global rank), and carry the random-number states through a checkpoint written mid-epoch.

    What an epoch draws -- data order, augmentation, dropout, stochastic depth -- then depends on nothing but
    those three numbers and the weights, so a run resumed from the checkpoint of a finished epoch repeats
    the uninterrupted run exactly; each DDP rank draws its own augmentations. A checkpoint also holds the
    generators' states at the moment it was written; a single-process run resumed in the middle of an epoch
    (:mod:`mwa_lightning.training.requeue`) restores them instead of reseeding, and goes on drawing what the
    uninterrupted run drew. Under DDP every process's states are gathered into the checkpoint and each process
    takes its own back when the run resumes with the same number of processes; with another number, every
    process reseeds from (seed, epoch, rank, step) and the rest of that epoch differs from an uninterrupted run's.

    Args:
        seed: base seed; None takes the run's ``seed_everything`` value (``PL_GLOBAL_SEED``).
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._saved: list[dict[str, Any]] | None = None  # each process's states from a checkpoint, by rank

    @staticmethod
    def _seed_all(*entropy: int) -> None:
        state = int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])
        random.seed(state)
        np.random.seed(state)
        torch.manual_seed(state)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a run resumed in the middle of an epoch gets no on_train_epoch_start for that epoch
        saved, self._saved = self._saved, None
        if not restarted_mid_epoch(trainer):
            return
        if saved is not None and len(saved) == trainer.world_size:
            set_rng_states(saved[trainer.global_rank])
        else:
            self._seed_all(run_seed(self.seed), trainer.current_epoch, trainer.global_rank, trainer.global_step)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._seed_all(run_seed(self.seed), trainer.current_epoch, trainer.global_rank)

    def state_dict(self) -> dict[str, Any]:
        # every process builds the checkpoint (Trainer.save_checkpoint); rank 0 writes it, so gather
        states = get_rng_states()
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return {"rng_by_rank": [states]}
        by_rank: list[dict[str, Any] | None] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(by_rank, states)
        return {"rng_by_rank": by_rank}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._saved = state_dict.get("rng_by_rank")


def get_rng_states() -> dict[str, Any]:
    """Python's, NumPy's and torch's (CPU and every CUDA device) generator states, as tensors and plain
    Python values (so that checkpoints load with ``torch.load(..., weights_only=True)``)."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, list(state), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_states`."""
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
