import pytest
import torch
import torch.nn.functional as F

from mwa_lightning.data import Augment, CIFAR10DataModule
from mwa_lightning.data.augment import BatchAugment, BatchMix, image_transform, random_crop
from tests.dataset_files import write_cifar10

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
OFF = dict(crop_padding=0, hflip=False, randaugment_ops=0, mixup_alpha=0.0, cutmix_alpha=0.0)


def one_image_batch(n=64):
    return torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8).expand(n, -1, -1, -1).contiguous()


def candidates(image, padding):
    """Every crop (and its flip) of a padded image."""
    padded = F.pad(image, (padding,) * 4)
    n = 2 * padding + 1
    crops = [padded[:, i : i + 32, j : j + 32] for i in range(n) for j in range(n)]
    return torch.stack(crops + [c.flip(-1) for c in crops])


def test_crop_and_flip_are_drawn_per_sample():
    images = one_image_batch()
    aug = BatchAugment(Augment(**{**OFF, "crop_padding": 4, "hflip": True}), 32, MEAN, STD, 10)
    out, labels = aug(images, torch.zeros(64, dtype=torch.int64))
    assert labels.dtype == torch.int64  # no mixing: labels pass through
    raw = out * 0.25 + 0.5  # undo normalisation, back to [0, 1]
    cands = candidates(images[0], 4).float() / 255
    distance = (raw[:, None] - cands[None]).abs().flatten(2).amax(-1)  # (64, candidates)
    assert (distance.min(1).values < 1e-5).all(), "an output is not a crop/flip of its input"
    assert len({int(d.argmin()) for d in distance}) > 10, "samples of one batch share their crop/flip"


def test_random_crop_matches_slicing():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    torch.manual_seed(3)
    out = random_crop(images, 4)
    torch.manual_seed(3)
    top, left = torch.randint(0, 9, (8,)), torch.randint(0, 9, (8,))
    padded = F.pad(images, (4,) * 4)
    expected = torch.stack([padded[i, :, top[i] : top[i] + 32, left[i] : left[i] + 32] for i in range(8)])
    assert torch.equal(out, expected)


def test_randaugment_varies_within_a_batch_by_group():
    images = one_image_batch(64)
    aug = BatchAugment(Augment(**{**OFF, "randaugment_ops": 2, "group_size": 8}), 32, MEAN, STD, 10)
    out, _ = aug(images, torch.zeros(64, dtype=torch.int64))
    groups = out.reshape(8, 8, -1)
    assert all(torch.equal(g[0], g[k]) for g in groups for k in range(8)), "a group shares one draw"
    distinct = {tuple(g[0, :50].tolist()) for g in groups}
    assert len(distinct) >= 4, "groups of one batch got the same RandAugment draw"


@pytest.mark.parametrize(
    "mix", [dict(mixup_alpha=0.8), dict(cutmix_alpha=1.0), dict(mixup_alpha=0.8, cutmix_alpha=1.0)]
)
def test_mixed_targets_are_soft_and_sum_to_one(mix):
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (32,))
    aug = BatchAugment(Augment(**{**OFF, **mix}), 32, MEAN, STD, 10)
    _, targets = aug(images, labels)
    assert targets.shape == (32, 10) and targets.dtype == torch.float32
    torch.testing.assert_close(targets.sum(1), torch.ones(32))
    assert (targets >= 0).all()
    # one lambda per batch, own label weighted lambda and the partner's (the batch rolled by one) 1 - lambda
    i = int((labels != labels.roll(1)).nonzero()[0])
    lam = targets[i, labels[i]]
    expected = lam * F.one_hot(labels, 10) + (1 - lam) * F.one_hot(labels.roll(1), 10)
    torch.testing.assert_close(targets, expected)


def test_mixup_images_and_targets_agree():
    # constant images: sample i has value v_i, so a mixed pixel reveals lambda
    values = torch.linspace(10, 240, 16)
    images = values.round().to(torch.uint8)[:, None, None, None].expand(16, 3, 32, 32).contiguous()
    labels = torch.arange(16) % 10
    mix = BatchMix(Augment(mixup_alpha=0.8, cutmix_alpha=0.0), 10)
    x = images.float()
    out, targets = mix(x, labels)
    lam = targets[0, labels[0]] if labels[0] != labels[-1] else None
    assert lam is not None
    torch.testing.assert_close(out[0, 0, 0, 0], lam * x[0, 0, 0, 0] + (1 - lam) * x[-1, 0, 0, 0])  # paired with roll(1)


def test_mix_prob_zero_of_one_gives_one_hot():
    mix = BatchMix(Augment(mixup_alpha=0.8, mix_prob=1e-9), 10)
    x, labels = torch.rand(4, 3, 8, 8), torch.tensor([1, 2, 3, 4])
    out, targets = mix(x, labels)
    assert torch.equal(out, x) and torch.equal(targets, F.one_hot(labels, 10).float())


def test_same_seed_same_batch():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    aug = BatchAugment(Augment(erasing_prob=0.5), 32, MEAN, STD, 10)
    torch.manual_seed(7)
    a = aug(images, labels)
    torch.manual_seed(7)
    b = aug(images, labels)
    torch.manual_seed(8)
    c = aug(images, labels)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_padding_scales_with_image_size():
    assert Augment().padding(32) == 4 and Augment().padding(64) == 8 and Augment(crop_padding=0).padding(64) == 0


def test_bad_probability_is_named():
    with pytest.raises(ValueError, match=r"augment.switch_prob=1.5 is not a probability"):
        Augment(switch_prob=1.5)


def test_worker_path_yields_normalised_images_and_soft_targets(tmp_path):
    write_cifar10(tmp_path)
    dm = CIFAR10DataModule(data_dir=tmp_path, batch_size=10, augment_on="workers", num_workers=0)
    dm.setup("fit")
    images, targets = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.float32 and images.shape == (10, 3, 32, 32)
    assert targets.shape == (10, 10)
    torch.testing.assert_close(targets.sum(1), torch.ones(10))
    assert dm.on_after_batch_transfer((images, targets), 0)[0] is images  # nothing more on the device
    val_images, val_labels = next(iter(dm.val_dataloader()))
    raw = dm.splits["val"].images[:10].float() / 255
    torch.testing.assert_close(
        val_images, (raw - torch.tensor(dm.mean)[:, None, None]) / torch.tensor(dm.std)[:, None, None]
    )
    assert val_labels.dtype == torch.int64


def test_device_path_loader_yields_uint8_batches(tmp_path):
    write_cifar10(tmp_path)
    dm = CIFAR10DataModule(data_dir=tmp_path, batch_size=16)
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (16, 3, 32, 32) and labels.shape == (16,)
    x, y = dm.transform_batch((images, labels), train=True)
    assert x.dtype == torch.float32 and y.shape == (16, 10)
    x, y = dm.transform_batch((images, labels), train=False)
    assert torch.equal(y, labels)


def test_image_transform_eval_is_normalisation_only():
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    out = image_transform(None, 32, MEAN, STD)(image)
    torch.testing.assert_close(out, (image.float() / 255 - 0.5) / 0.25)
