"""A sequence backbone with an injected token mixer: the image backbone's blocks on a sequence.

A sequence of L tokens is the token grid ``(1, L)``, so every mixer of the registry runs on it unchanged where the
mathematics is the same in 1-D: self-attention attends over the L tokens; GFNet's filter and AFNO's MLP act on the
``rfft`` of the sequence (``rfft2`` of a 1-row grid: a 1-bin transform along the row, ``rfft`` along L), FNet's
transform is the FFT along the sequence and the channels; MWA takes the 1-D wavelet transform
(:class:`~mwa_lightning.models.mixers.wavelet_fft.WaveletTransform1d`: an exact Haar fast path, ptwt for other
wavelets, m levels) and its convolutions, like the local branch's and the ``conv`` mixer's, become 1 x k (1-D).

Input ``(B, in_chans, L)``, e.g. a grey image read row by row (sequential CIFAR-10, 1,024 steps) or a time
series; chunks of ``patch_size`` steps are embedded (a strided 1-D convolution) into ``L / patch_size`` tokens.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from mwa_lightning.models.mixers import SelfAttention
from mwa_lightning.models.vit import TRUNK_OPTIONS, MixerFactory, TokenTransformer, trunk_defaults


class SequenceTransformer(TokenTransformer):
    """Transformer over sequences with an injected token mixer; no class token, global average pooling.

    Args:
        mixer: factory of the token mixer, called once per block as ``mixer(dim=C, grid_size=(1, L'))``.
        num_classes: classes of the linear head.
        seq_len: input length L in steps; must be divisible by ``patch_size``.
        in_chans: input channels (1 for a univariate series).
        patch_size: steps per token.
        size, depth, embed_dim: the named size and its overrides, as for
            :class:`~mwa_lightning.models.vit.VisionTransformer` (default: "tiny").
        **trunk: ``mlp_ratio``, ``drop_rate``, ``drop_path_rate``, ``local_branch``, ``mixer_gelu``, ``block``, as
            for :class:`~mwa_lightning.models.vit.VisionTransformer`.
    """

    def __init__(
        self,
        mixer: MixerFactory = SelfAttention,
        num_classes: int = 10,
        seq_len: int = 1024,
        in_chans: int = 1,
        patch_size: int = 4,
        size: str = "tiny",
        depth: int | None = None,
        embed_dim: int | None = None,
        **trunk: Any,
    ):
        super().__init__()
        self.depth, self.embed_dim = self._dimensions(size, depth, embed_dim)
        if patch_size < 1 or seq_len % patch_size:
            raise ValueError(f"seq_len={seq_len} is not divisible by patch_size={patch_size}")
        self.seq_len, self.patch_size, self.in_chans, self.num_classes = seq_len, patch_size, in_chans, num_classes
        self.grid_size = (1, seq_len // patch_size)
        self.patch_embed = nn.Conv1d(in_chans, self.embed_dim, patch_size, stride=patch_size)
        unknown = sorted(set(trunk) - set(TRUNK_OPTIONS))
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}; expected some of {', '.join(TRUNK_OPTIONS)}")
        self._build_trunk(mixer, num_classes, size, **{**trunk_defaults(), **trunk})

    @property
    def input_shape(self) -> tuple[int, int]:
        """One input's shape, ``(in_chans, L)``."""
        return (self.in_chans, self.seq_len)

    def embed(self, x: Tensor) -> Tensor:
        """Sequences ``(B, in_chans, L)`` -> tokens on the ``(1, L')`` grid, ``(B, 1, L', C)``."""
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.in_chans, self.seq_len):
            raise ValueError(f"expected sequences of shape (B, {self.in_chans}, {self.seq_len}), got {tuple(x.shape)}")
        return self.patch_embed(x).transpose(1, 2).unsqueeze(1)  # (B, 1, L', C)
