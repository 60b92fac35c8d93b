"""The layout of a run folder, and what the command line, the study runner and the report read from it.

A run folder (``logs/<experiment>/<run>/``) holds the resolved ``config.yaml``, TensorBoard event files,
``checkpoints/`` (``last.ckpt`` and the best by validation accuracy) and, once ``fit`` has finished,
``finished.json``. Its state is one of:

- ``done``: ``finished.json`` is there;
- ``partial``: a ``last.ckpt`` but no ``finished.json``: started, then stopped (killed, preempted, crashed);
  running the same command again resumes it;
- ``todo``: neither.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import lightning as L

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
LAST_CKPT = "last.ckpt"
FINISHED = "finished.json"
STATES = ("done", "partial", "todo")
# keys that may differ between the launches of one run (a resume names its checkpoint)
RESUME_KEYS = frozenset({"ckpt_path"})
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


class RunFolderError(ValueError):
    """A fixed run folder cannot be used as asked (another config's run lives there, or a bad name)."""


def check_run_name(name: str) -> None:
    if not _RUN_NAME.match(name):
        raise RunFolderError(
            f"--run {name!r} is not a usable folder name; expected letters, digits and _.=+- (e.g. seed0)"
        )


def run_state(run_dir: Path) -> str:
    """``done``, ``partial`` or ``todo`` (see the module docstring)."""
    if (run_dir / FINISHED).is_file():
        return "done"
    if (run_dir / CHECKPOINTS / LAST_CKPT).is_file():
        return "partial"
    return "todo"


def mark_finished(run_dir: Path, trainer: L.Trainer) -> Path:
    """Write ``finished.json``: epochs and steps trained and the final logged metrics."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
    info = {"epochs": trainer.current_epoch, "global_step": trainer.global_step, "metrics": metrics}
    path = run_dir / FINISHED
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def read_finished(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / FINISHED
    return json.loads(path.read_text()) if path.is_file() else None


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"dotted.key": value}``."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out |= flatten(value, f"{prefix}{key}.")
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): tree}


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two resolved configs, ignoring :data:`RESUME_KEYS`."""
    a, b = flatten(saved), flatten(current)
    keys = sorted(k for k in a.keys() | b.keys() if k.split(".")[0] not in RESUME_KEYS and a.get(k) != b.get(k))
    return keys
