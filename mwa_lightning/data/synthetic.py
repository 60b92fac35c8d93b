"""Synthetic, offline classification tasks that pull the token mixers' mechanisms apart.

Two tasks, each generated in memory from a seed, 32x32 RGB, 10 balanced classes:

- :class:`SyntheticDataModule`, the *two-scale* task (local, multiscale structure; the quickstart's data);
- :class:`PeriodicDataModule`, the *global periodic* task (a class read off image-wide frequencies, with no
  local or multiscale cue), where a Fourier mixer is expected to beat a wavelet one.

The two-scale task

Each 32x32 RGB image carries two independent factors:

- a coarse factor ``c`` in {0, 1}: one period of a cosine wave spanning the whole image, running along x
  (c = 0) or along y (c = 1), with a random phase and a random colour tint. A single 4x4 patch sees an almost
  flat patch; telling the direction needs tokens from across the image.
- a fine factor ``f`` in {0, ..., 4}: a texture a few pixels wide -- vertical stripes, horizontal stripes, a
  2 px checkerboard, a diagonal cross-hatch, a lattice of dots (periods of 4 px) -- in a ``window``-px square
  at a random position.

The label is ``5 * c + f``: 10 balanced classes, and neither scale alone determines the class (the coarse
factor leaves 5 candidates, the fine factor 2; a classifier blind to one scale cannot pass 50%). Gaussian
pixel noise sits on top. Every factor is invariant under a horizontal flip and small shifts, so the usual
crop and flip keep labels intact. Generation is vectorised and deterministic from ``seed``: 12,000 images take
about a second.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from mwa_lightning.data.base import InMemoryDataModule, Split

NUM_COARSE, NUM_FINE = 2, 5


def textures(size: int) -> Tensor:
    """The five fine textures on a ``size`` x ``size`` grid, values in {-1, +1}: ``(5, size, size)``."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    sign = lambda b: b.float() * 2 - 1  # noqa: E731
    return torch.stack(
        [
            sign((x // 2) % 2 == 0),  # vertical stripes, period 4
            sign((y // 2) % 2 == 0),  # horizontal stripes, period 4
            sign((x // 2 + y // 2) % 2 == 0),  # checkerboard of 2 px squares
            sign(((x + y) // 2) % 2 == ((x - y) // 2) % 2),  # diagonal cross-hatch
            sign((x % 4 == 0) & (y % 4 == 0)),  # dots on a 4 px lattice
        ]
    )


def make_two_scale(
    n: int, seed: int, size: int = 32, window: int = 10, noise: float = 0.08
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Generate the task.

    Returns:
        uint8 images ``(n, 3, size, size)``, labels ``(n,)``, and the coarse and fine factors ``(n,)``.
    """
    if not 0 < window <= size:
        raise ValueError(f"window={window} must lie in [1, size={size}]")
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, NUM_COARSE, (n,), generator=g)
    fine = torch.randint(0, NUM_FINE, (n,), generator=g)
    y, x = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    along = torch.where(coarse[:, None, None] == 0, x, y)  # (n, S, S): the wave's axis
    phase = 2 * math.pi * torch.rand(n, 1, 1, generator=g)
    wave = 0.5 + 0.22 * torch.cos(2 * math.pi * along / size + phase)  # (n, S, S) in [0.28, 0.72]
    tint = 0.6 + 0.4 * torch.rand(n, 3, 1, 1, generator=g)  # (n, 3, 1, 1)
    images = wave[:, None] * tint  # (n, 3, S, S)

    top = torch.randint(0, size - window + 1, (n, 1, 1), generator=g)
    left = torch.randint(0, size - window + 1, (n, 1, 1), generator=g)
    inside = (y >= top) & (y < top + window) & (x >= left) & (x < left + window)  # (n, S, S)
    amplitude = 0.10 + 0.06 * torch.rand(n, 1, 1, generator=g)
    images = images + (amplitude * textures(size)[fine] * inside)[:, None]
    images = images + noise * torch.randn(images.shape, generator=g)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, coarse * NUM_FINE + fine, coarse, fine


# radii (cycles per image side) of the periodic task's frequency pool; a class is an unordered pair of them
RADII = (2, 3, 4, 5, 6)
PAIRS = tuple((i, j) for i in range(len(RADII)) for j in range(i + 1, len(RADII)))  # 10 classes


def make_periodic(
    n: int,
    seed: int,
    size: int = 32,
    clutter: float = 0.6,
    noise: float = 0.1,
    amplitude: float = 0.07,
) -> tuple[Tensor, Tensor, Tensor]:
    """Generate the global periodic task.

    Every image is a sum of plane waves ``cos(2 pi r (x or y) / size + phase)`` -- one for each radius r of
    :data:`RADII`, each along x or y at random, with a random phase -- times a random colour tint, plus pixel
    noise. The class is the unordered pair of radii whose waves are strong: their amplitudes are drawn from
    ``U(0.5, 1) * amplitude``, the other three from ``U(0, clutter / 2) * amplitude``. With ``clutter`` above 1
    a distractor can outshine a class wave, which caps the best possible accuracy below 100 %.

    Nothing local tells the classes apart: neighbouring radii differ by one cycle per image, so a window of w
    pixels sees their phases drift apart by only ``w / size`` of a cycle, every image holds all five radii,
    and the waves' directions and phases are random. A global frequency analysis (an FFT of the whole image)
    reads the class off five bins. Exactly periodic on the image (integer cycles), so circular shifts keep the
    label; axis-aligned, so flips keep it too.

    Returns:
        uint8 images ``(n, 3, size, size)``, labels ``(n,)``, and the wave amplitudes ``(n, len(RADII))``.
    """
    if clutter < 0:
        raise ValueError(f"clutter={clutter} must be >= 0")
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(PAIRS), (n,), generator=g)
    strong = torch.zeros(n, len(RADII), dtype=torch.bool)
    pairs = torch.tensor(PAIRS)[labels]  # (n, 2)
    strong[torch.arange(n)[:, None], pairs] = True
    amps = torch.where(
        strong,
        0.5 + 0.5 * torch.rand(n, len(RADII), generator=g),
        0.5 * clutter * torch.rand(n, len(RADII), generator=g),
    )
    along_y = torch.randint(0, 2, (n, len(RADII), 1, 1), generator=g).bool()
    phase = 2 * math.pi * torch.rand(n, len(RADII), 1, 1, generator=g)
    y, x = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    radii = torch.tensor(RADII, dtype=torch.float32)[None, :, None, None]
    coordinate = torch.where(along_y, y, x)  # (n, R, S, S)
    waves = (amps[:, :, None, None] * torch.cos(2 * math.pi * radii * coordinate / size + phase)).sum(1)
    tint = 0.7 + 0.3 * torch.rand(n, 3, 1, 1, generator=g)
    images = 0.5 + amplitude * waves[:, None] * tint
    images = images + noise * torch.randn(images.shape, generator=g)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels, amps * amplitude


def periodic_fft_reading(images: Tensor) -> Tensor:
    """The periodic task's class read off a global FFT, no learning: the two radii with the most energy along
    the axes. Its accuracy is about the ceiling that the task's clutter and noise leave to any mixer (the mechanism
    study's figure is in the README's Results)."""
    grey = images.float().mean(1)
    spectrum = torch.fft.fft2(grey - grey.mean((1, 2), keepdim=True)).abs()
    energy = torch.stack([torch.maximum(spectrum[:, 0, r], spectrum[:, r, 0]) for r in RADII], 1)
    pair = energy.topk(2, 1).indices.sort(1).values  # (n, 2) radius indices, ascending
    lookup = torch.full((len(RADII), len(RADII)), -1, dtype=torch.long)
    for label, (i, j) in enumerate(PAIRS):
        lookup[i, j] = label
    return lookup[pair[:, 0], pair[:, 1]]


class GeneratedDataModule(InMemoryDataModule):
    """A task generated in memory from a seed: train and test are independent draws.

    Args:
        num_train: training images.
        num_test: test images (an independent draw).
        data_seed: seed of the generator; train and test use ``data_seed`` and ``data_seed + 1``.
        **kwargs: the shared settings of :class:`~mwa_lightning.data.base.ClassificationDataModule`.
    """

    def __init__(self, num_train: int = 10_000, num_test: int = 2_000, data_seed: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_train, self.num_test, self.data_seed = num_train, num_test, data_seed

    def generate(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """``n`` uint8 images and their labels drawn from ``seed``."""
        raise NotImplementedError(f"{type(self).__name__} must implement generate")

    def load_split(self, split: Split) -> tuple[Tensor, Tensor]:
        if split == "train":
            return self.generate(self.num_train, self.data_seed)
        return self.generate(self.num_test, self.data_seed + 1)


class SyntheticDataModule(GeneratedDataModule):
    """The two-scale synthetic task (module docstring), generated in memory: the offline default.

    Args:
        window: side of the fine texture's square, in pixels.
        noise: standard deviation of the pixel noise (on a [0, 1] scale).
        **kwargs: ``num_train``, ``num_test``, ``data_seed`` (:class:`GeneratedDataModule`) and the shared
            settings of :class:`~mwa_lightning.data.base.ClassificationDataModule`.
    """

    num_classes = NUM_COARSE * NUM_FINE
    image_size = 32
    MEAN = (0.4, 0.4, 0.4)
    STD = (0.16, 0.16, 0.16)

    def __init__(self, window: int = 10, noise: float = 0.08, **kwargs: Any):
        super().__init__(**kwargs)
        self.window, self.noise = window, noise

    def generate(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        images, labels, _, _ = make_two_scale(n, seed, self.image_size, self.window, self.noise)
        return images, labels

    @property
    def classes(self) -> list[str]:
        waves, tex = ("x-wave", "y-wave"), ("v-stripes", "h-stripes", "checker", "cross-hatch", "dots")
        return [f"{w}+{t}" for w in waves for t in tex]


class PeriodicDataModule(GeneratedDataModule):
    """The global periodic task (:func:`make_periodic`), generated in memory.

    Args:
        clutter: strength of the three distractor waves relative to the class waves (see :func:`make_periodic`).
        noise: standard deviation of the pixel noise (on a [0, 1] scale).
        amplitude: amplitude of a full-strength wave (on a [0, 1] scale).
        **kwargs: ``num_train``, ``num_test``, ``data_seed`` (:class:`GeneratedDataModule`) and the shared
            settings of :class:`~mwa_lightning.data.base.ClassificationDataModule`.
    """

    num_classes = len(PAIRS)
    image_size = 32
    MEAN = (0.5, 0.5, 0.5)
    STD = (0.15, 0.15, 0.15)

    def __init__(self, clutter: float = 0.6, noise: float = 0.1, amplitude: float = 0.07, **kwargs: Any):
        super().__init__(**kwargs)
        if clutter < 0:
            raise ValueError(f"clutter={clutter} must be >= 0")
        self.clutter, self.noise, self.amplitude = clutter, noise, amplitude

    def generate(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        images, labels, _ = make_periodic(n, seed, self.image_size, self.clutter, self.noise, self.amplitude)
        return images, labels

    @property
    def classes(self) -> list[str]:
        return [f"r{RADII[i]}+r{RADII[j]}" for i, j in PAIRS]
