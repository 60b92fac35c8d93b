"""Side-by-side benchmarks: ``python -m mwa_lightning.bench [--sections ...] [--repeats N] [--out DIR]``.

Sections (all by default):

- ``mixers``: forward+backward time of each token mixer at width 384, on an 8x8 grid (batch 128) and a
  16x16 grid (batch 32); ratios against AFNO.
- ``haar``: the exact Haar fast path against ptwt, DWT+IDWT forward and backward, at (128, 384, 8, 8) and
  (32, 384, 16, 16) (each in its native layout: ptwt NCHW, the fast path channels last).
- ``params``: parameters of each backbone x mixer at 32 px and 10 classes, beside the paper's.
- ``loader``: training-loader throughput (images/s) on CIFAR-10 (``--cifar10-dir``) at batch 512 with the
  paper's recipe: the device path (batched, here on the CPU) with crop + flip + MixUp/CutMix, the same with
  RandAugment added, and the worker path (per image in ``--workers`` DataLoader workers) with the full recipe.

Candidates are timed round-robin (one step of each in turn, ``--repeats`` rounds after warm-up), so that a
noisy, shared machine slows them alike; the table gives medians and ratios. Each section writes a CSV.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ptwt
import torch
from torch import Tensor, nn

from mwa_lightning.data import Augment, CIFAR10DataModule
from mwa_lightning.models import AFNO, GlobalFilter, MultiscaleWaveletAttention, SelfAttention, VisionTransformer
from mwa_lightning.models.transforms import haar_dwt2, haar_idwt2

MIXERS: dict[str, type[nn.Module]] = {
    "attention": SelfAttention,
    "afno": AFNO,
    "gfn": GlobalFilter,
    "mwa": MultiscaleWaveletAttention,
}
# the paper's parameter counts (M) at 32 px, 10 classes
PAPER_PARAMS = {
    "XS": {"attention": 9, "afno": 7, "gfn": 6, "mwa": 7},
    "S": {"attention": 21, "afno": 16, "gfn": 15, "mwa": 16},
    "B": {"attention": 85, "afno": 66, "gfn": 58, "mwa": 66},
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(fn: Callable[[Tensor], Tensor], x: Tensor, params: Sequence[Tensor] = ()) -> Callable[[], None]:
    """A closure running fn forward and backward (with a fixed random upstream gradient) on a leaf copy of x."""
    x = x.detach().requires_grad_(True)
    grad = torch.randn_like(fn(x))

    def step() -> None:
        x.grad = None
        for p in params:
            p.grad = None
        fn(x).backward(grad)

    return step


def race(steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 2, device=None) -> dict[str, float]:
    """Median seconds per call of each closure, timed round-robin."""
    device = device or torch.device("cpu")
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            sync(device)
            t0 = time.perf_counter()
            step()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def print_table(title: str, rows: list[dict], columns: Sequence[str]) -> None:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
        return str(v)

    widths = {c: max(len(c), *(len(fmt(r[c])) for r in rows)) for c in columns}
    print(f"\n## {title}")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(fmt(r[c]).ljust(widths[c]) for c in columns))


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


MIXER_SHAPES = [(128, 8, 384), (32, 16, 384)]  # (batch, grid side, width)


def bench_mixers(repeats: int, device: torch.device) -> list[dict]:
    rows = []
    for batch, side, dim in MIXER_SHAPES:
        x = torch.randn(batch, side, side, dim, device=device)
        steps = {}
        for name, cls in MIXERS.items():
            mixer = cls(dim=dim, grid_size=(side, side)).to(device)
            steps[name] = train_step(mixer, x, list(mixer.parameters()))
        medians = race(steps, repeats, device=device)
        for name, sec in medians.items():
            rows.append(
                {
                    "mixer": name,
                    "shape": f"({batch}, {side}, {side}, {dim})",
                    "fwd_bwd_ms": 1e3 * sec,
                    "vs_afno": sec / medians["afno"],
                    "vs_gfn": sec / medians["gfn"],
                }
            )
    return rows


HAAR_SHAPES = [(128, 384, 8, 8), (32, 384, 16, 16)]  # (B, C, H, W)


def bench_haar(repeats: int, device: torch.device) -> list[dict]:
    def fast(x: Tensor) -> Tensor:  # channels last (B, H, W, C)
        return haar_idwt2(haar_dwt2(x))

    def reference(x: Tensor) -> Tensor:  # NCHW, ptwt's native layout
        return ptwt.waverec2(ptwt.wavedec2(x, "haar", level=1, mode="zero"), "haar")

    rows = []
    for B, C, H, W in HAAR_SHAPES:
        x = torch.randn(B, C, H, W, device=device)
        steps = {"fast": train_step(fast, x.permute(0, 2, 3, 1).contiguous()), "ptwt": train_step(reference, x)}
        medians = race(steps, repeats, device=device)
        rows.append(
            {
                "shape": f"({B}, {C}, {H}, {W})",
                "fast_ms": 1e3 * medians["fast"],
                "ptwt_ms": 1e3 * medians["ptwt"],
                "speedup": medians["ptwt"] / medians["fast"],
            }
        )
    return rows


def bench_params() -> list[dict]:
    rows = []
    for size, paper in PAPER_PARAMS.items():
        for name, cls in MIXERS.items():
            n = VisionTransformer(mixer=cls, size=size, num_classes=10, image_size=32).num_params()
            rows.append(
                {
                    "backbone": f"ViT-{size}/4",
                    "mixer": name,
                    "params_M": n / 1e6,
                    "paper_M": float(paper[name]),
                    "rel_diff": n / 1e6 / paper[name] - 1,
                }
            )
    return rows


def loader_throughput(dm: CIFAR10DataModule, epochs: int) -> float:
    """Images per second through the training loader, device-path augmentation included (on the CPU)."""
    loader = dm.train_dataloader()
    seen, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            if dm.augment_on == "device":
                batch = dm.transform_batch(batch, train=True)
            seen += batch[0].shape[0]
    return seen / (time.perf_counter() - t0)


def bench_loader(cifar10_dir: Path, workers: int, rounds: int = 3, epochs: int = 2) -> list[dict]:
    """Device-path setups timed round-robin; the worker path after them, alone (its processes prefetch in the
    background and would slow whatever runs beside them)."""
    setups = {
        "device: crop+flip+mixup/cutmix": dict(augment=Augment(randaugment_ops=0)),
        "device: + randaugment (n=2, m=9, groups of 16)": dict(augment=Augment()),
    }
    modules = {name: CIFAR10DataModule(data_dir=cifar10_dir, batch_size=512, **kw) for name, kw in setups.items()}
    for dm in modules.values():
        dm.setup("fit")
        loader_throughput(dm, 1)  # warm-up
    results: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(rounds):
        for name, dm in modules.items():
            results[name].append(loader_throughput(dm, epochs))
    name = f"workers ({workers}): full recipe"
    dm = CIFAR10DataModule(data_dir=cifar10_dir, batch_size=512, augment_on="workers", num_workers=workers)
    dm.setup("fit")
    loader_throughput(dm, 1)
    results[name] = [loader_throughput(dm, epochs) for _ in range(rounds)]
    n = len(dm.splits["train"])
    return [
        {"path": k, "batch": 512, "train_images": n, "images_per_s": statistics.median(v)} for k, v in results.items()
    ]


SECTIONS = ("mixers", "haar", "params", "loader")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mwa_lightning.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per candidate (median reported)")
    parser.add_argument("--out", type=Path, default=Path("bench_results"), help="folder for the CSV files")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cifar10-dir", type=Path, default=Path("data"), help="folder holding cifar-10-batches-py/")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the worker path")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, repeats {args.repeats}")

    if "loader" in args.sections:
        rows = bench_loader(args.cifar10_dir, args.workers)
        print_table("training loader on CIFAR-10, batch 512 (images/s, median of 3 rounds)", rows, list(rows[0]))
        write_csv(args.out / "loader.csv", rows)
    if "mixers" in args.sections:
        rows = bench_mixers(args.repeats, device)
        print_table("token mixers, forward+backward (median ms)", rows, list(rows[0]))
        write_csv(args.out / "mixers.csv", rows)
    if "haar" in args.sections:
        rows = bench_haar(args.repeats, device)
        print_table("Haar DWT+IDWT forward+backward: fast path vs ptwt (median ms)", rows, list(rows[0]))
        write_csv(args.out / "haar.csv", rows)
    if "params" in args.sections:
        rows = bench_params()
        print_table("parameters at 32 px, 10 classes", rows, list(rows[0]))
        write_csv(args.out / "params.csv", rows)


if __name__ == "__main__":
    main()
