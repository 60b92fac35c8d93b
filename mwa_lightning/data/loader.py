"""The training loader's passes: seeded, counted, and resumable in the middle.

:class:`TrainPasses` is the bookkeeping a DataModule checkpoints (how many passes over the training split so
far, and, when a checkpoint is written mid-pass, that pass's seed, epoch and how many of its batches reached the
model); :class:`SeededLoader` is the DataLoader that asks it for each pass. Together they make a run resumed
in the middle of an epoch draw exactly the batches the uninterrupted run drew.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from mwa_lightning.lightning_compat import epoch_for_sampler, in_middle_of_epoch, run_seed, set_sampler_epoch

PassPlan = tuple[int, int, int | None]  # (seed, batches to drop, epoch as Lightning numbers it; None if unknown)


class TrainPasses:
    """The passes over the training split: their seeds, and the position within the current one.

    Args:
        seed: with the pass number, seeds each pass; None takes the run's seed (``seed_everything``).
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self.count = 0  # passes started so far; checkpointed
        self.pass_seed: int | None = None  # the seed of the current pass
        self.consumed = 0  # training batches of the current pass that reached the model
        self.epoch: int | None = None  # the epoch the current pass belongs to (what DDP's sampler shuffles by)
        self._resume: PassPlan | None = None  # a pass to resume, from a checkpoint

    def next_seed(self) -> int:
        """Seed of the next pass: a function of (seed, pass number) alone."""
        seed = int(np.random.SeedSequence([run_seed(self.seed), self.count]).generate_state(1)[0])
        self.count += 1
        return seed

    def next_pass(self, trainer: L.Trainer | None) -> PassPlan:
        """The pass a checkpoint was written in the middle of, once, after a resume; otherwise a new one."""
        if self._resume is not None:
            (self.pass_seed, self.consumed, self.epoch), self._resume = self._resume, None
        else:
            self.pass_seed, self.consumed = self.next_seed(), 0
            # what the fit loop gives the sampler; a resumed pass takes the epoch from the checkpoint, because its
            # iterator is built before the loop's progress is restored
            self.epoch = epoch_for_sampler(trainer) if trainer is not None else None
        return self.pass_seed, self.consumed, self.epoch

    def state_dict(self, trainer: L.Trainer | None) -> dict[str, Any]:
        state: dict[str, Any] = {"train_passes": self.count}
        if in_middle_of_epoch(trainer) and self.consumed:
            state["pass"] = {"seed": self.pass_seed, "consumed": self.consumed, "epoch": self.epoch}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state.get("train_passes", 0))
        middle = state.get("pass")
        if middle:
            epoch = middle.get("epoch")
            self._resume = (int(middle["seed"]), int(middle["consumed"]), None if epoch is None else int(epoch))
        else:
            self._resume = None


class SeededLoader(DataLoader):
    """A DataLoader whose every pass is drawn from a seed its owner hands out, and can start mid-pass.

    ``next_pass()`` returns the pass's seed, how many batches to drop and its epoch (:class:`TrainPasses`). The
    generator, reseeded with it, drives both the shuffling (a ``RandomSampler`` built on it) and the seeds of the
    worker processes, so what a pass draws depends only on that seed; the dropped batches are fetched, so that
    worker processes draw their augmentations as they did the first time.

    Under DDP, Lightning replaces the sampler with its ``DistributedSampler``, which shuffles by (the run's seed,
    the epoch); the pass's epoch is set on it before the iterator is built, because a resumed run builds it before
    Lightning sets the epoch.

    ``state_dict``/``load_state_dict`` make Lightning treat the loader as resumable; they carry nothing, because
    Lightning restores a loader's own state only after it has already built the first iterator of a resumed
    epoch (``estimated_stepping_batches`` in ``configure_optimizers``), while a DataModule's state is restored
    before that.
    """

    def __init__(self, *args: Any, next_pass: Callable[[], PassPlan], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.next_pass = next_pass  # an attribute of the same name: Lightning rebuilds the loader from its attributes

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __iter__(self):
        seed, skip, epoch = self.next_pass()
        if self.generator is not None:
            self.generator.manual_seed(seed)
        if epoch is not None:
            set_sampler_epoch(self, epoch)  # the value Lightning sets later: the resumed pass is the uninterrupted one
        iterator = super().__iter__()
        for _ in range(skip):
            next(iterator)
        return iterator
