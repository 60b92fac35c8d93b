import math

import pytest
import torch
import torch.nn.functional as F

from mwa_lightning.bench.references import COST_CLASSES, model_cost
from mwa_lightning.models import MultiscaleWaveletAttention, VisionTransformer
from mwa_lightning.models.mixers import mixer_name
from mwa_lightning.training.flops import count_flops, model_flops


def test_fft_formulas_are_registered():
    x = torch.randn(2, 8, 16, 3)  # rfft2 over (8, 16): 2*3 real transforms of 128 points
    total, by_op = count_flops(lambda: torch.fft.rfft2(x, dim=(1, 2)))
    assert by_op == {"aten._fft_r2c": int(6 * 2.5 * 128 * math.log2(128))} and total == by_op["aten._fft_r2c"]
    spec = torch.fft.rfft2(x, dim=(1, 2))
    _, by_op = count_flops(lambda: torch.fft.irfft2(spec, s=(8, 16), dim=(1, 2)))
    assert by_op["aten._fft_c2r"] == int(6 * 2.5 * 128 * math.log2(128))
    z = torch.randn(4, 32, dtype=torch.complex64)
    _, by_op = count_flops(lambda: torch.fft.fft(z))
    assert by_op["aten._fft_c2c"] == (4 * 5 * 32 * 5)


def test_attention_on_cpu_is_counted():
    q = k = v = torch.randn(2, 4, 16, 8)  # (B, heads, N, d): QK^T and AV, 2*N*N*d multiply-adds each
    total, _ = count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert total == 2 * 4 * (2 * 16 * 16 * 8) * 2


@pytest.mark.parametrize("size,image", [("S", 32), ("XS", 64)])
def test_model_flops_are_within_15_percent_of_the_paper(size, image, mixer):
    cost = model_cost(image, size, mixer_name(mixer))
    if cost is None:
        pytest.skip(f"the paper has no figure for {mixer.__name__} at {image} px")
    model = VisionTransformer(mixer=mixer, size=size, image_size=image, num_classes=COST_CLASSES[image])
    gmacs = model_flops(model, image) / 2e9  # the paper counts a multiply-add once
    paper = cost[1]
    assert abs(gmacs / paper - 1) < 0.15, f"{gmacs:.3f} GMACs against the paper's {paper}"


def test_training_flops_are_about_three_times_the_forward():
    model = VisionTransformer(mixer=MultiscaleWaveletAttention, size="tiny")
    forward, train = model_flops(model, 32), model_flops(model, 32, backward=True)
    assert 2.5 < train / forward < 3.5
    assert all(p.grad is None for p in model.parameters())
