"""The image-folder data paths, per CPU core: JPEG decode + crop (+ the worker path's augmentation), images/s.

Candidates (each a function of one file, timed round-robin in one process on one thread):

- ``full decode + RRC``: Pillow decodes every pixel, torchvision's RandomResizedCrop (bicubic) crops to 224;
- ``draft decode + RRC``: :class:`~mwa_lightning.data.folder.CropDecode`, the folder source's reader: Pillow
  decodes at the lowest DCT scale the crop allows;
- ``torchvision decode_jpeg + RRC``: libjpeg-turbo through ``torchvision.io.decode_jpeg`` on the CPU, full size;
- ``LitData stream + draft decode + RRC``: the same reader fed from LitData chunks (``mwa-lightning
  prepare``) instead of files;
- ``worker path: draft decode + RRC + flip + timm RandAugment + normalize``: everything per image on the CPU, as
  ``augment_on: workers`` does it (the device path leaves all but the crop to the GPU).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mwa_lightning.data.augment import RRC_RATIO, Augment, image_transform
from mwa_lightning.data.folder import IMAGENET_MEAN, IMAGENET_STD, CropDecode, ImageFolderDataModule


def _candidates(files: list[Path], size: int, litdata_dir: Path | None) -> dict[str, Callable[[], list]]:
    """One pass over the files per candidate."""
    from PIL import Image
    from torchvision.io import decode_jpeg
    from torchvision.transforms import InterpolationMode, v2

    rrc = v2.RandomResizedCrop(size, (0.08, 1.0), RRC_RATIO, InterpolationMode.BICUBIC, antialias=True)
    crop = CropDecode(size, train=True)
    worker = image_transform(Augment(crop="none", randaugment_impl="timm"), size, IMAGENET_MEAN, IMAGENET_STD)

    def full(i: int):
        with Image.open(files[i]) as im:
            return rrc(v2.functional.pil_to_tensor(im.convert("RGB")))

    def turbo(i: int):
        return rrc(decode_jpeg(torch.frombuffer(bytearray(files[i].read_bytes()), dtype=torch.uint8), mode="RGB"))

    candidates = {
        "full decode + RRC (Pillow, torchvision)": full,
        "draft decode + RRC (CropDecode: the folder source)": lambda i: crop(files[i]),
        "torchvision decode_jpeg (libjpeg-turbo) + RRC": turbo,
        "worker path: draft decode + RRC + flip + timm RandAugment + normalize": lambda i: worker(crop(files[i])),
    }
    passes = {name: (lambda fn=fn: [fn(i) for i in range(len(files))]) for name, fn in candidates.items()}
    if litdata_dir is not None:
        from litdata import StreamingDataset

        def stream_pass() -> list:  # read the chunks in order, as a StreamingDataLoader's worker does
            return [crop(bytes(sample["image"])) for sample in StreamingDataset(str(litdata_dir / "train"))]

        passes["LitData stream + draft decode + RRC (the litdata source)"] = stream_pass
    return passes


def bench_decode(data_dir: Path, size: int = 224, images: int = 200, rounds: int = 3) -> list[dict]:
    """Images/s per CPU core of each candidate over the first ``images`` training files of ``data_dir``; LitData
    chunks of the same files are written to a temporary folder first."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dm = ImageFolderDataModule(data_dir=data_dir)
        files = [p for p, _ in dm.listing("train")][:images]
        with tempfile.TemporaryDirectory() as tmp:
            litdata_dir = _chunks(files, Path(tmp))
            passes = _candidates(files, size, litdata_dir)
            times: dict[str, list[float]] = {name: [] for name in passes}
            for _ in range(rounds + 1):  # the first round warms up
                for name, one_pass in passes.items():
                    t0 = time.perf_counter()
                    done = len(one_pass())
                    times[name].append(done / (time.perf_counter() - t0))
            times = {name: rates[1:] for name, rates in times.items()}
    finally:
        torch.set_num_threads(threads)
    sizes = [_size(p) for p in files]
    pixels = statistics.median(w * h for w, h in sizes)
    return [
        {"path": name, "images": len(files), "median_pixels": pixels, "images_per_s_per_core": statistics.median(v)}
        for name, v in times.items()
    ]


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def _chunks(files: list[Path], out: Path) -> Path | None:
    try:
        import litdata
    except ImportError:
        return None
    from functools import partial

    from mwa_lightning.data.prepare import _store

    (out / "skipped").mkdir()
    litdata.optimize(
        fn=partial(_store, max_side=None, quality=90, skipped_dir=str(out / "skipped")),
        inputs=[(str(p), 0) for p in files],
        output_dir=str(out / "train"),
        chunk_bytes="16MB",
        num_workers=1,
        mode="overwrite",
    )
    return out


def make_sample(
    tiny_imagenet: Path, out: Path, size: tuple[int, int] = (500, 375), quality: int = 90, noise: float = 16.0
) -> int:
    """An ImageNet-like image folder from Tiny-ImageNet's training JPEGs: each upscaled (bicubic) to ``size``
    (ImageNet's typical 500 x 375), given Gaussian pixel noise of std ``noise`` (an upscaled image is smoother
    than a photograph and would encode to far fewer bytes than ImageNet's ~110 KB) and saved as a JPEG of
    ``quality``, in ``out/train/<wnid>/`` and ``out/val/<wnid>/`` (one image each). Returns the images written."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)

    n = 0
    for folder in sorted((tiny_imagenet / "train").iterdir()):
        files = sorted((folder / "images").glob("*.JPEG"))[:2]
        for split, path in zip(("train", "val"), files, strict=False):
            with Image.open(path) as im:
                big = np.asarray(im.convert("RGB").resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
            big = Image.fromarray(np.clip(big + rng.normal(0, noise, big.shape), 0, 255).astype(np.uint8))
            target = out / split / folder.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            big.save(target, format="JPEG", quality=quality)
            n += 1
    return n


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mwa_lightning.bench.decode", description=make_sample.__doc__)
    parser.add_argument("--make-sample", nargs=2, type=Path, metavar=("TINY_IMAGENET_DIR", "OUT_DIR"), required=True)
    args = parser.parse_args()
    print(f"wrote {make_sample(*args.make_sample)} images under {args.make_sample[1]}")
