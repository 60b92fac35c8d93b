"""Predictions to CSV files: ``predict`` on a folder of new images, and the per-image record of a test.

:class:`TestPredictions` records, whenever the test split is evaluated, each test image's label and predicted
class in the run folder (``test_predictions.csv``): the per-image record that paired comparisons of runs need
(:mod:`mwa_lightning.experiments.stats`).

Prediction on a folder of new images:

::

    mwa-lightning predict --config logs/<experiment>/<run>/config.yaml \\
        --ckpt_path logs/<experiment>/<run>/checkpoints/last.ckpt \\
        --data.init_args.predict_folder my_images/ --prediction_writer.output_file predictions.csv

The run's own config rebuilds the model and the data's normalisation; the training data is not read. Each image
(any size) is resized and centre-cropped to the model's input, then treated like a test image. The CSV has one
row per image: the file, then the ``top_k`` most likely class names with their probabilities. The class names
are those of the DataModule the model was trained with, saved in the checkpoint.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from mwa_lightning.training.runs import TEST_PREDICTIONS, read_test_predictions, write_test_predictions


class CSVPredictionWriter(BasePredictionWriter):
    """Lightning prediction writer: one CSV row per image, its top-k class names and probabilities.

    Args:
        output_file: the CSV file (under DDP each process writes ``<stem>.rank<r><suffix>``).
        top_k: classes per row.
    """

    def __init__(self, output_file: str = "predictions.csv", top_k: int = 5):
        super().__init__(write_interval="batch")
        if top_k < 1:
            raise ValueError(f"top_k={top_k} must be >= 1")
        self.output_file, self.top_k = output_file, top_k
        self._file = None
        self._writer = None
        self._seen = 0

    def _path(self, trainer: L.Trainer) -> Path:
        path = Path(self.output_file)
        return (
            path if trainer.world_size == 1 else path.with_name(f"{path.stem}.rank{trainer.global_rank}{path.suffix}")
        )

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = self._path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", newline="")
        self._writer = csv.writer(self._file)
        k = min(self.top_k, pl_module.hparams.get("num_classes", self.top_k))
        header = ["file"]
        for i in range(1, k + 1):
            header += [f"class_{i}", f"prob_{i}"]
        self._writer.writerow(header)
        self._seen = 0

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        names = pl_module.hparams.get("class_names")
        files = getattr(trainer.datamodule, "predict_files", None) or []
        probs = prediction.float()
        top = probs.topk(min(self.top_k, probs.shape[-1]), dim=-1)
        for row, (p, idx) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True)):
            # a folder: the file; a dataset split: the image's position in it
            cells = [str(files[int(batch[1][row])]) if files else str(self._seen + row)]
            for prob, cls in zip(p, idx, strict=True):
                cells += [names[cls] if names else str(cls), f"{prob:.6f}"]
            self._writer.writerow(cells)
        self._seen += probs.shape[0]

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            rank_zero_info(f"wrote {self._seen} predictions to {self._path(trainer)}")


__all__ = [
    "TEST_PREDICTIONS",
    "CSVPredictionWriter",
    "TestPredictions",
    "read_test_predictions",
    "write_test_predictions",
]


class TestPredictions(Callback):
    """Write ``<run folder>/test_predictions.csv`` after a test: one row per test image, in image order,
    ``index,label,prediction`` (its position in the test split, its label, the predicted class).

    Under DDP every process sends its shard (and the images' indices, from the loader's sampler) to rank 0.

    Args:
        enabled: write the file (nothing is written without a run folder either).
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._rows: list[Tensor] = []
        self._indices: list[int] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows = []
        loader = trainer.test_dataloaders
        loader = loader[0] if isinstance(loader, list | tuple) else loader
        self._indices = list(iter(loader.sampler))

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.enabled and outputs is not None:
            self._rows.append(torch.stack([batch[1].detach().cpu(), outputs.detach().cpu()], 1))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or not self._rows:
            return
        rows = torch.cat(self._rows)
        index = torch.as_tensor(self._indices[: len(rows)])
        shard = torch.cat([index[:, None], rows], 1)
        if trainer.world_size > 1:
            shards: list = [None] * trainer.world_size
            torch.distributed.all_gather_object(shards, shard)
            shard = torch.cat(shards)
        log_dir = trainer.log_dir  # a collective under DDP: every rank asks
        if not trainer.is_global_zero or not log_dir:
            return
        table = shard[shard[:, 0].argsort()]
        path = write_test_predictions(Path(log_dir), table.tolist())
        rank_zero_info(f"wrote {len(table)} test predictions to {path}")
