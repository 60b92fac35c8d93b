"""Tiny-ImageNet-200 (Le & Yang, 2015, CS231n): 200 ImageNet classes at 64x64 px.

Read from the official zip's layout (``tiny-imagenet-200/``): ``wnids.txt`` (one class id per line, the label
order), ``train/<wnid>/images/*.JPEG`` (500 per class), ``val/images/*.JPEG`` with ``val/val_annotations.txt``
(file, wnid, box; 50 per class) -- the labelled split used as the test split, as is customary; ``test/`` has no
labels and is not read. Some JPEGs are greyscale and are decoded to RGB.

Decoding 110,000 JPEGs every epoch would starve a GPU, so each split is decoded once (in parallel threads)
into a uint8 tensor cache ``<split>.pt`` under ``cache_dir``: by default the user's cache folder
(:func:`default_cache_dir`), never the data folder, which may be a read-only shared copy. The cache
records a key of the sources -- every file's path, size and modification time, and the contents of
``wnids.txt`` and ``val_annotations.txt`` -- and is rebuilt when that changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchvision.datasets.utils import download_and_extract_archive

from mwa_lightning.data.base import DiskDataModule, Split
from mwa_lightning.data.errors import DataError
from mwa_lightning.data.images import read_rgb, synset_names

log = logging.getLogger(__name__)

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
ZIP_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
CACHE_VERSION = 1


def default_cache_dir(folder: Path) -> Path:
    """``$XDG_CACHE_HOME/mwa-lightning/tiny-imagenet/<key>`` (``~/.cache`` without ``XDG_CACHE_HOME``), the key
    a digest of the data folder's resolved path: one cache per copy of the data, outside it."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha1(str(folder.expanduser().resolve()).encode()).hexdigest()[:16]
    return root / "mwa-lightning" / "tiny-imagenet" / key


def decode(path: Path, size: int) -> Tensor:
    """An RGB uint8 ``(3, size, size)`` image from a JPEG file, naming the file when it is unreadable."""
    image = read_rgb(path)
    if image.shape != (3, size, size):
        raise DataError(f"{path}: expected a {size}x{size} image, got {tuple(image.shape[1:])}")
    return image


