"""The wavelet and Fourier transforms of token grids that the spectral and wavelet mixers use.

Every transform here acts on channels-last token grids ``(B, H, W, C)`` and hands out *band stacks*:
a list with one tensor per level, coarsest first, each of shape ``(n_bands, B, h, w, C)``.

- :class:`WaveletTransform` -- the 2D discrete wavelet transform. ptwt (Wolter et al.,
  https://github.com/v0lta/PyTorch-Wavelet-Toolbox) is the reference and serves every discrete PyWavelets
  wavelet. For the Haar filter bank an exact fast path (a reshape and a fixed 4x4 butterfly, no
  convolutions) is taken automatically; it agrees with ptwt to float rounding in values and gradients.
  Level ``m`` is ``[(LL_m, H_m, V_m, D_m)]`` followed by ``(H_j, V_j, D_j)`` for ``j = m-1 .. 1``, the
  detail order of ptwt/PyWavelets (horizontal, vertical, diagonal).
- :class:`WaveletTransform1d` -- the same along a sequence's ``(1, L)`` grid (the sequence backbone's): 1-D DWT,
  an exact Haar fast path and ptwt's ``wavedec``/``waverec`` for other wavelets.
- :class:`FourierTransform` -- ``rfft2``/``irfft2`` (ortho) as one level of two bands (real, imaginary):
  the drop-in that the FFT-for-DWT ablation swaps in.
- :class:`PolyphaseTransform` -- the 2x2 polyphase split (Haar without its butterfly), one level of four bands.

Mixed precision: FFTs and ptwt run in float32 with autocast off (ptwt raises on bf16 and cuFFT/pocketfft
have no bf16), see :func:`~mwa_lightning.models.mixers.common.float32_region`; the Haar butterfly is a plain
matmul and may run in the autocast dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import ptwt
import pywt
import torch
from torch import Tensor, nn

from mwa_lightning.models.mixers.common import float32_region, to_float32

__all__ = [
    "FourierTransform",
    "PolyphaseTransform",
    "WaveletTransform",
    "WaveletTransform1d",
    "discrete_wavelets",
    "haar_dwt1",
    "haar_dwt2",
    "haar_idwt1",
    "haar_idwt2",
    "is_haar",
    "polyphase2",
    "polyphase2_inverse",
]


@lru_cache(maxsize=1)
def discrete_wavelets() -> tuple[str, ...]:
    """Names of PyWavelets' discrete wavelets, the ones ptwt accepts."""
    return tuple(pywt.wavelist(kind="discrete"))


def is_haar(wavelet: str) -> bool:
    """True when ``wavelet``'s filter bank is Haar's (``"haar"``, ``"db1"``, ``"bior1.1"``, ...)."""
    reference = torch.tensor(pywt.Wavelet("haar").filter_bank, dtype=torch.float64)
    bank = torch.tensor(pywt.Wavelet(wavelet).filter_bank, dtype=torch.float64)
    return bank.shape == reference.shape and torch.allclose(bank, reference, atol=1e-12)


def _butterfly(device: torch.device, dtype: torch.dtype) -> Tensor:
    """The orthonormal, symmetric 4x4 Haar butterfly as (band, row parity, column parity).

    Over a 2x2 block [[a, b], [c, d]]: LL = (a+b+c+d)/2, H = (a+b-c-d)/2, V = (a-b+c-d)/2,
    D = (a-b-c+d)/2 -- ptwt's signs for ``"haar"``. It is its own inverse (M @ M = I).
    """
    m = torch.tensor([[1, 1, 1, 1], [1, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]], dtype=dtype)
    return (0.5 * m).reshape(4, 2, 2).to(device)


