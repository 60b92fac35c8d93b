"""Precision follows the hardware: bf16 only where the device computes it natively, said in one line."""

import pytest
import yaml

from mwa_lightning.cli import main
from mwa_lightning.training import precision
from tests.helpers import tiny_config

NOTE = "this CPU has no native bf16"


def fit(tmp_path, *extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    args = ["fit", "--config", str(tiny_config(tmp_path)), "--trainer.max_epochs", "1", "--run", "r", *extra]
    return main([*args, "--trainer.precision", "bf16-mixed", "--trainer.logger.init_args.save_dir", str(tmp_path)])


def saved_precision(tmp_path):
    return yaml.safe_load((tmp_path / "tiny" / "r" / "config.yaml").read_text())["trainer"]["precision"]


def test_bf16_on_a_cpu_without_it_trains_in_float32_and_says_so_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    cli = fit(tmp_path)
    err = capsys.readouterr().err
    assert err.count(NOTE) == 1 and "training in 32-true (--keep_precision true keeps bf16)" in err
    assert cli.trainer.precision == "32-true"
    assert saved_precision(tmp_path) == "32-true"  # the run folder records what it trained in


def test_bf16_stays_where_the_cpu_has_it_or_when_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert fit(tmp_path / "native").trainer.precision == "bf16-mixed"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert fit(tmp_path / "kept", "--keep_precision", "true").trainer.precision == "bf16-mixed"
    assert NOTE not in capsys.readouterr().err
    assert saved_precision(tmp_path / "kept") == "bf16-mixed"


@pytest.mark.parametrize(
    "configured,accelerator,native,expected",
    [
        ("32-true", "cpu", False, "32-true"),  # only bf16 is changed
        ("16-mixed", "cpu", False, "16-mixed"),
        ("bf16-true", "cpu", False, "32-true"),
        ("bf16-mixed", "cpu", True, "bf16-mixed"),
        ("bf16-mixed", "auto", False, "32-true"),  # auto on a machine without CUDA: the CPU
    ],
)
def test_the_rule(configured, accelerator, native, expected, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision.torch.backends.mps, "is_available", lambda: False)
    chosen, note = precision.native_precision(configured, accelerator)
    assert chosen == expected and (note is None) == (chosen == configured)
