"""GFNet's global filter layer as a token mixer.

Rao et al., "Global Filter Networks for Image Classification", NeurIPS 2021, https://arxiv.org/abs/2107.00645;
code: https://github.com/raoyongming/GFNet (``GlobalFilter``). A learnable complex filter multiplies the
token grid's 2D real FFT elementwise, i.e. a global circular convolution with a per-channel kernel the size of
the grid. No residual and no nonlinearity inside. O(N log N) in the number of tokens N.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mwa_lightning.models.mixers.common import check_grid, float32_region, to_float32


class GlobalFilter(nn.Module):
    """``irfft2(rfft2(x) * K)`` with a learnable complex K of shape (H, W//2+1, C), sized from the grid.

    The FFTs and the product run in float32 with autocast off; the output has the input's dtype.

    Args:
        dim: channels C.
        grid_size: token grid (H, W); the filter is built for exactly this grid.
        init_std: standard deviation of the filter's real and imaginary parts at initialisation (GFNet: 0.02).
    """

    def __init__(self, dim: int, grid_size: tuple[int, int], *, init_std: float = 0.02):
        super().__init__()
        H, W = grid_size
        self.grid_size = (H, W)
        # (H, W//2+1, C, 2): real and imaginary parts, as in GFNet
        self.complex_weight = nn.Parameter(torch.randn(H, W // 2 + 1, dim, 2) * init_std)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        check_grid(self, x)
        with float32_region(x):
            spec = torch.fft.rfft2(to_float32(x), dim=(1, 2), norm="ortho")  # (B, H, W//2+1, C)
            spec = spec * torch.view_as_complex(to_float32(self.complex_weight))
            y = torch.fft.irfft2(spec, s=(H, W), dim=(1, 2), norm="ortho")  # (B, H, W, C)
        return y.to(x.dtype)
