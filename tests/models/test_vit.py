import functools

import pytest
import torch
from torch import nn

from mwa_lightning.bench.references import model_cost
from mwa_lightning.models import MultiscaleWaveletAttention, VisionTransformer
from mwa_lightning.models.mixers import mixer_name


@pytest.mark.parametrize("size", ["XS", "S"])
def test_parameter_counts_match_the_paper(size, mixer):
    cost = model_cost(32, size, mixer_name(mixer))
    if cost is None:
        pytest.skip(f"the paper has no ViT-{size}/4 figure for {mixer.__name__}")
    millions = VisionTransformer(mixer=mixer, size=size, num_classes=10, image_size=32).num_params() / 1e6
    paper = cost[0]
    assert abs(millions - paper) <= max(0.1 * paper, 0.6), f"{millions:.2f} M against the paper's {paper} M"


def test_named_sizes_and_overrides():
    m = VisionTransformer(size="XS")
    assert (m.depth, m.embed_dim, len(m.blocks)) == (5, 384, 5)
    m = VisionTransformer(size="S", depth=3, embed_dim=64)
    assert (m.depth, m.embed_dim, len(m.blocks)) == (3, 64, 3)
    with pytest.raises(ValueError, match=r"unknown size 'M'; expected one of \['B', 'L', 'S', 'XS', 'tiny'\]"):
        VisionTransformer(size="M")


def test_mixer_factory_is_called_once_per_block_with_dim_and_grid():
    calls = []

    def factory(**kwargs):
        calls.append(kwargs)
        return nn.Identity()

    VisionTransformer(mixer=factory, size="tiny", depth=3, image_size=64, patch_size=8)
    assert calls == [{"dim": 32, "grid_size": (8, 8)}] * 3


def test_partial_of_a_mixer_class_is_a_factory():
    m = VisionTransformer(mixer=functools.partial(MultiscaleWaveletAttention, levels=2), size="tiny")
    assert m.blocks[0].mixer.transform.levels == 2
    assert m.blocks[0].mixer is not m.blocks[1].mixer


def test_image_size_not_divisible_by_patch_size_names_both():
    with pytest.raises(ValueError, match=r"image_size=30 is not divisible by patch_size=4"):
        VisionTransformer(size="tiny", image_size=30)


def test_wrong_input_size_names_both():
    m = VisionTransformer(size="tiny", image_size=32)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 32, 32\), got \(B, 3, 64, 64\)"):
        m(torch.randn(1, 3, 64, 64))


def test_stochastic_depth_rates_increase_linearly_and_act_in_training_only():
    m = VisionTransformer(size="tiny", depth=5, drop_path_rate=0.4)
    assert [b.drop_path.p for b in m.blocks] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    x = torch.randn(4, 3, 32, 32)
    m.eval()
    torch.testing.assert_close(m(x), m(x))
    m.train()
    assert not torch.allclose(m(x), m(x))


def test_no_class_token_and_average_pooling():
    m = VisionTransformer(size="tiny").eval()
    x = torch.randn(2, 3, 32, 32)
    tokens = m.forward_features(x)
    assert tokens.shape == (2, 8, 8, 32)
    torch.testing.assert_close(m(x), m.head(tokens.mean(dim=(1, 2))))
