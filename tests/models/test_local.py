"""The local branch for every mixer, the controls, and the identities that tell them apart (float64)."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from mwa_lightning.models import (
    AFNO,
    ConvMixer,
    GlobalFilter,
    IdentityMixer,
    MultiscaleWaveletAttention,
    VisionTransformer,
)
from mwa_lightning.models.mixers.wavelet_fft import haar_dwt2, polyphase2, polyphase2_inverse
from mwa_lightning.models.vit import Block
from mwa_lightning.training.flops import model_flops

DIM, GRID, GROUPS = 16, (8, 8), 4


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def wavelet_branch(**kwargs):
    """MWA's wavelet branch alone: no skips, no output GELU (the backbone adds both, the same for every mixer)."""
    return MultiscaleWaveletAttention(DIM, GRID, groups=GROUPS, skips=False, output_gelu=False, **kwargs).double()


def test_default_mwa_is_its_wavelet_branch_plus_the_shared_local_branch_and_gelu():
    torch.manual_seed(0)
    default = Block(DIM, GRID, lambda dim, grid_size: MultiscaleWaveletAttention(dim, grid_size, groups=GROUPS))
    composed = Block(
        DIM,
        GRID,
        lambda dim, grid_size: MultiscaleWaveletAttention(
            dim, grid_size, groups=GROUPS, skips=False, output_gelu=False
        ),
        local_branch=True,
        mixer_gelu=True,
    )
    # the same weights: MWA's own local branch is the block's local branch
    state = {k.replace("mixer.local.", "local."): v for k, v in default.state_dict().items()}
    composed.load_state_dict(state)
    default, composed = default.double(), composed.double()
    x = torch.randn(2, *GRID, DIM, dtype=torch.float64)
    torch.testing.assert_close(composed(x), default(x), rtol=0, atol=0)  # bitwise: the same sums in order
    assert sum(p.numel() for p in composed.parameters()) == sum(p.numel() for p in default.parameters())


def test_the_composition_keeps_the_default_mwas_parameters_and_flops_in_vit_s():
    mwa = VisionTransformer(mixer=MultiscaleWaveletAttention, size="S")
    wavelet = {
        "class_path": "mwa_lightning.models.MultiscaleWaveletAttention",
        "init_args": {"skips": False, "output_gelu": False},
    }
    composed = VisionTransformer(mixer=wavelet, size="S", local_branch=True, mixer_gelu=True)
    # the figures of the MWA layer before its skips became the shared module (commit a39def3), ViT-S/4 at 32 px
    assert mwa.num_params() == composed.num_params() == 16_512_394
    assert model_flops(mwa, 32) == 2_107_448_832
    assert model_flops(mwa, 32) == model_flops(composed, 32)
    assert sum(p.numel() for p in MultiscaleWaveletAttention(384, GRID).parameters()) == 188_928


def test_haar_branch_without_its_inner_gelu_is_a_dilation_2_grouped_conv():
    # fact 2: with shared bands the conv commutes with the orthonormal Haar butterfly; bias off
    torch.manual_seed(1)
    m = wavelet_branch(inner_gelu=False)
    with torch.no_grad():
        m.convs[0].bias.zero_()
    x = torch.randn(2, *GRID, DIM, dtype=torch.float64)
    conv = m.convs[0]
    dilated = nhwc(F.conv2d(nchw(x), conv.weight, padding=2, dilation=2, groups=GROUPS))
    torch.testing.assert_close(m(x), dilated, rtol=0, atol=1e-13)


def test_the_bias_adds_a_fixed_2x2_pattern_the_dilated_conv_lacks():
    # a per-channel bias b on all four Haar bands: IDWT adds 2b at the top-left token of every 2x2 block, 0 elsewhere
    torch.manual_seed(2)
    m = wavelet_branch(inner_gelu=False)
    x = torch.randn(2, *GRID, DIM, dtype=torch.float64)
    conv = m.convs[0]
    dilated = nhwc(F.conv2d(nchw(x), conv.weight, padding=2, dilation=2, groups=GROUPS))
    pattern = torch.zeros(*GRID, DIM, dtype=torch.float64)
    pattern[0::2, 0::2] = 2 * conv.bias
    torch.testing.assert_close(m(x) - dilated, pattern.expand_as(dilated), rtol=0, atol=1e-13)


def test_polyphase_basis_with_its_gelu_is_gelu_of_the_dilated_conv():
    # without the butterfly the GELU acts per token: the polyphase branch is GELU(dilated conv + bias)
    torch.manual_seed(3)
    m = wavelet_branch(transform="polyphase")
    x = torch.randn(2, *GRID, DIM, dtype=torch.float64)
    conv = m.convs[0]
    expected = F.gelu(nhwc(F.conv2d(nchw(x), conv.weight, conv.bias, padding=2, dilation=2, groups=GROUPS)))
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-13)
    # and the Haar basis with the same weights is not that: the GELU sees the bands
    haar = wavelet_branch()
    haar.load_state_dict(m.state_dict())
    assert (haar(x) - expected).abs().max() > 1e-3


