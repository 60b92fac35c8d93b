"""Side-by-side benchmarks: ``python -m mwa_lightning.bench [--sections ...] [--out DIR] ...``.

Sections (all but ``loader`` by default; each writes ``<section>.csv`` under ``--out``):

- ``mixers``: forward+backward time of each token mixer at width 384, on an 8x8 grid (batch 128) and a
  16x16 grid (batch 32); ratios against AFNO and GFNet.
- ``haar``: the exact Haar fast path against ptwt, DWT+IDWT forward and backward, at (128, 384, 8, 8) and
  (32, 384, 16, 16) (each in its native layout: ptwt NCHW, the fast path channels last).
- ``flops``: parameters and FLOPs of every backbone x mixer, at 32 px (10 classes) and, for XS/S, 64 px
  (200 classes), beside the paper's table (see :mod:`mwa_lightning.flops` for the convention).
- ``models``: whole-model timing of ``--sizes`` x mixers at 32 px and batch ``--batch``: forward (inference)
  time, training-step time (forward, backward, AdamW step), training throughput, peak memory of a training step
  (CPU: resident-set growth, measured in a fresh process per model; CUDA: max allocated); ratios against GFNet.
- ``scaling``: each mixer alone at width 384 on token grids 8x8 to 64x64 with the same number of tokens per
  batch (``--tokens``): forward+backward time and peak memory per token; ratios against GFNet; a PNG plot.
- ``loader``: training-loader throughput (images/s) on CIFAR-10 (``--cifar10-dir``) at batch 512 with the
  paper's recipe: the device path (batched, here on the CPU) with crop + flip + MixUp/CutMix, the same with
  RandAugment added, and the worker path (per image in ``--workers`` DataLoader workers) with the full recipe.

Timed candidates run round-robin (one step of each in turn, ``--repeats`` rounds after warm-up), so that a
noisy, shared machine slows them alike; tables give medians and ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import math
import multiprocessing as mp
import resource
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ptwt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mwa_lightning.data import Augment, CIFAR10DataModule
from mwa_lightning.flops import model_flops
from mwa_lightning.models import AFNO, GlobalFilter, MultiscaleWaveletAttention, SelfAttention, VisionTransformer
from mwa_lightning.models.transforms import haar_dwt2, haar_idwt2
from mwa_lightning.runtime import malloc_returns_memory, tune_malloc

MIXERS: dict[str, type[nn.Module]] = {
    "attention": SelfAttention,
    "afno": AFNO,
    "gfn": GlobalFilter,
    "mwa": MultiscaleWaveletAttention,
}
# the paper's table: parameters (M) and GFLOPs (one multiply-add = one FLOP) at 32 px / 64 px
PAPER = {
    (32, "XS"): {"attention": (9, 0.58), "afno": (7, 0.46), "gfn": (6, 0.38), "mwa": (7, 0.48)},
    (32, "S"): {"attention": (21, 1.40), "afno": (16, 1.05), "gfn": (15, 0.90), "mwa": (16, 1.095)},
    (32, "B"): {"attention": (85, 5.52), "afno": (66, 4.39), "gfn": (58, 3.63), "mwa": (66, 4.37)},
    (64, "XS"): {"attention": (9, 2.53), "afno": (7, 1.80), "gfn": (7, 1.52), "mwa": (7, 1.92)},
    (64, "S"): {"attention": (21, 6.07), "afno": (17, 4.32), "gfn": (16, 3.64), "mwa": (17, 4.54)},
}


# ---------------------------------------------------------------------------------------------- timing helpers
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


def race(steps: dict[str, Callable[[], None]], repeats: int, device: torch.device, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each closure, timed round-robin."""
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


def peak_memory(build: Callable[[], Callable[[], None]], device: torch.device) -> float:
    """Bytes a step needs beyond what ``build`` set up: CUDA max allocated, or (CPU) growth of the peak RSS of
    a fresh process (``build`` must be picklable)."""
    if device.type == "cuda":
        step = build()
        step()  # allocate optimizer state and caches once
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        sync(device)
        return float(torch.cuda.max_memory_allocated(device) - base)
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_rss_growth, (build,))


def _current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _rss_growth(build: Callable[[], Callable[[], None]]) -> float:
    """Peak resident-set growth over one call of a freshly built step, sampled every 0.5 ms and checked
    against the kernel's high-water mark; malloc set to return freed blocks at once, so that the resident set
    follows the live tensors."""
    malloc_returns_memory()
    step = build()
    gc.collect()
    base = _current_rss()
    high_water = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak, done = base, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _current_rss())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    step()
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if after > high_water:  # the kernel saw a new high-water mark during the step
        peak = max(peak, after)
    return float(peak - base)


# ---------------------------------------------------------------------------------------------- output
def print_table(title: str, rows: list[dict], columns: Sequence[str] | None = None) -> None:
    columns = columns or list(rows[0])

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


