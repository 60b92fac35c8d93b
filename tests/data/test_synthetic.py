import pytest
import torch
import torch.nn.functional as F

from mwa_lightning.data import PeriodicDataModule, SyntheticDataModule
from mwa_lightning.data.synthetic import (
    NUM_FINE,
    make_periodic,
    make_two_scale,
    periodic_fft_reading,
    textures,
)


def predict_coarse(images: torch.Tensor) -> torch.Tensor:
    """Direction of the image-wide wave from an 8x-downsampled copy: which axis varies more."""
    low = F.avg_pool2d(images.float().mean(1, keepdim=True), 8)[:, 0]  # (n, 4, 4)
    along_x = low.mean(1).var(1)  # profile across columns
    along_y = low.mean(2).var(1)
    return (along_y > along_x).long()


def predict_fine(images: torch.Tensor, window: int = 10) -> torch.Tensor:
    """Texture by matched filtering of the high-passed image, over every window position and lattice phase."""
    grey = images.float().mean(1, keepdim=True)
    high = grey - F.avg_pool2d(F.pad(grey, (2, 2, 2, 2), mode="replicate"), 5, stride=1)  # (n, 1, S, S)
    t = textures(images.shape[-1])
    t = t - t.mean((1, 2), keepdim=True)
    t = t / t.norm(dim=(1, 2), keepdim=True)
    phases = torch.stack([t.roll((dy, dx), (1, 2)) for dy in range(4) for dx in range(4)], 1)  # (5, 16, S, S)
    scores = F.avg_pool2d(high * phases.flatten(0, 1)[None], window, stride=1).flatten(1, 1)
    return scores.reshape(len(images), 5, -1).amax(-1).argmax(1)


def test_generator_is_deterministic_and_balanced():
    a = make_two_scale(12_000, seed=3)
    b = make_two_scale(12_000, seed=3)
    c = make_two_scale(12_000, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    images, labels, coarse, fine = a
    assert images.shape == (12_000, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(labels, coarse * NUM_FINE + fine)
    counts = torch.bincount(labels, minlength=10)
    assert counts.min() > 1_000 and counts.max() < 1_400


def test_each_scale_is_readable_but_neither_alone_determines_the_class():
    images, labels, coarse, fine = make_two_scale(400, seed=0)
    assert (predict_coarse(images) == coarse).float().mean() > 0.95
    assert (predict_fine(images) == fine).float().mean() > 0.9
    # knowing one factor leaves several equally likely classes
    for factor, classes_left in ((coarse, 5), (fine, 2)):
        for v in factor.unique():
            share = torch.bincount(labels[factor == v], minlength=10).float() / (factor == v).sum()
            assert (share > 0).sum() == classes_left
            assert share.max() < 1.5 / classes_left


def test_labels_survive_a_horizontal_flip():
    images, _, coarse, fine = make_two_scale(300, seed=1)
    flipped = images.flip(-1)
    assert (predict_coarse(flipped) == coarse).float().mean() > 0.95
    assert (predict_fine(flipped) == fine).float().mean() > 0.9


def test_datamodule_serves_independent_train_and_test_draws():
    dm = SyntheticDataModule(num_train=300, num_test=100, batch_size=50)
    dm.setup("fit")
    assert len(dm.splits["train"]) == 300 and len(dm.splits["test"]) == 100
    assert dm.num_classes == 10 and dm.image_size == 32 and len(dm.classes) == 10
    assert not torch.equal(dm.splits["train"].images[:100], dm.splits["test"].images)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (50, 3, 32, 32)


# ------------------------------------------------------------------ the global periodic task
def test_periodic_task_is_read_by_a_global_fft_and_capped_by_the_clutter():
    images, labels, _ = make_periodic(3000, seed=0, clutter=1.0, noise=0.1)
    assert images.shape == (3000, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.bincount(labels, minlength=10).min() > 240  # balanced
    easy = (periodic_fft_reading(images) == labels).float().mean()
    images, labels, _ = make_periodic(3000, seed=0, clutter=1.2, noise=0.15)  # the mechanism study's setting
    hard = (periodic_fft_reading(images) == labels).float().mean()
    assert easy > 0.96 and 0.8 < hard < 0.92, (easy, hard)


def test_periodic_labels_survive_circular_shifts_and_flips():
    images, labels, _ = make_periodic(800, seed=1, clutter=0.6, noise=0.05)
    assert (periodic_fft_reading(images) == labels).float().mean() > 0.99
    for moved in (images.roll((7, 13), (2, 3)), images.flip(-1), images.flip(-2)):
        assert (periodic_fft_reading(moved) == labels).float().mean() > 0.99


def test_periodic_first_order_statistics_carry_no_class():
    images, labels, _ = make_periodic(6000, seed=2)
    grey = images.float().mean(1).flatten(1)
    means = torch.stack([grey[labels == c].mean() for c in range(10)])
    stds = torch.stack([grey[labels == c].std(1).mean() for c in range(10)])
    # the same brightness and contrast for every class: the class is in where the energy sits, not how much
    assert means.max() - means.min() < 1.0 and (stds.max() - stds.min()) / stds.mean() < 0.05


def test_periodic_datamodule():
    dm = PeriodicDataModule(num_train=200, num_test=50, batch_size=25)
    dm.setup("fit")
    assert dm.num_classes == 10 and dm.classes[0] == "r2+r3" and len(dm.splits["train"]) == 200
    with pytest.raises(ValueError, match="clutter=-1 must be >= 0"):
        PeriodicDataModule(clutter=-1)
