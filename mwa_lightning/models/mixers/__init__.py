"""Token mixers: each maps channels-last tokens (B, H, W, C) to the same shape, built as
``Mixer(dim=C, grid_size=(H, W), **options)``. One paper per file; :mod:`.registry` names them."""

from mwa_lightning.models.mixers.afno import AFNO
from mwa_lightning.models.mixers.attention import SelfAttention
from mwa_lightning.models.mixers.fnet import FourierMixer
from mwa_lightning.models.mixers.gfn import GlobalFilter
from mwa_lightning.models.mixers.local import ConvMixer, IdentityMixer, LocalBranch
from mwa_lightning.models.mixers.mwa import MultiscaleWaveletAttention
from mwa_lightning.models.mixers.registry import (
    MIXERS,
    mixer_class,
    mixer_classes,
    mixer_name,
    mixer_names,
    register_mixer,
    unregister_mixer,
)

__all__ = [
    "AFNO",
    "MIXERS",
    "ConvMixer",
    "FourierMixer",
    "GlobalFilter",
    "IdentityMixer",
    "LocalBranch",
    "MultiscaleWaveletAttention",
    "SelfAttention",
    "mixer_class",
    "mixer_classes",
    "mixer_name",
    "mixer_names",
    "register_mixer",
    "unregister_mixer",
]
