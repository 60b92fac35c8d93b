"""Classifier: the LightningModule that trains a :class:`~mwa_lightning.models.VisionTransformer`.

The recipe is the MWA paper's (its settings match the AFNO repository's CIFAR script): AdamW with lr 5e-4 and
weight decay 0.05, a per-step linear warm-up over 5 epochs then cosine decay to 1e-5, label smoothing 0.1 on
targets that may be MixUp/CutMix soft labels, gradient clipping at 1.0 (a Trainer setting in the configs).

Weight decay: none on norms, biases (any 1-d parameter) and the position embedding, nor on what a module
lists in ``no_weight_decay()`` (AFNO's complex biases b1/b2). The spectral and wavelet filter weights --
GFNet's complex filter, AFNO's block MLP weights, MWA's convolution kernels -- are decayed like any weight
matrix, as GFNet's and AFNO's own training code does (timm's rule: parameters of 2 or more dimensions).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mwa_lightning.lightning_compat import is_compiled
from mwa_lightning.models import SequenceTransformer, VisionTransformer
from mwa_lightning.models.mixers.registry import mixer_spec
from mwa_lightning.training.callbacks import last_checkpoint_written
from mwa_lightning.training.flops import model_flops
from mwa_lightning.training.metric_names import (
    ACC,
    ACC_TOP5,
    FLOPS,
    LOSS,
    LR,
    LR_GROUPS,
    LR_PEAK,
    PARAMS,
    TRAIN_LOSS,
    VAL_ACC_BEST,
    metric,
)

NORMALIZATION = "normalization"  # the checkpoint's key for the inputs' mean and std (read by training/export.py)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay for weights of 2+ dims, none for 1-d parameters and ``no_weight_decay()`` names."""
    skip: set[str] = set()
    for prefix, module in model.named_modules():
        if hasattr(module, "no_weight_decay"):
            skip |= {f"{prefix}.{n}" if prefix else n for n in module.no_weight_decay()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name in skip else decay).append(p)
    with_decay, without = LR_GROUPS  # named, so that LearningRateMonitor logs lr/decay and lr/no_decay
    return [
        {"name": with_decay, "params": decay, "weight_decay": weight_decay},
        {"name": without, "params": no_decay, "weight_decay": 0.0},
    ]


