"""The template's token mixers inside timm's models, and the template's ViTs as timm models.

The mixers map channels-last tokens ``(B, H, W, C)`` to the same shape and are built as ``Mixer(dim, grid_size)``
(:mod:`mwa_lightning.models.mixers`). timm builds its token mixers otherwise -- ``token_mixer(dim=..., proj_drop=...,
**kwargs)`` in a MetaFormer block, on NCHW maps; ``attn_layer(dim, num_heads=..., ...)`` in a ViT block, on
``(B, N, C)`` tokens with a class token in front -- so :func:`timm_token_mixer` makes a class timm can build:

    from timm.models.metaformer import MetaFormer
    from mwa_lightning.models.timm_adapter import timm_token_mixer

    model = MetaFormer(token_mixers=timm_token_mixer("mwa", levels=1))     # any MetaFormer: every stage its grid
    vit = timm.models.VisionTransformer(img_size=32, patch_size=4, attn_layer=timm_token_mixer("mwa"))

The grid is taken from the input. A mixer whose weights do not depend on the grid (MWA, attention, the convs,
FNet, identity: ``grid_free``) takes whatever grid a stage has; GFNet's filter and AFNO's mask are sized to one grid,
so they need ``grid_size`` and refuse another. On ``(B, N, C)`` input the tokens in front of the square grid (timm's
class and register tokens) pass through unmixed.

Importing this module also registers the template's ViTs with timm (when timm is installed), for every size and
registered mixer: ``timm.create_model("vit_small_mwa_patch4_32", num_classes=100)`` is
:class:`~mwa_lightning.models.VisionTransformer` with ``size="S"``, MWA, patch 4 and 32 px images (no pretrained
weights). timm is optional: ``pip install 'mwa-lightning[reference]'``.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import torch
from torch import Tensor, nn

from mwa_lightning.models.mixers.registry import MIXERS, mixer_class
from mwa_lightning.models.vit import VisionTransformer

# timm's size names -> the template's (mwa_lightning.models.vit.SIZES)
TIMM_SIZES = {"tiny": "tiny", "xsmall": "XS", "small": "S", "base": "B", "large": "L"}
TIMM_NAME = "vit_{size}_{mixer}_patch4_32"  # e.g. vit_small_mwa_patch4_32


def timm_token_mixer(mixer: str | type[nn.Module], grid_size: tuple[int, int] | None = None, **options: Any) -> type:
    """A token-mixer class that timm's MetaFormer (``token_mixers=``) and VisionTransformer (``attn_layer=``) build.

    Args:
        mixer: a registered name (``"mwa"``) or a mixer class.
        grid_size: the grid, for a mixer sized to one (GFNet, AFNO); the others take it from each input.
        **options: the mixer's own options (``levels=2``, ``wavelet="db2"``, ...).
    """
    cls = mixer_class(mixer) if isinstance(mixer, str) else mixer
    if not getattr(cls, "grid_free", False) and grid_size is None:
        raise ValueError(
            f"{cls.__name__}'s weights are sized to one token grid: give grid_size=(H, W) (a stage of one grid), "
            "or take a mixer that takes any grid (mwa, attention, conv, fnet, identity)"
        )

    class TimmTokenMixer(nn.Module):
        """``{cls.__name__}`` as a timm token mixer: NCHW maps or (B, N, C) tokens in, the same shape out."""

        def __init__(self, dim: int, proj_drop: float = 0.0, device=None, dtype=None, **timm_kwargs: Any):
            super().__init__()  # timm's other arguments (num_heads, qkv_bias, norm_layer, depth...) are not ours
            self.mixer = cls(dim=dim, grid_size=tuple(grid_size or (8, 8)), **options).to(device=device, dtype=dtype)
            self.proj_drop = nn.Dropout(proj_drop)

        def forward(self, x: Tensor, attn_mask: Tensor | None = None, **kwargs: Any) -> Tensor:
            if x.ndim == 4:  # NCHW: a MetaFormer stage
                return self.proj_drop(self.mixer(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
            B, N, C = x.shape
            side = math.isqrt(N)
            prefix = N - side * side  # class / register tokens in front of the grid
            grid = x[:, prefix:].reshape(B, side, side, C)
            mixed = self.mixer(grid).reshape(B, side * side, C)
            return self.proj_drop(torch.cat([x[:, :prefix], mixed], 1))

    TimmTokenMixer.__name__ = TimmTokenMixer.__qualname__ = f"Timm{cls.__name__}"
    return TimmTokenMixer


def _entrypoint(size: str, mixer: str):
    def create(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
        if pretrained:
            raise ValueError(f"{TIMM_NAME.format(size=size, mixer=mixer)} has no pretrained weights")
        for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):  # timm's, for pretrained models
            kwargs.pop(key, None)
        kwargs["image_size"] = kwargs.pop("img_size", kwargs.get("image_size", 32))
        kwargs.setdefault("num_classes", 1000)  # timm's default head
        return VisionTransformer(size=TIMM_SIZES[size], patch_size=4, mixer=mixer_class(mixer), **kwargs)

    create.__name__ = TIMM_NAME.format(size=size, mixer=mixer)
    create.__module__ = __name__
    return create


def register_timm_models() -> list[str]:
    """Register every size x registered mixer with timm (once timm is installed); the names registered."""
    if importlib.util.find_spec("timm") is None:
        return []
    from timm.models import register_model

    names = []
    for size in TIMM_SIZES:
        for mixer in MIXERS:
            entrypoint = _entrypoint(size, mixer)
            globals()[entrypoint.__name__] = entrypoint  # timm looks the entrypoint up in its module
            register_model(entrypoint)
            names.append(entrypoint.__name__)
    return names


TIMM_MODELS = register_timm_models()
