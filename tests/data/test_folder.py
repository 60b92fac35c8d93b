"""Image-folder datasets (ImageNet's layout): reading, the crops, bad layouts, LitData chunks, DDP sharding."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, v2

from mwa_lightning.data import DataError, ImageFolderDataModule, ImageNetDataModule
from mwa_lightning.data.folder import CropDecode
from tests.dataset_files import write_image_folder
from tests.helpers import run_cli, tiny_config

CLASSES = ("n01443537", "n01629819", "n01641577")


@pytest.fixture
def tree(tmp_path):
    return write_image_folder(tmp_path / "imagenet")


def test_classes_labels_and_batches_from_the_layout(tree):
    dm = ImageFolderDataModule(data_dir=tree, image_size=32, batch_size=4, num_workers=0)
    assert dm.classes == list(CLASSES) and dm.num_classes == 3
    assert [label for _, label in dm.listing("train")] == [0] * 4 + [1] * 4 + [2] * 4
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8
    images, targets = dm.transform_batch((images, labels), train=True)
    assert images.dtype == torch.float32 and targets.shape == (4, 3)  # MixUp/CutMix soft targets, on the device
    val_images, val_labels = next(iter(dm.val_dataloader()))
    assert val_images.shape == (4, 3, 32, 32) and val_labels.tolist() == [0, 0, 1, 1]


def test_evaluation_crop_is_resize_256_then_center_224_of_the_image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "a.JPEG"
    # smooth content, so that the two bicubic implementations agree closely
    y, x = np.mgrid[0:375, 0:500]
    pixels = np.stack([x * 0.5, y * 0.6, (x + y) * 0.3], -1) % 256 + rng.normal(0, 2, (375, 500, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=95)
    ours = CropDecode(224, train=False)(path).float()
    full = v2.functional.pil_to_tensor(Image.open(path).convert("RGB"))
    reference = v2.CenterCrop(224)(v2.Resize(256, InterpolationMode.BICUBIC, antialias=True)(full)).float()
    assert ours.shape == (3, 224, 224)
    assert (ours - reference).abs().mean() < 2.0  # the draft decode and Pillow's resampling, within a grey level


def test_training_crop_is_a_resized_crop_of_the_image(tmp_path):
    path = tmp_path / "a.JPEG"
    y, x = np.mgrid[0:300, 0:400]
    ramp = np.stack([x * 255 / 399, y * 255 / 299, np.full_like(x, 128.0)], -1)  # red rises along x
    Image.fromarray(ramp.round().astype(np.uint8)).save(path, quality=95)
    torch.manual_seed(0)
    crops = torch.stack([CropDecode(64, train=True, scale=(0.08, 1.0))(path) for _ in range(30)]).float()
    assert crops.shape == (30, 3, 64, 64)
    # the red channel is x: each crop spans a range of x that varies with the crop's size
    spans = crops[:, 0, 32, -4] - crops[:, 0, 32, 3]
    assert spans.std() > 10 and (spans > 0).all()


@pytest.mark.parametrize("problem", ["val class unknown", "empty class", "no data", "corrupt jpeg"])
def test_bad_input_is_refused_naming_the_place(problem, tree):
    dm = ImageFolderDataModule(data_dir=tree, image_size=32, batch_size=2, num_workers=0)
    if problem == "val class unknown":
        (tree / "val" / "n99999999").mkdir()
        (tree / "val" / CLASSES[0] / f"{CLASSES[0]}_val_0.JPEG").rename(tree / "val" / "n99999999" / "x.JPEG")
        match = r"val: class folders that train/ does not have: n99999999"
    elif problem == "empty class":
        for f in (tree / "train" / CLASSES[1]).iterdir():
            f.unlink()
        match = rf"{CLASSES[1]}: class folder {CLASSES[1]} holds no images"
    elif problem == "no data":
        dm = ImageNetDataModule(data_dir=tree / "missing", image_size=32)
        assert dm.num_classes == 1000  # known without the data: a config builds its model anywhere
        match = r"missing/train is not a folder. Put ImageNet-1K .*image-net.org.* as train/<class>/<image>"
    else:  # a corrupt file in the folder source: an error naming the file when it is read
        bad = tree / "train" / CLASSES[2] / f"{CLASSES[2]}_train_1.JPEG"
        bad.write_bytes(bad.read_bytes()[:200])
        dm.setup("fit")
        with pytest.raises(DataError, match=rf"{bad.name} is truncated or not a readable image"):
            for i in range(len(dm.splits["train"])):
                dm.splits["train"][i]
        return
    with pytest.raises(DataError, match=match):
        dm.setup("fit")


def test_a_fast_training_run_through_the_command_line(tree, tmp_path):
    args = ["fit", "--config", str(tiny_config(tmp_path)), "--data", "mwa_lightning.data.ImageFolderDataModule"]
    args += ["--data.init_args.data_dir", str(tree), "--data.init_args.image_size", "32"]
    args += ["--data.init_args.batch_size", "4", "--data.init_args.num_workers", "1", "--run", "r"]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    finished = json.loads((tmp_path / "logs" / "tiny" / "r" / "finished.json").read_text())
    assert finished["epochs"] == 2 and finished["global_step"] == 2 * 3  # 12 images / batch 4


def test_litdata_chunks_skip_and_report_corrupt_files_and_train(tree, tmp_path):
    from mwa_lightning.data.prepare import main as prepare

    bad = tree / "train" / CLASSES[0] / f"{CLASSES[0]}_train_2.JPEG"
    bad.write_bytes(bad.read_bytes()[:150])
    out = tmp_path / "chunks"
    assert prepare([str(tree), str(out), "--workers", "1"]) == 0
    assert (out / "skipped.txt").read_text().split() == [str(bad)]
    assert json.loads((out / "classes.json").read_text()) == list(CLASSES)
    dm = ImageFolderDataModule(source="litdata", litdata_dir=out, image_size=32, batch_size=2, num_workers=0)
    dm.setup("fit")
    assert len(dm.splits["train"]) == 11 and len(dm.splits["val"]) == 6  # 12 - the corrupt one; 6
    labels = sorted(int(label) for _, label in (dm.splits["train"][i] for i in range(11)))
    assert labels == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.uint8


def test_two_processes_see_every_training_image_once_per_epoch_and_every_val_image_once(tree, tmp_path):
    write_image_folder(tree, train=8, val=5)  # 24 training images, 15 validation images (uneven across 2)
    args = ["fit", "--config", str(tiny_config(tmp_path)), "--data", "mwa_lightning.data.ImageFolderDataModule"]
    args += ["--data.init_args.data_dir", str(tree), "--data.init_args.image_size", "32"]
    args += ["--data.init_args.batch_size", "4", "--data.init_args.num_workers", "0", "--trainer.max_epochs", "1"]
    args += ["--trainer.strategy", "ddp", "--trainer.devices", "2"]
    args += ["--trainer.callbacks+=tests.helpers.CountValidated", "--trainer.callbacks+=tests.helpers.TrainIndices"]
    result = run_cli(*args, cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "VALIDATED 15" in result.stdout
    assert "TRAIN INDICES 24 distinct of 24" in result.stdout


def test_imagenet_names_its_classes_from_the_synset_mapping_and_wants_1000(tmp_path):
    wnids = [f"n{i:08d}" for i in range(1000)]
    tree = write_image_folder(tmp_path / "in1k", classes=wnids, train=1, val=0, sizes=((8, 8),))
    (tree / "LOC_synset_mapping.txt").write_text(f"{wnids[0]} tench, Tinca tinca\n{wnids[1]} goldfish\n")
    dm = ImageNetDataModule(data_dir=tree)
    assert dm.class_names[:3] == ["tench", "goldfish", wnids[2]] and len(dm.class_names) == 1000
    few = write_image_folder(tmp_path / "few")
    expected = r"few/train holds 3 class folders; ImageNet-1K has 1000.*ImageFolderDataModule"
    with pytest.raises(DataError, match=expected):
        _ = ImageNetDataModule(data_dir=few).classes


def test_image_folder_refuses_a_validation_split_carved_from_train(tree):
    with pytest.raises(ValueError, match=r"val_size=10: an image-folder dataset validates on its val/ folder"):
        ImageFolderDataModule(data_dir=tree, val_size=10)
