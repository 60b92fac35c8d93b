"""LightningDataModules for CIFAR-10, CIFAR-100, Tiny-ImageNet and the synthetic offline task."""

from mwa_lightning.data.augment import Augment
from mwa_lightning.data.base import DataError, ImageDataModule
from mwa_lightning.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from mwa_lightning.data.synthetic import PeriodicDataModule, SyntheticDataModule
from mwa_lightning.data.tiny_imagenet import TinyImageNetDataModule

__all__ = [
    "Augment",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DataError",
    "ImageDataModule",
    "PeriodicDataModule",
    "SyntheticDataModule",
    "TinyImageNetDataModule",
]
