"""Reference numbers from the papers, in one place: used by the benchmark (``flops`` section) and its tests.

- :data:`MODEL_COST`: the MWA paper's parameters (M) and GFLOPs per image (it counts one multiply-add as one
  FLOP, i.e. GMACs) of each backbone x mixer at 32 px (CIFAR, 10 classes) and 64 px (Tiny-ImageNet, 200 classes).
- :data:`IMAGENET`: ImageNet-1K reference points at 224 px, patch 16 (the GFNet repository's table, DeiT's
  paper): parameters (M), GFLOPs (multiply-adds), top-1 (%).

Mixer keys are the registry's names (:mod:`mwa_lightning.models.mixers.registry`); a mixer the papers do not
cover simply has no entry (:func:`model_cost` returns None).
"""

from __future__ import annotations

# (image size, backbone) -> mixer -> (params M, GFLOPs as the paper counts them)
MODEL_COST: dict[tuple[int, str], dict[str, tuple[float, float]]] = {
    (32, "XS"): {"attention": (9, 0.58), "afno": (7, 0.46), "gfn": (6, 0.38), "mwa": (7, 0.48)},
    (32, "S"): {"attention": (21, 1.40), "afno": (16, 1.05), "gfn": (15, 0.90), "mwa": (16, 1.095)},
    (32, "B"): {"attention": (85, 5.52), "afno": (66, 4.39), "gfn": (58, 3.63), "mwa": (66, 4.37)},
    (64, "XS"): {"attention": (9, 2.53), "afno": (7, 1.80), "gfn": (7, 1.52), "mwa": (7, 1.92)},
    (64, "S"): {"attention": (21, 6.07), "afno": (17, 4.32), "gfn": (16, 3.64), "mwa": (17, 4.54)},
}
# classes of the dataset each image size stands for in MODEL_COST
COST_CLASSES = {32: 10, 64: 200}

# ImageNet-1K, 224 px, patch 16: model -> (params M, GFLOPs (multiply-adds), top-1 %)
IMAGENET: dict[str, tuple[float, float, float]] = {
    "GFNet-Ti": (7, 1.3, 74.6),
    "GFNet-XS": (16, 2.8, 78.6),
    "GFNet-S": (25, 4.5, 80.0),
    "GFNet-B": (43, 7.9, 80.7),
    "DeiT-S": (22, 4.6, 79.8),
    "DeiT-B": (86, 17.5, 81.8),
}


# our ImageNet backbones (224 px, patch 16) that match a reference model: (size, mixer) -> its name in IMAGENET.
# GFNet-XS is 12 x 384 with patch 16, as our ViT-S/16 with the gfn mixer; DeiT-S/B are ViT-S/B/16 with attention
# (and a class token, which ours does not have)
IMAGENET_MATCH: dict[tuple[str, str], str] = {("S", "attention"): "DeiT-S", ("B", "attention"): "DeiT-B"}
IMAGENET_MATCH[("S", "gfn")] = "GFNet-XS"
IMAGENET_SIZE, IMAGENET_PATCH, IMAGENET_CLASSES = 224, 16, 1000


def model_cost(image_size: int, size: str, mixer: str) -> tuple[float, float] | None:
    """A paper's (params M, GFLOPs as multiply-adds) for a backbone x mixer at an image size, or None."""
    if image_size == IMAGENET_SIZE:
        name = IMAGENET_MATCH.get((size, mixer))
        return IMAGENET[name][:2] if name else None
    return MODEL_COST.get((image_size, size), {}).get(mixer)


def reference_name(image_size: int, size: str, mixer: str) -> str:
    """Where :func:`model_cost`'s figures come from."""
    if image_size == IMAGENET_SIZE:
        return IMAGENET_MATCH.get((size, mixer), "-")
    return "MWA paper" if model_cost(image_size, size, mixer) else "-"
