"""Adding a token mixer takes its file, one registry line and one shared YAML: shown here with a toy mixer
registered at run time, flowing through the model, a training run, the FLOP count, the baselines and the bench."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml
from torch import Tensor, nn

from mwa_lightning.bench import bench_flops, bench_mixers
from mwa_lightning.cli import main
from mwa_lightning.experiments.baselines import generate
from mwa_lightning.models import VisionTransformer
from mwa_lightning.models.mixers import mixer_class, mixer_name, mixer_names, register_mixer, unregister_mixer
from mwa_lightning.models.mixers.common import check_grid, conv_channels_last
from mwa_lightning.training.flops import model_flops
from mwa_lightning.training.metric_names import TRAIN_LOSS_EPOCH, VAL_ACC
from tests.helpers import ROOT, tiny_config


class ToyMixer(nn.Module):
    """A depthwise 3x3 convolution over the token grid: the smallest mixer that mixes tokens."""

    def __init__(self, dim: int, grid_size: tuple[int, int], kernel_size: int = 3):
        super().__init__()
        self.grid_size = tuple(grid_size)
        self.conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        check_grid(self, x)
        return conv_channels_last(self.conv, x)


TOY = f"{__name__}.ToyMixer"


@pytest.fixture
def toy():
    register_mixer("toy", ToyMixer)  # the one registry line
    yield ToyMixer
    unregister_mixer("toy")


def test_registered_at_run_time_it_is_a_mixer_like_the_others(toy):
    assert "toy" in mixer_names() and mixer_class("toy") is ToyMixer and mixer_name(TOY) == "toy"
    model = VisionTransformer(mixer=mixer_class("toy"), size="tiny", depth=2)
    assert all(isinstance(b.mixer, ToyMixer) for b in model.blocks)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10)
    # the mixer really mixes neighbouring tokens: a change at one token moves its neighbours' outputs
    m = model.blocks[0].mixer
    tokens = torch.zeros(1, 8, 8, 32)
    poked = tokens.clone()
    poked[0, 4, 4] = 1.0
    moved = (m(poked) - m(tokens)).abs().sum(-1)[0] > 0
    assert moved[3:6, 3:6].all() and moved.sum() == 9


def test_its_flops_are_counted(toy):
    def flops(mixer):
        return model_flops(VisionTransformer(mixer=mixer, size="tiny", depth=2), 32)

    # a depthwise 3x3 conv on an 8x8 grid of 32 channels: 9 multiply-adds per channel and token, 2 FLOPs each
    assert flops(ToyMixer) - flops(lambda dim, grid_size: nn.Identity()) == 2 * (2 * 9 * 32 * 8 * 8)
    (row,) = bench_flops({"toy": ToyMixer}, models=[(32, "tiny", 4)])
    assert row["mixer"] == "toy" and row["GFLOPs"] == pytest.approx(flops(ToyMixer) / 1e9)  # tiny: depth 2
    assert row["paper_params_M"] != row["paper_params_M"]  # NaN: no paper figure, no KeyError


def test_it_trains_through_the_command_line(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(["fit", "--config", str(tiny_config(tmp_path)), "--model.mixer", TOY, "--trainer.max_epochs", "1"])
    assert cli.trainer.state.finished and isinstance(cli.model.net.blocks[0].mixer, ToyMixer)
    assert cli.trainer.global_step == 96 // 16  # one epoch of the tiny task
    assert torch.isfinite(cli.trainer.callback_metrics[TRAIN_LOSS_EPOCH]) and VAL_ACC in cli.trainer.callback_metrics


def test_its_baselines_are_generated_for_every_dataset(toy, tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    (configs / "shared" / "mixer" / "toy.yaml").write_text(f"class_path: {TOY}\n")  # the one shared YAML
    assert generate(configs, check=True)  # three toy baselines missing
    generate(configs)
    datasets = sorted(p.stem for p in (configs / "shared" / "data").glob("*.yaml"))
    assert sorted(p.parent.name for p in configs.glob("baselines/*/toy.yaml")) == datasets
    monkeypatch.chdir(tmp_path)
    for dataset in datasets:
        cli = main(["--config", str(configs / "baselines" / dataset / "toy.yaml")], run=False)
        assert isinstance(cli.model.net.blocks[0].mixer, ToyMixer)
        assert cli.config.experiment == f"baselines/{dataset}/toy"
        assert yaml.safe_load((configs / "baselines" / dataset / "toy.yaml").read_text())["model"]["mixer"]


def test_the_bench_times_it_beside_the_others(toy):
    rows = bench_mixers({"toy": ToyMixer, "gfn": mixer_class("gfn")}, shapes=[(2, 4, 16)], repeats=1)
    assert [r["mixer"] for r in rows] == ["toy", "gfn"]
    toy_row = rows[0]
    assert toy_row["shape"] == "(2, 4, 4, 16)" and toy_row["fwd_bwd_ms"] > 0 and "vs_gfn" in toy_row
