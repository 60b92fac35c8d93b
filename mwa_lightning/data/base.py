"""The DataModule family: what every DataModule shares (images or sequences), and the in-memory and on-disk bases.

- :class:`ClassificationDataModule`: the settings, the resumable training passes (:mod:`mwa_lightning.data.loader`),
  the loaders and the DDP sampler choice, prediction on a folder of images, and the device augmentation hook.
  A subclass builds ``self.splits`` (:meth:`~ClassificationDataModule.setup_splits`) and says what a loader of a
  split serves (:meth:`~ClassificationDataModule.split_dataset`); the image-folder DataModules
  (:mod:`mwa_lightning.data.folder`) decode per image and subclass it directly. ``ImageDataModule`` is its first
  name, kept as an alias.
- :class:`InMemoryDataModule`: splits held as uint8 tensors, with a seeded validation split carved from train;
  a subclass only reads a split (:meth:`~InMemoryDataModule.load_split`); the synthetic tasks.
- :class:`DiskDataModule`: an in-memory DataModule read from the dataset's original files (CIFAR, Tiny-ImageNet).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchvision.datasets.utils import calculate_md5

from mwa_lightning.choices import check_choices
from mwa_lightning.data.augment import (
    Augment,
    BatchAugment,
    BatchMix,
    MixCollate,
    eval_transform,
    image_transform,
    normalize,
)
from mwa_lightning.data.errors import DataError
from mwa_lightning.data.images import IMAGE_SUFFIXES, ImageFiles, image_files
from mwa_lightning.data.loader import PassPlan, SeededLoader, TrainPasses
from mwa_lightning.lightning_compat import UnrepeatedDistributedSampler

Split = Literal["train", "test"]


class TensorImages(Dataset):
    """uint8 images ``(N, C, H, W)`` with int64 labels; a list of indices fetches a whole batch at once.

    Without a transform, the DataLoader's batched fetch (``__getitems__``) slices the tensors directly:
    the device path's loader does no per-image work. With a transform (worker path) it runs per image.
    """

    def __init__(self, images: Tensor, labels: Tensor, transform=None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        image = self.images[i]
        return (self.transform(image) if self.transform else image), self.labels[i]

    def __getitems__(self, indices: list[int]) -> Any:
        if self.transform is not None:
            return [self[i] for i in indices]
        idx = torch.as_tensor(indices)
        return self.images[idx], self.labels[idx]


def _batch_collate(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Collate of the device path: :meth:`TensorImages.__getitems__` already returns the batch."""
    return batch


