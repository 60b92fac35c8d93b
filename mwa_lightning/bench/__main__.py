"""Side-by-side benchmarks: ``mwa-lightning bench [--sections ...] [--out DIR] ...``.

Sections (all but ``loader`` by default; each writes ``<section>.csv`` under ``--out``):

- ``mixers``: forward+backward time of each token mixer at width 384, on an 8x8 grid (batch 128) and a
  16x16 grid (batch 32); ratios against AFNO and GFNet.
- ``haar``: the exact Haar fast path against ptwt, DWT+IDWT forward and backward, at (128, 384, 8, 8) and
  (32, 384, 16, 16) (each in its native layout: ptwt NCHW, the fast path channels last).
- ``flops``: parameters and FLOPs of every backbone x mixer, at 32 px (10 classes) and, for XS/S, 64 px
  (200 classes), beside the paper's table (see :mod:`mwa_lightning.training.flops` for the convention).
- ``models``: whole-model timing of ``--sizes`` x mixers at 32 px and batch ``--batch``: forward (inference)
  time, training-step time (forward, backward, AdamW step), training throughput, peak memory of a training step
  (CPU: resident-set growth, measured in a fresh process per model; CUDA: max allocated); ratios against GFNet.
  ``--compile`` compiles the backbones.
- ``scaling``: each mixer alone at width 384 on token grids 8x8 to 64x64 with the same number of tokens per
  batch (``--tokens``): forward+backward time and peak memory per token; ratios against GFNet; a PNG plot.
- ``decode``: the image-folder (ImageNet) data paths per CPU core, on ``--imagefolder-dir``: JPEG decode + crop
  to 224, full and draft decoding, libjpeg-turbo through torchvision, from LitData chunks, and the worker path's
  whole per-image augmentation (see :mod:`mwa_lightning.bench.decode`).
- ``loader``: training-loader throughput (images/s) on CIFAR-10 (``--cifar10-dir``) at batch 512 with the
  paper's recipe: the device path (batched, here on the CPU) with crop + flip + MixUp/CutMix, the same with
  RandAugment added, and the worker path (per image in ``--workers`` DataLoader workers) with the full recipe.

The mixers are the registry's (``--mixers`` picks some). Timed candidates run round-robin (one step of each in
turn, ``--repeats`` rounds after warm-up), so that a noisy, shared machine slows them alike; tables give medians
and ratios.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mwa_lightning import COMMAND
from mwa_lightning.models.mixers import mixer_class, mixer_names
from mwa_lightning.tables import print_table, write_csv
from mwa_lightning.training.malloc import tune_malloc

TITLES = {
    "mixers": "token mixers alone, forward+backward (median ms)",
    "haar": "Haar DWT+IDWT forward+backward: fast path vs ptwt (median ms)",
    "flops": "parameters and FLOPs per image (PyTorch FLOPs; GMACs = FLOPs / 2, the paper's unit)",
    "models": "whole models at 32 px: forward, training step, throughput, peak memory",
    "scaling": "mixers alone at width 384 on growing token grids (same tokens per batch)",
    "loader": "training loader on CIFAR-10, batch 512 (images/s, median of 3 rounds)",
    "decode": "image-folder data paths, decode + crop to 224 (+ the worker path's augmentation): images/s per CPU core",
}
DEFAULT_SECTIONS = ("mixers", "haar", "flops", "models", "scaling")

if TYPE_CHECKING:
    import torch


def run_section(section: str, args: argparse.Namespace, device: torch.device) -> list[dict]:
    from mwa_lightning.bench import sections

    mixers = {name: mixer_class(name) for name in args.mixers}
    if section == "mixers":
        return sections.bench_mixers(mixers, repeats=args.repeats, device=device)
    if section == "haar":
        return sections.bench_haar(repeats=args.repeats, device=device)
    if section == "flops":
        return sections.bench_flops(mixers)
    if section == "models":
        return sections.bench_models(
            mixers, args.sizes, args.batch, args.repeats, device, memory=args.memory, compile=args.compile
        )
    if section == "scaling":
        return sections.bench_scaling(
            mixers, tokens=args.tokens, repeats=args.repeats, device=device, memory=args.memory
        )
    if section == "loader":
        return sections.bench_loader(args.cifar10_dir, args.workers)
    if section == "decode":
        from mwa_lightning.bench.decode import bench_decode

        return bench_decode(args.imagefolder_dir, images=args.decode_images)
    raise ValueError(f"unknown section {section!r}; expected one of {list(TITLES)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"{COMMAND} bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="+", choices=list(TITLES), default=list(DEFAULT_SECTIONS))
    parser.add_argument("--mixers", nargs="+", choices=mixer_names(), default=mixer_names(), help="registered mixers")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per candidate (median reported)")
    parser.add_argument("--out", type=Path, default=Path("bench_results"), help="folder for the CSV and PNG files")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when there is one)")
    parser.add_argument("--sizes", nargs="+", default=["XS", "S", "B"], help="backbones of the models section")
    parser.add_argument("--batch", type=int, default=64, help="batch of the models section")
    parser.add_argument("--compile", action="store_true", help="compile the backbones of the models section")
    parser.add_argument("--tokens", type=int, default=16384, help="tokens per batch of the scaling section")
    parser.add_argument("--cifar10-dir", type=Path, default=Path("data"), help="folder holding cifar-10-batches-py/")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the worker path")
    parser.add_argument(
        "--imagefolder-dir", type=Path, default=Path("data/imagenet"), help="folder holding train/<class>/ (decode)"
    )
    parser.add_argument("--decode-images", type=int, default=200, help="images timed per candidate (decode)")
    parser.add_argument(
        "--memory", action=argparse.BooleanOptionalAction, default=True, help="measure peak memory (models, scaling)"
    )
    args = parser.parse_args(argv)
    import torch  # after the arguments: --help and a bad option answer without it

    from mwa_lightning.bench import sections

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    tuned = tune_malloc()
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"# torch {torch.__version__}, {name}, repeats {args.repeats}, malloc tuned: {tuned}")
    for section in args.sections:
        rows = run_section(section, args, device)
        print_table(TITLES[section], rows)
        write_csv(args.out / f"{section}.csv", rows)
        if section == "scaling":
            sections.plot_scaling(rows, args.out / "scaling.png")


if __name__ == "__main__":
    main()
