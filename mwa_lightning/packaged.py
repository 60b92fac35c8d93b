"""The ``configs/`` folder that travels with the package, so that ``--config configs/...`` works outside a clone.

The wheel carries the repository's ``configs/`` as ``mwa_lightning/configs/`` (package data, pyproject.toml); in a
clone that folder is a link to the top-level ``configs/``, so the two read the same files. A path the user types
that starts with ``configs/`` and does not exist where it is typed (a folder without a clone) is read from there;
a path that exists is taken as it is, so a clone's working folder, and a user's own ``configs/``, come first.

Standard library only: :mod:`mwa_lightning.tools` rewrites a command's arguments before any tool is imported.
"""

from __future__ import annotations

from pathlib import Path

PREFIX = "configs/"  # how every command in the README, the Makefile and the study files names a config


def configs_dir() -> Path:
    """The packaged ``configs/``: the wheel's copy, or in a clone the link to the top-level folder."""
    return Path(__file__).resolve().parent / "configs"


def resolve(value: str | Path) -> str:
    """``value`` as given when it exists or is not a ``configs/`` path; else the packaged file of that name, when
    there is one (a path that is nowhere is left as it is, for the caller's own error to name)."""
    value = str(value)
    if not value.startswith(PREFIX) or Path(value).exists():
        return value
    packaged = configs_dir() / value.removeprefix(PREFIX)
    return str(packaged) if packaged.exists() else value


def resolve_argv(argv: list[str]) -> list[str]:
    """A command's arguments with each ``configs/...`` path resolved (:func:`resolve`), ``--opt=configs/...``
    included."""
    out = []
    for arg in argv:
        option, equals, value = arg.partition("=")
        out.append(f"{option}={resolve(value)}" if equals and option.startswith("--") else resolve(arg))
    return out
