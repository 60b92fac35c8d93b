"""A run's labels in a report: its mixer and the mixer's options, the trunk options, the backbone.

Each is read from the run's resolved config (``config.yaml``) and shortened against the defaults: a mixer's options
that differ from its class's defaults, the trunk options (local branch, output GELU, block) that differ from the
backbone's. The defaults come from the classes themselves (the models import torch), so this module is imported
when a report is written, not for ``report --help``.
"""

from __future__ import annotations

import inspect
import pkgutil
from typing import Any

from mwa_lightning.experiments.runspec import MINIROCKET


def short_name(class_path: str | None) -> str:
    return (class_path or "?").rsplit(".", 1)[-1]


def mixer_description(model: dict[str, Any]) -> tuple[str, str]:
    """(the mixer's registered name, or its class name if unregistered; its options that differ from the class
    defaults)."""
    # the models (torch) are imported for a report's labels only, not for ``report --help``
    from mwa_lightning.models.mixers import mixer_name

    mixer = model.get("mixer") or {}
    if isinstance(mixer, str):
        return mixer_name(mixer) or short_name(mixer), ""
    class_path, init_args = mixer.get("class_path"), mixer.get("init_args") or {}
    defaults: dict[str, Any] = {}
    try:
        signature = inspect.signature(pkgutil.resolve_name(class_path))
        defaults = {k: p.default for k, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}
    except (AttributeError, ImportError, ValueError, TypeError):  # TypeError: no class_path at all
        pass
    options = [f"{k}={v}" for k, v in sorted(init_args.items()) if k not in defaults or defaults[k] != v]
    return mixer_name(class_path) or short_name(class_path), ", ".join(options)


def backbone_description(model: dict[str, Any], data_class: str | None = None) -> str:
    """``ViT-S/4`` for a named size; ``ViT 4x128/4`` (depth x width / patch) when depth or width is set; ``Seq``
    in place of ``ViT`` when the DataModule (``data_class``, its class path) serves sequences."""
    from mwa_lightning.models.vit import SIZES

    kind = "Seq" if _serves_sequences(data_class) else "ViT"
    size, patch = model.get("size", "S"), model.get("patch_size", 4)
    depth, width = model.get("depth"), model.get("embed_dim")
    if depth is None and width is None:
        return f"{kind}-{size}/{patch}"
    named_depth, named_width = SIZES.get(size, (None, None))
    return f"{kind} {depth or named_depth}x{width or named_width}/{patch}"


def _serves_sequences(data_class: str | None) -> bool:
    from mwa_lightning.data.sequences import SequenceDataModule

    try:
        return data_class is not None and issubclass(pkgutil.resolve_name(data_class), SequenceDataModule)
    except (AttributeError, ImportError, ValueError, TypeError):
        return False


def trunk_description(model: dict[str, Any]) -> str:
    """The backbone's trunk options (the local branch, the output GELU, the block...) that differ from their
    defaults, e.g. ``local_branch=True``."""
    from mwa_lightning.models.vit import TRUNK_OPTIONS, trunk_defaults

    defaults = trunk_defaults()
    return ", ".join(f"{k}={model[k]}" for k in TRUNK_OPTIONS if k in model and model[k] != defaults[k])


def run_description(config: dict[str, Any]) -> tuple[str, str, str]:
    """(mixer, options, backbone) of a run's config: a deep run's mixer and its options followed by the trunk's
    (:func:`mixer_description`, :func:`trunk_description`); MiniRocket's run has no mixer options or backbone."""
    if config.get("command") == MINIROCKET:
        return MINIROCKET, "", "-"
    model = config.get("model") or {}
    mixer, options = mixer_description(model)
    options = ", ".join(part for part in (options, trunk_description(model)) if part)
    return mixer, options, backbone_description(model, (config.get("data") or {}).get("class_path"))
