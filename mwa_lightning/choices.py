"""The check of a ``Literal`` parameter, read from its annotation: the annotation is the one list of choices.

On the command line jsonargparse refuses a value outside a ``Literal`` before anything is built. The same classes
are also built from Python (a notebook, ``timm.create_model``, a study's checks), where nothing else would look: a
misspelled choice would fall silently to another branch. :func:`check_choices` makes jsonargparse's check there,
from the same annotation, so that no list of choices is written twice.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import Any


@functools.cache
def _choices(owner: Callable[..., Any] | type) -> dict[str, tuple[Any, ...]]:
    """The ``Literal`` parameters (or dataclass fields) of ``owner``, with their choices."""
    hints = typing.get_type_hints(owner)
    return {name: typing.get_args(hint) for name, hint in hints.items() if typing.get_origin(hint) is typing.Literal}


def check_choices(owner: Callable[..., Any] | type, prefix: str = "", **given: Any) -> None:
    """Refuse a value of ``given`` outside its ``Literal`` annotation in ``owner`` (a function, or a dataclass),
    naming the value and the choices (``prefix`` before the name: ``augment.`` for a config section)."""
    choices = _choices(owner)
    for name, value in given.items():
        if name not in choices:
            raise TypeError(f"{getattr(owner, '__qualname__', owner)}: {name} is not annotated with a Literal")
        if value not in choices[name]:
            expected = ", ".join(map(repr, choices[name]))
            raise ValueError(f"{prefix}{name}={value!r}; expected one of {expected}")
