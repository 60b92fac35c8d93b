"""Tiny datasets written in the exact on-disk formats of the originals."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_cifar_pickle(path: Path, entry: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(entry, f, protocol=2)


def write_cifar10(root: Path, per_batch: int = 20, test: int = 20, seed: int = 0) -> np.ndarray:
    """``root/cifar-10-batches-py/``: data_batch_1..5, test_batch, batches.meta. Returns all train rows."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    rows = []
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        rows.append(data)
        labels = [int(v) for v in np.arange(per_batch) % 10]
        write_cifar_pickle(
            folder / f"data_batch_{i}",
            {
                "batch_label": f"training batch {i} of 5",
                "labels": labels,
                "data": data,
                "filenames": [f"f{i}_{j}.png" for j in range(per_batch)],
            },
        )
    data = rng.integers(0, 256, (test, 3072), dtype=np.uint8)
    write_cifar_pickle(
        folder / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": [j % 10 for j in range(test)],
            "data": data,
            "filenames": [f"t{j}.png" for j in range(test)],
        },
    )
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    write_cifar_pickle(folder / "batches.meta", {"num_cases_per_batch": 10000, "label_names": names, "num_vis": 3072})
    return np.concatenate(rows)


def write_cifar100(root: Path, train: int = 200, test: int = 100, seed: int = 0) -> None:
    """``root/cifar-100-python/``: train, test, meta with fine and coarse labels (fine // 5 as coarse)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    for name, n in (("train", train), ("test", test)):
        fine = [j % 100 for j in range(n)]
        write_cifar_pickle(
            folder / name,
            {
                "filenames": [f"{name}{j}.png" for j in range(n)],
                "batch_label": name,
                "fine_labels": fine,
                "coarse_labels": [f // 5 for f in fine],
                "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            },
        )
    write_cifar_pickle(
        folder / "meta",
        {"fine_label_names": [f"fine{i}" for i in range(100)], "coarse_label_names": [f"coarse{i}" for i in range(20)]},
    )


def write_jpeg(path: Path, image: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image.permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path, format="JPEG", quality=95)


def write_tiny_imagenet(
    root: Path, wnids=("n01443537", "n01629819", "n01641577"), train: int = 4, val: int = 2, seed: int = 0
) -> Path:
    """``root/tiny-imagenet-200/`` with wnids.txt, train/<wnid>/images/, val/images/ + val_annotations.txt.

    The first training image of the first class is a greyscale JPEG, as some originals are.
    """
    g = torch.Generator().manual_seed(seed)
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    for c, w in enumerate(wnids):
        boxes = []
        for j in range(train):
            grey = c == 0 and j == 0
            image = torch.randint(0, 256, (1 if grey else 3, 64, 64), generator=g, dtype=torch.uint8)
            write_jpeg(folder / "train" / w / "images" / f"{w}_{j}.JPEG", image)
            boxes.append(f"{w}_{j}.JPEG\t0\t0\t63\t63\n")
        (folder / "train" / w / f"{w}_boxes.txt").write_text("".join(boxes))
    lines = []
    for j in range(val * len(wnids)):
        write_jpeg(
            folder / "val" / "images" / f"val_{j}.JPEG",
            torch.randint(0, 256, (3, 64, 64), generator=g, dtype=torch.uint8),
        )
        lines.append(f"val_{j}.JPEG\t{wnids[j % len(wnids)]}\t1\t2\t50\t60\n")
    (folder / "val" / "val_annotations.txt").write_text("".join(lines))
    write_jpeg(folder / "test" / "images" / "test_0.JPEG", torch.zeros(3, 64, 64, dtype=torch.uint8))
    return folder


def write_image_folder(
    root: Path,
    classes=("n01443537", "n01629819", "n01641577"),
    train: int = 4,
    val: int = 2,
    sizes=((80, 60), (50, 90), (64, 64), (120, 100)),
    seed: int = 0,
) -> Path:
    """``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG`` (the ILSVRC layout), JPEGs of several sizes.

    Each image is a flat colour per class plus noise, so that a model can learn the classes quickly."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("val", val)):
        for c, wnid in enumerate(classes):
            for j in range(n):
                w, h = sizes[(c + j) % len(sizes)]
                colour = np.array([(c * 97) % 256, (c * 53 + 80) % 256, (c * 151 + 30) % 256])
                pixels = np.clip(colour + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
                path = root / split / wnid / f"{wnid}_{split}_{j}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return root
