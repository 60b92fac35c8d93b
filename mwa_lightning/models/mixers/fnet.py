"""FNet's parameter-free Fourier mixer.

Lee-Thorp, Ainslie, Eckstein, Ontanon, "FNet: Mixing Tokens with Fourier Transforms", NAACL 2022,
https://arxiv.org/abs/2105.03824: the real part of a discrete Fourier transform along the hidden dimension and
along the sequence, ``Re(FFT_seq(FFT_hidden(x)))``. On a token grid the sequence axes are the grid's (H and W;
a sequence is the ``(1, L)`` grid). No parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mwa_lightning.models.mixers.common import ParameterFree, check_grid, float32_region, to_float32


class FourierMixer(ParameterFree):
    """``Re(fftn(x))`` over the grid axes and the channels of ``(B, H, W, C)`` tokens, in float32.

    Args:
        dim: channels C (unused: no parameters).
        grid_size: token grid (H, W).
    """

    def forward(self, x: Tensor) -> Tensor:
        check_grid(self, x)
        with float32_region(x):
            y = torch.fft.fftn(to_float32(x), dim=(1, 2, 3)).real
        return y.to(x.dtype)
