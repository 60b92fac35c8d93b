"""Sequences: the 1-D Haar path against PyWavelets, each mixer on a sequence's (1, L) grid against a naive 1-D
implementation, and the sequence backbone."""

import numpy as np
import pytest
import pywt
import torch
import torch.nn.functional as F

from mwa_lightning.models import (
    AFNO,
    ConvMixer,
    FourierMixer,
    GlobalFilter,
    MultiscaleWaveletAttention,
    SelfAttention,
    SequenceTransformer,
)
from mwa_lightning.models.mixers import mixer_class, mixer_names
from mwa_lightning.models.mixers.wavelet_fft import WaveletTransform1d

L, C = 16, 8


def seq(*shape, grad=False):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=grad)


def pywt_dec(x: np.ndarray, wavelet: str, levels: int, mode: str) -> list[np.ndarray]:
    """PyWavelets' wavedec along the sequence axis of (B, 1, L, C)."""
    return pywt.wavedec(x, wavelet, level=levels, mode=mode, axis=2)


@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("wavelet", ["haar", "db2"])
def test_1d_dwt_and_inverse_match_pywavelets(wavelet, levels):
    t = WaveletTransform1d(wavelet, levels, mode="reflect")
    assert t.fast == (wavelet == "haar")
    x = seq(2, 1, 32, 3)
    bands = t(x)
    ref = pywt_dec(x.detach().numpy(), wavelet, levels, "reflect")
    assert [b.shape[0] for b in bands] == [2] + [1] * (levels - 1)
    np.testing.assert_allclose(bands[0][0].detach().numpy(), ref[0], atol=1e-10)  # cA_m
    np.testing.assert_allclose(bands[0][1].detach().numpy(), ref[1], atol=1e-10)  # cD_m
    for j, d in enumerate(bands[1:], start=2):
        np.testing.assert_allclose(d[0].detach().numpy(), ref[j], atol=1e-10)
    coeffs = [b.detach().numpy() for b in [bands[0][0], bands[0][1], *(d[0] for d in bands[1:])]]
    np.testing.assert_allclose(
        t.inverse(bands, (1, 32)).detach().numpy(),
        pywt.waverec(coeffs, wavelet, mode="reflect", axis=2)[:, :, :32],
        atol=1e-10,
    )


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_1d_haar_fast_path_equals_ptwt_in_values_and_gradients(levels):
    fast, slow = WaveletTransform1d("haar", levels), WaveletTransform1d("haar", levels, fast_haar=False)
    x1, x2 = seq(2, 1, 32, 3, grad=True), None
    x2 = x1.detach().clone().requires_grad_(True)
    weights = [torch.randn_like(b) for b in fast(x1.detach())]
    loss1 = sum((b * w).sum() for b, w in zip(fast(x1), weights, strict=True))
    loss2 = sum((b * w).sum() for b, w in zip(slow(x2), weights, strict=True))
    torch.testing.assert_close(loss1, loss2)
    loss1.backward()
    loss2.backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    y = seq(2, 1, 32, 3)
    torch.testing.assert_close(fast.inverse(fast(y), (1, 32)), y)  # perfect reconstruction


def test_sequence_lengths_the_levels_cannot_divide_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"sequence of 12 tokens is not divisible by 2\*\*levels = 8 \(levels=3\)"):
        MultiscaleWaveletAttention(C, (1, 12), levels=3)


