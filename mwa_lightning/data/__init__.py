"""LightningDataModules for CIFAR-10, CIFAR-100, Tiny-ImageNet, ImageNet-1K and image folders, the synthetic
offline tasks, and sequences (sequential CIFAR-10, the UCR/UEA archive)."""

from mwa_lightning.data.augment import Augment
from mwa_lightning.data.base import DiskDataModule, ImageDataModule, InMemoryDataModule
from mwa_lightning.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from mwa_lightning.data.errors import DataError
from mwa_lightning.data.folder import ImageFolderDataModule, ImageNetDataModule
from mwa_lightning.data.sequences import SequentialCIFAR10DataModule, UCRDataModule
from mwa_lightning.data.synthetic import PeriodicDataModule, SyntheticDataModule
from mwa_lightning.data.tiny_imagenet import TinyImageNetDataModule

__all__ = [
    "Augment",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DataError",
    "DiskDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ImageNetDataModule",
    "InMemoryDataModule",
    "PeriodicDataModule",
    "SequentialCIFAR10DataModule",
    "SyntheticDataModule",
    "TinyImageNetDataModule",
    "UCRDataModule",
]
