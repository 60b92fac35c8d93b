"""A plain Vision Transformer whose token mixer is injected.

Dosovitskiy et al., "An Image is Worth 16x16 Words", https://arxiv.org/abs/2010.11929, in the small-patch,
no-class-token form the MWA paper (https://arxiv.org/abs/2303.12398) and the AFNO repository use on CIFAR:
patch embedding, learnable position embedding, pre-norm blocks, final norm, global average pooling, linear
head. The block follows timm's ``MetaFormerBlock``: the mixer is a factory called once per block.

Tokens live channels last, ``(B, H, W, C)``, between blocks; a mixer maps that shape to itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal, Protocol, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import MLP, StochasticDepth

from mwa_lightning.models.mixers import SelfAttention
from mwa_lightning.models.mixers.local import LocalBranch
from mwa_lightning.models.mixers.registry import mixer_factory


class MixerFactory(Protocol):
    """Builds one token mixer: ``factory(dim=C, grid_size=(H, W))`` -> module mapping (B, H, W, C) to itself."""

    def __call__(self, dim: int, grid_size: tuple[int, int]) -> nn.Module: ...


# depth, width of the named backbones; "tiny" is for tests. XS/S/B are the MWA paper's (patch 4 on CIFAR and
# Tiny-ImageNet); S/B/L at patch 16 are the ImageNet ViTs (L: 24 x 1024, Dosovitskiy et al.)
SIZES: dict[str, tuple[int, int]] = {
    "tiny": (2, 32),
    "XS": (5, 384),
    "S": (12, 384),
    "B": (12, 768),
    "L": (24, 1024),
}
# stochastic depth by size when drop_path_rate is None: 0.1 as the MWA paper and DeiT (S, B); 0.4 for L (DeiT III)
DROP_PATH: dict[str, float] = {"tiny": 0.1, "XS": 0.1, "S": 0.1, "B": 0.1, "L": 0.4}


BlockLayout = Literal["prenorm", "serial"]
BLOCKS = get_args(BlockLayout)  # the block layouts (Block's ``layout``)


class Block(nn.Module):
    """A transformer block around an injected token mixer ``M``, with ``h = LN1(x)``.

    The mixer's output is ``u = phi(M(h) + L(h))``: ``L`` the optional local branch
    (:class:`~mwa_lightning.models.mixers.local.LocalBranch`, ``GELU(conv1x1 h) + GELU(dwconv3x3 h)``; absent:
    0), ``phi`` GELU with ``mixer_gelu`` (else the identity). Then, by ``layout``:

    - "prenorm" (the ViT block): ``x = x + drop_path(u)``, then ``x + drop_path(MLP(LN2(x)))``;
    - "serial" (GFNet's own block, raoyongming/GFNet ``Block``): ``x + drop_path(MLP(LN2(u)))``, one residual.
    """

    def __init__(
        self,
        dim: int,
        grid_size: tuple[int, int],
        mixer: Callable[..., nn.Module],
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
        local_branch: bool = False,
        mixer_gelu: bool = False,
        layout: BlockLayout = "prenorm",
    ):
        super().__init__()
        if layout not in BLOCKS:
            raise ValueError(f"unknown block layout {layout!r}; expected one of {', '.join(BLOCKS)}")
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.mixer = mixer(dim=dim, grid_size=grid_size)
        self.local = (
            LocalBranch(dim, grid_size=grid_size).to(memory_format=torch.channels_last) if local_branch else None
        )
        self.mixer_gelu, self.layout = mixer_gelu, layout
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, [int(dim * mlp_ratio), dim], activation_layer=nn.GELU, dropout=drop)
        self.drop_path = StochasticDepth(drop_path, mode="row")

    def mix(self, x: Tensor) -> Tensor:
        """``phi(M(LN1(x)) + L(LN1(x)))``: the token-mixing half of the block, before its residual."""
        h = self.norm1(x)
        u = self.mixer(h)
        if self.local is not None:
            u = self.local(h, base=u)
        return F.gelu(u) if self.mixer_gelu else u

    def forward(self, x: Tensor) -> Tensor:
        u = self.mix(x)
        if self.layout == "serial":
            return x + self.drop_path(self.mlp(self.norm2(u)))
        x = x + self.drop_path(u)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TokenTransformer(nn.Module):
    """What the image and the sequence backbones share: position embedding, the blocks on a token grid, the final
    norm, global average pooling and the linear head, and the initialisation. A subclass embeds its input into
    channels-last tokens ``(B, H, W, C)`` (:meth:`embed`) on ``self.grid_size``; a sequence is the grid (1, L)."""

    grid_size: tuple[int, int]

    def _build_trunk(
        self,
        mixer: MixerFactory,
        num_classes: int,
        size: str,
        *,
        mlp_ratio: float,
        drop_rate: float,
        drop_path_rate: float | None,
        local_branch: bool,
        mixer_gelu: bool,
        block: BlockLayout,
    ) -> None:
        """Everything after the embedding, built after the subclass's embedding (the parameters' order). The
        options' defaults are :class:`VisionTransformer`'s (:func:`trunk_defaults`)."""
        mixer = mixer_factory(mixer)
        drop_path_rate = DROP_PATH[size] if drop_path_rate is None else drop_path_rate
        depth, embed_dim = self.depth, self.embed_dim
        self.pos_embed = nn.Parameter(torch.zeros(1, *self.grid_size, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(
            *(
                Block(
                    embed_dim, self.grid_size, mixer, mlp_ratio, drop_rate, rate, 1e-6, local_branch, mixer_gelu, block
                )
                for rate in rates
            )
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights()

    @staticmethod
    def _dimensions(size: str, depth: int | None, embed_dim: int | None) -> tuple[int, int]:
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        return (SIZES[size][0] if depth is None else depth), (SIZES[size][1] if embed_dim is None else embed_dim)

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> set[str]:
        """Parameters exempt from weight decay besides 1-d ones (norms, biases)."""
        return {"pos_embed"}

    def num_params(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())

    def embed(self, x: Tensor) -> Tensor:
        """The input -> channels-last tokens ``(B, H, W, C)`` on ``self.grid_size``."""
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        """The input -> normalised tokens ``(B, H, W, C)``."""
        x = self.pos_drop(self.embed(x) + self.pos_embed)
        return self.norm(self.blocks(x))

    def forward(self, x: Tensor) -> Tensor:
        """The input -> logits ``(B, num_classes)``."""
        return self.head(self.forward_features(x).mean(dim=(1, 2)))


class VisionTransformer(TokenTransformer):
    """ViT backbone with an injected token mixer; no class token, global average pooling.

    Args:
        mixer: factory of the token mixer, called once per block as ``mixer(dim=C, grid_size=(H, W))``: a mixer
            class, a ``functools.partial`` of one, or a ``{"class_path": ..., "init_args": {...}}`` dict (as in a
            config, and as checkpoints keep it).
        num_classes: classes of the linear head.
        image_size: input side in pixels (square images).
        patch_size: patch side in pixels; must divide ``image_size``.
        size: named backbone, depth x width: one of :data:`SIZES` ("tiny" 2 x 32, "XS" 5 x 384, "S" 12 x 384,
            "B" 12 x 768, "L" 24 x 1024); ``depth`` and ``embed_dim`` override its numbers.
        depth: blocks; overrides the named size's.
        embed_dim: token width C; overrides the named size's.
        in_chans: input channels.
        mlp_ratio: hidden width of the MLP over C.
        drop_rate: dropout after the embedding and inside the MLP.
        drop_path_rate: stochastic depth at the last block, linearly increasing from 0 at the first; None takes
            the size's (``DROP_PATH``: 0.1, and 0.4 for L).
        local_branch: add the local branch (1x1 and depthwise 3x3 convolutions, each with a GELU) beside the
            mixer in every block (:class:`Block`): the same local path for any mixer.
        mixer_gelu: a GELU on the mixer's output (with the local branch added), the same for every mixer.
        block: the block layout, "prenorm" (two residuals) or "serial" (GFNet's, one residual), see :class:`Block`.
    """

    def __init__(
        self,
        mixer: MixerFactory = SelfAttention,
        num_classes: int = 10,
        image_size: int = 32,
        patch_size: int = 4,
        size: str = "S",
        depth: int | None = None,
        embed_dim: int | None = None,
        in_chans: int = 3,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        drop_path_rate: float | None = None,
        local_branch: bool = False,
        mixer_gelu: bool = False,
        block: BlockLayout = "prenorm",
    ):
        super().__init__()
        self.depth, self.embed_dim = self._dimensions(size, depth, embed_dim)
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"image_size={image_size} is not divisible by patch_size={patch_size}")
        self.image_size, self.patch_size, self.in_chans = image_size, patch_size, in_chans
        self.num_classes = num_classes
        self.grid_size = (image_size // patch_size, image_size // patch_size)
        self.patch_embed = nn.Conv2d(in_chans, self.embed_dim, patch_size, stride=patch_size)
        self._build_trunk(
            mixer,
            num_classes,
            size,
            mlp_ratio=mlp_ratio,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            local_branch=local_branch,
            mixer_gelu=mixer_gelu,
            block=block,
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One input's shape, ``(in_chans, S, S)``."""
        return (self.in_chans, self.image_size, self.image_size)

    def embed(self, x: Tensor) -> Tensor:
        """Images ``(B, in_chans, S, S)`` -> patch tokens ``(B, H, W, C)``."""
        B, c, h, w = x.shape
        if (c, h, w) != (self.in_chans, self.image_size, self.image_size):
            raise ValueError(
                f"expected images of shape (B, {self.in_chans}, {self.image_size}, {self.image_size}), "
                f"got (B, {c}, {h}, {w})"
            )
        return self.patch_embed(x).permute(0, 2, 3, 1)  # (B, H, W, C)


TRUNK_OPTIONS = ("mlp_ratio", "drop_rate", "drop_path_rate", "local_branch", "mixer_gelu", "block")


def trunk_defaults() -> dict[str, Any]:
    """The defaults of the options every backbone's trunk takes: :class:`VisionTransformer`'s, stated once there."""
    parameters = inspect.signature(VisionTransformer.__init__).parameters
    return {name: parameters[name].default for name in TRUNK_OPTIONS}
