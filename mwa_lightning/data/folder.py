"""Datasets of image files in class folders: ImageNet-1K (ILSVRC2012) and any ``ImageFolder``-layout dataset.

Layout (the one the AFNO repository documents for ImageNet, and torchvision's ``ImageFolder``)::

    <data_dir>/train/<class>/*.JPEG
    <data_dir>/val/<class>/*.JPEG

Classes are the train folder names, sorted (label = position). Unlike CIFAR and Tiny-ImageNet, the images are
not held in memory: DataLoader workers read each file, decode it and crop it to ``image_size`` (training: a
RandomResizedCrop; evaluation: Resize(size / 0.875) + CenterCrop, so 256 then 224 at 224 px). On the device
path (the default) the uint8 crops go to the GPU, where the flip, RandAugment, MixUp/CutMix and random erasing
run batched; on the worker path everything runs per image in the workers.

Decoding uses Pillow's JPEG draft mode: the decoder scales a large JPEG down by 1/2, 1/4 or 1/8 in the DCT domain
when the crop does not need the full resolution (never below the output size), which is several times cheaper
than decoding every pixel (``mwa-lightning bench --sections decode`` measures it, :mod:`mwa_lightning.bench.decode`).

Two sources (``source``):

- ``folder``: the files as they are. A corrupt or unreadable file stops training with an error naming it;
  ``mwa-lightning prepare <data_dir> <out_dir>`` finds every such file before training (and writes the chunks
  of the next source);
- ``litdata``: the LitData chunks that ``mwa-lightning prepare`` writes (``litdata_dir``):
  streamed, sharded across processes and nodes, shuffled across chunks, resumable; that command skips corrupt
  files, counts them and lists them in ``skipped.txt``.

Bad layouts are refused before training, naming the folder: a class folder in val that train does not have, an
empty class folder, no class folders at all. ImageNet needs a licence, so nothing is downloaded: the error says
where to put the data and in which layout.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

from mwa_lightning.choices import check_choices
from mwa_lightning.data.augment import (
    CROP_PCT,
    RRC_RATIO,
    BatchAugment,
    BatchMix,
    MixCollate,
    image_transform,
    normalize,
)
from mwa_lightning.data.base import ClassificationDataModule, Split
from mwa_lightning.data.errors import DataError, unreadable_image
from mwa_lightning.data.images import image_files, synset_names

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the reference's normalisation (timm's IMAGENET_DEFAULT_MEAN/STD)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLASSES_FILE = "classes.json"  # written by the preprocessing command beside the LitData chunks
BICUBIC = InterpolationMode.BICUBIC


class CropDecode:
    """Decode an image file (a path, or its bytes) into a ``size`` x ``size`` uint8 crop.

    Training: a RandomResizedCrop (area ``scale``, ratio 3/4-4/3, drawn as torchvision draws it; bicubic).
    Evaluation: Resize(size / 0.875) + CenterCrop(size), bicubic. A JPEG is decoded at the lowest DCT scale
    (1, 1/2, 1/4, 1/8; Pillow's ``draft``) that still leaves the crop at least ``size`` pixels across, which is
    where the time goes; the result equals a full decode followed by the resize, up to the resampling of that
    exact power-of-two reduction.
    """

    def __init__(self, size: int, train: bool, scale: tuple[float, float] = (0.08, 1.0)):
        self.size, self.train, self.scale = size, train, tuple(scale)

    def __call__(self, source: Path | bytes, name: str | None = None) -> Tensor:
        try:
            return self._decode(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source)
        except Exception as e:
            raise unreadable_image(name or source, e) from e

    def _decode(self, fp) -> Tensor:
        with Image.open(fp) as im:
            width, height = im.size
            if self.train:
                top, left, h, w = RandomResizedCrop.get_params(
                    torch.empty(1, height, width), list(self.scale), list(RRC_RATIO)
                )
            else:  # the centre square: resized to size / 0.875, its centre crop of size is the evaluation image
                h = w = min(width, height)
                left, top = (width - w) // 2, (height - h) // 2
            target = self.size if self.train else math.floor(self.size / CROP_PCT)
            reduce = max(1, min(8, min(w, h) // target))
            if reduce > 1 and im.format == "JPEG":
                im.draft("RGB", (math.ceil(width / reduce), math.ceil(height / reduce)))
            sx, sy = im.size[0] / width, im.size[1] / height
            image = TF.pil_to_tensor(im.convert("RGB"))
        top, left = round(top * sy), round(left * sx)
        h, w = max(1, round(h * sy)), max(1, round(w * sx))
        if self.train:
            return TF.resized_crop(image, top, left, h, w, [self.size, self.size], BICUBIC, antialias=True)
        square = TF.resized_crop(image, top, left, h, w, [target, target], BICUBIC, antialias=True)
        return TF.center_crop(square, [self.size, self.size])


class FolderImages(Dataset):
    """(file, label) items read by :class:`CropDecode`, then an optional per-image transform (worker path)."""

    def __init__(self, items: Sequence[tuple[Path, int]], decode: CropDecode, transform: Callable | None = None):
        self.items, self.decode, self.transform = list(items), decode, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label = self.items[i]
        image = self.decode(path, str(path))
        return (self.transform(image) if self.transform else image), label


class ImageFolderDataModule(ClassificationDataModule):
    """Any dataset in the ``train/<class>/``, ``val/<class>/`` layout (module docstring).

    Args:
        data_dir: the folder holding ``train/`` and ``val/`` (or, with ``source: litdata``, nothing needed).
        image_size: side of the training and evaluation crops.
        source: "folder" (the files) or "litdata" (the chunks of ``mwa-lightning prepare``).
        litdata_dir: the preprocessing command's output folder (``train/``, ``val/``, ``classes.json``).
        **kwargs: the shared settings of :class:`~mwa_lightning.data.base.ClassificationDataModule` (batch size,
            workers, augmentation, ...); ``val_size`` must stay 0 (validation is the val folder).
    """

    MEAN = IMAGENET_MEAN
    STD = IMAGENET_STD
    DATASET = "an image-folder dataset"

    def __init__(
        self,
        data_dir: str | Path = "data",
        image_size: int = 224,
        source: Literal["folder", "litdata"] = "folder",
        litdata_dir: str | Path | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("num_workers", 8)
        super().__init__(**kwargs)
        if self.val_size:
            raise ValueError(f"val_size={self.val_size}: an image-folder dataset validates on its val/ folder; use 0")
        check_choices(ImageFolderDataModule.__init__, source=source)
        if source == "litdata" and litdata_dir is None:
            raise ValueError("source='litdata' needs litdata_dir: the output of mwa-lightning prepare")
        self.data_dir = Path(data_dir).expanduser()
        self.image_size = image_size
        self.source = source
        self.litdata_dir = Path(litdata_dir).expanduser() if litdata_dir is not None else None
        self._classes: list[str] | None = None

    # ------------------------------------------------------------------ the listing
    def how_to_get(self) -> str:
        return (
            f"put {self.DATASET} in {self.data_dir} as train/<class>/<image> and val/<class>/<image> "
            "(one folder per class, the same class names in both)"
        )

    def class_folders(self, split: str) -> dict[str, Path]:
        root = self.data_dir / split
        if not root.is_dir():
            raise DataError(f"{root} is not a folder. {self.how_to_get()[0].upper()}{self.how_to_get()[1:]}.")
        folders = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}
        if not folders:
            raise DataError(f"{root} holds no class folders. {self.how_to_get()[0].upper()}{self.how_to_get()[1:]}.")
        return folders

    @property
    def classes(self) -> list[str]:
        if self._classes is None:
            if self.source == "litdata":
                path = self.litdata_dir / CLASSES_FILE
                if not path.is_file():
                    raise DataError(f"{path} is missing: run mwa-lightning prepare to write it")
                self._classes = json.loads(path.read_text())
            else:
                self._classes = list(self.class_folders("train"))
        return self._classes

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return len(self.classes)

    def listing(self, split: Split) -> list[tuple[Path, int]]:
        """(file, label) of every image of a split; refuses a val class unknown to train and empty classes."""
        index = {name: i for i, name in enumerate(self.classes)}
        folders = self.class_folders("train" if split == "train" else "val")
        if unknown := sorted(set(folders) - set(index)):
            raise DataError(
                f"{self.data_dir / 'val'}: class folders that train/ does not have: {', '.join(unknown[:5])}"
                + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else "")
            )
        items = []
        for name, folder in folders.items():
            files = image_files(folder)
            if not files:
                raise DataError(f"{folder}: class folder {name} holds no images")
            items += [(f, index[name]) for f in files]
        return items

    # ------------------------------------------------------------------ splits and loaders
    def setup_splits(self) -> None:
        worker = self.augment_on == "workers"
        second = replace(self.augment, crop="none")  # what follows the crop, which CropDecode does
        train_transform = image_transform(second, self.image_size, self.mean, self.std) if worker else None
        eval_transform = normalize(self.mean, self.std) if worker else None
        scale = self.augment.resized_crop_scale
        if self.source == "litdata":
            self.splits["train"] = self._streaming("train", CropDecode(self.image_size, True, scale), train_transform)
            self.splits["val"] = self._streaming("val", CropDecode(self.image_size, False), eval_transform)
        else:
            self.splits["train"] = FolderImages(
                self.listing("train"), CropDecode(self.image_size, True, scale), train_transform
            )
            self.splits["val"] = FolderImages(self.listing("test"), CropDecode(self.image_size, False), eval_transform)
        self.splits["test"] = self.splits["val"]
        if not worker:
            self.batch_augment = BatchAugment(second, self.image_size, self.mean, self.std, self.num_classes)

    def _streaming(self, split: str, decode: CropDecode, transform: Callable | None):
        from mwa_lightning.data.streaming import ImageChunks

        return ImageChunks(self.litdata_dir / split, decode, transform, train=split == "train", seed=self.seed)

    def split_dataset(self, split: str, train: bool) -> tuple[Dataset, Callable | None]:
        """The split as it is (it decodes, and on the worker path augments, per image); MixUp/CutMix in the
        collate function on the worker path."""
        mix = train and self.augment_on == "workers" and self.augment.mixes
        return self.splits[split], MixCollate(BatchMix(self.augment, self.num_classes)) if mix else None

    def make_loader(self, split: str, train: bool) -> DataLoader:
        if self.source != "litdata":
            return super().make_loader(split, train)
        from litdata import StreamingDataLoader  # shards across processes and nodes by itself: no sampler

        data, collate = self.split_dataset(split, train)
        return StreamingDataLoader(
            data,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            collate_fn=collate,
            drop_last=train,
        )


class ImageNetDataModule(ImageFolderDataModule):
    """ImageNet-1K (ILSVRC2012): ``train/<wnid>/*.JPEG`` (1,281,167 images), ``val/<wnid>/*.JPEG`` (50,000), 1000
    classes, in the layout the AFNO repository documents (the validation images sorted into class folders, e.g.
    with the ``valprep.sh`` script that circulates with it). No download: ImageNet needs a licence from
    https://image-net.org; the error for missing data says where the folders go.

    Class names: the wnids, or the first name of each in ``LOC_synset_mapping.txt`` (Kaggle's copy) or
    ``words.txt`` when ``data_dir`` holds one.
    """

    DATASET = "ImageNet-1K (ILSVRC2012, from https://image-net.org)"
    NUM_CLASSES = 1000

    @property
    def num_classes(self) -> int:  # known without the data, so that a config builds its model anywhere
        return self.NUM_CLASSES

    @property
    def classes(self) -> list[str]:
        classes = super().classes
        if len(classes) != self.NUM_CLASSES:
            raise DataError(
                f"{self.data_dir / 'train'} holds {len(classes)} class folders; ImageNet-1K has {self.NUM_CLASSES}. "
                "For another set of classes use mwa_lightning.data.ImageFolderDataModule"
            )
        return classes

    @property
    def class_names(self) -> list[str]:
        names: dict[str, str] = {}
        for mapping in ("LOC_synset_mapping.txt", "words.txt"):
            path = self.data_dir / mapping
            if path.is_file():
                names = synset_names(path) | names  # the first file's names win
        return [names.get(w) or w for w in self.classes]
