"""Multi-head self-attention as a token mixer.

Vaswani et al., "Attention Is All You Need", https://arxiv.org/abs/1706.03762; used as the ViT token mixer by
Dosovitskiy et al., https://arxiv.org/abs/2010.11929, and (8 heads) in the CIFAR setup of the AFNO repository
(https://github.com/NVlabs/AFNO-transformer). Quadratic in the number of tokens.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from mwa_lightning.models.mixers.common import check_divisor, check_grid


class SelfAttention(nn.Module):
    """Global multi-head self-attention over all H*W tokens, through ``F.scaled_dot_product_attention``.

    Args:
        dim: channels C.
        grid_size: token grid (H, W); attention has no size-dependent weights and takes any grid.
        num_heads: heads; must divide ``dim``.
        qkv_bias: bias in the query/key/value projection.
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after the output projection.
    """

    grid_free = True  # the projections' weights do not depend on the grid (positions are the backbone's)

    def __init__(
        self,
        dim: int,
        grid_size: tuple[int, int],
        *,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        check_divisor("num_heads", dim, num_heads)
        self.grid_size = tuple(grid_size)
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        check_grid(self, x)
        qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, N, C/heads)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, H, W, C)  # (B, H, W, C)
        return self.proj_drop(self.proj(y)).to(x.dtype)
