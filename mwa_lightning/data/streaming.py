"""LitData chunks of image files: what ``source: litdata`` of the image-folder DataModules reads.

`LitData <https://github.com/Lightning-AI/litData>`_ (Lightning's streaming dataset) stores samples in
fixed-size chunk files that a ``StreamingDataset`` reads sequentially (local disk, a shared filesystem or object
storage), shards across processes and nodes by itself (no sampler), shuffles across chunks per epoch from a seed,
and a ``StreamingDataLoader`` can save and restore its position. Each sample here is ``{"image": <the file's
bytes>, "label": int}``, written by ``mwa-lightning prepare``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from litdata import StreamingDataset

from mwa_lightning.data.errors import DataError


class ImageChunks(StreamingDataset):
    """A LitData ``StreamingDataset`` of encoded images, decoded and cropped per sample (:class:`CropDecode`),
    then the optional per-image transform of the worker path: items are ``(image, label)``."""

    def __init__(self, folder: Path, decode: Callable, transform: Callable | None, train: bool, seed: int | None):
        if not (Path(folder) / "index.json").is_file():
            raise DataError(f"{folder} holds no LitData chunks (index.json): run mwa-lightning prepare")
        super().__init__(str(folder), shuffle=train, drop_last=train, seed=0 if seed is None else seed)
        self.decode_crop, self.image_transform = decode, transform  # LitData's own `transform` stays unused

    def __getitem__(self, index: Any) -> tuple[Any, int]:
        sample = super().__getitem__(index)
        image = self.decode_crop(bytes(sample["image"]), sample.get("name"))
        return (self.image_transform(image) if self.image_transform else image), int(sample["label"])
