"""Long checks of what the README promises (``make test-slow``): each trains for minutes on this CPU."""

import pytest
import torch

from mwa_lightning.cli import main
from tests.helpers import ROOT, reported_metrics, run_cli

pytestmark = pytest.mark.slow


def test_quickstart_reaches_far_above_chance(tmp_path):
    result = run_cli("fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert reported_metrics(result.stdout)["val/acc"] >= 0.9  # chance: 0.1


def test_small_mwa_vit_on_real_cifar10_within_ten_minutes(tmp_path, shared_data):
    result = run_cli(
        "fit",
        "--config",
        str(ROOT / "configs" / "cifar10_cpu.yaml"),
        "--data.init_args.data_dir",
        str(shared_data / "cifar10"),
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert reported_metrics(result.stdout)["val/acc"] >= 0.55  # 1,000 test images; chance: 0.1


def test_compiled_backbone_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(
        [
            "fit",
            "--config",
            str(ROOT / "configs" / "quickstart.yaml"),
            "--model.compile",
            "true",
            "--trainer.fast_dev_run",
            "true",
        ]
    )
    assert cli.model.net._compiled_call_impl is not None  # the backbone ran compiled
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss_step"])
