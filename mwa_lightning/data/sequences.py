"""Sequence classification DataModules: sequential CIFAR-10 and the UCR/UEA time-series archive.

Both are sequence DataModules (:class:`SequenceDataModule`), in memory like the image ones
(:class:`~mwa_lightning.data.base.InMemoryDataModule`): the same seeded validation split carved from the training
sequences, the same resumable passes, the same study protocol. A split is ``(N, in_chans, L)`` (uint8 or float32)
with int64 labels; batches are normalised per channel on the training device and not augmented. The model gets
``seq_len`` and ``in_chans`` by the command line's links, and with them a
:class:`~mwa_lightning.models.sequence.SequenceTransformer`.

- :class:`SequentialCIFAR10DataModule`: Long Range Arena's "Image" task: each CIFAR-10 image in grey (ITU-R 601
  luma, 0.299 R + 0.587 G + 0.114 B, rounded to 8 bits, as PIL's ``convert("L")``) read row by row as one
  sequence of 1,024 steps; from the same CIFAR files as :class:`~mwa_lightning.data.CIFAR10DataModule`. LRA feeds
  the 256 intensities as tokens of a vocabulary; here they are one normalised channel.
- :class:`UCRDataModule`: a UCR/UEA set in the archive's ``.ts`` format (``<Name>_TRAIN.ts``, ``<Name>_TEST.ts``),
  from ``data_dir`` or from the copies that the ``aeon`` package ships (``pip install 'mwa-lightning[timeseries]'``).
  ``resample: k`` draws the k-th stratified resample of the official split (the UCR archive's protocol: each
  class keeps its official training count); ``resample: seed`` draws the run's seed's, so that each seed of a
  study is one replicate (seed 0 the official split, seed k the k-th resample) and every variant of that seed
  sees the same split. Sequences are zero-padded at the end (or cropped) to ``length``,
  by default to the next multiple of ``multiple_of`` (32: patch 4 and up to 3 wavelet levels), since the patch
  size times 2^m must divide the length.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mwa_lightning.data.base import InMemoryDataModule, Split, _batch_collate
from mwa_lightning.data.cifar import CIFAR10DataModule
from mwa_lightning.data.errors import DataError
from mwa_lightning.lightning_compat import run_seed

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, PIL's convert("L")


class SequenceDataModule(InMemoryDataModule):
    """Sequences in memory, a DataModule of its own: what it does differently from the image ones is no image
    size, no augmentation and a per-channel normalisation of ``(B, C, L)`` batches. A subclass reads a split
    (:meth:`~mwa_lightning.data.base.InMemoryDataModule.load_split`) as ``(N, in_chans, L)`` uint8 or float32
    values and sets ``seq_len`` and ``in_chans`` (linked to the model).

    Args:
        **kwargs: the shared settings of :class:`~mwa_lightning.data.base.InMemoryDataModule`; ``augment_on`` must
            stay "device" and ``predict_folder`` unset (both are about images).
    """

    image_size = None
    MEAN: tuple[float, ...] = (0.0,)
    STD: tuple[float, ...] = (1.0,)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.augment_on != "device":
            raise ValueError(f"augment_on={self.augment_on!r}: sequences are not augmented; use 'device'")
        if self.predict_folder is not None:
            raise ValueError("predict_folder is for images; a sequence DataModule predicts its test split")

    @property
    def eval_crop(self) -> bool:
        return False

    def make_batch_augment(self) -> None:
        return None

    def split_dataset(self, split: str, train: bool) -> tuple[Dataset, Any]:
        return self.splits[split], _batch_collate

    def transform_batch(self, batch: tuple[Tensor, Tensor], train: bool) -> tuple[Tensor, Tensor]:
        """``(B, C, L)`` -> float, scaled to [0, 1] when uint8, normalised per channel (training and evaluation
        alike: no augmentation)."""
        x, labels = batch
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        mean, std = self._scale(x.device)
        return (x - mean) / std, labels

    def _scale(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """The per-channel mean and std as ``(C, 1)`` tensors on ``device``, made once per device (every step
        needs them)."""
        cache = self.__dict__.setdefault("_scale_cache", {})
        if device not in cache:
            cache[device] = (
                torch.tensor(self.mean, device=device)[:, None],
                torch.tensor(self.std, device=device)[:, None],
            )
        return cache[device]


# its first name, from when it was a mixin: code that imports it (``isinstance(dm, SequenceData)``) keeps working
SequenceData = SequenceDataModule


class SequentialCIFAR10DataModule(SequenceDataModule):
    """Sequential CIFAR-10 (LRA "Image"): grey CIFAR-10 images as 1,024-step sequences, 10 classes (module
    docstring). The CIFAR-10 files are read, fetched and fingerprinted by a
    :class:`~mwa_lightning.data.CIFAR10DataModule` it holds (``images``); this class only turns them into
    sequences.

    Args:
        data_dir: the folder that holds ``cifar-10-batches-py/``.
        download: fetch the official archive in ``prepare_data`` when files are missing.
        **kwargs: the shared settings of :class:`SequenceDataModule`.
    """

    seq_len = 32 * 32
    in_chans = 1
    num_classes = 10
    MEAN = (0.4785,)  # grey CIFAR-10 training images (measured on 10,000 of them: 0.4785 and 0.2393)
    STD = (0.2393,)

    def __init__(self, data_dir: str | Path = "data", download: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.images = CIFAR10DataModule(data_dir=data_dir, download=download)
        self.data_dir, self.download = self.images.data_dir, download

    def prepare_data(self) -> None:
        self.images.prepare_data()

    def fingerprint(self) -> dict[str, str] | None:
        """The CIFAR-10 files' md5 (:meth:`~mwa_lightning.data.base.DiskDataModule.fingerprint`)."""
        return self.images.fingerprint()

    @property
    def classes(self) -> list[str]:
        return self.images.classes

    def load_split(self, split: Split) -> tuple[Tensor, Tensor]:
        images, labels = self.images.load_split(split)
        return grey_sequences(images), labels


