import pytest
import torch
import torch.nn.functional as F

from mwa_lightning.data import Augment, CIFAR10DataModule
from mwa_lightning.data.augment import (
    RRC_RATIO,
    BatchAugment,
    BatchMix,
    ScaledRandAugment,
    image_transform,
    random_crop,
    random_resized_crop,
    resized_crop_boxes,
)
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
    assert Augment().padding(32) == 4 and Augment(crop="pad").padding(64) == 8
    assert Augment(crop="pad", crop_padding=0).padding(64) == 0
    # the reference's rule: the padded crop at 32 px, RandomResizedCrop above
    assert Augment().crop_kind(32) == "pad" and Augment().crop_kind(64) == "resized" and Augment().padding(64) == 0


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


# ------------------------------------------------------------------ the reference's recipe at 64 px and timm's RA
def test_resized_crop_of_the_whole_image_is_the_image():
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    out = random_resized_crop(images, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.equal(out, images)


def test_resized_crop_resamples_each_sample_like_bilinear_interpolation():
    torch.manual_seed(3)
    images = torch.randint(0, 256, (6, 3, 64, 64), dtype=torch.uint8)
    torch.manual_seed(4)
    out = random_resized_crop(images, scale=(0.2, 0.6))
    torch.manual_seed(4)
    boxes = resized_crop_boxes(6, 64, 64, (0.2, 0.6), RRC_RATIO).long()
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        crop = images[i : i + 1, :, y1:y2, x1:x2].float()
        expected = F.interpolate(crop, size=(64, 64), mode="bilinear", align_corners=False).round()
        # interior pixels: roi_align reads the image beyond the crop's edge where interpolate clamps
        assert (out[i, :, 2:-2, 2:-2].float() - expected[0, :, 2:-2, 2:-2]).abs().max() <= 1


def test_resized_crop_boxes_follow_the_scale_and_ratio_ranges():
    torch.manual_seed(0)
    boxes = resized_crop_boxes(4000, 64, 64, (0.08, 1.0), RRC_RATIO)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 64).all() and (boxes[:, 3] <= 64).all()
    area = w * h / 64**2
    assert area.min() >= 0.06 and area.max() <= 1.0 and 0.4 < area.median() < 0.7
    ratio = w / h
    assert ratio.min() >= 0.7 and ratio.max() <= 1.4
    assert (w < 64).float().mean() > 0.8  # most crops are strictly smaller than the image


def test_64px_evaluation_is_resize_73_then_center_crop_on_both_paths(tmp_path):
    from torchvision.transforms import InterpolationMode, v2

    from mwa_lightning.data import TinyImageNetDataModule
    from tests.dataset_files import write_tiny_imagenet

    write_tiny_imagenet(tmp_path)
    reference = v2.Compose(
        [v2.Resize(73, InterpolationMode.BICUBIC, antialias=True), v2.CenterCrop(64), v2.ToDtype(torch.float32, True)]
    )
    outs = {}
    for path in ("device", "workers"):
        dm = TinyImageNetDataModule(data_dir=tmp_path, batch_size=6, augment_on=path)
        dm.setup("fit")
        assert dm.eval_crop and dm.augment.crop_kind(64) == "resized"
        batch = next(iter(dm.val_dataloader()))
        outs[path] = dm.transform_batch(batch, train=False)[0] if path == "device" else batch[0]
        raw = dm.splits["val"].images[:6]
    mean, std = torch.tensor(dm.mean)[:, None, None], torch.tensor(dm.std)[:, None, None]
    expected = torch.stack([(reference(im) - mean) / std for im in raw])
    torch.testing.assert_close(outs["device"], expected)
    torch.testing.assert_close(outs["workers"], expected)


def test_scaled_randaugment_is_on_timms_magnitude_scale():
    from timm.data.auto_augment import LEVEL_TO_ARG
    from torchvision.transforms import v2

    ra = ScaledRandAugment(2, 9)
    space = ra._AUGMENTATION_SPACE  # torchvision's (magnitudes at each bin, signed)
    bins, width = ra.num_magnitude_bins, 32
    at = lambda op: float(space[op][0](bins, width, width)[ra.magnitude])  # noqa: E731
    assert abs(at("Rotate")) == pytest.approx(abs(LEVEL_TO_ARG["Rotate"](9, {})[0]))  # 27 degrees
    assert abs(at("ShearX")) == pytest.approx(abs(LEVEL_TO_ARG["ShearX"](9, {})[0]))  # 0.27
    # timm negates the enhancement at random (factor 1.81 or 0.19): compare the distance from 1
    brightness = LEVEL_TO_ARG["BrightnessIncreasing"](9, {})[0]
    assert abs(at("Brightness")) == pytest.approx(abs(brightness - 1), abs=1e-6)  # 0.81
    assert at("TranslateX") / width == pytest.approx(abs(LEVEL_TO_ARG["TranslateXRel"](9, {})[0]), abs=0.005)
    assert 255 * at("Solarize") == pytest.approx(LEVEL_TO_ARG["SolarizeIncreasing"](9, {})[0], abs=1)
    # torchvision's own default puts m = 9 at 9/30 of the maximum: 9 degrees
    assert float(v2.RandAugment._AUGMENTATION_SPACE["Rotate"][0](31, 32, 32)[9]) == pytest.approx(9.0)


def test_magnitude_noise_is_gaussian_around_m():
    torch.manual_seed(0)
    ra = ScaledRandAugment(1, 9, magnitude_std=0.5)
    image = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    levels = []
    for _ in range(2000):
        ra(image)
        levels.append(ra.magnitude / 10)
    levels = torch.tensor(levels)
    assert levels.mean() == pytest.approx(9.0, abs=0.05) and levels.std() == pytest.approx(0.5, abs=0.05)
    assert levels.max() <= 10.0


def test_without_timm_its_randaugment_names_the_extra_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm.data.auto_augment", None)  # import fails as if timm were absent
    cfg = Augment(**{**OFF, "randaugment_ops": 2, "randaugment_impl": "timm"})
    with pytest.raises(ImportError, match=r"needs timm, which is optional: pip install 'mwa-lightning\[reference\]'"):
        image_transform(cfg, 32, MEAN, STD)


def test_timms_randaugment_runs_on_the_worker_path_and_is_refused_on_the_device_path():
    import random

    cfg = Augment(**{**OFF, "randaugment_ops": 2, "randaugment_impl": "timm"})
    transform = image_transform(cfg, 32, MEAN, STD)
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    random.seed(0)
    outs = torch.stack([transform(image) for _ in range(8)])
    plain = (image.float() / 255 - 0.5) / 0.25
    assert outs.dtype == torch.float32 and outs.shape == (8, 3, 32, 32)
    assert sum(not torch.allclose(o, plain) for o in outs) >= 6  # two operations each, almost never both identity
    many = image_transform(Augment(**{**OFF, "randaugment_ops": 2, "randaugment_impl": "timm"}), 8, MEAN, STD)
    small = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    for _ in range(3000):  # noisy magnitudes reach the top of the scale: timm's posterize must not crash there
        many(small)
    with pytest.raises(ValueError, match=r"randaugment_impl='timm' runs per PIL image.*augment_on: workers"):
        BatchAugment(cfg, 32, MEAN, STD, 10)