class TinyImageNetDataModule(DiskDataModule):
    """Tiny-ImageNet-200: 100,000 train and 10,000 labelled validation (used as test) images, 64x64 px.

    ``data_dir`` holds ``tiny-imagenet-200/``.

    Args:
        cache_dir: where the decoded uint8 cache goes; None: the user's cache folder (:func:`default_cache_dir`),
            outside the data folder.
        decode_threads: threads decoding JPEGs when the cache is (re)built.
        **kwargs: ``data_dir``, ``download`` and the shared settings.
    """

    num_classes = 200
    image_size = 64
    MEAN = (0.4802, 0.4481, 0.3975)
    STD = (0.2770, 0.2691, 0.2821)

    def __init__(self, cache_dir: str | Path | None = None, decode_threads: int = 8, **kwargs: Any):
        super().__init__(**kwargs)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.decode_threads = decode_threads

    @property
    def folder(self) -> Path:
        return self.data_dir / "tiny-imagenet-200"

    def missing_files(self) -> list[Path]:
        needed = ["wnids.txt", "train", "val/images", "val/val_annotations.txt"]
        return [self.folder / n for n in needed if not (self.folder / n).exists()]

    def prepare_data(self) -> None:
        """Download if asked, then decode each split into its cache, once: Lightning calls this on one process
        per node (the others wait), so under DDP the ranks' ``setup`` only read the cache (written atomically)."""
        super().prepare_data()
        if not self.missing_files():
            for split in ("train", "test"):
                self.load_split(split)

    def fetch(self) -> None:
        download_and_extract_archive(URL, download_root=str(self.data_dir), md5=ZIP_MD5)

    def how_to_get(self) -> str:
        return f"fetch {URL} (md5 {ZIP_MD5}) and unzip it into {self.data_dir}."

    # ------------------------------------------------------------------ the file listing
    def wnids(self) -> list[str]:
        wnids = (self.folder / "wnids.txt").read_text().split()
        if len(set(wnids)) != len(wnids) or not wnids:
            raise DataError(f"{self.folder / 'wnids.txt'}: expected distinct class ids, one per line")
        return wnids

    def listing(self, split: Split) -> list[tuple[Path, int]]:
        """(JPEG path, label) of every image of a split, checking the class folders against ``wnids.txt``."""
        self.check_present()
        wnids = self.wnids()
        index = {w: i for i, w in enumerate(wnids)}
        if split == "train":
            train = self.folder / "train"
            folders = {p.name for p in train.iterdir() if p.is_dir()}
            if missing := sorted(set(wnids) - folders):
                raise DataError(f"{train}: class folders listed in wnids.txt are missing: {', '.join(missing)}")
            if extra := sorted(folders - set(wnids)):
                raise DataError(f"{train}: class folders not listed in wnids.txt: {', '.join(extra)}")
            items = []
            for w in wnids:
                images = train / w / "images"
                files = sorted(images.glob("*.JPEG")) if images.is_dir() else []
                if not files:
                    raise DataError(f"{images}: class folder {w} holds no JPEG images")
                items += [(f, index[w]) for f in files]
            return items
        annotations = self.folder / "val" / "val_annotations.txt"
        items = []
        for line_no, line in enumerate(annotations.read_text().splitlines(), 1):
            fields = line.split("\t")
            if len(fields) < 2:
                raise DataError(f"{annotations}:{line_no}: expected '<file>\\t<wnid>\\t...', got {line!r}")
            name, wnid = fields[0], fields[1]
            if wnid not in index:
                raise DataError(f"{annotations}:{line_no}: class {wnid} is not listed in wnids.txt")
            items.append((self.folder / "val" / "images" / name, index[wnid]))
        if missing := [str(p) for p, _ in items if not p.is_file()]:
            raise DataError(f"{len(missing)} annotated validation images are missing, e.g. {missing[0]}")
        return items

    def cache_key(self, items: list[tuple[Path, int]]) -> str:
        """The key a split's decoded cache is stored under: each source file's path, label, size and modification
        time, and the contents of ``wnids.txt`` and ``val_annotations.txt``. Not :meth:`fingerprint` (the md5 of the
        data files a study's committed runs are held to): Tiny-ImageNet names no files for that, so a committed run is
        held to its data folder's path."""
        h = hashlib.sha1(f"v{CACHE_VERSION}".encode())
        h.update((self.folder / "wnids.txt").read_bytes())
        h.update((self.folder / "val" / "val_annotations.txt").read_bytes())
        for path, label in items:
            st = path.stat()
            h.update(f"{path.relative_to(self.folder)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    # ------------------------------------------------------------------ decoding and the cache
    def cache_path(self, split: Split) -> Path:
        return (self.cache_dir or default_cache_dir(self.folder)) / f"{split}.pt"

    def load_split(self, split: Split) -> tuple[Tensor, Tensor]:
        items = self.listing(split)
        key = self.cache_key(items)
        path = self.cache_path(split)
        if path.is_file():
            try:
                cached = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                if cached.get("fingerprint") == key:
                    return cached["images"], cached["labels"]
                log.info("Tiny-ImageNet %s: sources changed since %s was written; decoding again", split, path)
            except Exception as e:  # a damaged cache is rebuilt, not fatal
                log.warning("Tiny-ImageNet %s: cache %s is unreadable (%s); decoding again", split, path, e)
        log.info("Tiny-ImageNet %s: decoding %d JPEGs into %s", split, len(items), path)
        with ThreadPoolExecutor(max(1, self.decode_threads)) as pool:
            images = torch.stack(list(pool.map(lambda item: decode(item[0], self.image_size), items)))
        labels = torch.tensor([label for _, label in items], dtype=torch.int64)
        self.write_cache(path, {"fingerprint": key, "images": images, "labels": labels})
        return images, labels

    @staticmethod
    def write_cache(path: Path, payload: dict[str, Any]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save(payload, tmp)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("could not write the Tiny-ImageNet cache %s (%s); set cache_dir to a writable folder", path, e)

    @property
    def classes(self) -> list[str]:
        """wnids in label order."""
        self.check_present()
        return self.wnids()

    @property
    def class_names(self) -> list[str]:
        """The first name ``words.txt`` gives each wnid (the wnid itself where it has none), in label order."""
        words = self.folder / "words.txt"
        names = synset_names(words) if words.is_file() else {}
        return [names.get(w) or w for w in self.classes]
