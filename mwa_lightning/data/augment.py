"""The training augmentation recipe, on two execution paths.

The recipe (the reference training code, NVlabs/AFNO-transformer's ``classification/datasets.py``, timm's
``create_transform``, which the MWA paper's settings match): at 32 px a random crop with zero padding (4 px);
above 32 px a RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3, bicubic), with evaluation on Resize(size / 0.875)
+ CenterCrop(size); horizontal flip; RandAugment (2 ops, magnitude 9 of 10 with Gaussian magnitude noise of
std 0.5: timm's ``rand-m9-mstd0.5-inc1``); MixUp (alpha 0.8) or CutMix (alpha 1.0) chosen per batch with a
switch probability (soft targets); optional random erasing. Every part is a field of :class:`Augment` and
switches off on its own.

RandAugment comes in two implementations (``randaugment_impl``): timm's own (the reference's, per PIL image,
worker path only) and torchvision's (tensors, batched, both paths) put on timm's magnitude scale by
:class:`ScaledRandAugment`. They agree on the magnitude scale (m / 10 of each operation's maximum), the
maxima (rotate 30 deg, shear 0.3, translate 45 % of the side, enhance factors 1 +- 0.9), the magnitude noise,
a random sign per signed operation and the increasing severity of every operation; they differ in the
operation set (timm's ``inc1`` set has Invert and SolarizeAdd and no Identity; torchvision's has Identity and
neither), in posterize's strength (at m = 9 timm keeps 1 bit, torchvision 4) and, on the device path, in that
one draw of operations and magnitude serves a group of ``group_size`` samples rather than one image.

The operations are torchvision's (``transforms.v2``) and timm's; what neither has in batched form -- a crop
offset, a resized crop and a flip drawn per sample across a batch -- is :func:`random_crop`,
:func:`random_resized_crop` (its resampling is torchvision's ``roi_align``) and :func:`random_hflip`.

- Worker path (:func:`image_transform` + :class:`MixCollate`): per image in DataLoader workers; MixUp/CutMix
  in the collate function.
- Device path (:class:`BatchAugment`): on whole uint8 batches after transfer to the training device. Crop
  offsets and flips are drawn per sample. RandAugment (and random erasing) are drawn per *group* of
  ``group_size`` consecutive samples: each group gets its own operations and magnitudes (torchvision applies
  one draw to a whole tensor); ``group_size=1`` is per sample, at a higher cost. MixUp/CutMix draw one lambda
  per batch, as torchvision and timm do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import default_collate
from torchvision.ops import roi_align
from torchvision.transforms import InterpolationMode, v2

from mwa_lightning.choices import check_choices

# timm's defaults (timm.data.constants / transforms_factory), the reference's
CROP_PCT = 0.875  # evaluation: Resize(size / CROP_PCT) + CenterCrop(size)
RRC_RATIO = (3 / 4, 4 / 3)
RA_MAX_LEVEL = 10  # timm's RandAugment magnitude scale: m of 10
RA_STEPS = 10  # torchvision bins per magnitude level (so a noisy magnitude is kept to 0.1)

Targets = Tensor  # int64 class indices (B,) or soft targets (B, num_classes)


@dataclass
class Augment:
    """Training augmentation settings; each part switches off on its own.

    Args:
        crop: "auto" (the reference's rule: "pad" at 32 px and below, "resized" above), "pad" (random crop with
            zero padding), "resized" (RandomResizedCrop, bicubic) or "none".
        crop_padding: zero padding of the "pad" crop; None scales 4 px per 32 px of image side; 0 turns it off.
        resized_crop_scale: area range of the "resized" crop.
        hflip: random horizontal flip.
        randaugment_ops: RandAugment's n (operations per image); 0 turns RandAugment off.
        randaugment_magnitude: RandAugment's m, on timm's scale of 10 (9: 90 % of each operation's maximum).
        randaugment_magnitude_std: Gaussian noise on the magnitude, drawn per application (timm's mstd).
        randaugment_impl: "torchvision" (batched, both paths) or "timm" (timm's own ``rand-m{m}-n{n}-mstd{std}
            -inc1``, per PIL image: worker path only).
        mixup_alpha: MixUp's alpha; 0 turns MixUp off.
        cutmix_alpha: CutMix's alpha; 0 turns CutMix off.
        switch_prob: probability of CutMix rather than MixUp when both are on.
        mix_prob: probability that a batch is mixed at all.
        erasing_prob: random erasing probability; 0 turns it off.
        group_size: device path: samples that share one RandAugment/erasing draw.
    """

    crop: Literal["auto", "pad", "resized", "none"] = "auto"
    crop_padding: int | None = None
    resized_crop_scale: tuple[float, float] = (0.08, 1.0)
    hflip: bool = True
    randaugment_ops: int = 2
    randaugment_magnitude: float = 9
    randaugment_magnitude_std: float = 0.5
    randaugment_impl: Literal["torchvision", "timm"] = "torchvision"
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
        check_choices(Augment, prefix="augment.", crop=self.crop, randaugment_impl=self.randaugment_impl)
        if not 0 <= self.randaugment_magnitude <= RA_MAX_LEVEL:
            raise ValueError(f"augment.randaugment_magnitude={self.randaugment_magnitude} is not in [0, 10]")
        low, high = self.resized_crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"augment.resized_crop_scale={self.resized_crop_scale}; expected 0 < low <= high <= 1")

    def crop_kind(self, image_size: int) -> str:
        """The crop at this image size: "pad", "resized" or "none"."""
        if self.crop == "auto":
            return "pad" if image_size <= 32 else "resized"
        return self.crop

    def padding(self, image_size: int) -> int:
        """Padding of the "pad" crop in pixels at this image size (0 when another crop is used)."""
        if self.crop_kind(image_size) != "pad":
            return 0
        return round(4 * image_size / 32) if self.crop_padding is None else self.crop_padding

    def randaugment(self, image_size: int, mean: Sequence[float]) -> Callable | None:
        """The RandAugment transform (None when off): timm's (on PIL images) or torchvision's on timm's scale."""
        if not self.randaugment_ops:
            return None
        if self.randaugment_impl == "timm":
            try:
                from timm.data.auto_augment import rand_augment_transform
            except ImportError as e:  # timm is optional: the reference extra
                raise ImportError(
                    "augment.randaugment_impl='timm' needs timm, which is optional: "
                    "pip install 'mwa-lightning[reference]' (or randaugment_impl: torchvision, the batched default)"
                ) from e

            name = f"rand-m{self.randaugment_magnitude:g}-n{self.randaugment_ops}"
            name += f"-mstd{self.randaugment_magnitude_std:g}-inc1"
            hparams = {"translate_const": int(image_size * 0.45), "img_mean": tuple(round(255 * m) for m in mean)}
            # timm clips a noisy magnitude to 10, where its increasing posterize keeps 0 bits, which current Pillow
            # refuses (ValueError): about 2 % of operations at m9 mstd0.5 would crash the loader. Just below 10
            # is the same draw everywhere else.
            hparams["magnitude_max"] = RA_MAX_LEVEL - 0.01
            return v2.Compose([v2.ToPILImage(), rand_augment_transform(name, hparams), v2.PILToTensor()])
        return ScaledRandAugment(self.randaugment_ops, self.randaugment_magnitude, self.randaugment_magnitude_std)

    @property
    def mixes(self) -> bool:
        return self.mix_prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)


def normalize(mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """uint8 -> float32 in [0, 1] -> standardised per channel."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


class ScaledRandAugment(v2.RandAugment):
    """torchvision's RandAugment on timm's magnitude scale, with timm's magnitude noise.

    ``magnitude`` m is on a scale of 10 (m / 10 of each operation's maximum, as timm; torchvision's own
    ``v2.RandAugment(2, 9)`` has 31 bins and applies 9 / 30). Each call draws ``N(m, magnitude_std)``, clipped
    to [0, 10] and kept to 0.1, from torch's generator (reseeded per epoch).
    """

    def __init__(self, num_ops: int, magnitude: float, magnitude_std: float = 0.0):
        super().__init__(num_ops=num_ops, magnitude=0, num_magnitude_bins=RA_MAX_LEVEL * RA_STEPS + 1)
        self.level, self.level_std = float(magnitude), float(magnitude_std)
        self.magnitude = self.bin(self.level)

    @staticmethod
    def bin(level: float) -> int:
        return round(min(max(level, 0.0), RA_MAX_LEVEL) * RA_STEPS)

    def forward(self, *inputs):
        if self.level_std > 0:
            self.magnitude = self.bin(self.level + self.level_std * float(torch.randn(())))
        return super().forward(*inputs)


def eval_transform(image_size: int) -> v2.Compose:
    """The reference's evaluation crop above 32 px: Resize(size / 0.875, bicubic) + CenterCrop(size)."""
    return v2.Compose(
        [
            v2.Resize(math.floor(image_size / CROP_PCT), InterpolationMode.BICUBIC, antialias=True),
            v2.CenterCrop(image_size),
        ]
    )


def image_transform(
    cfg: Augment | None,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    eval_crop: bool = False,
) -> Callable[[Tensor], Tensor]:
    """Per-image pipeline for the worker path (``cfg=None``: evaluation: the center crop when ``eval_crop``, then
    normalisation)."""
    ops: list[Callable] = []
    if cfg is None and eval_crop:
        ops.append(eval_transform(image_size))
    if cfg is not None:
        kind = cfg.crop_kind(image_size)
        if kind == "pad" and (pad := cfg.padding(image_size)):
            ops.append(v2.RandomCrop(image_size, padding=pad))
        elif kind == "resized":
            ops.append(
                v2.RandomResizedCrop(
                    image_size, cfg.resized_crop_scale, RRC_RATIO, InterpolationMode.BICUBIC, antialias=True
                )
            )
        if cfg.hflip:
            ops.append(v2.RandomHorizontalFlip())
        if (randaugment := cfg.randaugment(image_size, mean)) is not None:
            ops.append(randaugment)
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


def resized_crop_boxes(
    n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float], device=None
) -> Tensor:
    """``n`` boxes ``(x1, y1, x2, y2)`` drawn as torchvision's ``RandomResizedCrop.get_params`` draws one: up to
    10 tries of an area fraction in ``scale`` and a log-uniform aspect ratio in ``ratio``, then the whole image
    with its ratio clamped into ``ratio``."""
    area = height * width
    tries = 10
    target = area * torch.empty(n, tries, device=device).uniform_(*scale)
    log_ratio = torch.empty(n, tries, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_ratio)
    w = torch.sqrt(target * aspect).round()
    h = torch.sqrt(target / aspect).round()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1, device=device))
    rows = torch.arange(n, device=device)
    w, h = w[rows, first.clamp(min=0)], h[rows, first.clamp(min=0)]
    # the fallback: the whole image, its aspect ratio clamped into the range
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), height
    else:
        fw, fh = width, height
    fallback = first < 0
    w = torch.where(fallback, torch.full_like(w, fw), w)
    h = torch.where(fallback, torch.full_like(h, fh), h)
    top = (torch.rand(n, device=device) * (height - h + 1)).floor()
    left = (torch.rand(n, device=device) * (width - w + 1)).floor()
    top = torch.where(fallback, ((height - h) / 2).floor(), top)
    left = torch.where(fallback, ((width - w) / 2).floor(), left)
    return torch.stack([left, top, left + w, top + h], 1)