def test_attention_on_a_sequence_is_plain_softmax_attention():
    m = SelfAttention(C, (1, L), num_heads=2).double()
    x = seq(2, 1, L, C)
    q, k, v = m.qkv(x[:, 0]).chunk(3, dim=-1)  # (B, L, C) each

    def heads(t):
        return t.reshape(2, L, 2, C // 2).transpose(1, 2)

    w = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / (C // 2) ** 0.5, -1)
    expected = m.proj((w @ heads(v)).transpose(1, 2).reshape(2, L, C))
    torch.testing.assert_close(m(x)[:, 0], expected)


def test_gfnet_on_a_sequence_filters_the_rfft():
    m = GlobalFilter(C, (1, L)).double()
    x = seq(2, 1, L, C)
    filt = torch.view_as_complex(m.complex_weight[0].contiguous())  # (L//2+1, C)
    expected = torch.fft.irfft(torch.fft.rfft(x[:, 0], dim=1, norm="ortho") * filt, n=L, dim=1, norm="ortho")
    torch.testing.assert_close(m(x)[:, 0], expected)
    assert m.complex_weight.shape[:2] == (1, L // 2 + 1)


def test_afno_on_a_sequence_is_the_block_mlp_on_each_rfft_mode():
    m = AFNO(C, (1, L), num_blocks=2, sparsity_threshold=0.01).double()
    x = seq(2, 1, L, C)
    z = torch.fft.rfft(x[:, 0], dim=1, norm="ortho")  # (B, modes, C) complex
    bs = C // 2
    out = torch.zeros_like(z)
    for b in range(2):
        zr, zi = z.real[..., b * bs : (b + 1) * bs], z.imag[..., b * bs : (b + 1) * bs]
        w1r, w1i, w2r, w2i = m.w1[0, b], m.w1[1, b], m.w2[0, b], m.w2[1, b]
        o1r = F.relu(zr @ w1r - zi @ w1i + m.b1[0, b])
        o1i = F.relu(zi @ w1r + zr @ w1i + m.b1[1, b])
        o2r = F.softshrink(o1r @ w2r - o1i @ w2i + m.b2[0, b], 0.01)
        o2i = F.softshrink(o1i @ w2r + o1r @ w2i + m.b2[1, b], 0.01)
        out[..., b * bs : (b + 1) * bs] = torch.complex(o2r, o2i)
    expected = torch.fft.irfft(out, n=L, dim=1, norm="ortho") + x[:, 0]
    torch.testing.assert_close(m(x)[:, 0], expected)


def test_fnet_is_the_real_part_of_the_dft_along_sequence_and_channels():
    m = FourierMixer(C, (1, L))
    x = seq(2, 1, L, C)

    def dft(n):
        k = torch.arange(n, dtype=torch.float64)
        return torch.exp(-2j * torch.pi * torch.outer(k, k) / n)

    expected = (dft(L) @ x[:, 0].to(torch.complex128) @ dft(C).T).real
    torch.testing.assert_close(m(x)[:, 0], expected)
    assert not list(m.parameters())


@pytest.mark.parametrize("kernel,dilation", [(3, 1), (31, 1), (5, 2)])
def test_conv_on_a_sequence_is_a_1d_conv(kernel, dilation):
    m = ConvMixer(C, (1, 64), kernel_size=kernel, dilation=dilation).double()
    assert m.conv.weight.shape[-2:] == (1, kernel)  # 1 x k: no wasted taps
    x = seq(2, 1, 64, C)
    weight = m.conv.weight[:, :, 0]  # (C, 1, k)
    expected = F.conv1d(
        x[:, 0].transpose(1, 2), weight, m.conv.bias, padding=dilation * (kernel // 2), dilation=dilation, groups=C
    )
    torch.testing.assert_close(m(x)[:, 0], expected.transpose(1, 2))


@pytest.mark.parametrize("wavelet,levels", [("haar", 1), ("haar", 2), ("db2", 1), ("db2", 2)])
def test_mwa_on_a_sequence_is_the_1d_layer_written_plainly(wavelet, levels):
    m = MultiscaleWaveletAttention(C, (1, L), wavelet=wavelet, levels=levels, groups=2).double()
    x = seq(2, 1, L, C)
    xs = x[:, 0].transpose(1, 2)  # (B, C, L)
    conv = m.convs[0]
    w = conv.weight[:, :, 0]  # (C, C/groups, 3)
    coeffs = pywt.wavedec(xs.detach().numpy(), wavelet, level=levels, mode="reflect", axis=2)
    acted = [F.gelu(F.conv1d(torch.from_numpy(c), w, conv.bias, padding=1, groups=2)).detach().numpy() for c in coeffs]
    y = torch.from_numpy(pywt.waverec(acted, wavelet, mode="reflect", axis=2)[..., :L])
    one = F.gelu(F.conv1d(xs, m.local.conv1x1.weight[:, :, 0], m.local.conv1x1.bias, groups=8 if C % 8 == 0 else 1))
    three = F.gelu(F.conv1d(xs, m.local.conv3x3.weight[:, :, 0], m.local.conv3x3.bias, padding=1, groups=C))
    expected = F.gelu(y + one + three).transpose(1, 2)
    torch.testing.assert_close(m(x)[:, 0], expected, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", mixer_names())
def test_every_registered_mixer_trains_in_the_sequence_backbone(name):
    net = SequenceTransformer(mixer=mixer_class(name), num_classes=5, seq_len=64, patch_size=4, depth=2, embed_dim=16)
    logits = net(torch.randn(3, 1, 64))
    assert logits.shape == (3, 5)
    logits.sum().backward()
    assert net.patch_embed.weight.grad.abs().sum() > 0


def test_the_sequence_backbone_refuses_bad_shapes_naming_them():
    with pytest.raises(ValueError, match="seq_len=100 is not divisible by patch_size=8"):
        SequenceTransformer(seq_len=100, patch_size=8)
    net = SequenceTransformer(seq_len=64, in_chans=2, depth=1, embed_dim=16)
    with pytest.raises(ValueError, match=r"expected sequences of shape \(B, 2, 64\), got \(3, 1, 64\)"):
        net(torch.randn(3, 1, 64))


def test_the_trunk_options_are_the_image_backbones_and_unknown_ones_are_named():
    net = SequenceTransformer(seq_len=32, depth=1, embed_dim=16, local_branch=True, block="serial")
    assert net.blocks[0].local is not None and net.blocks[0].layout == "serial"
    assert net.blocks[0].local.conv3x3.weight.shape[-2:] == (1, 3)  # the local branch is 1-D on a sequence
    with pytest.raises(TypeError, match="unknown option\\(s\\) mlp; expected some of mlp_ratio"):
        SequenceTransformer(seq_len=32, mlp=2)
