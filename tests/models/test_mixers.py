import math

import ptwt
import pytest
import torch
import torch.nn.functional as F

from mwa_lightning.models import AFNO, GlobalFilter, MultiscaleWaveletAttention, SelfAttention, VisionTransformer


def test_tiny_backbone_forward_backward_every_parameter_gets_a_gradient(mixer):
    model = VisionTransformer(mixer=mixer, size="tiny", num_classes=5, drop_path_rate=0.0)
    logits = model(torch.randn(3, 3, 32, 32))
    assert logits.shape == (3, 5)
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("in_dtype", [torch.float32, torch.bfloat16])
def test_output_dtype_equals_input_dtype_under_bf16_autocast(mixer, in_dtype):
    m = mixer(dim=16, grid_size=(8, 8))
    x = torch.randn(2, 8, 8, 16, dtype=in_dtype, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.dtype == in_dtype
    assert torch.isfinite(y).all()
    y.float().sum().backward()
    assert torch.isfinite(x.grad).all()
    # bf16 autocast stays close to the float32 result
    with torch.no_grad():
        ref = m(x.detach().float())
    assert (y.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.05


# ----------------------------------------------------------------------------------------------- SelfAttention
def test_self_attention_matches_naive_softmax_attention():
    m = SelfAttention(dim=16, grid_size=(4, 4), num_heads=4)
    x = torch.randn(2, 4, 4, 16)
    q, k, v = m.qkv(x.reshape(2, 16, 16)).chunk(3, dim=-1)
    heads = lambda t: t.reshape(2, 16, 4, 4).transpose(1, 2)  # noqa: E731  (B, heads, N, d)
    att = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(4), dim=-1)
    ref = m.proj((att @ heads(v)).transpose(1, 2).reshape(2, 16, 16)).reshape(2, 4, 4, 16)
    torch.testing.assert_close(m(x), ref, atol=1e-5, rtol=1e-5)


def test_self_attention_is_permutation_equivariant():
    m = SelfAttention(dim=16, grid_size=(4, 4), num_heads=2)
    x = torch.randn(1, 4, 4, 16)
    perm = torch.randperm(16)
    y = m(x).reshape(1, 16, 16)[:, perm]
    y_perm = m(x.reshape(1, 16, 16)[:, perm].reshape(1, 4, 4, 16)).reshape(1, 16, 16)
    torch.testing.assert_close(y, y_perm, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------- GlobalFilter
def test_global_filter_with_unit_filter_is_identity():
    m = GlobalFilter(dim=6, grid_size=(8, 6))
    with torch.no_grad():
        m.complex_weight.zero_()
        m.complex_weight[..., 0] = 1.0
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(m(x), x, atol=1e-5, rtol=1e-5)


def test_global_filter_is_a_circular_convolution():
    H, W, C = 6, 8, 3
    m = GlobalFilter(dim=C, grid_size=(H, W))
    kernel = torch.randn(H, W, C)
    with torch.no_grad():  # filter = (unnormalised) DFT of the kernel; with ortho FFTs y = x (*) kernel
        m.complex_weight.copy_(torch.view_as_real(torch.fft.rfft2(kernel, dim=(0, 1))))
    x = torch.randn(1, H, W, C)
    ref = torch.zeros_like(x)
    for i in range(H):  # y[i, j] = sum_{a, b} x[a, b] * k[(i-a) % H, (j-b) % W]
        for j in range(W):
            for a in range(H):
                for b in range(W):
                    ref[0, i, j] += x[0, a, b] * kernel[(i - a) % H, (j - b) % W]
    torch.testing.assert_close(m(x), ref, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------------------------------- AFNO
def afno_reference(m: AFNO, x: torch.Tensor) -> torch.Tensor:
    """NVlabs/AFNO-transformer afno2d.py forward (hard_thresholding_fraction=1), channels last."""
    bias = x
    B, H, W, C = x.shape
    nb, bs = m.num_blocks, m.block_size
    z = torch.fft.rfft2(x, dim=(1, 2), norm="ortho").reshape(B, H, W // 2 + 1, nb, bs)
    mm = lambda a, w: torch.einsum("...bi,bio->...bo", a, w)  # noqa: E731
    o1r = F.relu(mm(z.real, m.w1[0]) - mm(z.imag, m.w1[1]) + m.b1[0])
    o1i = F.relu(mm(z.imag, m.w1[0]) + mm(z.real, m.w1[1]) + m.b1[1])
    o2r = mm(o1r, m.w2[0]) - mm(o1i, m.w2[1]) + m.b2[0]
    o2i = mm(o1i, m.w2[0]) + mm(o1r, m.w2[1]) + m.b2[1]
    z = F.softshrink(torch.stack([o2r, o2i], dim=-1), lambd=m.sparsity_threshold)
    z = torch.view_as_complex(z).reshape(B, H, W // 2 + 1, C)
    return torch.fft.irfft2(z, s=(H, W), dim=(1, 2), norm="ortho") + bias


def test_afno_matches_the_original_implementation():
    m = AFNO(dim=16, grid_size=(8, 8), num_blocks=4, init_scale=0.3)
    x = torch.randn(2, 8, 8, 16)
    torch.testing.assert_close(m(x), afno_reference(m, x), atol=1e-5, rtol=1e-5)


def test_afno_with_zero_weights_returns_its_input():
    m = AFNO(dim=16, grid_size=(8, 8))
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
    x = torch.randn(2, 8, 8, 16)
    torch.testing.assert_close(m(x), x)


@pytest.mark.parametrize(
    "grid,fraction,rows,cols", [((8, 8), 0.5, {0, 1, 7}, 2), ((16, 10), 0.34, {0, 1, 2, 14, 15}, 2)]
)
def test_afno_hard_thresholding_keeps_the_lowest_modes_per_axis(grid, fraction, rows, cols):
    H, W = grid
    m = AFNO(dim=8, grid_size=grid, num_blocks=2, hard_thresholding_fraction=fraction, init_scale=0.5)
    assert set(m.keep_rows.tolist()) == rows and m.keep_w == cols
    x = torch.randn(2, H, W, 8)
    spec = torch.fft.rfft2(m(x) - x, dim=(1, 2), norm="ortho").abs().amax(dim=(0, 3))  # (H, W//2+1)
    kept = torch.zeros_like(spec, dtype=torch.bool)
    kept[sorted(rows), :cols] = True
    assert spec[~kept].max() < 1e-5, "energy outside the kept modes"
    assert spec[kept].min() > 1e-3, "a kept mode was dropped"


@pytest.mark.parametrize("grid,fraction", [((8, 8), 0.1), ((16, 16), 0.1), ((8, 16), 0.19)])
def test_afno_refuses_a_fraction_that_keeps_no_mode(grid, fraction):
    with pytest.raises(
        ValueError,
        match=rf"hard_thresholding_fraction={fraction} keeps no Fourier mode of the "
        rf"{grid[0]}x{grid[1]} token grid",
    ):
        AFNO(dim=8, grid_size=grid, num_blocks=2, hard_thresholding_fraction=fraction)
    AFNO(dim=8, grid_size=grid, num_blocks=2, hard_thresholding_fraction=0.25)  # keeps the zero frequency at least


# ---------------------------------------------------------------------------------------------------- MWA
def mwa_reference(m: MultiscaleWaveletAttention, x: torch.Tensor, wavelet: str, levels: int) -> torch.Tensor:
    """MWA written plainly in NCHW with ptwt and one conv2d call per band (shared bands, all levels)."""
    B, H, W, C = x.shape
    xn = x.permute(0, 3, 1, 2)  # (B, C, H, W)
    conv = m.convs[0]
    c = ptwt.wavedec2(xn, wavelet, level=levels, mode="reflect")
    act = lambda t: F.gelu(conv(t))  # noqa: E731
    coeffs = [act(c[0])] + [ptwt.constants.WaveletDetailTuple2d(*(act(b) for b in d)) for d in c[1:]]
    y = ptwt.waverec2(coeffs, wavelet)[..., :H, :W]
    y = y + F.gelu(m.local.conv1x1(xn)) + F.gelu(m.local.conv3x3(xn))
    return F.gelu(y).permute(0, 2, 3, 1)


@pytest.mark.parametrize("wavelet,levels", [("haar", 1), ("haar", 2), ("db2", 1), ("db2", 2)])
def test_mwa_matches_a_plain_ptwt_reference(wavelet, levels):
    m = MultiscaleWaveletAttention(dim=16, grid_size=(8, 8), wavelet=wavelet, levels=levels, groups=4)
    x = torch.randn(2, 8, 8, 16)
    torch.testing.assert_close(m(x), mwa_reference(m, x, wavelet, levels), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("wavelet", ["haar", "db2"])
def test_mwa_with_identity_conv_and_no_skips_is_gelu_idwt_gelu_dwt(wavelet):
    m = MultiscaleWaveletAttention(dim=8, grid_size=(8, 8), wavelet=wavelet, skips=False, groups=2)
    with torch.no_grad():
        torch.nn.init.dirac_(m.convs[0].weight, groups=2)
        m.convs[0].bias.zero_()
    x = torch.randn(2, 8, 8, 8)
    c = ptwt.wavedec2(x, wavelet, level=1, mode="reflect", axes=(1, 2))
    gelu_c = [F.gelu(c[0]), ptwt.constants.WaveletDetailTuple2d(*(F.gelu(b) for b in c[1]))]
    expected = F.gelu(ptwt.waverec2(gelu_c, wavelet, axes=(1, 2))[:, :8, :8])
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)


def test_mwa_fft_swap_with_identity_conv_and_no_skips():
    m = MultiscaleWaveletAttention(dim=4, grid_size=(8, 8), transform="fft", skips=False, groups=1)
    with torch.no_grad():
        torch.nn.init.dirac_(m.convs[0].weight)
        m.convs[0].bias.zero_()
    x = torch.randn(2, 8, 8, 4)
    spec = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
    spec = torch.complex(F.gelu(spec.real), F.gelu(spec.imag))
    expected = F.gelu(torch.fft.irfft2(spec, s=(8, 8), dim=(1, 2), norm="ortho"))
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)


def test_mwa_skips_only_control_is_the_two_skip_branches_and_nothing_else():
    kwargs = {"dim": 16, "grid_size": (8, 8), "groups": 4}
    full = MultiscaleWaveletAttention(**kwargs)
    control = MultiscaleWaveletAttention(**kwargs, transform="none")
    control.load_state_dict({k: v for k, v in full.state_dict().items() if k.startswith("local.")})
    assert len(control.convs) == 0 and control.transform is None
    x = torch.randn(2, 8, 8, 16)
    xn = x.permute(0, 3, 1, 2)
    expected = F.gelu(F.gelu(full.local.conv1x1(xn)) + F.gelu(full.local.conv3x3(xn))).permute(0, 2, 3, 1)
    torch.testing.assert_close(control(x), expected, atol=1e-6, rtol=1e-6)
    # the full layer is the control plus the wavelet branch: zeroing that branch's conv leaves GELU(y0 + skips)
    # with y0 = IDWT(GELU(bias=0)) = 0, i.e. the control exactly
    with torch.no_grad():
        full.convs[0].weight.zero_()
        full.convs[0].bias.zero_()
    torch.testing.assert_close(full(x), control(x), atol=1e-6, rtol=1e-6)
    params = sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in control.parameters())
    assert params == 16 * 4 * 9 + 16  # exactly the wavelet-domain conv is gone


def test_mwa_coarsest_level_only_leaves_finer_details_untouched():
    m = MultiscaleWaveletAttention(dim=4, grid_size=(8, 8), levels=2, conv_levels="coarsest", skips=False, groups=1)
    with torch.no_grad():
        m.convs[0].weight.zero_()
        m.convs[0].bias.zero_()
    # conv == 0 on level 2: y = IDWT(0, 0, 0, 0 | H1, V1, D1)
    x = torch.randn(1, 8, 8, 4)
    c = ptwt.wavedec2(x, "haar", level=2, axes=(1, 2))
    zero = torch.zeros_like(c[0])
    expected = ptwt.waverec2([zero, ptwt.constants.WaveletDetailTuple2d(zero, zero, zero), c[2]], "haar", axes=(1, 2))
    torch.testing.assert_close(m(x), F.gelu(expected), atol=1e-5, rtol=1e-5)


def test_mwa_stacked_bands_mix_bands_within_a_group():
    m = MultiscaleWaveletAttention(dim=4, grid_size=(4, 4), bands="stacked", groups=2, kernel_size=1, skips=False)
    assert m.convs[0].weight.shape == (16, 8, 1, 1)  # 4 bands x 4 channels, 2 groups of 2 channels x 4 bands
    with torch.no_grad():
        m.convs[0].weight.zero_()
        m.convs[0].bias.zero_()
        m.convs[0].weight[0, 3] = 1.0  # out (channel 0, LL) <- in (channel 0, D): input index c*4 + band = 3
    x = torch.randn(1, 4, 4, 4)
    z = ptwt.wavedec2(x, "haar", level=1, axes=(1, 2))
    zero = torch.zeros_like(z[0])
    ll = zero.clone()
    ll[..., 0] = F.gelu(z[1].diagonal[..., 0])
    expected = F.gelu(ptwt.waverec2([ll, ptwt.constants.WaveletDetailTuple2d(zero, zero, zero)], "haar", axes=(1, 2)))
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)


def test_mwa_default_budget_at_width_384():
    m = MultiscaleWaveletAttention(dim=384, grid_size=(8, 8))
    # 3x3 conv with 8 groups + 1x1 conv with 8 groups + depthwise 3x3, each with a bias
    expected = (384 * 48 * 9 + 384) + (384 * 48 + 384) + (384 * 9 + 384)
    assert sum(p.numel() for p in m.parameters()) == expected == 188_928


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"grid_size": (12, 12), "levels": 3}, r"\(12, 12\) is not divisible by 2\*\*levels = 8"),
        ({"wavelet": "wavelet9"}, r"unknown wavelet 'wavelet9'; expected a discrete PyWavelets name.*haar"),
        ({"groups": 5}, r"groups=5 must be a positive divisor of the 16 channels"),
        ({"kernel_size": 2}, r"kernel_size must be odd"),
        ({"transform": "fft", "levels": 2}, r"levels=2, expected 1"),
        ({"transform": "dct"}, r"transform='dct'; expected one of 'dwt', 'fft', 'polyphase', 'none'"),
        ({"transform": "none", "skips": False}, r"transform='none' with skips=False leaves no branch"),
        ({"bands": "mixed"}, r"bands='mixed'; expected one of 'shared', 'stacked'"),
        ({"conv_levels": "finest"}, r"conv_levels='finest'; expected one of 'all', 'coarsest'"),
    ],
)
def test_mwa_bad_configuration_errors(kwargs, match):
    args = {"dim": 16, "grid_size": (8, 8), **kwargs}
    with pytest.raises(ValueError, match=match):
        MultiscaleWaveletAttention(**args)


