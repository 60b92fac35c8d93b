"""The registry of token mixers: the one place a mixer is named.

A name maps to the mixer's class path. Everything that iterates over "the mixers" -- the benchmark, the FLOP
table, the report's short names, the tests (through one parametrized fixture) -- reads :data:`MIXERS`; the
Makefile and the config generator read ``configs/shared/mixer/<name>.yaml``, whose names are these.

Adding a mixer: write its file (a class built as ``Mixer(dim=C, grid_size=(H, W), **options)`` mapping
channels-last tokens ``(B, H, W, C)`` to the same shape), add one line below, add
``configs/shared/mixer/<name>.yaml``, then ``make configs`` writes its baselines for every dataset.
:func:`register_mixer` adds one at run time (notebooks, plugins, tests).
"""

from __future__ import annotations

import functools
import pkgutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

MIXERS: dict[str, str] = {
    "attention": "mwa_lightning.models.mixers.attention.SelfAttention",
    "afno": "mwa_lightning.models.mixers.afno.AFNO",
    "gfn": "mwa_lightning.models.mixers.gfn.GlobalFilter",
    "mwa": "mwa_lightning.models.mixers.mwa.MultiscaleWaveletAttention",
    "identity": "mwa_lightning.models.mixers.identity.IdentityMixer",
    "conv": "mwa_lightning.models.mixers.local.ConvMixer",
    "fnet": "mwa_lightning.models.mixers.fnet.FourierMixer",
}


def mixer_names() -> list[str]:
    """Registered names, in registration order."""
    return list(MIXERS)


def mixer_class(name: str) -> type[nn.Module]:
    """The class registered under ``name``."""
    if name not in MIXERS:
        raise KeyError(f"unknown mixer {name!r}; registered: {', '.join(MIXERS)}")
    return pkgutil.resolve_name(MIXERS[name])


def mixer_classes() -> dict[str, type[nn.Module]]:
    """Every registered mixer: name -> class."""
    return {name: mixer_class(name) for name in MIXERS}


def mixer_name(cls: type | str | None) -> str | None:
    """The registered name of a class (or class path, ``mwa_lightning.models.X`` re-exports included)."""
    if cls is None:
        return None
    if isinstance(cls, str):
        try:
            cls = pkgutil.resolve_name(cls)
        except (ImportError, AttributeError, ValueError):
            return None
    return next((name for name in MIXERS if mixer_class(name) is cls), None)


def mixer_spec(mixer: Any) -> Any:
    """A mixer factory as plain data, ``{"class_path": ..., "init_args": {...}}``, for a class or a
    ``functools.partial`` of one (so that checkpoints load with ``torch.load(..., weights_only=True)``); a dict
    is returned as it is, any other callable unchanged."""
    if isinstance(mixer, dict):
        return mixer
    if isinstance(mixer, functools.partial) and isinstance(mixer.func, type) and not mixer.args:
        return {"class_path": f"{mixer.func.__module__}.{mixer.func.__qualname__}", "init_args": dict(mixer.keywords)}
    if isinstance(mixer, type):
        return {"class_path": f"{mixer.__module__}.{mixer.__qualname__}", "init_args": {}}
    return mixer


def mixer_factory(spec: Any) -> Any:
    """Inverse of :func:`mixer_spec`: the class, or a partial of it with its init args."""
    if not isinstance(spec, dict):
        return spec
    cls = pkgutil.resolve_name(spec["class_path"])
    init_args = spec.get("init_args") or {}
    return functools.partial(cls, **init_args) if init_args else cls


def register_mixer(name: str, cls: type[nn.Module] | str) -> None:
    """Register a mixer at run time under ``name`` (a class or its class path)."""
    path = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
    if name in MIXERS and MIXERS[name] != path:
        raise ValueError(f"mixer name {name!r} is taken by {MIXERS[name]}")
    MIXERS[name] = path


def unregister_mixer(name: str) -> None:
    MIXERS.pop(name, None)