def random_resized_crop(images: Tensor, scale: tuple[float, float], ratio: tuple[float, float] = RRC_RATIO) -> Tensor:
    """Per-sample RandomResizedCrop of uint8 ``(B, C, H, W)`` back to ``(H, W)``: boxes from
    :func:`resized_crop_boxes`, resampled in one batched call of torchvision's ``roi_align`` (bilinear, the
    pixel-centre convention of ``aligned=True``; the reference resamples each crop with bicubic)."""
    B, C, H, W = images.shape
    boxes = resized_crop_boxes(B, H, W, scale, ratio, images.device)
    rois = torch.cat([torch.arange(B, device=images.device, dtype=boxes.dtype)[:, None], boxes], 1)
    out = roi_align(images.float(), rois, (H, W), spatial_scale=1.0, sampling_ratio=1, aligned=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


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
        if cfg.randaugment_ops and cfg.randaugment_impl == "timm":
            raise ValueError(
                "augment.randaugment_impl='timm' runs per PIL image in DataLoader workers: set augment_on: workers, "
                "or randaugment_impl: torchvision for the batched device path"
            )
        self.cfg = cfg
        self.crop = cfg.crop_kind(image_size)
        self.padding = cfg.padding(image_size)
        self.randaugment = cfg.randaugment(image_size, mean)
        self.erasing = v2.RandomErasing(cfg.erasing_prob) if cfg.erasing_prob else None
        self.normalize = normalize(mean, std)
        self.mix = BatchMix(cfg, num_classes)

    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Targets]:
        if images.dtype != torch.uint8:
            raise TypeError(f"batched augmentation expects uint8 images, got {images.dtype}")
        if self.padding:
            images = random_crop(images, self.padding)
        elif self.crop == "resized":
            images = random_resized_crop(images, self.cfg.resized_crop_scale)
        if self.cfg.hflip:
            images = random_hflip(images)
        if self.randaugment is not None:
            images = per_group(self.randaugment, images, self.cfg.group_size)
        images = self.normalize(images)
        if self.erasing is not None:
            images = per_group(self.erasing, images, self.cfg.group_size)
        return self.mix(images, labels)
