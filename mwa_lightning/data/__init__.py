"""LightningDataModules for CIFAR-10, CIFAR-100, Tiny-ImageNet, ImageNet-1K and image folders, the synthetic
offline tasks, and sequences (sequential CIFAR-10, the UCR/UEA archive).

The names below are imported on first use (PEP 562), so that a light module of the package (``prepare --help``)
does not import torch; :mod:`mwa_lightning.cli` imports them all, for jsonargparse to find every DataModule.
"""

from __future__ import annotations

from mwa_lightning.lazy import lazy_exports

_LAZY = {  # name -> the module that defines it
    "Augment": "augment",
    "DiskDataModule": "base",
    "ClassificationDataModule": "base",
    "ImageDataModule": "base",  # ClassificationDataModule's first name (importable; not listed in __all__)
    "InMemoryDataModule": "base",
    "CIFAR10DataModule": "cifar",
    "CIFAR100DataModule": "cifar",
    "DataError": "errors",
    "ImageFolderDataModule": "folder",
    "ImageNetDataModule": "folder",
    "SequenceDataModule": "sequences",
    "SequenceData": "sequences",  # SequenceDataModule's first name (importable; not listed in __all__)
    "SequentialCIFAR10DataModule": "sequences",
    "UCRDataModule": "sequences",
    "PeriodicDataModule": "synthetic",
    "SyntheticDataModule": "synthetic",
    "TinyImageNetDataModule": "tiny_imagenet",
}

__all__ = [
    "Augment",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "ClassificationDataModule",
    "DataError",
    "DiskDataModule",
    "ImageFolderDataModule",
    "ImageNetDataModule",
    "InMemoryDataModule",
    "PeriodicDataModule",
    "SequenceDataModule",
    "SequentialCIFAR10DataModule",
    "SyntheticDataModule",
    "TinyImageNetDataModule",
    "UCRDataModule",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
