"""Adaptive Fourier Neural Operator (AFNO) token mixer.

Guibas et al., "Adaptive Fourier Neural Operators: Efficient Token Mixers for Transformers", ICLR 2022,
https://arxiv.org/abs/2111.13587; code: https://github.com/NVlabs/AFNO-transformer (``afno/afno2d.py``).

Per Fourier mode of the token grid, a block-diagonal complex two-layer MLP shared across modes (complex matmul
+ bias, ReLU on the real and imaginary parts, complex matmul + bias), soft-shrinkage for sparsity, optional hard
thresholding of high modes, inverse FFT, and the filter's own residual (``x + filter(x)``).

One deliberate departure, in hard thresholding (off at the default ``hard_thresholding_fraction=1``, where
both keep every mode). The original computes ``kept = int((H*W//2 + 1) * fraction)`` from the token count and
keeps that prefix of the half-spectrum (W) axis and every row: on CIFAR-size grids ``kept`` exceeds the W//2+1
columns for most fractions (on 8x8, every fraction >= 5/33), so the fraction barely acts and never removes a
row. Here the count is per axis -- ``int(fraction * (H//2+1))`` signed frequencies along H (both signs) and
``int(fraction * (W//2+1))`` along W -- and the lowest frequencies are kept, so the fraction removes high
frequencies on both axes. A fraction that keeps no mode on the grid (0.1 on any grid up to 18x18) would turn
the layer into its bare residual; it is refused, naming the grid and the fraction.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mwa_lightning.models.mixers.common import check_grid, float32_region, to_float32

_WARNED_DEAD: set[tuple] = set()  # the settings already warned about, once each


def kept_modes(grid_size: tuple[int, int], fraction: float) -> tuple[Tensor, int]:
    """Low-frequency modes kept by hard thresholding on an ``rfft2`` spectrum of shape (H, W//2+1).

    Returns the kept row indices along H (frequencies ``|f| < int(fraction*(H//2+1))``, both signs) and the
    number of kept columns along the half axis (``int(fraction*(W//2+1))``, from frequency 0).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"hard_thresholding_fraction must be in (0, 1], got {fraction}")
    H, W = grid_size
    keep_h, keep_w = int(fraction * (H // 2 + 1)), int(fraction * (W // 2 + 1))
    if keep_h == 0 or keep_w == 0:
        least = max(1 / (H // 2 + 1), 1 / (W // 2 + 1))
        raise ValueError(
            f"hard_thresholding_fraction={fraction} keeps no Fourier mode of the {H}x{W} token grid "
            f"(int({fraction} * {H // 2 + 1}) = {keep_h} rows, int({fraction} * {W // 2 + 1}) = {keep_w} columns), "
            f"which would leave only the layer's residual; use a fraction >= {least:.3f} on this grid"
        )
    freqs = torch.fft.fftfreq(H, d=1.0 / H).round().long().abs()  # |signed frequency| of each row
    return torch.nonzero(freqs < keep_h).flatten(), keep_w


def complex_block(w: Tensor) -> Tensor:
    """Real form of a block-diagonal complex matrix: (2, nb, i, o) -> (nb, 2i, 2o).

    ``[x_re, x_im] @ [[w_re, w_im], [-w_im, w_re]] = [x_re w_re - x_im w_im, x_re w_im + x_im w_re]``,
    one real matmul per block instead of four.
    """
    w_re, w_im = w[0], w[1]
    return torch.cat([torch.cat([w_re, w_im], -1), torch.cat([-w_im, w_re], -1)], -2)


class AFNO(nn.Module):
    """AFNO filter over an (H, W) token grid, channels last.

    Args:
        dim: channels C.
        grid_size: token grid (H, W); fixes the hard-thresholding mask.
        num_blocks: diagonal blocks of the complex MLP; must divide ``dim`` (the MWA paper's comparison: 4).
        sparsity_threshold: soft-shrinkage lambda (MWA paper: 0.1 for ViT-S/B, 0.01 for ViT-XS).
        hard_thresholding_fraction: fraction of modes kept per axis, in (0, 1]; 1 keeps all.
        hidden_size_factor: width multiplier of the MLP's hidden layer.
        init_scale: standard deviation of the weights and biases at initialisation (original: 0.02).

    The FFTs run in float32 with autocast off; the block MLP runs in the ambient (autocast) dtype; the
    output has the input's dtype.
    """

    def __init__(
        self,
        dim: int,
        grid_size: tuple[int, int],
        *,
        num_blocks: int = 4,
        sparsity_threshold: float = 0.01,
        hard_thresholding_fraction: float = 1.0,
        hidden_size_factor: int = 1,
        init_scale: float = 0.02,
    ):
        super().__init__()
        if dim % num_blocks:
            raise ValueError(f"num_blocks={num_blocks} must divide dim={dim}")
        self.grid_size = tuple(grid_size)
        self.num_blocks, self.block_size = num_blocks, dim // num_blocks
        self.sparsity_threshold = sparsity_threshold
        hidden = self.block_size * hidden_size_factor
        # parameter layout of the original: (real/imag, block, in, out)
        self.w1 = nn.Parameter(init_scale * torch.randn(2, num_blocks, self.block_size, hidden))
        self.b1 = nn.Parameter(init_scale * torch.randn(2, num_blocks, hidden))
        self.w2 = nn.Parameter(init_scale * torch.randn(2, num_blocks, hidden, self.block_size))
        self.b2 = nn.Parameter(init_scale * torch.randn(2, num_blocks, self.block_size))
        rows, self.keep_w = kept_modes(self.grid_size, hard_thresholding_fraction)
        H, W = self.grid_size
        self.keep_all = len(rows) == H and self.keep_w == W // 2 + 1
        self.register_buffer("keep_rows", rows, persistent=False)
        self._warn_if_dead()

    def dead_fraction(self, samples: int = 4) -> float:
        """The fraction of non-DC Fourier modes that soft-shrinkage zeroes on unit-variance tokens (what LayerNorm
        hands the mixer), at the current weights. 1.0: the filter passes nothing but the mean, its gradient is
        zero, and the layer is its bare residual (the identity)."""
        H, W = self.grid_size
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(samples, H, W, self.num_blocks * self.block_size, generator=generator)
        with torch.no_grad():
            spec = torch.fft.rfft2(x.to(self.w1.device, self.w1.dtype), dim=(1, 2), norm="ortho")
            out = self._block_mlp(spec)
        alive = (out != 0).any(-1).any(0)  # (H, W//2+1): any channel of any sample passes
        alive[0, 0] = False
        return 1.0 - alive.sum().item() / max(1, alive.numel() - 1)

    def _warn_if_dead(self) -> None:
        key = (self.num_blocks * self.block_size, self.grid_size, self.num_blocks, self.sparsity_threshold)
        if key in _WARNED_DEAD or self.dead_fraction() < 1.0:
            return
        _WARNED_DEAD.add(key)
        warnings.warn(
            f"AFNO(dim={key[0]}, grid_size={self.grid_size}, num_blocks={self.num_blocks}, "
            f"sparsity_threshold={self.sparsity_threshold}): at initialisation soft-shrinkage zeroes every non-DC "
            "Fourier mode of a probe of unit-variance tokens, so the layer is (nearly) the identity and gets "
            "(almost) no gradient; lower sparsity_threshold (e.g. 0.01 or 0) or widen the model",
            stacklevel=3,
        )

    def no_weight_decay(self) -> set[str]:
        """The complex biases are biases: exempt from weight decay."""
        return {"b1", "b2"}

    def extra_repr(self) -> str:
        return f"num_blocks={self.num_blocks}, sparsity_threshold={self.sparsity_threshold}, keep_all={self.keep_all}"

    def _block_mlp(self, z: Tensor) -> Tensor:
        """(B, h, w, C) complex modes -> (B, h, w, C) complex, the block-diagonal complex MLP."""
        B, h, w, C = z.shape
        nb, bs = self.num_blocks, self.block_size
        # (nb, M, 2*bs): per block, the real parts then the imaginary parts
        zr = torch.view_as_real(z).reshape(-1, nb, bs, 2).permute(1, 0, 3, 2).reshape(nb, -1, 2 * bs)
        b1 = self.b1.permute(1, 0, 2).reshape(nb, 1, -1)  # (nb, 1, 2*hidden)
        b2 = self.b2.permute(1, 0, 2).reshape(nb, 1, -1)
        o = F.relu(torch.baddbmm(b1, zr, complex_block(self.w1)))
        o = torch.baddbmm(b2, o, complex_block(self.w2))
        o = F.softshrink(to_float32(o), self.sparsity_threshold)  # (nb, M, 2*bs)
        o = o.reshape(nb, -1, 2, bs).permute(1, 0, 3, 2).contiguous()  # (M, nb, bs, 2)
        return torch.view_as_complex(o).reshape(B, h, w, C)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        check_grid(self, x)
        with float32_region(x):
            spec = torch.fft.rfft2(to_float32(x), dim=(1, 2), norm="ortho")  # (B, H, W//2+1, C)
        if self.keep_all:
            out = self._block_mlp(spec)
        else:
            out = torch.zeros_like(spec)
            kept = spec.index_select(1, self.keep_rows)[:, :, : self.keep_w]
            out[:, self.keep_rows, : self.keep_w] = self._block_mlp(kept)
        with float32_region(x):
            y = torch.fft.irfft2(out.to(spec.dtype), s=(H, W), dim=(1, 2), norm="ortho")  # (B, H, W, C)
        return (y + x).to(x.dtype)
