"""Sequence DataModules: sequential CIFAR-10 from the CIFAR files, the UCR reader against aeon's loader, the
resamples, padding, and the command line end to end."""

import numpy as np
import pytest
import torch
from PIL import Image

from mwa_lightning.data import CIFAR10DataModule, SequenceDataModule, SequentialCIFAR10DataModule, UCRDataModule
from mwa_lightning.data.errors import DataError
from mwa_lightning.data.sequences import aeon_data_folder, grey_sequences, read_ts, stratified_resample
from mwa_lightning.models import SequenceTransformer
from tests.helpers import ROOT, instantiate, run_cli

aeon = pytest.importorskip(
    "aeon", reason="the UCR tests need the aeon package: pip install 'mwa-lightning[timeseries]'"
)


def test_grey_sequences_are_pils_luma_row_by_row():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    expected = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb]).reshape(3, 1, 64)
    got = grey_sequences(torch.from_numpy(rgb).permute(0, 3, 1, 2))
    assert np.abs(got.numpy().astype(int) - expected.astype(int)).max() <= 1  # PIL rounds in fixed point


def test_sequential_cifar10_reads_the_cifar_files(shared_data):
    dm = SequentialCIFAR10DataModule(data_dir=shared_data / "cifar10", val_size=100, batch_size=8)
    dm.setup("fit")
    x, y = dm.splits["test"].images, dm.splits["test"].labels
    assert x.shape == (1000, 1, 1024) and x.dtype == torch.uint8 and len(y) == 1000
    assert dm.seq_len == 1024 and dm.in_chans == 1 and dm.image_size is None
    batch, labels = dm.transform_batch((x[:8], y[:8]), train=True)
    assert batch.dtype == torch.float32 and abs(float(batch.mean())) < 1.0  # normalised, not augmented
    torch.testing.assert_close(batch, dm.transform_batch((x[:8], y[:8]), train=False)[0])
    with pytest.raises(ValueError, match="sequences are not augmented"):
        SequentialCIFAR10DataModule(augment_on="workers")


def test_sequential_cifar10_is_a_sequence_datamodule_holding_a_cifar10_reader(shared_data, tmp_path):
    from mwa_lightning.data import InMemoryDataModule, SequenceData

    assert issubclass(SequentialCIFAR10DataModule, SequenceDataModule) and issubclass(UCRDataModule, SequenceDataModule)
    assert issubclass(SequenceDataModule, InMemoryDataModule) and SequenceData is SequenceDataModule  # its first name
    assert not issubclass(SequentialCIFAR10DataModule, CIFAR10DataModule)  # it holds one; it is not one
    folder = shared_data / "cifar10"
    dm, images = SequentialCIFAR10DataModule(data_dir=folder), CIFAR10DataModule(data_dir=folder)
    x, y = dm.load_split("test")
    rgb, labels = images.load_split("test")
    assert torch.equal(x, grey_sequences(rgb)) and torch.equal(y, labels)
    assert dm.fingerprint() == images.fingerprint() is not None  # a committed run keeps its data fingerprint
    assert dm.classes == images.classes and len(dm.classes) == dm.num_classes == 10
    with pytest.raises(DataError, match=r"in .*empty.* these are missing: cifar-10-batches-py"):
        SequentialCIFAR10DataModule(data_dir=tmp_path / "empty").load_split("train")


@pytest.mark.parametrize("name", ["ArrowHead", "OSULeaf", "BasicMotions"])
def test_the_ts_reader_equals_aeons_loader_on_the_same_file(name):
    from aeon.datasets import load_from_ts_file

    for split in ("TRAIN", "TEST"):
        path = aeon_data_folder() / name / f"{name}_{split}.ts"
        x_ref, y_ref = load_from_ts_file(str(path))
        x, y, declared = read_ts(path)
        np.testing.assert_array_equal(x, x_ref.astype(np.float32))
        assert [v.lower() for v in y] == [str(v).lower() for v in y_ref]  # aeon lower-cases the labels
        assert set(y) <= set(declared)


