"""Timing and memory helpers of the benchmark: round-robin medians, peak memory of one step.

Timed candidates run round-robin (one step of each in turn, ``repeats`` rounds after warm-up), so that a noisy,
shared machine slows them alike; callers report medians and ratios.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import resource
import statistics
import threading
import time
from collections.abc import Callable, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from mwa_lightning.training.malloc import malloc_returns_memory


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


class StepTimer(Callback):
    """Wall time of the training steps after the first ``warmup`` (device synchronised), and peak GPU memory."""

    def __init__(self, warmup: int = 20):
        self.warmup = warmup
        self.start: float | None = None
        self.steps = 0
        self.seconds = float("nan")
        self.images = 0

    def _sync(self, trainer: L.Trainer) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            self._sync(trainer)
            self.start, self.steps, self.images = time.perf_counter(), 0, 0
            if trainer.strategy.root_device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(trainer.strategy.root_device)
        elif self.start is not None:
            self.steps += 1
            self.images += batch[0].shape[0]

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        self._sync(trainer)
        if self.start is not None:
            self.seconds = time.perf_counter() - self.start

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.steps else float("nan")