class Classifier(L.LightningModule):
    """A ViT classifier of images or sequences, with the paper's optimisation recipe.

    Args:
        num_classes: classes; linked from the DataModule by the command line.
        image_size: input side in pixels; linked from the DataModule by the command line (None for sequences).
        seq_len: a sequence DataModule's length in steps (linked; None for images): the backbone is then a
            :class:`~mwa_lightning.models.sequence.SequenceTransformer`, with the same mixers and options.
        in_chans: input channels (linked from the DataModule: 3 for RGB images, 1 for a univariate sequence).
        lr: peak AdamW learning rate; with ``lr_base_batch`` set, the rate for a global batch of that size.
        weight_decay: AdamW weight decay (see the module docstring for what is exempt).
        betas: AdamW betas.
        warmup_epochs: linear warm-up length, stepped per batch.
        min_lr: learning rate at the end of the cosine decay (absolute, not scaled).
        lr_base_batch: the reference's linear scaling rule: the peak rate is
            ``lr * global_batch / lr_base_batch`` with global batch = per-device batch x devices x nodes x
            gradient accumulation (NVlabs/AFNO-transformer and DeiT: ``lr * batch_size * world_size / 512``).
            None: ``lr`` is used as it is.
        warmup_lr: learning rate at the first step of the warm-up (absolute; the reference: 1e-6); None starts
            at ``1e-3`` of the peak rate.
        label_smoothing: label smoothing of the cross-entropy (also applied to soft targets).
        compile: ``torch.compile`` the backbone.
        class_names: names of the classes in label order; taken from the DataModule when training starts and
            saved in checkpoints, so that predictions name classes.
        **backbone: keyword arguments of :class:`~mwa_lightning.models.VisionTransformer`: ``mixer`` (the
            token mixer's class or class path with init args), ``size``, ``depth``, ``embed_dim``,
            ``patch_size``, ``drop_path_rate``, ...
    """

    def __init__(
        self,
        num_classes: int = 10,
        image_size: int | None = 32,
        seq_len: int | None = None,
        in_chans: int = 3,
        lr: float = 5e-4,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_epochs: float = 5.0,
        min_lr: float = 1e-5,
        lr_base_batch: int | None = None,
        warmup_lr: float | None = None,
        label_smoothing: float = 0.1,
        compile: bool = False,
        class_names: list[str] | None = None,
        **backbone: Any,
    ):
        super().__init__()
        if lr_base_batch is not None and lr_base_batch < 1:
            raise ValueError(f"lr_base_batch={lr_base_batch} must be a positive batch size (or None)")
        self.save_hyperparameters()
        if "mixer" in self.hparams:  # plain data in the hyper-parameters, so checkpoints load with weights_only
            self.hparams.mixer = mixer_spec(self.hparams.mixer)
        if seq_len is not None:
            self.net = SequenceTransformer(num_classes=num_classes, seq_len=seq_len, in_chans=in_chans, **backbone)
        else:
            self.net = VisionTransformer(num_classes=num_classes, image_size=image_size, in_chans=in_chans, **backbone)
        self.train_loss = MeanMetric()
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_top5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
        self.test_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.test_top5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives a resume
        self.normalization: dict[str, list[float]] | None = None  # the DataModule's mean and std, once fit starts

    LINKED = ("num_classes", "image_size", "seq_len", "in_chans")  # the DataModule's, linked by the command line

    @staticmethod
    def backbone_defaults(sequence: bool) -> dict[str, Any]:
        """The backbone's options with their defaults, as the backbone it builds states them (the
        :class:`~mwa_lightning.models.SequenceTransformer` for a sequence DataModule, else the
        :class:`~mwa_lightning.models.VisionTransformer`), the linked ones and the mixer aside: what a run folder
        records so that the run is rebuilt from its ``config.yaml`` alone, whatever the code's defaults become."""
        from mwa_lightning.models.vit import trunk_defaults

        backbone = SequenceTransformer if sequence else VisionTransformer
        parameters = inspect.signature(backbone.__init__).parameters.values()
        own = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
        defaults = {**trunk_defaults(), **own} if sequence else own
        return {k: v for k, v in defaults.items() if k not in (*Classifier.LINKED, "mixer")}

    def setup(self, stage: str) -> None:
        # FLOPs per image, forward (evaluation) and forward + backward (training), for ThroughputMonitor
        self.flops_per_sample = {"eval": model_flops(self.net)}
        if stage == "fit":
            self.flops_per_sample["train"] = model_flops(self.net, backward=True)

    def on_fit_start(self) -> None:
        """Record the class names, and the model's size, cost and effective peak learning rate once per run."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.hparams.get("class_names") is None and datamodule is not None:
            with contextlib.suppress(AttributeError, RuntimeError):  # no names, or data not on disk (DataError)
                self.hparams.class_names = list(datamodule.class_names)
        if self.normalization is None and hasattr(datamodule, "mean"):
            # the inputs' normalisation, saved in checkpoints so that an exported model carries its preprocessing
            # (training/export.py); not a hyper-parameter: the model is built without it
            self.normalization = {"mean": list(datamodule.mean), "std": list(datamodule.std)}
        if self.logger is not None:
            flops = self.flops_per_sample["eval"]
            sizes = {PARAMS: float(self.net.num_params()), FLOPS: float(flops), LR_PEAK: self.peak_lr()}
            self.logger.log_metrics(sizes, 0)

    def global_batch_size(self) -> int:
        """Images per optimizer step: per-device batch x processes (devices x nodes) x gradient accumulation."""
        trainer = self.trainer
        per_device = getattr(trainer.datamodule, "batch_size", None)
        if per_device is None:
            loader = trainer.train_dataloader
            per_device = getattr(loader, "batch_size", None)
        if per_device is None:
            raise ValueError("lr_base_batch needs the per-device batch size: use a DataModule with batch_size")
        return int(per_device) * trainer.world_size * trainer.accumulate_grad_batches

    def peak_lr(self) -> float:
        """The learning rate at the end of the warm-up: ``lr``, scaled by the linear rule when it is on."""
        hp = self.hparams
        if hp.get("lr_base_batch") is None:
            return hp.lr
        return hp.lr * self.global_batch_size() / hp.lr_base_batch

    def configure_model(self) -> None:
        if self.hparams.compile and not is_compiled(self.net):
            self.net.compile()

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)

    def _count_flops(self, kind: str, images: Tensor) -> None:
        if kind in getattr(self, "flops_per_sample", {}):
            self.flops_per_batch = self.flops_per_sample[kind] * images.shape[0]

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy with label smoothing; ``targets`` are class indices or (soft) class probabilities."""
        return F.cross_entropy(logits.float(), targets, label_smoothing=self.hparams.label_smoothing)

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, targets = batch
        self._count_flops("train", images)
        loss = self.loss(self(images), targets)
        self._check_finite(loss, batch_idx)
        self.train_loss(loss.detach())
        self.log(TRAIN_LOSS, self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def _check_finite(self, loss: Tensor, batch_idx: int) -> None:
        """Stop on a NaN/inf loss, decided by all processes together (a process that stopped alone would leave
        the others waiting in the gradient all-reduce). Reading the loss waits for the device, so on an
        accelerator it is read only every ``log_every_n_steps`` steps (a non-finite loss poisons the weights and
        stays non-finite); every process checks at the same steps."""
        trainer = self.trainer
        every = 1 if loss.device.type == "cpu" else max(1, trainer.log_every_n_steps)
        if batch_idx % every:
            return
        bad = (~torch.isfinite(loss.detach())).float()
        if trainer.world_size > 1:
            bad = trainer.strategy.reduce(bad, reduce_op="sum")
        if not bad:
            return
        last = last_checkpoint_written(trainer) or "none written yet"
        where = f" on {int(bad)} of {trainer.world_size} processes" if trainer.world_size > 1 else ""
        raise NonFiniteLossError(
            f"training loss is non-finite{where} (here: {loss.item()}) at epoch {self.current_epoch}, step "
            f"{self.global_step} (batch {batch_idx}); stopping without saving. Last good checkpoint: {last}. "
            "Lower model.lr, raise model.warmup_epochs, or check the data."
        )

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        self._count_flops("eval", images)
        logits = self(images)
        top1, top5 = getattr(self, f"{stage}_top1"), getattr(self, f"{stage}_top5")
        top1(logits, labels)
        top5(logits, labels)
        mean_loss = getattr(self, f"{stage}_loss")
        mean_loss(self.loss(logits, labels), weight=labels.shape[0])  # weighted: shards may differ in size
        self.log(metric(stage, LOSS), mean_loss)
        self.log(metric(stage, ACC), top1, prog_bar=True)
        self.log(metric(stage, ACC_TOP5), top5)
        return logits

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_top1.compute())
        self.log(VAL_ACC_BEST, self.val_acc_best.compute(), sync_dist=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Evaluate a test batch; returns the predicted classes (what :class:`TestPredictions` records)."""
        return self._evaluate(batch, "test").argmax(-1)

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        self._count_flops("eval", batch[0])
        return self(batch[0]).softmax(-1)

    # ------------------------------------------------------------------ checkpoints
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Take the class names and the normalisation the checkpoint was trained with (a model built from a config
        has neither)."""
        names = checkpoint.get("hyper_parameters", {}).get("class_names")
        if names is not None:
            self.hparams.class_names = list(names)
        if checkpoint.get(NORMALIZATION) is not None:
            self.normalization = dict(checkpoint[NORMALIZATION])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.normalization is not None:
            checkpoint[NORMALIZATION] = self.normalization
        bad = [n for n, p in self.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise NonFiniteLossError(f"refusing to checkpoint non-finite parameters: {', '.join(bad[:5])}")

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        lr = self.peak_lr()
        if hp.get("lr_base_batch") is not None:
            rank_zero_info(
                f"learning rate: {hp.lr:g} x global batch {self.global_batch_size()} / {hp.lr_base_batch} = {lr:.4g} "
                "(linear scaling rule, model.lr_base_batch)"
            )
        optimizer = torch.optim.AdamW(parameter_groups(self.net, hp.weight_decay), lr=lr, betas=hp.betas)
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError("the cosine schedule needs a length: set trainer.max_epochs or trainer.max_steps")
        total = max(1, int(total))
        epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else None
        warmup = min(round(total * hp.warmup_epochs / epochs) if epochs else 0, total - 1)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=hp.min_lr)
        scheduler = cosine
        if warmup > 0:
            start = 1e-3 if hp.get("warmup_lr") is None else min(1.0, hp.warmup_lr / lr)
            ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=start, total_iters=warmup)
            scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": LR}}


# its first name, from before it also classified sequences: code and notebooks that import it keep working
ImageClassifier = Classifier
