"""Primitives the token mixers share: the float32 region, the channels-last convolution, the grid check."""

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
    """Raise unless the tokens ``x`` (B, H, W, C) lie on the grid the mixer was built for (``mixer.grid_size``)."""
    got = tuple(x.shape[1:3])
    if got != tuple(mixer.grid_size):
        raise ValueError(f"{type(mixer).__name__} was built for a {tuple(mixer.grid_size)} grid, got {got}")


def check_divisor(name: str, channels: int, groups: int) -> None:
    """Raise unless ``groups`` is a positive divisor of ``channels`` (naming the option ``name``)."""
    if groups < 1 or channels % groups:
        raise ValueError(f"{name}={groups} must be a positive divisor of the {channels} channels it splits")


__all__ = ["check_divisor", "check_grid", "conv_channels_last", "float32_region", "to_float32"]
