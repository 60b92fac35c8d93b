"""Names a package exports but imports on first use (PEP 562), so that a light part of the package (the tools'
``--help``, the mixer registry) does not import torch.

Written here rather than taken from ``lazy_loader`` (scientific-python): the package needs only these few lines of
``importlib``, not a dependency.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


def lazy_exports(package: str, where: dict[str, str], names: Iterable[str]) -> tuple[Callable, Callable]:
    """A package's ``__getattr__`` and ``__dir__``: ``where`` maps each exported name to the submodule of
    ``package`` (or the absolute module, when dotted) that defines it; ``names`` is the package's ``__all__``."""
    listed = sorted(names)

    def attribute(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = where[name] if "." in where[name] else f"{package}.{where[name]}"
        return getattr(importlib.import_module(module), name)

    def listing() -> list[str]:
        return listed

    return attribute, listing
