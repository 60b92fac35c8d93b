"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009, https://www.cs.toronto.edu/~kriz/cifar.html).

Read from the original Python-version pickles (``cifar-10-batches-py/``, ``cifar-100-python/``): each file is
a protocol-2 pickle of a dict whose ``data`` is uint8 ``(N, 3072)`` -- R, G, B planes of a row-major 32x32
image -- with ``labels`` (CIFAR-10) or ``fine_labels``/``coarse_labels`` (CIFAR-100). Downloads use
torchvision's official archive addresses and checksums; files already on disk are read as they are, without
demanding the official md5 of each data file (rebuilt or subset copies differ from it).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets.utils import download_and_extract_archive

from mwa_lightning.choices import check_choices
from mwa_lightning.data.base import DiskDataModule, Split
from mwa_lightning.data.errors import DataError


def read_pickle(path: Path) -> dict[str, Any]:
    """Unpickle a CIFAR file (str keys), naming the file when it is truncated or corrupt."""
    try:
        with path.open("rb") as f:
            entry = pickle.load(f, encoding="latin1")
        return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    except Exception as e:  # a damaged pickle can fail in many ways: EOFError, UnpicklingError, ValueError, ...
        raise DataError(
            f"{path} is truncated or corrupt ({type(e).__name__}: {e}); delete it and download the dataset again"
        ) from e


def read_cifar_batch(path: Path, label_key: str) -> tuple[Tensor, Tensor]:
    """uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)`` of one CIFAR pickle."""
    entry = read_pickle(path)
    data, labels = entry.get("data"), entry.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: 'data' should be a uint8 array of shape (N, 3072), got {type(data).__name__} {shape}")
    if labels is None or len(labels) != len(data):
        raise DataError(
            f"{path}: expected {len(data)} entries under {label_key!r}, got {None if labels is None else len(labels)}"
        )
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.as_tensor(labels, dtype=torch.int64)


class CIFAR10DataModule(DiskDataModule):
    """CIFAR-10: 50,000 train and 10,000 test images of 32x32 px in 10 classes.

    ``data_dir`` holds ``cifar-10-batches-py/``. See :class:`~mwa_lightning.data.base.ClassificationDataModule` for the
    shared settings.
    """

    source: type = CIFAR10
    label_key = "labels"
    names_key = "label_names"  # the class names' key in the meta file
    num_classes = 10
    image_size = 32
    MEAN = (0.4914, 0.4822, 0.4465)
    STD = (0.2470, 0.2435, 0.2616)

    @property
    def folder(self) -> Path:
        return self.data_dir / self.source.base_folder

    def split_files(self, split: Split) -> list[Path]:
        names = self.source.train_list if split == "train" else self.source.test_list
        return [self.folder / name for name, _md5 in names]

    def data_files(self) -> list[Path]:
        return [*self.split_files("train"), *self.split_files("test"), self.folder / self.source.meta["filename"]]

    def missing_files(self) -> list[Path]:
        return [p for p in self.data_files() if not p.is_file()]

    def fetch(self) -> None:
        download_and_extract_archive(
            self.source.url, download_root=str(self.data_dir), filename=self.source.filename, md5=self.source.tgz_md5
        )

    def how_to_get(self) -> str:
        return f"fetch {self.source.url} and extract it into {self.data_dir}."

    def load_split(self, split: Split) -> tuple[Tensor, Tensor]:
        self.check_present()
        parts = [read_cifar_batch(p, self.label_key) for p in self.split_files(split)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    @property
    def classes(self) -> list[str]:
        """Class names, from the dataset's meta file."""
        self.check_present()
        return list(read_pickle(self.folder / self.source.meta["filename"])[self.names_key])


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100: 50,000 train and 10,000 test images of 32x32 px; 100 fine classes in 20 coarse superclasses.

    ``data_dir`` holds ``cifar-100-python/``.

    Args:
        labels: "fine" (100 classes) or "coarse" (20 superclasses).
        **kwargs: ``data_dir``, ``download`` and the shared settings.
    """

    source = CIFAR100
    MEAN = (0.5071, 0.4865, 0.4409)
    STD = (0.2673, 0.2564, 0.2762)

    def __init__(self, labels: Literal["fine", "coarse"] = "fine", **kwargs: Any):
        check_choices(CIFAR100DataModule.__init__, labels=labels)
        self.labels = labels
        self.label_key = f"{labels}_labels"
        self.names_key = f"{labels}_label_names"
        self.num_classes = 100 if labels == "fine" else 20
        super().__init__(**kwargs)
