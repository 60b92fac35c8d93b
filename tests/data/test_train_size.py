"""``train_size``: a class-balanced, seeded, nested subset of the training images, after the validation split."""

import pytest
import torch

from mwa_lightning.cli import main
from mwa_lightning.data import CIFAR10DataModule
from tests.dataset_files import write_cifar10


def splits(root, **kwargs):
    dm = CIFAR10DataModule(data_dir=root, val_size=40, **kwargs)
    dm.setup("fit")
    return dm.splits["train"], dm.splits["val"]


def rows(split):
    return {bytes(image.flatten().numpy()) for image in split.images}


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=60)  # 300 training images, 30 a class
    return root


def test_subsets_are_balanced_nested_and_leave_validation_alone(cifar):
    full_train, full_val = splits(cifar)
    small, small_val = splits(cifar, train_size=50)
    large, large_val = splits(cifar, train_size=120)
    assert len(small) == 50 and len(large) == 120 and len(full_train) == 260
    assert torch.bincount(small.labels).tolist() == [5] * 10 and torch.bincount(large.labels).tolist() == [12] * 10
    assert rows(small) < rows(large) < rows(full_train)  # nested, inside the training images left after validation
    assert torch.equal(small_val.images, full_val.images) and torch.equal(large_val.images, full_val.images)
    again, _ = splits(cifar, train_size=50)
    assert torch.equal(again.images, small.images)  # the same images for every run (split_seed, not the run's seed)
    other, _ = splits(cifar, train_size=50, split_seed=1)
    assert rows(other) != rows(small)


def test_an_uneven_size_gives_the_first_classes_one_more(cifar):
    train, _ = splits(cifar, train_size=23)
    assert torch.bincount(train.labels).tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]


def test_too_large_a_subset_names_the_numbers(cifar):
    with pytest.raises(ValueError, match=r"train_size=261: only 260 training images are left after the validation"):
        splits(cifar, train_size=261)
    with pytest.raises(ValueError, match=r"train_size=0; expected a positive number"):
        CIFAR10DataModule(data_dir=cifar, train_size=0)


def test_the_command_line_takes_it(cifar, tmp_path):
    cli = main(
        [
            "--config",
            "configs/cifar10_fair.yaml",
            "--data.init_args.data_dir",
            str(cifar),
            "--data.init_args.val_size",
            "40",
            "--data.init_args.train_size",
            "100",
        ],
        run=False,
    )
    cli.datamodule.setup("fit")
    assert len(cli.datamodule.splits["train"]) == 100


def test_the_scale_trend_sizes_on_the_real_cifar10_medium(shared_data):
    """2,250 inside 4,500 inside the 9,000 left after the 1,000 validation images, 225 / 450 a class."""
    root = shared_data / "cifar10-medium"
    subsets = {}
    for size in (2250, 4500):
        dm = CIFAR10DataModule(data_dir=root, val_size=1000, train_size=size)
        dm.setup("fit")
        subsets[size] = dm.splits["train"]
        assert torch.bincount(subsets[size].labels).tolist() == [size // 10] * 10
    assert rows(subsets[2250]) < rows(subsets[4500])