# ---------------------------------------------------------------------------------------------- sections
class _MixerStep:
    """A picklable builder of one forward+backward of a mixer alone on a token grid."""

    def __init__(self, mixer: str, side: int, batch: int, dim: int, device: str):
        self.mixer, self.side, self.batch, self.dim, self.device = mixer, side, batch, dim, device

    def __call__(self) -> Callable[[], None]:
        torch.manual_seed(0)
        mixer = MIXERS[self.mixer](dim=self.dim, grid_size=(self.side, self.side)).to(self.device)
        x = torch.randn(self.batch, self.side, self.side, self.dim, device=self.device)
        return train_step(mixer, x, list(mixer.parameters()))


MIXER_SHAPES = [(128, 8, 384), (32, 16, 384)]  # (batch, grid side, width)


def bench_mixers(args: argparse.Namespace, device: torch.device) -> list[dict]:
    rows = []
    for batch, side, dim in MIXER_SHAPES:
        steps = {name: _MixerStep(name, side, batch, dim, device.type)() for name in MIXERS}
        medians = race(steps, args.repeats, device)
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


def bench_haar(args: argparse.Namespace, device: torch.device) -> list[dict]:
    def fast(x: Tensor) -> Tensor:  # channels last (B, H, W, C)
        return haar_idwt2(haar_dwt2(x))

    def reference(x: Tensor) -> Tensor:  # NCHW, ptwt's native layout
        return ptwt.waverec2(ptwt.wavedec2(x, "haar", level=1, mode="zero"), "haar")

    rows = []
    for B, C, H, W in HAAR_SHAPES:
        x = torch.randn(B, C, H, W, device=device)
        steps = {"fast": train_step(fast, x.permute(0, 2, 3, 1).contiguous()), "ptwt": train_step(reference, x)}
        medians = race(steps, args.repeats, device)
        rows.append(
            {
                "shape": f"({B}, {C}, {H}, {W})",
                "fast_ms": 1e3 * medians["fast"],
                "ptwt_ms": 1e3 * medians["ptwt"],
                "speedup": medians["ptwt"] / medians["fast"],
            }
        )
    return rows


def bench_flops(args: argparse.Namespace, device: torch.device) -> list[dict]:
    rows = []
    for (image_size, size), paper in PAPER.items():
        for name, cls in MIXERS.items():
            classes = 10 if image_size == 32 else 200
            model = VisionTransformer(mixer=cls, size=size, num_classes=classes, image_size=image_size)
            flops = model_flops(model, image_size)
            paper_params, paper_gflops = paper[name]
            rows.append(
                {
                    "image": image_size,
                    "backbone": f"ViT-{size}/4",
                    "mixer": name,
                    "params_M": model.num_params() / 1e6,
                    "paper_params_M": float(paper_params),
                    "GFLOPs": flops / 1e9,
                    "GMACs": flops / 2e9,
                    "paper_GFLOPs": paper_gflops,
                    "GMACs_vs_paper": flops / 2e9 / paper_gflops - 1,
                }
            )
    return rows


class _ModelStep:
    """A picklable builder of one training step of a ViT at 32 px (bf16 autocast on CUDA, float32 on CPU)."""

    def __init__(self, mixer: str, size: str, batch: int, device: str):
        self.mixer, self.size, self.batch, self.device = mixer, size, batch, device

    def model(self) -> nn.Module:
        torch.manual_seed(0)
        return VisionTransformer(mixer=MIXERS[self.mixer], size=self.size).to(self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.device == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self) -> Callable[[], None]:
        model = self.model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randn(self.batch, 3, 32, 32, device=self.device)
        y = torch.randint(0, 10, (self.batch,), device=self.device)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

        return step


def bench_models(args: argparse.Namespace, device: torch.device) -> list[dict]:
    rows = []
    for size in args.sizes:
        builders = {name: _ModelStep(name, size, args.batch, device.type) for name in MIXERS}
        steps = {name: b() for name, b in builders.items()}
        train = race(steps, args.repeats, device, warmup=1)
        forwards = {}
        for name, b in builders.items():
            model = b.model().eval()
            x = torch.randn(args.batch, 3, 32, 32, device=device)

            def forward(model=model, x=x, b=b) -> None:
                with torch.inference_mode(), b.autocast():
                    model(x)

            forwards[name] = forward
        infer = race(forwards, args.repeats, device, warmup=1)
        for name, b in builders.items():
            memory = peak_memory(b, device) if args.memory else math.nan
            rows.append(
                {
                    "backbone": f"ViT-{size}/4",
                    "mixer": name,
                    "batch": args.batch,
                    "forward_ms": 1e3 * infer[name],
                    "train_step_ms": 1e3 * train[name],
                    "train_images_per_s": args.batch / train[name],
                    "throughput_vs_gfn": train["gfn"] / train[name],
                    "peak_MiB": memory / 2**20,
                }
            )
    return rows


SCALING_SIDES = (8, 16, 32, 64)


