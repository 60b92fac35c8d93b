"""The ViT backbone, its token mixers and the transforms they use."""

from mwa_lightning.models.mixers import (
    AFNO,
    ConvMixer,
    FourierMixer,
    GlobalFilter,
    IdentityMixer,
    LocalBranch,
    MultiscaleWaveletAttention,
    SelfAttention,
)
from mwa_lightning.models.sequence import SequenceTransformer
from mwa_lightning.models.vit import SIZES, MixerFactory, VisionTransformer

__all__ = [
    "AFNO",
    "SIZES",
    "ConvMixer",
    "FourierMixer",
    "GlobalFilter",
    "IdentityMixer",
    "LocalBranch",
    "MixerFactory",
    "MultiscaleWaveletAttention",
    "SelfAttention",
    "SequenceTransformer",
    "VisionTransformer",
]
