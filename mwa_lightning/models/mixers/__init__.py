"""Token mixers: each maps channels-last tokens (B, H, W, C) to the same shape, built as
``Mixer(dim=C, grid_size=(H, W), **options)``. One paper per file."""

from mwa_lightning.models.mixers.afno import AFNO
from mwa_lightning.models.mixers.attention import SelfAttention
from mwa_lightning.models.mixers.gfn import GlobalFilter
from mwa_lightning.models.mixers.mwa import MultiscaleWaveletAttention

__all__ = ["AFNO", "GlobalFilter", "MultiscaleWaveletAttention", "SelfAttention"]