GRID_BOUND = {"afno", "gfn"}  # weights (GFNet's filter) or a mask (AFNO's hard thresholding) sized to the grid


def test_a_mixer_takes_another_grid_exactly_where_its_weights_allow(mixer):
    """A grid-free mixer on a 4 x 4 grid gives what the same weights built for 4 x 4 give (they do not depend on
    the grid); a grid-bound one refuses, naming both grids."""
    from mwa_lightning.models.mixers import mixer_name

    m = mixer(dim=16, grid_size=(8, 8)).eval()
    x = torch.randn(2, 4, 4, 16)
    assert getattr(m, "grid_free", False) == (mixer_name(mixer) not in GRID_BOUND)
    if mixer_name(mixer) in GRID_BOUND:
        with pytest.raises(ValueError, match=r"built for a \(8, 8\) grid, got \(4, 4\)"):
            m(x)
        return
    built = mixer(dim=16, grid_size=(4, 4)).eval()
    built.load_state_dict(m.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(m(x), built(x), rtol=0, atol=0)


def test_mwa_on_another_grid_still_needs_its_levels_to_divide_it():
    m = MultiscaleWaveletAttention(dim=16, grid_size=(8, 8), levels=2)
    m(torch.randn(1, 12, 4, 16))  # both sides divisible by 2**2
    with pytest.raises(ValueError, match=r"token grid \(6, 4\) is not divisible by 2\*\*levels = 4"):
        m(torch.randn(1, 6, 4, 16))
