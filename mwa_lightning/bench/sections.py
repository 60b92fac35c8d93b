"""The benchmark's sections. Each takes explicit arguments and returns a list of rows (dicts), so notebooks
import them instead of re-implementing them; :mod:`mwa_lightning.bench.__main__` is the command line.

``mixers`` arguments are ``{name: mixer class}`` (default: every registered mixer, see
:mod:`mwa_lightning.models.mixers.registry`); ratios are taken against a reference mixer when it is present.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ptwt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mwa_lightning.bench.references import (
    COST_CLASSES,
    IMAGENET_CLASSES,
    IMAGENET_PATCH,
    IMAGENET_SIZE,
    MODEL_COST,
    model_cost,
    reference_name,
)
from mwa_lightning.bench.timing import peak_memory, race, train_step
from mwa_lightning.data import Augment, CIFAR10DataModule
from mwa_lightning.models import VisionTransformer
from mwa_lightning.models.mixers import mixer_classes
from mwa_lightning.models.mixers.wavelet_fft import haar_dwt2, haar_idwt2
from mwa_lightning.training.flops import model_flops

Mixers = dict[str, type[nn.Module]]


def _mixers(mixers: Mixers | None) -> Mixers:
    return mixer_classes() if mixers is None else dict(mixers)


def _ratio(value: float, medians: dict[str, float], reference: str) -> float:
    return value / medians[reference] if reference in medians else math.nan


# ---------------------------------------------------------------------------------------------- mixers alone
class MixerStep:
    """A picklable builder of one forward+backward of a mixer alone on a token grid."""

    def __init__(self, mixer: type[nn.Module], side: int, batch: int, dim: int, device: str):
        self.mixer, self.side, self.batch, self.dim, self.device = mixer, side, batch, dim, device

    def __call__(self) -> Callable[[], None]:
        torch.manual_seed(0)
        mixer = self.mixer(dim=self.dim, grid_size=(self.side, self.side)).to(self.device)
        x = torch.randn(self.batch, self.side, self.side, self.dim, device=self.device)
        return train_step(mixer, x, list(mixer.parameters()))


MIXER_SHAPES = ((128, 8, 384), (32, 16, 384))  # (batch, grid side, width)


def bench_mixers(
    mixers: Mixers | None = None,
    shapes: Sequence[tuple[int, int, int]] = MIXER_SHAPES,
    repeats: int = 7,
    device: str | torch.device = "cpu",
) -> list[dict]:
    """Forward+backward time of each mixer alone at each (batch, grid side, width); ratios vs AFNO and GFNet."""
    mixers, device = _mixers(mixers), torch.device(device)
    rows = []
    for batch, side, dim in shapes:
        steps = {name: MixerStep(cls, side, batch, dim, device.type)() for name, cls in mixers.items()}
        medians = race(steps, repeats, device)
        for name, sec in medians.items():
            rows.append(
                {
                    "mixer": name,
                    "shape": f"({batch}, {side}, {side}, {dim})",
                    "fwd_bwd_ms": 1e3 * sec,
                    "vs_afno": _ratio(sec, medians, "afno"),
                    "vs_gfn": _ratio(sec, medians, "gfn"),
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------- Haar fast path
HAAR_SHAPES = ((128, 384, 8, 8), (32, 384, 16, 16))  # (B, C, H, W)


def bench_haar(
    shapes: Sequence[tuple[int, int, int, int]] = HAAR_SHAPES, repeats: int = 7, device: str | torch.device = "cpu"
) -> list[dict]:
    """The exact Haar fast path against ptwt, DWT+IDWT forward and backward, each in its native layout."""
    device = torch.device(device)

    def fast(x: Tensor) -> Tensor:  # channels last (B, H, W, C)
        return haar_idwt2(haar_dwt2(x))

    def reference(x: Tensor) -> Tensor:  # NCHW, ptwt's native layout
        return ptwt.waverec2(ptwt.wavedec2(x, "haar", level=1, mode="zero"), "haar")

    rows = []
    for B, C, H, W in shapes:
        x = torch.randn(B, C, H, W, device=device)
        steps = {"fast": train_step(fast, x.permute(0, 2, 3, 1).contiguous()), "ptwt": train_step(reference, x)}
        medians = race(steps, repeats, device)
        rows.append(
            {
                "shape": f"({B}, {C}, {H}, {W})",
                "fast_ms": 1e3 * medians["fast"],
                "ptwt_ms": 1e3 * medians["ptwt"],
                "speedup": medians["ptwt"] / medians["fast"],
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------- FLOPs
# (image size, backbone, patch): the MWA paper's table at patch 4, and the ImageNet ViTs at 224 px, patch 16
FLOP_MODELS = tuple((image, size, 4) for image, size in MODEL_COST) + tuple(
    (IMAGENET_SIZE, size, IMAGENET_PATCH) for size in ("S", "B", "L")
)


def bench_flops(mixers: Mixers | None = None, models: Sequence[tuple[int, str, int]] = FLOP_MODELS) -> list[dict]:
    """Parameters and FLOPs per image of every (image size, backbone, patch) x mixer, beside a paper's figures
    where one has them (the MWA paper's; at 224 px DeiT's and GFNet's ImageNet models; NaN elsewhere)."""
    rows = []
    for image_size, size, patch in models:
        classes = COST_CLASSES.get(image_size, IMAGENET_CLASSES)
        for name, cls in _mixers(mixers).items():
            model = VisionTransformer(
                mixer=cls, size=size, num_classes=classes, image_size=image_size, patch_size=patch
            )
            flops = model_flops(model, image_size)
            paper_params, paper_gflops = model_cost(image_size, size, name) or (math.nan, math.nan)
            rows.append(
                {
                    "image": image_size,
                    "backbone": f"ViT-{size}/{model.patch_size}",
                    "grid": f"{model.grid_size[0]}x{model.grid_size[1]}",
                    "mixer": name,
                    "reference": reference_name(image_size, size, name),
                    "params_M": model.num_params() / 1e6,
                    "paper_params_M": float(paper_params),
                    "GFLOPs": flops / 1e9,
                    "GMACs": flops / 2e9,
                    "paper_GFLOPs": paper_gflops,
                    "GMACs_vs_paper": flops / 2e9 / paper_gflops - 1,
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------- whole models
class ModelStep:
    """A picklable builder of one training step of a ViT (bf16 autocast on CUDA, float32 on CPU)."""

    def __init__(
        self,
        mixer: type[nn.Module],
        size: str,
        batch: int,
        device: str,
        compile: bool = False,
        image_size: int = 32,
        patch_size: int = 4,
    ):
        self.mixer, self.size, self.batch, self.device, self.compile = mixer, size, batch, device, compile
        self.image_size, self.patch_size = image_size, patch_size

    def model(self) -> nn.Module:
        torch.manual_seed(0)
        model = VisionTransformer(
            mixer=self.mixer, size=self.size, image_size=self.image_size, patch_size=self.patch_size
        ).to(self.device)
        if self.compile:
            model.compile()
        return model

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.device == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self) -> Callable[[], None]:
        model = self.model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randn(self.batch, 3, self.image_size, self.image_size, device=self.device)
        y = torch.randint(0, 10, (self.batch,), device=self.device)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

        return step


def bench_models(
    mixers: Mixers | None = None,
    sizes: Sequence[str] = ("XS", "S", "B"),
    batch: int = 64,
    repeats: int = 7,
    device: str | torch.device = "cpu",
    memory: bool = True,
    compile: bool = False,
    image_size: int = 32,
    patch_size: int = 4,
) -> list[dict]:
    """Whole models (32 px, patch 4 by default; ImageNet's: 224 px, patch 16): forward (inference) time,
    training-step time (forward, backward, AdamW), training throughput, peak memory of a training step (CPU:
    resident-set growth in a fresh process; CUDA: max allocated); ratios against GFNet."""
    mixers, device = _mixers(mixers), torch.device(device)
    rows = []
    for size in sizes:
        builders = {
            name: ModelStep(cls, size, batch, device.type, compile, image_size, patch_size)
            for name, cls in mixers.items()
        }
        train = race({name: b() for name, b in builders.items()}, repeats, device, warmup=1 + 2 * compile)
        forwards = {}
        for name, b in builders.items():
            model = b.model().eval()
            x = torch.randn(batch, 3, image_size, image_size, device=device)

            def forward(model=model, x=x, b=b) -> None:
                with torch.inference_mode(), b.autocast():
                    model(x)

            forwards[name] = forward
        infer = race(forwards, repeats, device, warmup=1 + 2 * compile)
        for name, b in builders.items():
            peak = peak_memory(b, device) if memory else math.nan
            rows.append(
                {
                    "backbone": f"ViT-{size}/{patch_size}",
                    "image": image_size,
                    "mixer": name,
                    "compiled": compile,
                    "batch": batch,
                    "forward_ms": 1e3 * infer[name],
                    "train_step_ms": 1e3 * train[name],
                    "train_images_per_s": batch / train[name],
                    "throughput_vs_gfn": train["gfn"] / train[name] if "gfn" in train else math.nan,
                    "peak_MiB": peak / 2**20,
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------- scaling
SCALING_SIDES = (8, 16, 32, 64)


def bench_scaling(
    mixers: Mixers | None = None,
    sides: Sequence[int] = SCALING_SIDES,
    tokens: int = 16384,
    repeats: int = 7,
    device: str | torch.device = "cpu",
    memory: bool = True,
    dim: int = 384,
) -> list[dict]:
    """Each mixer alone at width ``dim`` on token grids ``side`` x ``side`` with the same number of tokens per
    batch: forward+backward time and peak memory per token; time ratios against GFNet."""
    mixers, device = _mixers(mixers), torch.device(device)
    rows = []
    for side in sides:
        batch = max(1, tokens // (side * side))
        total = batch * side * side
        builders = {name: MixerStep(cls, side, batch, dim, device.type) for name, cls in mixers.items()}
        medians = race({name: b() for name, b in builders.items()}, repeats, device, warmup=1)
        for name, b in builders.items():
            peak = peak_memory(b, device) if memory else math.nan
            rows.append(
                {
                    "grid": f"{side}x{side}",
                    "tokens_per_image": side * side,
                    "batch": batch,
                    "mixer": name,
                    "fwd_bwd_ms": 1e3 * medians[name],
                    "us_per_token": 1e6 * medians[name] / total,
                    "time_vs_gfn": _ratio(medians[name], medians, "gfn"),
                    "KiB_per_token": peak / 1024 / total,
                }
            )
    return rows


def plot_scaling(rows: list[dict], path: Path | None = None, title: str = "Token mixers at width 384"):
    """Time (and, when measured, memory) per token against tokens per image, a line per mixer, log-log.

    Returns the matplotlib Figure; saves it to ``path`` when given."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend (e.g. a notebook's) alone

    panels = [("us_per_token", "time per token (us), forward+backward")]
    if any(math.isfinite(r["KiB_per_token"]) for r in rows):
        panels.append(("KiB_per_token", "peak memory per token (KiB)"))
    fig = Figure(figsize=(5 * len(panels), 4))
    axes = fig.subplots(1, len(panels), squeeze=False)
    names = list(dict.fromkeys(r["mixer"] for r in rows))
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for name in names:
            mine = [r for r in rows if r["mixer"] == name]
            ax.plot([r["tokens_per_image"] for r in mine], [r[key] for r in mine], marker="o", label=name)
        ax.set_xscale("log", base=2)
        if key == "us_per_token":
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("tokens per image (grid side x side)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend()
    fig.suptitle(f"{title}, same tokens per batch")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        print(f"wrote {path}")
    return fig


# ---------------------------------------------------------------------------------------------- loader
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


def bench_loader(cifar10_dir: str | Path, workers: int = 2, rounds: int = 3, epochs: int = 2) -> list[dict]:
    """Training-loader throughput on CIFAR-10 at batch 512 with the paper's recipe: device-path setups timed
    round-robin; the worker path after them, alone (its processes prefetch in the background and would slow
    whatever runs beside them)."""
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
