"""Local token mixers: the local branch any mixer can take, and the plain convolution of a fair comparison (the
other control, no mixing at all, is :mod:`~mwa_lightning.models.mixers.identity`).

- :class:`LocalBranch`: ``GELU(conv1x1(x)) + GELU(conv3x3(x))`` on the token grid, the two convolution "skips"
  of MWA made one module, so that every mixer can get exactly the same local path (the backbone's
  ``local_branch`` option adds it beside any mixer; MWA uses it for its own skips).
- :class:`ConvMixer` (``conv``): one depthwise or grouped k x k convolution, optionally dilated: the plain
  local-convolution row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mwa_lightning.models.mixers.common import (
    check_divisor,
    check_grid,
    conv_channels_last,
    grid_kernel,
    same_padding,
)

# IdentityMixer's first home: its class path there (mwa_lightning.models.mixers.local.IdentityMixer, the registry's
# until it moved to identity.py) still resolves, so that a config or a run folder written before builds the same model
from mwa_lightning.models.mixers.identity import IdentityMixer


class LocalBranch(nn.Module):
    """``GELU(conv1x1(x)) + GELU(conv3x3(x))`` on channels-last tokens ``(B, H, W, C)``.

    Args:
        dim: channels C.
        conv1x1_groups: groups of the 1x1 convolution (MWA's default: 8).
        conv3x3_groups: groups of the 3x3 convolution; None makes it depthwise (groups = C).
        gelu: a GELU on each convolution's output.
        grid_size: the token grid; on a sequence's ``(1, L)`` grid the 3 x 3 convolution is 1 x 3 (1-D).
    """

    def __init__(
        self,
        dim: int,
        conv1x1_groups: int = 8,
        conv3x3_groups: int | None = None,
        gelu: bool = True,
        grid_size: tuple[int, int] | None = None,
    ):
        super().__init__()
        g3 = dim if conv3x3_groups is None else conv3x3_groups
        check_divisor("conv1x1_groups", dim, conv1x1_groups)
        check_divisor("conv3x3_groups", dim, g3)
        kernel = grid_kernel(3, grid_size)  # 3 x 3; on a sequence's (1, L) grid 1 x 3
        self.conv1x1 = nn.Conv2d(dim, dim, 1, groups=conv1x1_groups)
        self.conv3x3 = nn.Conv2d(dim, dim, kernel, padding=same_padding(kernel), groups=g3)
        self.gelu = gelu

    def _branch(self, conv: nn.Conv2d, x: Tensor) -> Tensor:
        y = conv_channels_last(conv, x)
        return F.gelu(y) if self.gelu else y

    def forward(self, x: Tensor, base: Tensor | None = None) -> Tensor:
        """The branch of ``x``; with ``base``, ``base + branch`` summed in the order MWA always has (left to right),
        so that a mixer plus the branch rounds exactly as MWA with its own skips."""
        one, three = self._branch(self.conv1x1, x), self._branch(self.conv3x3, x)
        return one + three if base is None else base + one.to(base.dtype) + three.to(base.dtype)


class ConvMixer(nn.Module):
    """One k x k convolution over the token grid (on a sequence's ``(1, L)`` grid, 1 x k), same-size padding, no
    activation.

    Args:
        dim: channels C.
        grid_size: token grid (H, W).
        kernel_size: odd kernel side k.
        dilation: spacing of the kernel's taps (receptive field ``dilation * (k - 1) + 1`` tokens).
        groups: convolution groups; None makes it depthwise (groups = C).
    """

    grid_free = True  # a convolution's weights do not depend on the grid

    def __init__(
        self,
        dim: int,
        grid_size: tuple[int, int],
        *,
        kernel_size: int = 3,
        dilation: int = 1,
        groups: int | None = None,
    ):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-size padding), got {kernel_size}")
        if dilation < 1:
            raise ValueError(f"dilation must be >= 1, got {dilation}")
        groups = dim if groups is None else groups
        check_divisor("groups", dim, groups)
        self.grid_size = tuple(grid_size)
        kernel = grid_kernel(kernel_size, self.grid_size)  # k x k; on a sequence's (1, L) grid 1 x k
        padding = same_padding(kernel, dilation)
        self.conv = nn.Conv2d(dim, dim, kernel, padding=padding, dilation=dilation, groups=groups)
        # the conv sees channels-last grids: store its weight the same way (DDP's buckets expect the strides)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        check_grid(self, x)
        return conv_channels_last(self.conv, x).to(x.dtype)


__all__ = ["ConvMixer", "IdentityMixer", "LocalBranch"]