class ClassificationDataModule(L.LightningDataModule):
    """Base of every DataModule here: a classification task's splits, of images or of sequences.

    Args:
        batch_size: per-process batch size.
        num_workers: DataLoader worker processes.
        val_size: images carved from train for validation with a seeded permutation; 0 validates on the test
            split (the paper reports test accuracy).
        seed: with the pass number, seeds each training pass's shuffling (and the worker processes' seeds);
            None (the default) takes the run's seed, ``seed_everything``, so that one seed drives the model's
            initialisation, the data order and the augmentation.
        split_seed: seeds the validation split (``val_size > 0``); fixed by default so that every seed of a
            study validates on the same images.
        augment: the training augmentation recipe (:class:`~mwa_lightning.data.augment.Augment`).
        augment_on: "device": uint8 batches, augmented after transfer (``on_after_batch_transfer``), the path
            that keeps a GPU fed; "workers": per image in the DataLoader workers (torchvision transforms v2).
        mean: per-channel normalisation mean; None takes the dataset's.
        std: per-channel normalisation std; None takes the dataset's.
        eval_crop: evaluate on Resize(size / 0.875) + CenterCrop(size) (bicubic); None: the reference's rule, on
            above 32 px (Tiny-ImageNet), off at 32 px (CIFAR).
        predict_folder: a folder of images of any size to predict (``predict``): each is resized (shorter side)
            and centre-cropped to the model's input, then treated like a test image; the training data is not
            read.
    """

    num_classes: int
    image_size: ClassVar[int | None]
    seq_len: ClassVar[int | None] = None  # a sequence DataModule's length (mwa_lightning.data.sequences)
    in_chans: ClassVar[int] = 3  # input channels, linked to the model
    MEAN: ClassVar[tuple[float, float, float]]
    STD: ClassVar[tuple[float, float, float]]

    def __init__(
        self,
        batch_size: int = 128,
        num_workers: int = 0,
        val_size: int = 0,
        seed: int | None = None,
        split_seed: int = 0,
        augment: Augment | None = None,
        augment_on: Literal["device", "workers"] = "device",
        mean: tuple[float, float, float] | None = None,
        std: tuple[float, float, float] | None = None,
        eval_crop: bool | None = None,
        predict_folder: str | Path | None = None,
    ):
        super().__init__()
        check_choices(ClassificationDataModule.__init__, augment_on=augment_on)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        if val_size < 0:
            raise ValueError(f"val_size={val_size} must be >= 0")
        self.batch_size, self.num_workers, self.val_size = batch_size, num_workers, val_size
        self.seed, self.split_seed = seed, split_seed
        self.augment = Augment() if augment is None else augment
        self.augment_on = augment_on
        self.mean = tuple(self.MEAN if mean is None else mean)
        self.std = tuple(self.STD if std is None else std)
        self.normalize = normalize(self.mean, self.std)
        self._eval_crop = eval_crop
        self.predict_folder = Path(predict_folder).expanduser() if predict_folder is not None else None
        self.predict_files: list[Path] = []
        self.splits: dict[str, TensorImages] = {}
        self.batch_augment: BatchAugment | None = None
        self.passes = TrainPasses(seed)  # the training passes and the position within one; checkpointed

    @property
    def class_names(self) -> list[str]:
        """Human-readable class names in label order (what predictions are written with)."""
        return list(self.classes)

    @property
    def eval_crop(self) -> bool:
        """Whether evaluation images are resized and center-cropped (the reference's rule when not set)."""
        return self.image_size > 32 if self._eval_crop is None else self._eval_crop

    # ------------------------------------------------------------------ checkpointed state
    def state_dict(self) -> dict[str, Any]:
        return self.passes.state_dict(self.trainer)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.passes.load_state_dict(state_dict)

    def next_pass(self) -> PassPlan:
        """(seed, batches to drop, epoch) of the training loader's next pass (:class:`TrainPasses`)."""
        return self.passes.next_pass(self.trainer)

    # ------------------------------------------------------------------ to implement
    def setup_splits(self) -> None:
        """Build ``self.splits`` (train, val, test) and, on the device path, ``self.batch_augment``."""
        raise NotImplementedError(f"{type(self).__name__} must implement setup_splits")

    def split_dataset(self, split: str, train: bool) -> tuple[Dataset, Callable | None]:
        """The dataset a loader of ``split`` serves, and its collate function."""
        raise NotImplementedError(f"{type(self).__name__} must implement split_dataset")

    # ------------------------------------------------------------------ splits
    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and self.predict_folder is not None:
            self._setup_predict_folder()
        elif not self.splits:
            self.setup_splits()

    # ------------------------------------------------------------------ loaders
    def make_loader(self, split: str, train: bool) -> DataLoader:
        """Evaluation: in order, every image once under DDP. Training: a :class:`SeededLoader`."""
        data, collate = self.split_dataset(split, train)
        common = dict(
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            collate_fn=collate,
        )
        if not train:
            sampler = None
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                # every image once: Lightning's default DistributedSampler pads the shards with repeated images
                sampler = UnrepeatedDistributedSampler(data, shuffle=False)
            return DataLoader(data, sampler=sampler, persistent_workers=self.num_workers > 0, **common)
        # training: shuffled from a generator reseeded every pass; fresh workers each pass take fresh seeds
        generator = torch.Generator()
        sampler = RandomSampler(data, generator=generator)
        return SeededLoader(
            data,
            sampler=sampler,
            generator=generator,
            drop_last=True,
            next_pass=self.next_pass,
            **common,
        )

    def train_dataloader(self) -> DataLoader:
        return self.make_loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self.make_loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self.make_loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        if self.predict_folder is not None:
            return DataLoader(
                self.splits["predict"], batch_size=self.batch_size, num_workers=self.num_workers, shuffle=False
            )
        return self.make_loader("test", train=False)

    def _setup_predict_folder(self) -> None:
        folder = self.predict_folder
        if not folder.is_dir():
            raise DataError(f"predict_folder {folder} is not a folder; point it at a folder of image files")
        self.predict_files = image_files(folder)
        if not self.predict_files:
            raise DataError(f"predict_folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        transform = None
        if self.augment_on == "workers":
            transform = image_transform(None, self.image_size, self.mean, self.std, eval_crop=self.eval_crop)
        self.splits["predict"] = ImageFiles(self.predict_files, self.image_size, transform)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count the training batches of the pass; device path: augment training batches, normalise evaluation
        batches, on the training device."""
        training = self.trainer is not None and self.trainer.training
        if training:
            self.passes.consumed += 1
        if self.augment_on != "device":
            return batch
        return self.transform_batch(batch, train=training)

    def transform_batch(self, batch: tuple[Tensor, Tensor], train: bool) -> tuple[Tensor, Tensor]:
        """What the device path does to a uint8 batch: the recipe when training, normalisation otherwise."""
        images, labels = batch
        if train:
            return self.batch_augment(images, labels)
        return self.normalize(images), labels


def balanced_subset(labels: Tensor, size: int, seed: int) -> Tensor:
    """Sorted indices of a class-balanced subset of ``size`` items: from each class, the first ``k`` of a
    permutation of that class's items seeded by ``seed`` (``size // classes`` each, one more for the first
    ``size % classes`` classes). Every permutation is drawn whatever ``size`` is, so a smaller subset lies inside a
    larger one (nested) for the same seed."""
    classes = labels.unique(sorted=True)
    base, extra = divmod(size, len(classes))
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for j, c in enumerate(classes.tolist()):
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        k = base + (j < extra)
        if k > len(members):
            raise ValueError(
                f"train_size={size}: class {c} has {len(members)} training images, {k} needed for a balanced subset"
            )
        picks.append(members[:k])
    return torch.cat(picks).sort().values


class InMemoryDataModule(ClassificationDataModule):
    """A DataModule whose splits are uint8 tensors in memory; a subclass reads them (:meth:`load_split`).

    ``val_size > 0`` carves the validation split from the training images with a permutation seeded by
    ``split_seed``; 0 validates on the test split. ``train_size`` then keeps a class-balanced subset of the
    remaining training images (:func:`balanced_subset`, seeded by ``split_seed``: the same images for every run,
    and a smaller ``train_size`` inside a larger one), for studies of how a result moves with the data's size.

    Args:
        train_size: training images to keep after the validation split (None: all of them).
        **kwargs: the shared settings of :class:`ClassificationDataModule`.
    """

    def __init__(self, train_size: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if train_size is not None and train_size < 1:
            raise ValueError(f"train_size={train_size}; expected a positive number of training images (or None)")
        self.train_size = train_size

    def load_split(self, split: Split) -> tuple[Tensor, Tensor]:
        """uint8 images ``(N, 3, image_size, image_size)`` and int64 labels ``(N,)`` of a split."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_split")

    def setup_splits(self) -> None:
        train_images, train_labels = self.load_split("train")
        test_images, test_labels = self.load_split("test")
        n = len(train_labels)
        if self.val_size >= n:
            raise ValueError(f"val_size={self.val_size} leaves no training images out of {n}")
        self.splits["test"] = TensorImages(test_images, test_labels)
        if self.val_size:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
            val_idx, train_idx = perm[: self.val_size].sort().values, perm[self.val_size :].sort().values
            self.splits["val"] = TensorImages(train_images[val_idx], train_labels[val_idx])
        else:
            train_idx = torch.arange(n)
            self.splits["val"] = self.splits["test"]
        if self.train_size is not None:
            if self.train_size > len(train_idx):
                raise ValueError(
                    f"train_size={self.train_size}: only {len(train_idx)} training images are left after the "
                    f"validation split (val_size={self.val_size})"
                )
            train_idx = train_idx[balanced_subset(train_labels[train_idx], self.train_size, self.split_seed)]
        self.splits["train"] = TensorImages(train_images[train_idx], train_labels[train_idx])
        self.batch_augment = self.make_batch_augment()

    def make_batch_augment(self) -> BatchAugment | None:
        """The device path's batched augmentation (None on the worker path)."""
        if self.augment_on != "device":
            return None
        return BatchAugment(self.augment, self.image_size, self.mean, self.std, self.num_classes)

    def split_dataset(self, split: str, train: bool) -> tuple[Dataset, Callable | None]:
        data = self.splits[split]
        if self.augment_on != "workers":
            return data, _batch_collate
        cfg = self.augment if train else None
        transform = image_transform(cfg, self.image_size, self.mean, self.std, eval_crop=self.eval_crop)
        collate = MixCollate(BatchMix(self.augment, self.num_classes)) if train else None
        return TensorImages(data.images, data.labels, transform), collate

    def transform_batch(self, batch: tuple[Tensor, Tensor], train: bool) -> tuple[Tensor, Tensor]:
        if not train and self.eval_crop:
            batch = eval_transform(self.image_size)(batch[0]), batch[1]
        return super().transform_batch(batch, train)


