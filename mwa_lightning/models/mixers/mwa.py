"""Multiscale Wavelet Attention (MWA) token mixer.

Nekoozadeh, Ahmadzadeh, Mardani, Mardani, "Multiscale Attention via Wavelet Neural Operators for Vision
Transformers", https://arxiv.org/abs/2303.12398 (OpenReview scozYAatUd). No public code exists; this follows
the paper's description of the layer and makes each point the paper leaves vague an option.
Its ancestor is the Wavelet Neural Operator (Tripura & Chakraborty, https://arxiv.org/abs/2205.02191).

Per block, on the token grid x (B, H, W, C)::

    z   = DWT2(x)                                   # m levels; band stacks, coarsest first
    z'  = GELU(conv(z))                             # grouped k x k conv in the wavelet domain
    y   = IDWT2(z')
    out = GELU(y + GELU(conv1x1(x)) + GELU(conv3x3(x)))

Choices made explicit (defaults in brackets):

- ``bands`` ["shared"]: how the sub-bands meet the conv. "shared": each sub-band is an image of its own and
  one conv (C -> C) is applied to all of them (bands on the batch axis). "stacked": the bands of a level are
  stacked on the channel axis, interleaved per channel (channel c of band b sits at c*nb + b) so that each
  of the ``groups`` groups sees all bands of its channels; one conv (nb*C -> nb*C) per level.
- ``conv_levels`` ["all"] for m > 1: "all" convolves every level's bands -- (LL_m, H_m, V_m, D_m) and the
  detail bands (H_j, V_j, D_j) of each finer level j -- with one shared conv under "shared" (so parameters do
  not grow with m, as in the paper's Table 1), or one conv per level under "stacked". "coarsest" convolves
  only level m's four bands, WNO-style; finer detail bands pass through unchanged.
- ``skip_gelu`` [True]: each skip branch has its own GELU.
- ``transform`` ["dwt"]: "fft" swaps in rfft2/irfft2 (ortho) with everything else equal: the real and the
  imaginary part are the two bands of one level (the controlled FFT-for-DWT experiment; needs levels=1).
  "polyphase" splits the tokens into their four 2x2 polyphase components without the Haar butterfly, with the
  same conv and GELU: only the basis the inner GELU sees differs from Haar (needs levels=1).
  "none" removes the wavelet branch altogether and keeps only the two skip convolutions,
  ``out = GELU(GELU(conv1x1(x)) + GELU(conv3x3(x)))``: a control the paper lacks, which separates what the
  wavelet branch adds from what the convolutions alone do (needs ``skips=True``).

Default budget: with kernel 3, 8 groups in the wavelet domain, an 8-group 1x1 skip and a depthwise 3x3 skip,
the layer has 188,928 parameters at C=384, which puts ViT-S/4 at 16.5 M and ViT-XS/4 at 6.9 M parameters
(paper: 16 M and 7 M), and about 1.27*C^2 multiply-adds per token (ViT-S/4 at 32 px: 1.05 GMACs; paper:
1.095 GFLOPs).

Cost is linear in the number of tokens: with "shared" bands, m levels hold N*(1/4 + 3/4 + 3/16 + ...) = N
positions, so the wavelet-domain conv costs the same at every m.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mwa_lightning.choices import check_choices
from mwa_lightning.models.mixers.common import check_divisor, check_grid, conv_channels_last, grid_kernel, same_padding
from mwa_lightning.models.mixers.local import LocalBranch
from mwa_lightning.models.mixers.wavelet_fft import (
    FourierTransform,
    PolyphaseTransform,
    WaveletTransform,
    WaveletTransform1d,
)


class MultiscaleWaveletAttention(nn.Module):
    """MWA token mixer over an (H, W) grid of C-channel tokens, channels last.

    Args:
        dim: channels C.
        grid_size: token grid (H, W); with ``transform="dwt"`` both sides must be divisible by 2**levels.
        wavelet: any discrete PyWavelets name; Haar (the default) takes the exact fast path.
        levels: DWT levels m.
        transform: "dwt"; "fft" for the FFT-for-DWT swap (levels must then be 1; ``wavelet`` is unused);
            "polyphase" for the 2x2 polyphase split without the Haar butterfly (levels 1; the control where only
            the basis the inner GELU sees differs from Haar); "none" for the skips-only control (no wavelet
            branch; needs ``skips=True``).
        boundary: how the signal is extended at the grid's edges for wavelets longer than Haar (ptwt's ``mode``:
            "reflect", "zero", "periodic", ...).
        kernel_size: odd kernel size of the wavelet-domain conv.
        groups: groups of the wavelet-domain conv.
        bands: "shared" or "stacked", see the module docstring.
        conv_levels: "all" or "coarsest", see the module docstring.
        skips: keep the two conv skip branches on x.
        skip_gelu: a GELU on each skip branch.
        skip1x1_groups: groups of the 1x1 skip conv.
        skip3x3_groups: groups of the 3x3 skip conv; None makes it depthwise (groups = dim).
        fast_haar: use the butterfly fast path for Haar (False forces ptwt; for checks and benchmarks).
        inner_gelu: the GELU between the wavelet-domain conv and the inverse transform. Without it, with Haar,
            m = 1 and shared bands, the branch is exactly a dilation-2 grouped conv of x (module docstring).
        output_gelu: the GELU on the layer's output. The wavelet branch alone, for the backbone's shared local
            branch and output GELU (``VisionTransformer(local_branch=True, mixer_gelu=True)``), is
            ``skips=False, output_gelu=False``.
    """

    def __init__(
        self,
        dim: int,
        grid_size: tuple[int, int],
        *,
        wavelet: str = "haar",
        levels: int = 1,
        transform: Literal["dwt", "fft", "polyphase", "none"] = "dwt",
        boundary: str = "reflect",
        kernel_size: int = 3,
        groups: int = 8,
        bands: Literal["shared", "stacked"] = "shared",
        conv_levels: Literal["all", "coarsest"] = "all",
        skips: bool = True,
        skip_gelu: bool = True,
        skip1x1_groups: int = 8,
        skip3x3_groups: int | None = None,
        fast_haar: bool = True,
        inner_gelu: bool = True,
        output_gelu: bool = True,
    ):
        super().__init__()
        self.grid_size = tuple(grid_size)
        check_choices(MultiscaleWaveletAttention.__init__, transform=transform, bands=bands, conv_levels=conv_levels)
        if transform == "dwt":
            sequence = self.grid_size[0] == 1  # a sequence's (1, L) grid: the 1-D DWT along it
            kind = WaveletTransform1d if sequence else WaveletTransform
            self.transform = kind(wavelet, levels, mode=boundary, fast_haar=fast_haar)
            self.transform.check_grid(self.grid_size)
        elif transform == "fft":
            if levels != 1:
                raise ValueError(f"transform='fft' has a single level; got levels={levels}, expected 1")
            self.transform = FourierTransform()
        elif transform == "polyphase":
            if levels != 1:
                raise ValueError(f"transform='polyphase' has a single level; got levels={levels}, expected 1")
            self.transform = PolyphaseTransform()
            self.transform.check_grid(self.grid_size)
        else:  # "none"
            if not skips:
                raise ValueError("transform='none' with skips=False leaves no branch at all; set skips=True")
            self.transform = None
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-size padding), got {kernel_size}")
        self.bands = bands
        counts = self.transform.band_counts if self.transform is not None else ()
        self.n_conv_levels = min(len(counts), len(counts) if conv_levels == "all" else 1)

        kernel = grid_kernel(kernel_size, self.grid_size)  # k x k; 1 x k on a sequence

        def wavelet_conv(channels: int) -> nn.Conv2d:
            check_divisor("groups", channels, groups)
            return nn.Conv2d(channels, channels, kernel, padding=same_padding(kernel), groups=groups)

        if not counts:
            self.convs = nn.ModuleList()
        elif bands == "shared":
            self.convs = nn.ModuleList([wavelet_conv(dim)])
        else:
            self.convs = nn.ModuleList([wavelet_conv(nb * dim) for nb in counts[: self.n_conv_levels]])
        self.local = LocalBranch(dim, skip1x1_groups, skip3x3_groups, skip_gelu, self.grid_size) if skips else None
        self.inner_gelu, self.output_gelu = inner_gelu, output_gelu
        # the convs see channels-last grids, so their weight gradients come out channels last: store the weights
        # the same way (DDP's gradient buckets expect the parameters' own strides)
        self.to(memory_format=torch.channels_last)

    grid_free = True  # the convolutions' weights do not depend on the grid: any grid the transform can split

    def accepts_grid(self, grid_size: tuple[int, int]) -> None:
        """Raise unless the transform can split a ``grid_size`` grid (sides divisible by 2**levels; a sequence's
        1-D transform only on a ``(1, L)`` grid)."""
        if self.transform is not None and hasattr(self.transform, "check_grid"):
            self.transform.check_grid(grid_size)

    def _wavelet_conv(self, level: int, z: Tensor) -> Tensor:
        """GELU(conv(z)) (or conv(z) without ``inner_gelu``) on one band stack ``(nb, B, h, w, C)``."""
        act = F.gelu if self.inner_gelu else (lambda t: t)
        nb, B, h, w, C = z.shape
        if self.bands == "shared":
            y = conv_channels_last(self.convs[0], z.reshape(nb * B, h, w, C))
            return act(y).reshape(nb, B, h, w, C)
        stacked = z.permute(1, 2, 3, 4, 0).reshape(B, h, w, C * nb)  # channel c*nb + band
        y = act(conv_channels_last(self.convs[level], stacked))
        return y.reshape(B, h, w, C, nb).permute(4, 0, 1, 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        check_grid(self, x)
        if self.transform is None:  # the skips-only control
            y = self.local(x)
        else:
            bands = self.transform(x)  # [(nb, B, h, w, C)], coarsest first
            bands = [self._wavelet_conv(i, z) if i < self.n_conv_levels else z for i, z in enumerate(bands)]
            y = self.transform.inverse(bands, (H, W))  # (B, H, W, C)
            if self.local is not None:
                y = self.local(x, base=y)
        return (F.gelu(y) if self.output_gelu else y).to(x.dtype)
