import math
import resource
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from mwa_lightning.flops import count_flops, model_flops
from mwa_lightning.models import MultiscaleWaveletAttention, VisionTransformer
from mwa_lightning.models.mixers import mixer_name
from mwa_lightning.paper import COST_CLASSES, model_cost


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


FAULTS = """
import os, resource, sys, torch
from mwa_lightning.malloc import malloc_returns_memory, tune_malloc

def faults(n=20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        torch.ones(8 << 20, dtype=torch.uint8).sum()  # allocate, touch and free 8 MiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

malloc_returns_memory()  # glibc's behaviour for big blocks: mapped on allocation, unmapped on free
faults(); untuned = faults()
os.environ["MWA_MALLOC_TUNING"] = "0"  # switched off: nothing changes
applied = tune_malloc()
faults(); off = faults()
del os.environ["MWA_MALLOC_TUNING"]
tune_malloc()
faults()  # the first call grows the heap once
tuned = min(faults() for _ in range(3))  # the least of three: a busy machine adds stray faults now and then
print(applied, untuned, off, tuned)
"""


def test_tune_malloc_stops_page_faults_on_big_tensors():
    # in a fresh process: what other tests left in this one's heap would blur the counts
    result = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    applied, untuned, off, tuned = result.stdout.split()
    untuned, off, tuned = int(untuned), int(off), int(tuned)
    pages = 20 * (8 << 20) // resource.getpagesize()  # what 20 fresh 8 MiB mappings fault in
    assert applied == "False"
    assert tuned < pages // 10, (tuned, untuned, off)  # untuned, every allocation faults its pages in again
    assert off > 2 * tuned and untuned > 2 * tuned, (tuned, untuned, off)
