"""The ViT backbone, its token mixers and the transforms they use."""

from mwa_lightning.models.mixers import (
    AFNO,
    ConvMixer,
    GlobalFilter,
    IdentityMixer,
    LocalBranch,
    MultiscaleWaveletAttention,
    SelfAttention,
)
from mwa_lightning.models.vit import SIZES, MixerFactory, VisionTransformer

__all__ = [
    "AFNO",
    "SIZES",
    "ConvMixer",
    "GlobalFilter",
    "IdentityMixer",
    "LocalBranch",
    "MixerFactory",
    "MultiscaleWaveletAttention",
    "SelfAttention",
    "VisionTransformer",
]
