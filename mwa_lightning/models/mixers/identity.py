"""No token mixing: MetaFormer's IdentityFormer (Yu et al., https://arxiv.org/abs/2210.13452), the floor every
mixer must clear (registered as ``identity``)."""

from __future__ import annotations

from torch import Tensor

from mwa_lightning.models.mixers.common import ParameterFree, check_grid


class IdentityMixer(ParameterFree):
    """No token mixing: the tokens pass through unchanged (MetaFormer's IdentityFormer).

    Args:
        dim: channels C (unused: the mixer has no parameters).
        grid_size: token grid (H, W).
    """

    def forward(self, x: Tensor) -> Tensor:
        check_grid(self, x)
        return x
