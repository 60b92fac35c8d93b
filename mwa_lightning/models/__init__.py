"""The ViT backbone, its token mixers and the transforms they use.

The names below are imported on first use (PEP 562), so that importing a light part of the package (the mixer
registry, for the tools' ``--help``) does not import torch.
"""

from __future__ import annotations

from mwa_lightning.lazy import lazy_exports

_LAZY = {  # name -> the module that defines it
    "AFNO": "mixers",
    "ConvMixer": "mixers",
    "FourierMixer": "mixers",
    "GlobalFilter": "mixers",
    "IdentityMixer": "mixers",
    "LocalBranch": "mixers",
    "MultiscaleWaveletAttention": "mixers",
    "SelfAttention": "mixers",
    "SequenceTransformer": "sequence",
    "SIZES": "vit",
    "MixerFactory": "vit",
    "VisionTransformer": "vit",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
