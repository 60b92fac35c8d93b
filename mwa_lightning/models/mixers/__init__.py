"""Token mixers: each maps channels-last tokens (B, H, W, C) to the same shape, built as
``Mixer(dim=C, grid_size=(H, W), **options)``. One paper per file; :mod:`.registry` names them.

The names below are imported on first use (PEP 562): the registry's names (``mixer_names()``) answer without
importing torch, for the tools' ``--help``.
"""

from __future__ import annotations

from mwa_lightning.lazy import lazy_exports
from mwa_lightning.models.mixers.registry import (
    MIXERS,
    mixer_class,
    mixer_classes,
    mixer_name,
    mixer_names,
    register_mixer,
    unregister_mixer,
)

_LAZY = {  # name -> the module that defines it
    "AFNO": "afno",
    "SelfAttention": "attention",
    "FourierMixer": "fnet",
    "GlobalFilter": "gfn",
    "ConvMixer": "local",
    "IdentityMixer": "identity",
    "LocalBranch": "local",
    "MultiscaleWaveletAttention": "mwa",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
