"""Local token mixers: the local branch any mixer can take, and the controls of a fair comparison.

- :class:`LocalBranch`: ``GELU(conv1x1(x)) + GELU(conv3x3(x))`` on the token grid, the two convolution "skips"
  of MWA made one module, so that every mixer can get exactly the same local path (the backbone's
  ``local_branch`` option adds it beside any mixer; MWA uses it for its own skips).
- :class:`IdentityMixer` (``identity``): no token mixing at all, MetaFormer's IdentityFormer (Yu et al.,
  https://arxiv.org/abs/2210.13452): the floor every mixer must clear.
- :class:`ConvMixer` (``conv``): one depthwise or grouped k x k convolution, optionally dilated: the plain
  local-convolution row.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from mwa_lightning.models.mixers.common import check_divisor, check_grid, conv_channels_last


class LocalBranch(nn.Module):
    """``GELU(conv1x1(x)) + GELU(conv3x3(x))`` on channels-last tokens ``(B, H, W, C)``.

    Args:
        dim: channels C.
        conv1x1_groups: groups of the 1x1 convolution (MWA's default: 8).
        conv3x3_groups: groups of the 3x3 convolution; None makes it depthwise (groups = C).
        gelu: a GELU on each convolution's output.
    """

    def __init__(self, dim: int, conv1x1_groups: int = 8, conv3x3_groups: int | None = None, gelu: bool = True):
        super().__init__()
        g3 = dim if conv3x3_groups is None else conv3x3_groups
        check_divisor("conv1x1_groups", dim, conv1x1_groups)
        check_divisor("conv3x3_groups", dim, g3)
        self.conv1x1 = nn.Conv2d(dim, dim, 1, groups=conv1x1_groups)
        self.conv3x3 = nn.Conv2d(dim, dim, 3, padding=1, groups=g3)
        self.gelu = gelu

    def _branch(self, conv: nn.Conv2d, x: Tensor) -> Tensor:
        y = conv_channels_last(conv, x)
        return F.gelu(y) if self.gelu else y

    def forward(self, x: Tensor, base: Tensor | None = None) -> Tensor:
        """The branch of ``x``; with ``base``, ``base + branch`` summed in the order MWA always has (left to right),
        so that a mixer plus the branch rounds exactly as MWA with its own skips."""
        one, three = self._branch(self.conv1x1, x), self._branch(self.conv3x3, x)
        return one + three if base is None else base + one.to(base.dtype) + three.to(base.dtype)


class IdentityMixer(nn.Module):
    """No token mixing: the tokens pass through unchanged (MetaFormer's IdentityFormer).

    Args:
        dim: channels C (unused: the mixer has no parameters).
        grid_size: token grid (H, W).
    """

    def __init__(self, dim: int, grid_size: tuple[int, int]):
        super().__init__()
        self.grid_size = tuple(grid_size)

    def forward(self, x: Tensor) -> Tensor:
        check_grid(self, x)
        return x


class ConvMixer(nn.Module):
    """One k x k convolution over the token grid, same-size padding, no activation.

    Args:
        dim: channels C.
        grid_size: token grid (H, W).
        kernel_size: odd kernel side k.
        dilation: spacing of the kernel's taps (receptive field ``dilation * (k - 1) + 1`` tokens).
        groups: convolution groups; None makes it depthwise (groups = C).
    """

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
        self.conv = nn.Conv2d(
            dim, dim, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation, groups=groups
        )

    def forward(self, x: Tensor) -> Tensor:
        check_grid(self, x)
        return conv_channels_last(self.conv, x).to(x.dtype)
