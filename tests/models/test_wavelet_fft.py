import ptwt
import pytest
import torch

from mwa_lightning.models.mixers.wavelet_fft import (
    FourierTransform,
    WaveletTransform,
    haar_dwt2,
    haar_idwt2,
    is_haar,
)


def ptwt_bands(x, wavelet, levels):
    """ptwt's coefficients of a channels-last grid as band stacks, coarsest first."""
    c = ptwt.wavedec2(x, wavelet, level=levels, mode="reflect", axes=(1, 2))
    return [torch.stack([c[0], *c[1]])] + [torch.stack(tuple(d)) for d in c[2:]]


@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("shape", [(3, 8, 8, 5), (2, 16, 24, 4)])
def test_fast_haar_equals_ptwt_values_and_gradients(levels, shape):
    x = torch.randn(shape, requires_grad=True)
    fast = WaveletTransform("haar", levels)
    ref = WaveletTransform("haar", levels, fast_haar=False)
    assert fast.fast and not ref.fast
    ours, theirs = fast(x), ptwt_bands(x, "haar", levels)
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # gradients of a random functional of the coefficients
    weights = [torch.randn_like(t) for t in ours]
    (g_fast,) = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, ours, strict=True)), x)
    (g_ref,) = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, theirs, strict=True)), x)
    torch.testing.assert_close(g_fast, g_ref, atol=1e-5, rtol=1e-5)
    # the inverse, values and gradients, against ptwt's waverec2
    bands = [b.detach().requires_grad_() for b in theirs]
    y_fast, y_ref = fast.inverse(bands, shape[1:3]), ref.inverse(bands, shape[1:3])
    torch.testing.assert_close(y_fast, y_ref, atol=1e-5, rtol=1e-5)
    w = torch.randn_like(y_fast)
    g1 = torch.autograd.grad((w * y_fast).sum(), bands)
    g2 = torch.autograd.grad((w * y_ref).sum(), bands)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_haar_butterfly_by_hand():
    # one 2x2 block [[a, b], [c, d]] = [[1, 2], [3, 5]]
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]]).reshape(1, 2, 2, 1)
    ll, h, v, d = haar_dwt2(x).flatten().tolist()
    assert (ll, h, v, d) == pytest.approx(
        ((1 + 2 + 3 + 5) / 2, (1 + 2 - 3 - 5) / 2, (1 - 2 + 3 - 5) / 2, (1 - 2 - 3 + 5) / 2)
    )
    torch.testing.assert_close(haar_idwt2(haar_dwt2(x)), x)


@pytest.mark.parametrize("wavelet,fast", [("haar", True), ("haar", False), ("db2", False)])
@pytest.mark.parametrize("levels", [1, 2, 3])
def test_perfect_reconstruction(wavelet, fast, levels):
    x = torch.randn(2, 16, 16, 3, dtype=torch.float64)
    t = WaveletTransform(wavelet, levels, fast_haar=fast)
    torch.testing.assert_close(t.inverse(t(x), (16, 16)), x, atol=1e-10, rtol=0)


def test_haar_is_detected_by_filter_bank():
    assert is_haar("haar") and is_haar("db1")
    assert not is_haar("db2") and not is_haar("sym4")
    assert WaveletTransform("db1").fast


def test_fourier_transform_round_trip_and_energy():
    x = torch.randn(2, 8, 6, 4)
    t = FourierTransform()
    (z,) = t(x)
    assert z.shape == (2, 2, 8, 4, 4)
    torch.testing.assert_close(t.inverse([z], (8, 6)), x, atol=1e-5, rtol=1e-5)
    # ortho: the DC mode of each channel is sum / sqrt(H*W)
    torch.testing.assert_close(z[0, :, 0, 0], x.sum((1, 2)) / (48**0.5), atol=1e-5, rtol=1e-5)


def test_ptwt_path_runs_in_float32_under_bf16_autocast():
    t = WaveletTransform("db2", 1)
    x = torch.randn(2, 8, 8, 4, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bands = t(x)
        y = t.inverse(bands, (8, 8))
    assert bands[0].dtype == torch.float32 and y.dtype == torch.float32
    torch.testing.assert_close(y, x.float(), atol=1e-5, rtol=1e-5)


def test_unknown_wavelet_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown wavelet 'haarr'.*db2.*sym4"):
        WaveletTransform("haarr")


def test_grid_not_divisible_by_two_to_the_levels():
    t = WaveletTransform("haar", 3)
    with pytest.raises(ValueError, match=r"\(12, 12\) is not divisible by 2\*\*levels = 8"):
        t(torch.randn(1, 12, 12, 2))
