"""The training augmentation recipe, on two execution paths.

The recipe (the AFNO repository's CIFAR script, which the MWA paper's settings match): random crop with zero
padding (4 px at 32 px, scaled with the image size), horizontal flip, RandAugment (n ops, magnitude m = 9),
MixUp (alpha 0.8) or CutMix (alpha 1.0) chosen per batch with a switch probability (soft targets), and
optional random erasing. Every part is a field of :class:`Augment` and switches off on its own. The
operations are torchvision's (``transforms.v2``); what torchvision has no batched form of -- a crop offset and
a flip drawn per sample across a batch -- is the few lines of :func:`random_crop` and :func:`random_hflip`.

- Worker path (:func:`image_transform` + :class:`MixCollate`): per image in DataLoader workers; MixUp/CutMix
  in the collate function.
- Device path (:class:`BatchAugment`): on whole uint8 batches after transfer to the training device. Crop
  offsets and flips are drawn per sample. RandAugment (and random erasing) are drawn per *group* of
  ``group_size`` consecutive samples: each group gets its own operations and magnitudes (torchvision applies
  one draw to a whole tensor); ``group_size=1`` is per sample, at a higher cost. MixUp/CutMix draw one lambda
  per batch, as torchvision and timm do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import default_collate
from torchvision.transforms import v2

Targets = Tensor  # int64 class indices (B,) or soft targets (B, num_classes)


@dataclass
class Augment:
    """Training augmentation settings; each part switches off on its own.

    Args:
        crop_padding: zero padding of the random crop; None scales 4 px per 32 px of image side; 0 turns it off.
        hflip: random horizontal flip.
        randaugment_ops: RandAugment's n (operations per image); 0 turns RandAugment off.
        randaugment_magnitude: RandAugment's m.
        mixup_alpha: MixUp's alpha; 0 turns MixUp off.
        cutmix_alpha: CutMix's alpha; 0 turns CutMix off.
        switch_prob: probability of CutMix rather than MixUp when both are on.
        mix_prob: probability that a batch is mixed at all.
        erasing_prob: random erasing probability; 0 turns it off.
        group_size: device path: samples that share one RandAugment/erasing draw.
    """

    crop_padding: int | None = None
    hflip: bool = True
    randaugment_ops: int = 2
    randaugment_magnitude: int = 9
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    switch_prob: float = 0.5
    mix_prob: float = 1.0
    erasing_prob: float = 0.0
    group_size: int = 16

    def __post_init__(self) -> None:
        for name in ("switch_prob", "mix_prob", "erasing_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"augment.{name}={value} is not a probability in [0, 1]")
        if self.group_size < 1:
            raise ValueError(f"augment.group_size={self.group_size} must be >= 1")

    def padding(self, image_size: int) -> int:
        """Crop padding in pixels at this image size."""
        return round(4 * image_size / 32) if self.crop_padding is None else self.crop_padding

    @property
    def mixes(self) -> bool:
        return self.mix_prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)


def normalize(mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """uint8 -> float32 in [0, 1] -> standardised per channel."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


def image_transform(
    cfg: Augment | None, image_size: int, mean: Sequence[float], std: Sequence[float]
) -> Callable[[Tensor], Tensor]:
    """Per-image pipeline for the worker path (``cfg=None``: evaluation, normalisation only)."""
    ops: list[Callable] = []
    if cfg is not None:
        if pad := cfg.padding(image_size):
            ops.append(v2.RandomCrop(image_size, padding=pad))
        if cfg.hflip:
            ops.append(v2.RandomHorizontalFlip())
        if cfg.randaugment_ops:
            ops.append(v2.RandAugment(cfg.randaugment_ops, cfg.randaugment_magnitude))
    ops.append(normalize(mean, std))
    if cfg is not None and cfg.erasing_prob:
        ops.append(v2.RandomErasing(cfg.erasing_prob))
    return v2.Compose(ops)


