import socket
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from mwa_lightning.data import CIFAR10DataModule, CIFAR100DataModule, DataError
from mwa_lightning.data.cifar import read_pickle
from tests.dataset_files import write_cifar10, write_cifar100


def test_reads_the_original_pickle_layout(tmp_path):
    rows = write_cifar10(tmp_path)
    dm = CIFAR10DataModule(data_dir=tmp_path)
    images, labels = dm.load_split("train")
    assert images.shape == (100, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    # data rows are R, G, B planes of a row-major 32x32 image
    i, c, y, x = 37, 2, 5, 30
    assert images[i, c, y, x].item() == rows[i, c * 1024 + y * 32 + x]
    assert dm.classes[3] == "cat"


def test_cifar100_fine_and_coarse_labels(tmp_path):
    write_cifar100(tmp_path)
    fine = CIFAR100DataModule(data_dir=tmp_path)
    coarse = CIFAR100DataModule(data_dir=tmp_path, labels="coarse")
    assert (fine.num_classes, coarse.num_classes) == (100, 20)
    _, f = fine.load_split("train")
    _, c = coarse.load_split("train")
    assert torch.equal(c, f // 5)
    assert coarse.classes[:2] == ["coarse0", "coarse1"] and fine.classes[99] == "fine99"
    with pytest.raises(ValueError, match="labels='medium'; expected one of 'fine', 'coarse'"):
        CIFAR100DataModule(labels="medium")


def test_seeded_validation_split(tmp_path):
    write_cifar10(tmp_path)
    splits = []
    for seed in (1, 1, 2):
        dm = CIFAR10DataModule(data_dir=tmp_path, val_size=30, split_seed=seed)
        dm.setup("fit")
        splits.append(dm)
    a, b, c = splits
    assert len(a.splits["train"]) == 70 and len(a.splits["val"]) == 30 and len(a.splits["test"]) == 20
    assert torch.equal(a.splits["val"].images, b.splits["val"].images)
    assert not torch.equal(a.splits["val"].images, c.splits["val"].images)
    train_rows = {bytes(r) for r in a.splits["train"].images.flatten(1).numpy()}
    val_rows = {bytes(r) for r in a.splits["val"].images.flatten(1).numpy()}
    assert not train_rows & val_rows and len(train_rows | val_rows) == 100


def test_val_size_zero_validates_on_test(tmp_path):
    write_cifar10(tmp_path)
    dm = CIFAR10DataModule(data_dir=tmp_path, val_size=0)
    dm.setup("fit")
    assert dm.splits["val"] is dm.splits["test"] and len(dm.splits["train"]) == 100
    with pytest.raises(ValueError, match="val_size=100 leaves no training images out of 100"):
        dm2 = CIFAR10DataModule(data_dir=tmp_path, val_size=100)
        dm2.setup("fit")


def test_missing_data_names_folder_files_and_the_way_out(tmp_path):
    dm = CIFAR10DataModule(data_dir=tmp_path, download=False)
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    msg = str(err.value)
    assert str(tmp_path) in msg and "cifar-10-batches-py/data_batch_1" in msg and "test_batch" in msg
    assert "download: true" in msg and "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg


def test_truncated_file_is_named(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"data_batch_3 is truncated or corrupt"):
        CIFAR10DataModule(data_dir=tmp_path).load_split("train")


def test_wrong_array_shape_is_named(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    entry = read_pickle(path)
    entry["data"] = entry["data"][:, :100]
    import pickle

    path.write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(DataError, match=r"test_batch: 'data' should be a uint8 array of shape \(N, 3072\)"):
        CIFAR10DataModule(data_dir=tmp_path).load_split("test")


def test_an_offline_download_names_the_dataset_the_url_and_the_folder_and_leaves_no_folder(tmp_path, monkeypatch):
    def no_network(url, download_root, filename, md5):
        Path(download_root).mkdir(parents=True, exist_ok=True)  # what torchvision does before it fails
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr("mwa_lightning.data.cifar.download_and_extract_archive", no_network)
    folder = tmp_path / "data"
    with pytest.raises(DataError) as error:
        CIFAR10DataModule(data_dir=folder, download=True).prepare_data()
    message = str(error.value)
    assert message.startswith("CIFAR10DataModule: the download failed (URLError: ")
    assert "Name or service not known" in message
    assert f"fetch https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it into {folder}" in message
    assert not folder.exists()  # the folder the failed download made is gone; one that was there stays
    folder.mkdir()
    with pytest.raises(DataError):
        CIFAR10DataModule(data_dir=folder, download=True).prepare_data()
    assert folder.is_dir()


def test_prepare_data_downloads_the_official_archive_only_when_missing(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, download_root, filename, md5):
        calls.append((url, filename, md5))
        write_cifar10(tmp_path)  # what extracting the archive would leave

    monkeypatch.setattr("mwa_lightning.data.cifar.download_and_extract_archive", fake_download)
    dm = CIFAR10DataModule(data_dir=tmp_path, download=True)
    dm.prepare_data()
    assert calls == [
        (
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
        )
    ]
    dm.prepare_data()  # present now: no second download
    assert len(calls) == 1
    dm.setup("fit")
    assert len(dm.splits["train"]) == 100


def test_bytes_keys_are_accepted(tmp_path):
    rows = write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    entry = read_pickle(path)
    import pickle

    path.write_bytes(pickle.dumps({k.encode(): v for k, v in entry.items()}, protocol=2))
    images, _ = CIFAR10DataModule(data_dir=tmp_path).load_split("train")
    assert np.array_equal(images[:20].reshape(20, -1).numpy(), rows[:20])


# ------------------------------------------------------------------------------ the real copies in ../shared/data
def test_real_cifar10(shared_data):
    dm = CIFAR10DataModule(data_dir=shared_data / "cifar10")
    dm.setup("fit")
    train, test = dm.splits["train"], dm.splits["test"]
    assert train.images.shape == (5000, 3, 32, 32) and test.images.shape == (1000, 3, 32, 32)
    assert train.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [500] * 10
    assert torch.bincount(test.labels).tolist() == [100] * 10
    # a known pixel: first image of data_batch_1 (original train index 25), read from the raw bytes
    raw = read_pickle(shared_data / "cifar10" / "cifar-10-batches-py" / "data_batch_1")["data"]
    assert train.images[0, 1, 10, 20].item() == raw[0, 1024 + 10 * 32 + 20]
    assert train.images[0, :, 0, 0].tolist() == raw[0, [0, 1024, 2048]].tolist()
    assert dm.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_real_cifar100(shared_data):
    fine = CIFAR100DataModule(data_dir=shared_data / "cifar100")
    fine.setup("fit")
    assert fine.splits["train"].images.shape == (2500, 3, 32, 32)
    assert torch.bincount(fine.splits["train"].labels).tolist() == [25] * 100
    assert torch.bincount(fine.splits["test"].labels).tolist() == [10] * 100
    coarse = CIFAR100DataModule(data_dir=shared_data / "cifar100", labels="coarse")
    coarse.setup("fit")
    assert torch.bincount(coarse.splits["train"].labels).tolist() == [125] * 20
    assert len(coarse.classes) == 20 and "fish" in coarse.classes
