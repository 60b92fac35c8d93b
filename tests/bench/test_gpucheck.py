"""Checks that need a CUDA GPU (skipped, saying so, on CPU machines) and the GPU check's own smoke test."""

import pytest
import torch

from mwa_lightning.bench import gpucheck
from mwa_lightning.models import VisionTransformer
from mwa_lightning.models.mixers import mixer_names


@pytest.mark.cuda
def test_every_mixer_trains_a_bf16_step_on_the_gpu(mixer):
    model = VisionTransformer(mixer=mixer, size="tiny").cuda()
    x, y = torch.randn(8, 3, 32, 32, device="cuda"), torch.randint(0, 10, (8,), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.cuda
def test_gpu_check_writes_its_table(tmp_path):
    args = ["--out", str(tmp_path), "--steps", "30", "--warmup", "10", "--no-compile", "--repeats", "1"]
    assert gpucheck.main([*args, "--tokens", "4096"]) == 0
    text = (tmp_path / "gpu_check.md").read_text()
    assert torch.cuda.get_device_name() in text and all(f"| {m} |" in text for m in mixer_names())


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_the_cpu(tmp_path):
    args = ["--device", "cpu", "--size", "tiny", "--batch", "16", "--steps", "6", "--warmup", "2", "--no-compile"]
    args += ["--imagenet-size", "tiny", "--imagenet-batch", "2"]
    assert gpucheck.main([*args, "--repeats", "1", "--tokens", "256", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "gpu_check.md").read_text()
    for run in [*mixer_names(), "mwa db2"]:
        assert f"| {run} |" in text
    assert "the target of 25,000" in text
