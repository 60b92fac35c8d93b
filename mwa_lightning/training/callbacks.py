"""Callbacks the command line adds to every run: the last checkpoint, and the batch size for throughput.

The per-epoch reseeding callback lives with the rest of the random-number handling, in
:mod:`mwa_lightning.training.rng`.
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, ModelSummary


def samples_in_batch(batch: Any) -> int:
    """Samples in a ``(images, targets)`` batch (for ``ThroughputMonitor``)."""
    return batch[0].size(0)


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


class ModelSummaryWithFlops(ModelSummary):
    """Lightning's model summary, whose "Total Flops" line gives the module's own count (forward FLOPs of one
    image, ``flops_per_sample["eval"]``: :mod:`mwa_lightning.training.flops`, which sees the FFTs) instead of the 0
    Lightning prints for a module without an ``example_input_array`` (and without its all-zero FLOPs column). The
    command line turns the trainer's default summary into this one (:meth:`promote`), so that no option is added to
    a run's config."""

    flops = 0  # the model's own count, set at fit start (a class attribute: promote() makes no new instance)

    @classmethod
    def promote(cls, trainer: L.Trainer) -> None:
        """Make the trainer's plain ModelSummary (the default one, or one a config added) this class; its settings
        (``max_depth``) are kept."""
        for callback in trainer.callbacks:
            if type(callback) is ModelSummary:
                callback.__class__ = cls

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.flops = getattr(pl_module, "flops_per_sample", {}).get("eval", 0)
        super().on_fit_start(trainer, pl_module)

    def summarize(self, summary_data: list, *args: Any, total_flops: int, **kwargs: Any) -> None:  # type: ignore[override]
        # Lightning's per-layer FLOPs column is all zeros without an example input: left out rather than shown
        zeros = [name for name, values in summary_data if name == "FLOPs" and {str(v).strip() for v in values} == {"0"}]
        columns = [(name, values) for name, values in summary_data if name not in zeros]
        super().summarize(columns, *args, total_flops=self.flops or total_flops, **kwargs)


def last_checkpoint_target(trainer: L.Trainer) -> str | None:
    """Where the run's ``last.ckpt`` lives (written or not yet), or None without a :class:`LastCheckpoint`."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, LastCheckpoint) and callback.dirpath is not None:
            return os.path.join(callback.dirpath, f"{callback.filename}{callback.FILE_EXTENSION}")
    return None


def last_checkpoint_written(trainer: L.Trainer) -> str:
    """The run's latest ``last.ckpt`` written so far, or "" when none is."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, LastCheckpoint) and callback.best_model_path:
            return callback.best_model_path
    return next((cb.last_model_path for cb in trainer.checkpoint_callbacks if cb.last_model_path), "")
