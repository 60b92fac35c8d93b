"""Primitives the token mixers share: the float32 region, the channels-last convolution, the grid check, and
convolution kernels over a grid (a sequence is the ``(1, L)`` grid: its kernels are 1-D)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

LOW_PRECISION = (torch.float16, torch.bfloat16)


@contextlib.contextmanager
def float32_region(x: Tensor) -> Iterator[None]:
    """Disable autocast on ``x``'s device for the enclosed block (cast low-precision inputs with
    :func:`to_float32`). FFTs and ptwt need it: ptwt raises on bf16, cuFFT/pocketfft have no bf16."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        yield


def to_float32(x: Tensor) -> Tensor:
    """Cast float16/bfloat16 to float32; leave float32 and float64 alone."""
    return x.float() if x.dtype in LOW_PRECISION else x


def conv_channels_last(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """Apply a Conv2d to a channels-last grid ``(N, H, W, C)`` without copying it to NCHW."""
    return conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def check_grid(mixer: nn.Module, x: Tensor) -> None:
    """Raise unless the mixer can mix the tokens ``x`` (B, H, W, C): a mixer whose weights do not depend on the
    grid (``grid_free = True``) takes any grid its ``accepts_grid`` (if it has one) allows, e.g. MWA any grid its
    wavelet levels divide; the others only the grid they were built for (``mixer.grid_size``)."""
    got = tuple(x.shape[1:3])
    if getattr(mixer, "grid_free", False):
        if hasattr(mixer, "accepts_grid"):
            mixer.accepts_grid(got)
        return
    if got != tuple(mixer.grid_size):
        raise ValueError(f"{type(mixer).__name__} was built for a {tuple(mixer.grid_size)} grid, got {got}")


def grid_kernel(kernel_size: int, grid_size: tuple[int, int] | None) -> tuple[int, int]:
    """A ``k x k`` convolution kernel over the token grid, ``k`` along every axis longer than one token: on a
    sequence's ``(1, L)`` grid, ``(1, k)``, a 1-D convolution along the sequence."""
    if grid_size is None:
        return (kernel_size, kernel_size)
    return tuple(kernel_size if side > 1 else 1 for side in grid_size)  # type: ignore[return-value]


def same_padding(kernel: tuple[int, int], dilation: int = 1) -> tuple[int, int]:
    """The padding that keeps the grid's size for an odd ``kernel`` (with ``dilation``)."""
    return tuple(dilation * (k // 2) for k in kernel)  # type: ignore[return-value]


class ParameterFree(nn.Module):
    """Base of the mixers without parameters: they keep only the grid they were built for, and take any grid.

    Args:
        dim: channels C (unused).
        grid_size: token grid (H, W).
    """

    grid_free = True  # no weights at all

    def __init__(self, dim: int, grid_size: tuple[int, int]):
        super().__init__()
        self.grid_size = tuple(grid_size)


def check_divisor(name: str, channels: int, groups: int) -> None:
    """Raise unless ``groups`` is a positive divisor of ``channels`` (naming the option ``name``)."""
    if groups < 1 or channels % groups:
        raise ValueError(f"{name}={groups} must be a positive divisor of the {channels} channels it splits")


__all__ = [
    "ParameterFree",
    "check_divisor",
    "check_grid",
    "conv_channels_last",
    "float32_region",
    "grid_kernel",
    "same_padding",
    "to_float32",
]