def test_polyphase_split_inverts_and_haar_is_its_butterfly():
    x = torch.randn(3, 6, 4, 5, dtype=torch.float64)
    p = polyphase2(x)
    torch.testing.assert_close(polyphase2_inverse(p), x, rtol=0, atol=0)
    torch.testing.assert_close(p[1], x[:, 0::2, 1::2])  # component 2a + b holds tokens (2i + a, 2j + b)
    butterfly = 0.5 * torch.tensor([[1, 1, 1, 1], [1, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]], dtype=torch.float64)
    torch.testing.assert_close(haar_dwt2(x), torch.einsum("kp,pbhwc->kbhwc", butterfly, p))


def test_polyphase_refuses_more_levels_and_odd_grids():
    with pytest.raises(ValueError, match="transform='polyphase' has a single level; got levels=2"):
        MultiscaleWaveletAttention(DIM, GRID, transform="polyphase", levels=2)
    with pytest.raises(ValueError, match=r"token grid \(7, 8\) has an odd side"):
        MultiscaleWaveletAttention(DIM, (7, 8), transform="polyphase")


@pytest.mark.parametrize("kernel,dilation,groups", [(3, 1, None), (7, 1, None), (3, 4, 4), (5, 2, 1)])
def test_conv_mixer_is_one_padded_conv(kernel, dilation, groups):
    m = ConvMixer(DIM, GRID, kernel_size=kernel, dilation=dilation, groups=groups).double()
    x = torch.randn(2, *GRID, DIM, dtype=torch.float64)
    expected = F.conv2d(
        nchw(x), m.conv.weight, m.conv.bias, padding=dilation * (kernel // 2), dilation=dilation, groups=groups or DIM
    )
    torch.testing.assert_close(m(x), nhwc(expected), rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvMixer(DIM, GRID, kernel_size=4)


def test_identity_mixer_mixes_nothing():
    x = torch.randn(2, *GRID, DIM)
    assert IdentityMixer(DIM, GRID)(x) is x and not list(IdentityMixer(DIM, GRID).parameters())


def test_the_block_formulas_by_hand():
    torch.manual_seed(4)
    x = torch.randn(2, *GRID, DIM, dtype=torch.float64)
    for layout in ("prenorm", "serial"):
        block = Block(DIM, GRID, GlobalFilter, local_branch=True, mixer_gelu=True, layout=layout).double().eval()
        h = block.norm1(x)
        local = F.gelu(nhwc(block.local.conv1x1(nchw(h)))) + F.gelu(nhwc(block.local.conv3x3(nchw(h))))
        u = F.gelu(block.mixer(h) + local)
        if layout == "serial":  # GFNet's block: x + MLP(LN2(GF(LN1 x)))
            expected = x + block.mlp(block.norm2(u))
        else:
            y = x + u
            expected = y + block.mlp(block.norm2(y))
        torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="unknown block layout 'parallel'"):
        Block(DIM, GRID, GlobalFilter, layout="parallel")


def test_afno_warns_once_naming_a_setting_that_kills_every_mode():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AFNO(64, (8, 8), num_blocks=4, sparsity_threshold=0.1)
        AFNO(64, (8, 8), num_blocks=4, sparsity_threshold=0.1)  # the same setting: no second warning
        alive = AFNO(64, (8, 8), num_blocks=4, sparsity_threshold=0.01)
    messages = [str(w.message) for w in caught if "soft-shrinkage" in str(w.message)]
    assert len(messages) == 1 and "dim=64" in messages[0] and "sparsity_threshold=0.1" in messages[0]
    assert alive.dead_fraction() == 0.0 and AFNO(384, (8, 8), sparsity_threshold=0.1).dead_fraction() < 1.0


def test_the_identity_mixers_first_class_path_still_builds_it():
    """IdentityMixer moved from local.py to identity.py: a config or run folder written with its first class path
    builds the same class, and the registry names its new home."""
    import pkgutil

    from mwa_lightning.models.mixers import IdentityMixer, mixer_class
    from mwa_lightning.models.mixers.registry import MIXERS

    assert pkgutil.resolve_name("mwa_lightning.models.mixers.local.IdentityMixer") is IdentityMixer
    assert MIXERS["identity"] == "mwa_lightning.models.mixers.identity.IdentityMixer"
    assert mixer_class("identity") is IdentityMixer and IdentityMixer.__module__.endswith(".identity")
