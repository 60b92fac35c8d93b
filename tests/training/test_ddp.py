"""DDP robustness with two gloo processes on the CPU, each check under a timeout (a hang fails, not blocks)."""

from tests.dataset_files import write_tiny_imagenet
from tests.helpers import reported_metrics, run_cli, tiny_config

DDP = ["--trainer.strategy", "ddp", "--trainer.devices", "2"]


def test_a_nan_on_one_process_stops_every_process_with_the_message(tmp_path):
    poison = ["--trainer.callbacks+=tests.helpers.PoisonOnRank", "--trainer.callbacks.rank=1"]
    poison += ["--trainer.callbacks.batch=1"]
    result = run_cli("fit", "--config", str(tiny_config(tmp_path)), *DDP, *poison, cwd=tmp_path, timeout=180)
    assert result.returncode == 1, result.stderr[-3000:]
    message = "training loss is non-finite on 1 of 2 processes"
    assert result.stderr.count(message) == 2, result.stderr[-3000:]  # both processes stop, with the message


def test_tiny_imagenet_cache_is_built_once_not_per_process(tmp_path):
    write_tiny_imagenet(tmp_path, train=8, val=4)
    args = ["fit", "--config", str(tiny_config(tmp_path)), *DDP, "--trainer.max_epochs", "1"]
    args += ["--data", "mwa_lightning.data.TinyImageNetDataModule", "--data.init_args.data_dir", str(tmp_path)]
    args += ["--data.init_args.batch_size", "4"]
    result = run_cli(*args, cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert log.count("Tiny-ImageNet train: decoding 24 JPEGs") == 1 and log.count("Tiny-ImageNet test: decoding") == 1
    from mwa_lightning.data.tiny_imagenet import default_cache_dir

    assert (default_cache_dir(tmp_path / "tiny-imagenet-200") / "train.pt").is_file()


def test_validation_counts_every_image_once_with_uneven_shards(tmp_path):
    args = ["validate", "--config", str(tiny_config(tmp_path)), "--data.init_args.num_test", "203"]
    args += ["--data.init_args.batch_size", "25", "--trainer.callbacks+=tests.helpers.CountValidated"]
    # 203 images: 102 + 101 per process (a padding sampler would make it 102 + 102)
    single = run_cli(*args, cwd=tmp_path)
    ddp = run_cli(*args, *DDP, cwd=tmp_path, timeout=180)
    assert single.returncode == 0 and ddp.returncode == 0, (single.stderr + ddp.stderr)[-3000:]
    one, two = reported_metrics(single.stdout), reported_metrics(ddp.stdout)
    assert one["val/acc"] == two["val/acc"] and one["val/acc_top5"] == two["val/acc_top5"]
    assert abs(one["val/loss"] - two["val/loss"]) < 1e-5
    assert "VALIDATED 203" in single.stdout and "VALIDATED 203" in ddp.stdout
