"""Image files: reading them as RGB uint8 tensors, fitting them to a square size, and a dataset of them.

Used by the Tiny-ImageNet and image-folder readers, and by prediction on a folder of new images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from mwa_lightning.data.errors import unreadable_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def read_rgb(path: Path) -> Tensor:
    """An RGB uint8 ``(3, H, W)`` image from any file Pillow reads (greyscale, palette, CMYK and alpha images
    become RGB), naming the file when it is unreadable."""
    try:
        with Image.open(path) as im:
            return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()
    except Exception as e:
        raise unreadable_image(path, e) from e


def fit_square(image: Tensor, size: int) -> Tensor:
    """Resize so that the shorter side is ``size`` (bicubic, antialiased) and crop the centre square."""
    if tuple(image.shape[-2:]) == (size, size):
        return image
    image = TF.resize(image, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.center_crop(image, [size, size])


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted, by suffix (case-insensitive)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class ImageFiles(Dataset):
    """Image files fitted to ``size`` x ``size``: items are ``(uint8 image or transformed image, index)``."""

    def __init__(self, files: Sequence[Path], size: int, transform: Callable[[Tensor], Tensor] | None = None):
        self.files, self.size, self.transform = list(files), size, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        image = fit_square(read_rgb(self.files[i]), self.size)
        return (self.transform(image) if self.transform else image), i


def synset_names(path: Path) -> dict[str, str]:
    """``wnid -> name`` from a synset file (Tiny-ImageNet's and ImageNet's ``words.txt``, ImageNet's
    ``LOC_synset_mapping.txt``): the wnid, a tab or space, then comma-separated names, of which the first is kept;
    the first line of a wnid wins."""
    names: dict[str, str] = {}
    for line in path.read_text().splitlines():
        wnid, _, text = line.replace("\t", " ").partition(" ")
        if wnid:
            names.setdefault(wnid, text.split(",")[0].strip())
    return names