class BatchMix:
    """MixUp or CutMix on a batch (torchvision), returning soft targets ``(B, num_classes)``.

    With mixing off entirely, labels pass through as class indices.
    """

    def __init__(self, cfg: Augment, num_classes: int):
        self.num_classes, self.mix_prob = num_classes, cfg.mix_prob
        choices, weights = [], []
        if cfg.mixup_alpha > 0:
            choices.append(v2.MixUp(alpha=cfg.mixup_alpha, num_classes=num_classes))
            weights.append(1.0 - cfg.switch_prob if cfg.cutmix_alpha > 0 else 1.0)
        if cfg.cutmix_alpha > 0:
            choices.append(v2.CutMix(alpha=cfg.cutmix_alpha, num_classes=num_classes))
            weights.append(cfg.switch_prob if cfg.mixup_alpha > 0 else 1.0)
        self.mix = v2.RandomChoice(choices, p=weights) if cfg.mixes else None

    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Targets]:
        if self.mix is None:
            return images, labels
        if self.mix_prob < 1.0 and torch.rand(()) >= self.mix_prob:
            return images, F.one_hot(labels, self.num_classes).to(images.dtype)
        return self.mix(images, labels)


class MixCollate:
    """Worker path collate function: default collation, then MixUp/CutMix (picklable for workers)."""

    def __init__(self, mix: BatchMix):
        self.mix = mix

    def __call__(self, samples: list[tuple[Tensor, int]]) -> tuple[Tensor, Targets]:
        images, labels = default_collate(samples)
        return self.mix(images, labels)


def random_crop(images: Tensor, padding: int) -> Tensor:
    """Per-sample random crop of ``(B, C, H, W)`` from its zero-padded copy, same size out."""
    B, C, H, W = images.shape
    n = 2 * padding + 1  # offsets per axis
    top = torch.randint(0, n, (B,), device=images.device)
    left = torch.randint(0, n, (B,), device=images.device)
    windows = F.pad(images, (padding,) * 4).unfold(2, H, 1).unfold(3, W, 1)  # view (B, C, n, n, H, W)
    return windows.permute(0, 2, 3, 1, 4, 5)[torch.arange(B, device=images.device), top, left]  # (B, C, H, W)


def random_hflip(images: Tensor, p: float = 0.5) -> Tensor:
    """Flip each sample of ``(B, C, H, W)`` left-right with probability p."""
    flip = torch.rand(images.shape[0], device=images.device) < p
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def per_group(transform: Callable[[Tensor], Tensor], images: Tensor, group_size: int) -> Tensor:
    """Apply ``transform`` to consecutive groups of ``group_size`` samples, one random draw per group."""
    if group_size >= images.shape[0]:
        return transform(images)
    return torch.cat([transform(chunk) for chunk in images.split(group_size)])


class BatchAugment:
    """Device path: the recipe on a uint8 batch ``(B, C, H, W)``, on whatever device the batch is on.

    Returns normalised float32 images and targets (soft when MixUp/CutMix is on).
    """

    def __init__(self, cfg: Augment, image_size: int, mean: Sequence[float], std: Sequence[float], num_classes: int):
        self.cfg = cfg
        self.padding = cfg.padding(image_size)
        self.randaugment = (
            v2.RandAugment(cfg.randaugment_ops, cfg.randaugment_magnitude) if cfg.randaugment_ops else None
        )
        self.erasing = v2.RandomErasing(cfg.erasing_prob) if cfg.erasing_prob else None
        self.normalize = normalize(mean, std)
        self.mix = BatchMix(cfg, num_classes)

    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Targets]:
        if images.dtype != torch.uint8:
            raise TypeError(f"batched augmentation expects uint8 images, got {images.dtype}")
        if self.padding:
            images = random_crop(images, self.padding)
        if self.cfg.hflip:
            images = random_hflip(images)
        if self.randaugment is not None:
            images = per_group(self.randaugment, images, self.cfg.group_size)
        images = self.normalize(images)
        if self.erasing is not None:
            images = per_group(self.erasing, images, self.cfg.group_size)
        return self.mix(images, labels)