def haar_dwt2(x: Tensor) -> Tensor:
    """One level of the 2D Haar DWT of a channels-last grid.

    Args:
        x: ``(B, H, W, C)`` with even H and W.

    Returns:
        ``(4, B, H/2, W/2, C)``: the bands LL, H, V, D.
    """
    B, H, W, C = x.shape
    blocks = x.reshape(B, H // 2, 2, W // 2, 2, C)  # (B, h, row parity, w, column parity, C)
    return torch.einsum("kij,bhiwjc->kbhwc", _butterfly(x.device, x.dtype), blocks)


def haar_idwt2(z: Tensor) -> Tensor:
    """Inverse of :func:`haar_dwt2`: ``(4, B, h, w, C)`` -> ``(B, 2h, 2w, C)``."""
    _, B, h, w, C = z.shape
    blocks = torch.einsum("kij,kbhwc->bhiwjc", _butterfly(z.device, z.dtype), z)
    return blocks.reshape(B, 2 * h, 2 * w, C)


class WaveletTransform(nn.Module):
    """Multi-level 2D DWT/IDWT over the grid axes of ``(B, H, W, C)`` tokens.

    Args:
        wavelet: any discrete PyWavelets name (``pywt.wavelist(kind="discrete")``).
        levels: decomposition levels m >= 1.
        mode: ptwt boundary mode for wavelets longer than Haar (Haar on even grids needs no padding).
        fast_haar: take the exact butterfly path when the filter bank is Haar's; ``False`` forces ptwt.
    """

    def __init__(self, wavelet: str = "haar", levels: int = 1, mode: str = "reflect", fast_haar: bool = True):
        super().__init__()
        if wavelet not in discrete_wavelets():
            raise ValueError(
                f"unknown wavelet {wavelet!r}; expected a discrete PyWavelets name, one of: "
                + ", ".join(discrete_wavelets())
            )
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.wavelet, self.levels, self.mode = wavelet, levels, mode
        self.fast = fast_haar and is_haar(wavelet)

    @property
    def band_counts(self) -> tuple[int, ...]:
        """Bands per level, coarsest first: (4, 3, 3, ...)."""
        return (4,) + (3,) * (self.levels - 1)

    def extra_repr(self) -> str:
        return f"wavelet={self.wavelet!r}, levels={self.levels}, fast_haar={self.fast}"

    def check_grid(self, grid_size: Sequence[int]) -> None:
        """Raise unless both grid sides are divisible by 2**levels."""
        step = 2**self.levels
        if any(s % step for s in grid_size):
            raise ValueError(
                f"token grid {tuple(grid_size)} is not divisible by 2**levels = {step} (levels={self.levels}); "
                f"use a grid whose sides are multiples of {step} or fewer levels"
            )

    def _fast_forward(self, x: Tensor, step) -> list[Tensor]:
        """The Haar fast path's levels: ``step`` splits the approximation into (approximation, details...)."""
        details = []
        approx = x
        for _ in range(self.levels):
            z = step(approx)
            approx = z[0]
            details.append(z[1:])
        return [z, *details[-2::-1]]

    @staticmethod
    def _fast_inverse(bands: Sequence[Tensor], step) -> Tensor:
        """Inverse of :meth:`_fast_forward` with the inverse ``step``."""
        x = step(bands[0])
        for details in bands[1:]:
            x = step(torch.cat([x.unsqueeze(0), details.to(x.dtype)]))
        return x

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, H, W, C)`` -> band stacks, coarsest first: ``(4, B, h_m, w_m, C)``, ``(3, B, h_j, w_j, C)``."""
        self.check_grid(x.shape[1:3])
        if self.fast:
            return self._fast_forward(x, haar_dwt2)
        with float32_region(x):
            coeffs = ptwt.wavedec2(to_float32(x), self.wavelet, level=self.levels, mode=self.mode, axes=(1, 2))
            first = torch.stack([coeffs[0], *coeffs[1]])
            return [first] + [torch.stack(tuple(d)) for d in coeffs[2:]]

    def inverse(self, bands: Sequence[Tensor], grid_size: Sequence[int]) -> Tensor:
        """Band stacks (as from :meth:`forward`) -> ``(B, H, W, C)``."""
        if self.fast:
            return self._fast_inverse(bands, haar_idwt2)
        with float32_region(bands[0]):
            first = to_float32(bands[0])
            coeffs = [first[0], ptwt.constants.WaveletDetailTuple2d(*first[1:])]
            coeffs += [ptwt.constants.WaveletDetailTuple2d(*to_float32(d)) for d in bands[1:]]
            x = ptwt.waverec2(coeffs, self.wavelet, axes=(1, 2))
        H, W = grid_size
        return x[:, :H, :W]


def haar_dwt1(x: Tensor) -> Tensor:
    """One level of the 1-D Haar DWT along a sequence's ``(1, L)`` grid: ``(B, 1, L, C)`` -> ``(2, B, 1, L/2, C)``,
    the bands ``cA = (a + b) / sqrt 2`` and ``cD = (a - b) / sqrt 2`` of each pair (PyWavelets' signs)."""
    a, b = x[:, :, 0::2], x[:, :, 1::2]
    return torch.stack([a + b, a - b]) * 0.5**0.5


def haar_idwt1(z: Tensor) -> Tensor:
    """Inverse of :func:`haar_dwt1`: ``(2, B, 1, n, C)`` -> ``(B, 1, 2n, C)``."""
    _, B, one, n, C = z.shape
    a, b = (z[0] + z[1]) * 0.5**0.5, (z[0] - z[1]) * 0.5**0.5
    return torch.stack([a, b], dim=3).reshape(B, one, 2 * n, C)


class WaveletTransform1d(WaveletTransform):
    """Multi-level 1-D DWT/IDWT along a sequence's ``(1, L)`` token grid, ``(B, 1, L, C)``.

    Band stacks as for the 2-D transform, coarsest first: ``[(cA_m, cD_m)]`` then ``(cD_j,)`` for
    ``j = m-1 .. 1``. Haar takes the exact fast path (pairs: a sum and a difference); other wavelets ptwt's
    ``wavedec``/``waverec``. Arguments as :class:`WaveletTransform`'s.
    """

    @property
    def band_counts(self) -> tuple[int, ...]:
        """Bands per level, coarsest first: (2, 1, 1, ...)."""
        return (2,) + (1,) * (self.levels - 1)

    def check_grid(self, grid_size: Sequence[int]) -> None:
        """Raise unless the grid is a sequence's ``(1, L)`` with L divisible by 2**levels."""
        if grid_size[0] != 1:
            raise ValueError(f"the 1-D wavelet transform needs a sequence's (1, L) grid, got {tuple(grid_size)}")
        step = 2**self.levels
        if grid_size[1] % step:
            raise ValueError(
                f"sequence of {grid_size[1]} tokens is not divisible by 2**levels = {step} (levels={self.levels}); "
                f"pad or crop it to a multiple of {step}, or use fewer levels"
            )

    def forward(self, x: Tensor) -> list[Tensor]:
        self.check_grid(x.shape[1:3])
        if self.fast:
            return self._fast_forward(x, haar_dwt1)
        with float32_region(x):
            coeffs = ptwt.wavedec(to_float32(x), self.wavelet, level=self.levels, mode=self.mode, axis=2)
            return [torch.stack(coeffs[:2])] + [c.unsqueeze(0) for c in coeffs[2:]]

    def inverse(self, bands: Sequence[Tensor], grid_size: Sequence[int]) -> Tensor:
        if self.fast:
            return self._fast_inverse(bands, haar_idwt1)
        with float32_region(bands[0]):
            coeffs = [*to_float32(bands[0])] + [to_float32(d)[0] for d in bands[1:]]
            x = ptwt.waverec(coeffs, self.wavelet, axis=2)
        return x[:, :, : grid_size[1]]


def polyphase2(x: Tensor) -> Tensor:
    """The four 2x2 polyphase components of a channels-last grid: ``(B, H, W, C)`` -> ``(4, B, H/2, W/2, C)``,
    component ``2a + b`` holding the tokens ``(2i + a, 2j + b)``; the Haar DWT is these mixed by its butterfly."""
    B, H, W, C = x.shape
    return x.reshape(B, H // 2, 2, W // 2, 2, C).permute(2, 4, 0, 1, 3, 5).reshape(4, B, H // 2, W // 2, C)


def polyphase2_inverse(z: Tensor) -> Tensor:
    """Inverse of :func:`polyphase2`: ``(4, B, h, w, C)`` -> ``(B, 2h, 2w, C)``."""
    _, B, h, w, C = z.shape
    return z.reshape(2, 2, B, h, w, C).permute(2, 3, 0, 4, 1, 5).reshape(B, 2 * h, 2 * w, C)


class PolyphaseTransform(nn.Module):
    """The 2x2 polyphase split as one level of four bands: the Haar DWT without its butterfly (an orthonormal
    change of basis the inner GELU sees; no frequency separation)."""

    band_counts = (4,)

    def check_grid(self, grid_size: Sequence[int]) -> None:
        """Raise unless both grid sides are even."""
        if any(s % 2 for s in grid_size):
            raise ValueError(f"token grid {tuple(grid_size)} has an odd side; the 2x2 polyphase split needs even sides")

    def forward(self, x: Tensor) -> list[Tensor]:
        self.check_grid(x.shape[1:3])
        return [polyphase2(x)]

    def inverse(self, bands: Sequence[Tensor], grid_size: Sequence[int]) -> Tensor:
        (z,) = bands
        return polyphase2_inverse(z)


class FourierTransform(nn.Module):
    """``rfft2`` (ortho) over the grid axes as one level of two bands: real and imaginary parts."""

    band_counts = (2,)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, H, W, C)`` -> ``[(2, B, H, W//2+1, C)]`` in float32 (or float64)."""
        with float32_region(x):
            spec = torch.fft.rfft2(to_float32(x), dim=(1, 2), norm="ortho")  # (B, H, W//2+1, C) complex
        return [torch.view_as_real(spec).movedim(-1, 0)]

    def inverse(self, bands: Sequence[Tensor], grid_size: Sequence[int]) -> Tensor:
        """``[(2, B, H, W//2+1, C)]`` -> ``(B, H, W, C)``."""
        (z,) = bands
        with float32_region(z):
            spec = torch.view_as_complex(to_float32(z).movedim(0, -1).contiguous())
            return torch.fft.irfft2(spec, s=tuple(grid_size), dim=(1, 2), norm="ortho")
