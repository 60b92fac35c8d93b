"""The mixers inside timm's MetaFormer and VisionTransformer, and the template's ViTs as timm models."""

import pytest
import torch

timm = pytest.importorskip("timm", reason="timm is optional (the reference extra); make install includes it")

from mwa_lightning.models import GlobalFilter, MultiscaleWaveletAttention, VisionTransformer  # noqa: E402
from mwa_lightning.models.timm_adapter import TIMM_MODELS, timm_token_mixer  # noqa: E402


def test_on_nchw_maps_the_adapter_is_the_mixer_on_channels_last_tokens():
    torch.manual_seed(0)
    adapted = timm_token_mixer("mwa", levels=2)(dim=16).eval()
    x = torch.randn(2, 16, 12, 8)  # a grid the mixer was not built for: taken from the input
    with torch.no_grad():
        expected = adapted.mixer(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        torch.testing.assert_close(adapted(x), expected, rtol=0, atol=0)


def test_on_tokens_the_class_token_passes_through_and_the_grid_is_mixed():
    adapted = timm_token_mixer("mwa")(dim=16, num_heads=4, qkv_bias=True).eval()  # timm's ViT arguments: ignored
    x = torch.randn(2, 1 + 8 * 8, 16)
    with torch.no_grad():
        y = adapted(x)
        grid = adapted.mixer(x[:, 1:].reshape(2, 8, 8, 16)).reshape(2, 64, 16)
    torch.testing.assert_close(y[:, :1], x[:, :1], rtol=0, atol=0)
    torch.testing.assert_close(y[:, 1:], grid, rtol=0, atol=0)


def test_a_metaformer_trains_with_mwa_on_every_stages_grid():
    from timm.models.metaformer import MetaFormer

    torch.manual_seed(0)
    model = MetaFormer(depths=(1, 1, 1, 1), dims=(16, 32, 48, 64), token_mixers=timm_token_mixer("mwa"), num_classes=5)
    grids = []
    hooks = [
        m.register_forward_hook(lambda mod, args, out: grids.append(tuple(args[0].shape[1:3])))
        for m in model.modules()
        if isinstance(m, MultiscaleWaveletAttention)
    ]
    model(torch.randn(2, 3, 64, 64)).logsumexp(-1).sum().backward()
    for hook in hooks:
        hook.remove()
    assert grids == [(16, 16), (8, 8), (4, 4), (2, 2)]  # one MWA, four grids: the stem's /4, then /2 per stage
    convs = [m.mixer.convs[0].weight for m in model.modules() if hasattr(m, "mixer")]
    assert len(convs) == 4 and all(w.grad is not None and w.grad.abs().sum() > 0 for w in convs)


def test_a_mixer_sized_to_one_grid_needs_it_and_refuses_another():
    with pytest.raises(ValueError, match=r"GlobalFilter's weights are sized to one token grid: give grid_size"):
        timm_token_mixer("gfn")
    adapted = timm_token_mixer(GlobalFilter, grid_size=(8, 8))(dim=16)
    assert adapted(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)
    with pytest.raises(ValueError, match=r"built for a \(8, 8\) grid, got \(4, 4\)"):
        adapted(torch.randn(1, 16, 4, 4))


def test_the_template_vits_are_timm_models():
    assert "vit_small_mwa_patch4_32" in TIMM_MODELS and "vit_small_mwa_patch4_32" in timm.list_models("vit_*_mwa_*")
    torch.manual_seed(0)
    model = timm.create_model("vit_small_mwa_patch4_32", num_classes=100, drop_path_rate=0.1)
    torch.manual_seed(0)
    ours = VisionTransformer(
        size="S", patch_size=4, image_size=32, num_classes=100, drop_path_rate=0.1, mixer=MultiscaleWaveletAttention
    )
    assert isinstance(model, VisionTransformer)
    assert isinstance(model.blocks[0].mixer, MultiscaleWaveletAttention)
    assert model.num_params() == ours.num_params()
    model.load_state_dict(ours.state_dict())  # the same architecture, key for key
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), ours.eval()(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="has no pretrained weights"):
        timm.create_model("vit_small_mwa_patch4_32", pretrained=True)
