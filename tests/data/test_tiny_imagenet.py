import os
import shutil

import pytest
import torch

from mwa_lightning.data import DataError, TinyImageNetDataModule
from mwa_lightning.data import tiny_imagenet as tin
from tests.dataset_files import write_jpeg, write_tiny_imagenet


@pytest.fixture
def tiny(tmp_path):
    write_tiny_imagenet(tmp_path)
    return tmp_path


def test_reads_the_original_layout_with_a_greyscale_jpeg(tiny):
    dm = TinyImageNetDataModule(data_dir=tiny)
    images, labels = dm.load_split("train")
    assert images.shape == (12, 3, 64, 64) and images.dtype == torch.uint8
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    grey = images[0]  # n01443537_0.JPEG was written with one channel
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert not torch.equal(images[1, 0], images[1, 1])
    val_images, val_labels = dm.load_split("test")
    assert val_images.shape == (6, 3, 64, 64) and val_labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert dm.classes == ["n01443537", "n01629819", "n01641577"]


def test_decoded_cache_is_reused_and_invalidated_when_a_source_changes(tiny, monkeypatch):
    dm = TinyImageNetDataModule(data_dir=tiny)
    first, _ = dm.load_split("train")
    cache = tin.default_cache_dir(tiny / "tiny-imagenet-200") / "train.pt"
    assert cache.is_file() and str(cache).startswith(os.environ["XDG_CACHE_HOME"])  # the user's cache, not the data
    assert [p.name for p in (tiny / "tiny-imagenet-200").iterdir() if p.name.startswith(".")] == []

    def no_decoding(*args):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(tin, "decode", no_decoding)
    again, _ = TinyImageNetDataModule(data_dir=tiny).load_split("train")
    assert torch.equal(first, again)

    # replace one source image: the cache must be rebuilt and hold the new pixels
    monkeypatch.undo()
    changed = tiny / "tiny-imagenet-200" / "train" / "n01629819" / "images" / "n01629819_2.JPEG"
    write_jpeg(changed, torch.full((3, 64, 64), 200, dtype=torch.uint8))
    os.utime(changed, ns=(1, 1))
    rebuilt, _ = TinyImageNetDataModule(data_dir=tiny).load_split("train")
    assert not torch.equal(rebuilt, first)
    assert (rebuilt[6].float() - 200).abs().max() <= 2  # JPEG of a flat image


def test_each_copy_of_the_data_has_its_own_cache_and_the_data_folder_stays_untouched(tiny, tmp_path_factory):
    other = tmp_path_factory.mktemp("copy")
    shutil.copytree(tiny / "tiny-imagenet-200", other / "tiny-imagenet-200")
    before = sorted(p.relative_to(tiny) for p in tiny.rglob("*"))
    for root in (tiny, other):
        TinyImageNetDataModule(data_dir=root).load_split("test")
    assert sorted(p.relative_to(tiny) for p in tiny.rglob("*")) == before  # nothing written beside the data
    caches = {tin.default_cache_dir(root / "tiny-imagenet-200") for root in (tiny, other)}
    assert len(caches) == 2 and all((c / "test.pt").is_file() for c in caches)


def test_cache_dir_elsewhere(tiny, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("cache")
    TinyImageNetDataModule(data_dir=tiny, cache_dir=cache_dir).load_split("test")
    assert (cache_dir / "test.pt").is_file()
    assert not tin.default_cache_dir(tiny / "tiny-imagenet-200").exists()


def test_missing_class_folder_is_named(tiny):
    shutil.rmtree(tiny / "tiny-imagenet-200" / "train" / "n01629819")
    with pytest.raises(DataError, match=r"class folders listed in wnids.txt are missing: n01629819"):
        TinyImageNetDataModule(data_dir=tiny).load_split("train")


def test_extra_class_folder_is_named(tiny):
    (tiny / "tiny-imagenet-200" / "train" / "n09999999" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match=r"class folders not listed in wnids.txt: n09999999"):
        TinyImageNetDataModule(data_dir=tiny).load_split("train")


def test_corrupt_jpeg_is_named(tiny):
    bad = tiny / "tiny-imagenet-200" / "val" / "images" / "val_3.JPEG"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DataError, match=r"val_3.JPEG is truncated or not a readable image"):
        TinyImageNetDataModule(data_dir=tiny).load_split("test")


def test_unknown_class_in_val_annotations_is_named(tiny):
    ann = tiny / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text().replace("n01629819", "n00000000", 1))
    with pytest.raises(DataError, match=r"val_annotations.txt:2: class n00000000 is not listed in wnids.txt"):
        TinyImageNetDataModule(data_dir=tiny).load_split("test")


def test_missing_dataset_names_files_and_the_official_zip(tmp_path):
    with pytest.raises(DataError) as err:
        TinyImageNetDataModule(data_dir=tmp_path).load_split("train")
    msg = str(err.value)
    assert "tiny-imagenet-200/wnids.txt" in msg and "tiny-imagenet-200/val/val_annotations.txt" in msg
    assert "http://cs231n.stanford.edu/tiny-imagenet-200.zip" in msg and tin.ZIP_MD5 in msg


def test_download_uses_the_checksummed_zip(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(tin, "download_and_extract_archive", lambda url, download_root, md5: calls.append((url, md5)))
    TinyImageNetDataModule(data_dir=tmp_path, download=True).prepare_data()
    assert calls == [("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de")]


def test_real_tiny_imagenet_and_its_cache(shared_data, tmp_path, monkeypatch):
    dm = TinyImageNetDataModule(data_dir=shared_data, cache_dir=tmp_path)
    dm.setup("fit")
    train, test = dm.splits["train"], dm.splits["test"]
    assert train.images.shape == (2000, 3, 64, 64) and test.images.shape == (500, 3, 64, 64)
    assert torch.bincount(train.labels, minlength=200).tolist() == [10] * 200
    assert test.labels.min() >= 0 and test.labels.max() < 200
    assert (tmp_path / "train.pt").is_file() and (tmp_path / "test.pt").is_file()
    monkeypatch.setattr(tin, "decode", lambda *a: pytest.fail("decoded although the cache is valid"))
    again = TinyImageNetDataModule(data_dir=shared_data, cache_dir=tmp_path)
    again.setup("fit")
    assert torch.equal(again.splits["train"].images, train.images)