def grey_sequences(images: Tensor) -> Tensor:
    """uint8 RGB images ``(N, 3, H, W)`` -> uint8 grey sequences ``(N, 1, H * W)``, row by row."""
    weights = torch.tensor(LUMA, dtype=torch.float32)[None, :, None, None]
    grey = (images.float() * weights).sum(1).round().clamp(0, 255).to(torch.uint8)
    return grey.reshape(len(images), 1, -1)


# ---------------------------------------------------------------------------------------------- the UCR archive
def read_ts(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A ``.ts`` file of equal-length series: ``(N, channels, L)`` float32 values, the class label of each
    series, and the class labels the header declares (``@classLabel true ...``), in its order.

    The format (sktime/aeon's): ``@`` header lines, then after ``@data`` one series a line, its channels
    separated by ``:``, each a comma-separated list of values, the class label last. Why a reader here: the
    DataModule reads the archive's own files without needing aeon at training time; a test checks it against
    aeon's ``load_from_ts_file`` on the same files.
    """
    declared: list[str] = []
    rows: list[list[list[float]]] = []
    labels: list[str] = []
    in_data = False
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                lower = line.lower()
                if lower.startswith("@classlabel"):
                    parts = line.split()
                    if len(parts) < 3 or parts[1].lower() != "true":
                        raise DataError(f"{path}:{number}: expected '@classLabel true <labels...>', got {line!r}")
                    declared = parts[2:]
                elif lower.startswith("@data"):
                    in_data = True
                continue
            *channels, label = line.split(":")
            try:
                rows.append([[float(v) for v in channel.split(",")] for channel in channels])
            except ValueError as e:
                raise DataError(f"{path}:{number}: a value is not a number ({e})") from e
            labels.append(label.strip())
    if not rows:
        raise DataError(f"{path}: no series after @data")
    lengths = {len(channel) for row in rows for channel in row}
    if len(lengths) != 1 or len({len(row) for row in rows}) != 1:
        raise DataError(f"{path}: series of unequal length or channel count ({sorted(lengths)[:5]}); expected equal")
    values = np.asarray(rows, dtype=np.float32)
    if np.isnan(values).any():
        raise DataError(f"{path}: missing values ('?' or NaN); this reader takes complete series only")
    return values, np.asarray(labels), declared or sorted(set(labels))


def aeon_data_folder() -> Path | None:
    """Where the ``aeon`` package keeps its bundled UCR/UEA sets, or None without aeon."""
    try:
        import aeon.datasets
    except ImportError:
        return None
    return Path(aeon.datasets.__file__).parent / "data"


def stratified_resample(
    train_labels: np.ndarray, test_labels: np.ndarray, resample: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the pooled (train + test) series of the ``resample``-th stratified resample: each class keeps
    its official training count; resample 0 is the official split."""
    n_train = len(train_labels)
    pooled = np.concatenate([train_labels, test_labels])
    if resample == 0:
        return np.arange(n_train), np.arange(n_train, len(pooled))
    rng = np.random.default_rng(resample)
    train, test = [], []
    for label in sorted(set(pooled)):
        members = rng.permutation(np.flatnonzero(pooled == label))
        k = int(np.sum(train_labels == label))
        train.append(members[:k])
        test.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


class UCRDataModule(SequenceDataModule):
    """A UCR/UEA time-series classification set (module docstring). The archive's series are z-normalised: the
    batches are not shifted or scaled further (mean 0, std 1 for every channel).

    Args:
        name: the set, e.g. "ArrowHead", "OSULeaf", "ACSF1" (``<data_dir>/<name>/<name>_TRAIN.ts``).
        data_dir: the folder of the sets; None: the copies that the ``aeon`` package ships.
        resample: 0 the official train/test split; k > 0 the k-th stratified resample of it; "seed": the run's
            seed's (``seed_everything``).
        length: pad (zeros at the end) or crop every series to this many steps; None: the next multiple of
            ``multiple_of``.
        multiple_of: what the default length is rounded up to.
        **kwargs: the shared settings (batch size, ``val_size``, ...).
    """

    def __init__(
        self,
        name: str = "ArrowHead",
        data_dir: str | Path | None = None,
        resample: int | Literal["seed"] = 0,
        length: int | None = None,
        multiple_of: int = 32,
        **kwargs: Any,
    ):
        kwargs.setdefault("batch_size", 16)
        super().__init__(**kwargs)
        if resample != "seed" and not (isinstance(resample, int) and resample >= 0):
            raise ValueError(
                f"resample={resample!r}; expected 0 (the official split), a positive resample number or 'seed'"
            )
        if multiple_of < 1 or (length is not None and length < 1):
            raise ValueError(f"length={length}, multiple_of={multiple_of}: expected positive numbers")
        folder = Path(data_dir).expanduser() if data_dir is not None else aeon_data_folder()
        if folder is None:
            raise DataError(
                "UCRDataModule: no data_dir and no aeon package: pip install 'mwa-lightning[timeseries]', or set "
                "data_dir to a folder of <name>/<name>_TRAIN.ts and _TEST.ts"
            )
        self.name, self.folder, self.resample = name, folder, resample
        self._length, self.multiple_of = length, multiple_of
        self._data: tuple | None = None
        if not (folder / name / f"{name}_TRAIN.ts").is_file():
            known = (
                sorted(p.name for p in folder.iterdir() if (p / f"{p.name}_TRAIN.ts").is_file())
                if folder.is_dir()
                else []
            )
            raise DataError(
                f"UCRDataModule: no set {name!r} in {folder} (expected {name}/{name}_TRAIN.ts); "
                f"the sets there: {', '.join(known) or 'none'}"
            )

    def _read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
        if self._data is None:
            x_train, y_train, declared = read_ts(self.folder / self.name / f"{self.name}_TRAIN.ts")
            x_test, y_test, _ = read_ts(self.folder / self.name / f"{self.name}_TEST.ts")
            self._data = (x_train, y_train, x_test, y_test, declared)
        return self._data

    @property
    def classes(self) -> list[str]:
        return list(self._read()[4])

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return len(self.classes)

    @property
    def in_chans(self) -> int:  # type: ignore[override]
        return int(self._read()[0].shape[1])

    @property
    def raw_length(self) -> int:
        return int(self._read()[0].shape[2])

    @property
    def seq_len(self) -> int:  # type: ignore[override]
        if self._length is not None:
            return self._length
        return math.ceil(self.raw_length / self.multiple_of) * self.multiple_of

    def load_split(self, split: Split) -> tuple[Tensor, Tensor]:
        x_train, y_train, x_test, y_test, declared = self._read()
        resample = run_seed() if self.resample == "seed" else self.resample
        train_idx, test_idx = stratified_resample(y_train, y_test, resample)
        pooled_x, pooled_y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
        index = {label: i for i, label in enumerate(declared)}
        unknown = sorted(set(pooled_y) - set(index))
        if unknown:
            raise DataError(f"{self.name}: labels {unknown[:5]} are not among the declared @classLabel {declared}")
        idx = train_idx if split == "train" else test_idx
        x = torch.from_numpy(pooled_x[idx])
        length = self.seq_len
        x = x[..., :length] if x.shape[-1] >= length else torch.nn.functional.pad(x, (0, length - x.shape[-1]))
        return x.contiguous(), torch.tensor([index[v] for v in pooled_y[idx]], dtype=torch.int64)