def test_a_stratified_resample_keeps_each_classs_training_count():
    train, test = np.array(list("aaabbc")), np.array(list("aabbbbccc"))
    tr0, te0 = stratified_resample(train, test, 0)
    assert list(tr0) == list(range(6)) and list(te0) == list(range(6, 15))
    tr, te = stratified_resample(train, test, 3)
    pooled = np.concatenate([train, test])
    assert sorted(pooled[tr]) == sorted(train) and len(set(tr) | set(te)) == 15 and not set(tr) & set(te)
    assert not np.array_equal(tr, tr0) and np.array_equal(tr, stratified_resample(train, test, 3)[0])


def test_resample_seed_draws_the_runs_seeds_resample(monkeypatch):
    """One replicate per seed: seed 0 the official split, seed k the k-th stratified resample."""
    by_seed = {}
    for seed in (0, 2):
        monkeypatch.setenv("PL_GLOBAL_SEED", str(seed))  # what seed_everything sets
        by_seed[seed] = UCRDataModule("ArrowHead", resample="seed").load_split("test")
    for seed in (0, 2):
        x, y = UCRDataModule("ArrowHead", resample=seed).load_split("test")
        assert torch.equal(x, by_seed[seed][0]) and torch.equal(y, by_seed[seed][1])
    assert not torch.equal(by_seed[0][0], by_seed[2][0])
    with pytest.raises(ValueError, match=r"resample='sed'; expected 0 .* or 'seed'"):
        UCRDataModule("ArrowHead", resample="sed")


def test_ucr_series_are_padded_to_the_stated_multiple_and_labelled_in_header_order():
    dm = UCRDataModule("ArrowHead", val_size=6)
    assert dm.raw_length == 251 and dm.seq_len == 256 and dm.num_classes == 3 and dm.in_chans == 1
    dm.setup("fit")
    x = torch.cat([dm.splits["train"].images, dm.splits["val"].images])
    assert x.shape == (36, 1, 256) and torch.all(x[..., 251:] == 0)  # zero-padded at the end
    raw, _, _ = read_ts(aeon_data_folder() / "ArrowHead" / "ArrowHead_TEST.ts")
    torch.testing.assert_close(dm.splits["test"].images[..., :251], torch.from_numpy(raw))
    assert UCRDataModule("ArrowHead", length=200).load_split("train")[0].shape[-1] == 200  # cropped
    multi = UCRDataModule("BasicMotions")
    assert multi.in_chans == 6 and multi.seq_len == 128


def test_the_sequence_backbone_trains_on_a_ucr_batch():
    dm = UCRDataModule("ArrowHead", batch_size=4)
    dm.setup("fit")
    net = SequenceTransformer(
        num_classes=dm.num_classes, seq_len=dm.seq_len, in_chans=dm.in_chans, depth=1, embed_dim=16
    )
    x, y = dm.transform_batch(next(iter(dm.train_dataloader())), train=True)
    torch.nn.functional.cross_entropy(net(x), y).backward()


def test_the_sequence_configs_build_a_sequence_model(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cli = instantiate("--config", str(ROOT / "configs" / "sequences" / "ucr.yaml"))
    assert (
        isinstance(cli.model.net, SequenceTransformer)
        and cli.model.net.seq_len == 256
        and cli.model.hparams.num_classes == 3
    )
    cli = instantiate("--config", str(ROOT / "configs" / "sequences" / "scifar10.yaml"))
    assert isinstance(cli.model.net, SequenceTransformer) and cli.model.net.input_shape == (1, 1024)


def test_one_batch_through_the_command_line(tmp_path):
    result = run_cli(
        "fit", "--config", str(ROOT / "configs" / "sequences" / "ucr.yaml"), "--trainer.fast_dev_run", "1", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--data.init_args.name", "Nope"], "UCRDataModule: no set 'Nope' in"),
        (
            ["--data.init_args.length", "40", "--model.mixer.init_args.levels", "3"],
            "sequence of 10 tokens is not divisible by 2**levels = 8",
        ),
    ],
)
def test_bad_sequence_settings_are_one_line_errors(args, message, tmp_path):
    result = run_cli("fit", "--config", str(ROOT / "configs" / "sequences" / "ucr.yaml"), *args, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "logs").exists()


def test_an_unknown_set_in_python_names_the_known_ones():
    with pytest.raises(DataError, match=r"the sets there: .*ArrowHead"):
        UCRDataModule("Nope")