def bench_scaling(args: argparse.Namespace, device: torch.device) -> list[dict]:
    rows = []
    for side in SCALING_SIDES:
        batch = max(1, args.tokens // (side * side))
        tokens = batch * side * side
        builders = {name: _MixerStep(name, side, batch, 384, device.type) for name in MIXERS}
        medians = race({name: b() for name, b in builders.items()}, args.repeats, device, warmup=1)
        for name, b in builders.items():
            memory = peak_memory(b, device) if args.memory else math.nan
            rows.append(
                {
                    "grid": f"{side}x{side}",
                    "tokens_per_image": side * side,
                    "batch": batch,
                    "mixer": name,
                    "fwd_bwd_ms": 1e3 * medians[name],
                    "us_per_token": 1e6 * medians[name] / tokens,
                    "time_vs_gfn": medians[name] / medians["gfn"],
                    "KiB_per_token": memory / 1024 / tokens,
                }
            )
    return rows


def plot_scaling(rows: list[dict], path: Path) -> None:
    """Time (and, when measured, memory) per token against tokens per image, a line per mixer, log-log."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend (e.g. a notebook's) alone

    panels = [("us_per_token", "time per token (us), forward+backward")]
    if any(math.isfinite(r["KiB_per_token"]) for r in rows):
        panels.append(("KiB_per_token", "peak memory per token (KiB)"))
    fig = Figure(figsize=(5 * len(panels), 4))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for name in MIXERS:
            mine = [r for r in rows if r["mixer"] == name]
            ax.plot([r["tokens_per_image"] for r in mine], [r[key] for r in mine], marker="o", label=name)
        ax.set_xscale("log", base=2)
        if key == "us_per_token":
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("tokens per image (grid 8x8 ... 64x64)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend()
    fig.suptitle("Token mixers at width 384, same tokens per batch")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


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


def bench_loader(args: argparse.Namespace, device: torch.device, rounds: int = 3, epochs: int = 2) -> list[dict]:
    """Device-path setups timed round-robin; the worker path after them, alone (its processes prefetch in the
    background and would slow whatever runs beside them)."""
    setups = {
        "device: crop+flip+mixup/cutmix": dict(augment=Augment(randaugment_ops=0)),
        "device: + randaugment (n=2, m=9, groups of 16)": dict(augment=Augment()),
    }
    modules = {name: CIFAR10DataModule(data_dir=args.cifar10_dir, batch_size=512, **kw) for name, kw in setups.items()}
    for dm in modules.values():
        dm.setup("fit")
        loader_throughput(dm, 1)  # warm-up
    results: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(rounds):
        for name, dm in modules.items():
            results[name].append(loader_throughput(dm, epochs))
    name = f"workers ({args.workers}): full recipe"
    dm = CIFAR10DataModule(data_dir=args.cifar10_dir, batch_size=512, augment_on="workers", num_workers=args.workers)
    dm.setup("fit")
    loader_throughput(dm, 1)
    results[name] = [loader_throughput(dm, epochs) for _ in range(rounds)]
    n = len(dm.splits["train"])
    return [
        {"path": k, "batch": 512, "train_images": n, "images_per_s": statistics.median(v)} for k, v in results.items()
    ]


SECTIONS: dict[str, tuple[Callable[[argparse.Namespace, torch.device], list[dict]], str]] = {
    "mixers": (bench_mixers, "token mixers alone, forward+backward (median ms)"),
    "haar": (bench_haar, "Haar DWT+IDWT forward+backward: fast path vs ptwt (median ms)"),
    "flops": (bench_flops, "parameters and FLOPs per image (PyTorch FLOPs; GMACs = FLOPs / 2, the paper's unit)"),
    "models": (bench_models, "whole models at 32 px: forward, training step, throughput, peak memory"),
    "scaling": (bench_scaling, "mixers alone at width 384 on growing token grids (same tokens per batch)"),
    "loader": (bench_loader, "training loader on CIFAR-10, batch 512 (images/s, median of 3 rounds)"),
}
DEFAULT_SECTIONS = ("mixers", "haar", "flops", "models", "scaling")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mwa_lightning.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(DEFAULT_SECTIONS))
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per candidate (median reported)")
    parser.add_argument("--out", type=Path, default=Path("bench_results"), help="folder for the CSV and PNG files")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", nargs="+", default=["XS", "S", "B"], help="backbones of the models section")
    parser.add_argument("--batch", type=int, default=64, help="batch of the models section")
    parser.add_argument("--tokens", type=int, default=16384, help="tokens per batch of the scaling section")
    parser.add_argument("--cifar10-dir", type=Path, default=Path("data"), help="folder holding cifar-10-batches-py/")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the worker path")
    parser.add_argument(
        "--memory", action=argparse.BooleanOptionalAction, default=True, help="measure peak memory (models, scaling)"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    tuned = tune_malloc()
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"# torch {torch.__version__}, {name}, repeats {args.repeats}, malloc tuned: {tuned}")
    for section in args.sections:
        fn, title = SECTIONS[section]
        rows = fn(args, device)
        print_table(title, rows)
        write_csv(args.out / f"{section}.csv", rows)
        if section == "scaling":
            plot_scaling(rows, args.out / "scaling.png")


if __name__ == "__main__":
    main()
