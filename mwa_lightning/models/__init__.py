"""The ViT backbone, its token mixers and the transforms they use."""

from mwa_lightning.models.mixers import AFNO, GlobalFilter, MultiscaleWaveletAttention, SelfAttention
from mwa_lightning.models.vit import SIZES, MixerFactory, VisionTransformer

__all__ = [
    "AFNO",
    "SIZES",
    "GlobalFilter",
    "MixerFactory",
    "MultiscaleWaveletAttention",
    "SelfAttention",
    "VisionTransformer",
]
