"""A report row's labels: its mixer, the settings that tell it from the report's other rows, its backbone.

Each is read from the rows' resolved configs (``config.yaml``), compared with one another, not with the classes'
defaults: a row's ``options`` are the config values that are not the same in every row of the report (the mixer's own
options against the rows with the same mixer only), so a table shows what its rows vary and nothing they share.
The keys that vary between the seeds of one experiment or name its folder (the run contract's identity, resume and
logger keys) and the ones with a column of their own (the mixer, the dataset, the backbone's size) never count.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Sequence
from typing import Any

from mwa_lightning.experiments.runspec import MINIROCKET
from mwa_lightning.training.runs import IDENTITY_KEYS, LOGGER_KEYS, RESUME_KEYS, flatten, is_under

MIXER_OPTIONS = "model.mixer.init_args."  # a mixer's own options: compared among the rows with that mixer only
# keys that are not a row's options: what differs between seeds or names the folder, and what has its own column
NOT_OPTIONS = (
    *IDENTITY_KEYS,
    *RESUME_KEYS,
    *LOGGER_KEYS,
    "command",
    "model.mixer.class_path",
    "data.class_path",
    "model.size",
    "model.depth",
    "model.embed_dim",
    "model.patch_size",
)
_ABSENT = object()


def short_name(class_path: str | None) -> str:
    return (class_path or "?").rsplit(".", 1)[-1]


def _mixer_path(config: dict[str, Any]) -> str | None:
    mixer = (config.get("model") or {}).get("mixer")
    return mixer if isinstance(mixer, str) or mixer is None else mixer.get("class_path")


def mixer_label(config: dict[str, Any]) -> str:
    """The mixer's registered name, or its class name if unregistered (``?`` without a class path)."""
    # the mixer registry (torch) is imported for a report's labels only, not for ``report --help``
    from mwa_lightning.models.mixers import mixer_name

    class_path = _mixer_path(config)
    return mixer_name(class_path) or short_name(class_path)


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """The config's dotted settings that may be a row's options (neither the mixer given by a bare class path nor an
    empty mapping, such as a mixer's ``init_args: {}``, is one)."""
    return {
        key: value
        for key, value in flatten(config).items()
        if key != "model.mixer" and value != {} and not is_under(key, NOT_OPTIONS)
    }


def _order(key: str) -> tuple[int, str]:
    """The mixer's options first, then the model's, the data's, and the rest, each alphabetical."""
    rank = next((i for i, p in enumerate((MIXER_OPTIONS, "model.", "data.")) if key.startswith(p)), 3)
    return rank, key


def distinguishing_options(configs: Sequence[dict[str, Any]]) -> list[str]:
    """For each config (one per row), ``key=value, ...`` of its settings that are not the same in every config (a
    mixer's options: in every config with its mixer), in the order of :func:`_order`. Keys go by their last part
    (``local_branch``, ``lr``, ``levels``), or by their dotted path without ``model.``/``init_args.`` where two
    varying keys share it."""
    settings = [_settings(config) for config in configs]
    mixers = [_mixer_path(config) for config in configs]
    varying: list[list[str]] = []
    for mine, mixer in zip(settings, mixers, strict=True):
        same_mixer = [s for s, m in zip(settings, mixers, strict=True) if m == mixer]
        peers = {key: same_mixer if key.startswith(MIXER_OPTIONS) else settings for key in mine}
        keys = [key for key, value in mine.items() if any(p.get(key, _ABSENT) != value for p in peers[key])]
        varying.append(sorted(keys, key=_order))
    every = {key for keys in varying for key in keys}
    last = [key.rsplit(".", 1)[-1] for key in every]

    def name(key: str) -> str:
        tail = key.rsplit(".", 1)[-1]
        return tail if last.count(tail) == 1 else key.removeprefix("model.").replace("init_args.", "")

    return [", ".join(f"{name(k)}={s[k]}" for k in keys) for keys, s in zip(varying, settings, strict=True)]


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


def row_labels(configs: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(mixer, options, backbone) for each row's config (:func:`mixer_label`, :func:`distinguishing_options`,
    :func:`backbone_description`). MiniRocket's rows have neither options nor a backbone, and the deep rows are
    compared among themselves only."""
    deep = [config for config in configs if config.get("command") != MINIROCKET]
    options = iter(distinguishing_options(deep))
    return [
        (MINIROCKET, "", "-")
        if config.get("command") == MINIROCKET
        else (
            mixer_label(config),
            next(options),
            backbone_description(config.get("model") or {}, (config.get("data") or {}).get("class_path")),
        )
        for config in configs
    ]
