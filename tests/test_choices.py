"""A Literal parameter is checked from its own annotation when a class is built from Python, as jsonargparse
checks it on the command line: the same choices, named in the error, and no list written twice."""

import typing

import pytest

from mwa_lightning.choices import check_choices
from mwa_lightning.data import CIFAR10DataModule, CIFAR100DataModule, ImageNetDataModule
from mwa_lightning.data.augment import Augment
from mwa_lightning.data.base import ClassificationDataModule
from mwa_lightning.data.folder import ImageFolderDataModule
from mwa_lightning.models import MultiscaleWaveletAttention

CASES = [  # (builds it with one bad choice, where the Literal is annotated, the parameter, the error's prefix)
    (
        lambda: MultiscaleWaveletAttention(16, (8, 8), transform="dct"),
        MultiscaleWaveletAttention.__init__,
        "transform",
        "",
    ),
    (lambda: MultiscaleWaveletAttention(16, (8, 8), bands="mixed"), MultiscaleWaveletAttention.__init__, "bands", ""),
    (
        lambda: MultiscaleWaveletAttention(16, (8, 8), conv_levels="x"),
        MultiscaleWaveletAttention.__init__,
        "conv_levels",
        "",
    ),
    (lambda: CIFAR10DataModule(augment_on="gpu"), ClassificationDataModule.__init__, "augment_on", ""),
    (lambda: CIFAR100DataModule(labels="medium"), CIFAR100DataModule.__init__, "labels", ""),
    (lambda: ImageNetDataModule(data_dir=".", source="s3"), ImageFolderDataModule.__init__, "source", ""),
    (lambda: Augment(crop="centre"), Augment, "crop", "augment."),
    (lambda: Augment(randaugment_impl="kornia"), Augment, "randaugment_impl", "augment."),
]


@pytest.mark.parametrize("build,owner,name,prefix", CASES, ids=[c[2] for c in CASES])
def test_a_bad_choice_from_python_names_the_value_and_the_annotations_choices(build, owner, name, prefix):
    allowed = typing.get_args(typing.get_type_hints(owner)[name])
    assert len(allowed) >= 2
    with pytest.raises(ValueError) as error:
        build()
    expected = ", ".join(map(repr, allowed))
    assert str(error.value).startswith(f"{prefix}{name}=") and str(error.value).endswith(f"expected one of {expected}")


def test_every_choice_of_the_annotation_is_accepted():
    for transform in typing.get_args(typing.get_type_hints(MultiscaleWaveletAttention.__init__)["transform"]):
        levels = 2 if transform == "dwt" else 1
        assert MultiscaleWaveletAttention(16, (8, 8), levels=levels, transform=transform) is not None
    for crop in typing.get_args(typing.get_type_hints(Augment)["crop"]):
        assert Augment(crop=crop).crop == crop


def test_a_parameter_without_a_literal_is_a_programming_error_not_a_user_one():
    with pytest.raises(TypeError, match="kernel_size is not annotated with a Literal"):
        check_choices(MultiscaleWaveletAttention.__init__, kernel_size=3)