class DiskDataModule(InMemoryDataModule):
    """A DataModule whose data lives in ``data_dir`` in the dataset's original format.

    Args:
        data_dir: folder that holds (or will hold) the dataset's extracted folder.
        download: fetch the official archive, verify its checksum and extract it, in ``prepare_data``.
            Data already on disk is used as it is.
        **kwargs: the shared settings of :class:`ClassificationDataModule`.
    """

    def __init__(self, data_dir: str | Path = "data", download: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir).expanduser()
        self.download = download

    def missing_files(self) -> list[Path]:
        """Files or folders the reader needs that are absent."""
        raise NotImplementedError

    def data_files(self) -> list[Path]:
        """The files the reader reads, when it can name them all cheaply (:meth:`fingerprint`); none by default."""
        return []

    def fingerprint(self) -> dict[str, str] | None:
        """The md5 of each file the reader reads (:meth:`data_files`), by its path under ``data_dir``; None when it
        names none or one is absent. It identifies the data wherever its folder lies: a study's run committed on
        another machine is held to it rather than to the folder's path (:mod:`mwa_lightning.experiments.archive`)."""
        files = self.data_files()
        if not files or not all(f.is_file() for f in files):
            return None
        return {f.relative_to(self.data_dir).as_posix(): calculate_md5(f) for f in files}

    def fetch(self) -> None:
        """Download and extract the official archive into ``data_dir``."""
        raise NotImplementedError

    def how_to_get(self) -> str:
        """One line telling a user how to get the data by hand."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        if self.download and self.missing_files():
            new_folder = not self.data_dir.exists()
            try:
                self.fetch()
            except (OSError, ValueError) as e:  # urllib's URLError and HTTPError are OSErrors; no network, a 404
                if new_folder and self.data_dir.is_dir() and not any(self.data_dir.iterdir()):
                    self.data_dir.rmdir()  # the download made it and left it empty
                reason = getattr(e, "reason", None) or e
                raise DataError(
                    f"{type(self).__name__}: the download failed ({type(e).__name__}: {reason}). Without a network, "
                    + self.how_to_get()
                ) from e

    def check_present(self) -> None:
        """Raise :class:`DataError` naming the folder and the missing files, unless all are there."""
        missing = self.missing_files()
        if missing:
            listed = ", ".join(str(p.relative_to(self.data_dir)) for p in missing)
            hint = (
                ""
                if self.download
                else " Set download: true (--data.download true) to fetch it, or " + self.how_to_get()
            )
            raise DataError(f"{type(self).__name__}: in {self.data_dir} these are missing: {listed}.{hint}")


# its first name, from before it also served sequences: code that imports it keeps working
ImageDataModule = ClassificationDataModule
