"""The run folder: its layout, its state, and the rules for starting, resuming or refusing it.

A run folder (``logs/<experiment>/<run>/``) holds the resolved ``config.yaml``, TensorBoard event files,
``checkpoints/`` (``last.ckpt`` and the best by validation accuracy) and, once ``fit`` has finished,
``finished.json``. Its state (:class:`RunState`) is one of:

- ``done``: ``finished.json`` is there;
- ``partial``: a ``last.ckpt`` but no ``finished.json``: started, then stopped (killed, preempted, crashed);
  running the same command again resumes it;
- ``todo``: neither;

and, for a run of a study, two more that the folder alone cannot tell:

- ``committed``: finished on another machine, held by the study's committed results
  (:mod:`mwa_lightning.experiments.archive`), not trained here;
- ``stale``: the folder holds a run of another config than the study's (``study --dry-run``).

Standard library and PyYAML only (Lightning is imported by the functions that take a trainer): the study runner,
the report and every tool's ``--help`` read run folders without importing torch.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

if TYPE_CHECKING:
    import lightning as L

LOGS = "logs"  # where run folders go unless the logger says otherwise
CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
LAST_CKPT = "last.ckpt"
FINISHED = "finished.json"
TEST_PREDICTIONS = "test_predictions.csv"  # each test image's label and predicted class, after a test (predict.py)
TEST_COLUMNS = ("index", "label", "prediction")


class RunState(StrEnum):
    """The state of a run (the module docstring); a str, so that it reads and prints as its name."""

    DONE = "done"
    PARTIAL = "partial"
    TODO = "todo"
    COMMITTED = "committed"
    STALE = "stale"


FOLDER_STATES = (RunState.DONE, RunState.PARTIAL, RunState.TODO)  # what run_state tells from a folder alone
FINISHED_STATES = (RunState.DONE, RunState.COMMITTED)  # the states of a run that is not trained again

# The keys of a resolved config that may differ between runs that are the same run, in one place:
# - set for every run by the study runner and the launcher, never by a config (a run's identity);
IDENTITY_KEYS = ("experiment", "run", "seed_everything")
# - that differ between the launches of one run (a resume names its checkpoint);
RESUME_KEYS = ("ckpt_path",)
# - that ``--print_config`` leaves to the run (the logger's folder names), and where its folder was (a committed run
#   trained under another machine's logs folder);
LOGGER_KEYS = (
    "trainer.logger.init_args.name",
    "trainer.logger.init_args.version",
    "trainer.logger.init_args.save_dir",
)
# - where, on how many processes and in which precision the run trained, which the machine decides
#   (``mwa-lightning slurm`` sets them for a cluster, so a study run there and continued here is still the same
#   study; a bf16 precision becomes 32-true on a CPU without native bf16, mwa_lightning.training.precision).
MACHINE_KEYS = (
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.plugins",
    "trainer.precision",
    "keep_precision",
)
VOLATILE_KEYS = (*IDENTITY_KEYS, *RESUME_KEYS, *LOGGER_KEYS, *MACHINE_KEYS)
_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")
FOLDER_NAME_RULE = "letters, digits and _.=+- (not starting with one of _.=+-)"


class RunFolderError(ValueError):
    """A fixed run folder cannot be used as asked (another config's run lives there, or a bad name)."""


def is_folder_name(name: str) -> bool:
    """Whether ``name`` is usable as one folder of a run's path (an experiment part, a variant, a run)."""
    return bool(_FOLDER_NAME.match(name))


def seed_run_name(seed: int) -> str:
    """The fixed run folder of a seed: ``seed<k>`` (what the study runner and the launcher use)."""
    return f"seed{seed}"


def check_run_name(name: str) -> None:
    if not is_folder_name(name):
        raise RunFolderError(f"--run {name!r} is not a usable folder name; expected {FOLDER_NAME_RULE} (e.g. seed0)")


def run_state(run_dir: Path) -> RunState:
    """``done``, ``partial`` or ``todo`` (see the module docstring)."""
    if (run_dir / FINISHED).is_file():
        return RunState.DONE
    if (run_dir / CHECKPOINTS / LAST_CKPT).is_file():
        return RunState.PARTIAL
    return RunState.TODO


def scalar_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The trainer's logged scalar metrics as plain floats."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


def mark_finished(run_dir: Path, trainer: L.Trainer, metrics: dict[str, float] | None = None) -> Path:
    """Write ``finished.json``: epochs and steps trained and the final logged metrics (or ``metrics``)."""
    metrics = scalar_metrics(trainer) if metrics is None else metrics
    return write_finished(run_dir, trainer.current_epoch, trainer.global_step, metrics)


def write_finished(run_dir: Path, epochs: int, global_step: int, metrics: dict[str, float]) -> Path:
    """``finished.json``: the mark of a run that ended (what the study runner and the report read)."""
    info = {"epochs": epochs, "global_step": global_step, "metrics": metrics}
    path = run_dir / FINISHED
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"dotted.key": value}``."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out |= flatten(value, f"{prefix}{key}.")
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): tree}


def config_differences(
    saved: dict[str, Any], current: dict[str, Any], ignore: Iterable[str] = RESUME_KEYS, shared_only: bool = False
) -> list[str]:
    """Dotted keys whose values differ between two resolved configs, ignoring the keys ``ignore`` names (and those
    under them); ``shared_only``: only keys both configs hold (one only one has is an option added or renamed)."""
    a, b = flatten(saved), flatten(current)
    keys = a.keys() & b.keys() if shared_only else a.keys() | b.keys()
    ignored = tuple(ignore)
    return sorted(k for k in keys if a.get(k) != b.get(k) and not is_under(k, ignored))


def is_under(key: str, names: Iterable[str]) -> bool:
    """Is the dotted ``key`` one of ``names``, or a key under one of them?"""
    return any(key == name or key.startswith(f"{name}.") for name in names)


def check_same_run(run_dir: Path, current: dict[str, Any], added: dict[str, Any] | None = None) -> None:
    """Refuse to continue a fixed run folder with a config other than the one it was started with. ``added``:
    dotted keys of options a run started with older code may lack, with their defaults: absent from the saved config
    and at their default in the current one, they are no change."""
    saved_path = run_dir / CONFIG_FILE
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    now, before = flatten(current), flatten(saved)
    differ = [
        k
        for k in config_differences(saved, current)
        if not (k not in before and k in (added or {}) and now.get(k) == (added or {})[k])
    ]
    if differ:
        raise RunFolderError(
            f"{run_dir} holds a run with a different config (differs in: {', '.join(differ[:6])}); "
            "use another --run (or --experiment), or delete the folder to start over"
        )


def remove_new_run_folder(run_dir: Path, save_dir: Path) -> None:
    """Remove a run folder a failed setup created, and the experiment folders above it that are left empty."""
    shutil.rmtree(run_dir, ignore_errors=True)
    for parent in run_dir.parents:
        if parent == save_dir or not parent.is_dir() or any(parent.iterdir()):
            break
        parent.rmdir()


def log_hparams(trainer: L.Trainer, config: dict[str, Any], metrics: dict[str, Any]) -> None:
    """The run's settings (flattened) with ``metrics``, for TensorBoard's HPARAMS tab."""
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = trainer.logger
    if not isinstance(logger, TensorBoardLogger):
        return
    params = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in flatten(config).items()}
    logger.log_hyperparams(params, {k: float(v) for k, v in metrics.items() if v is not None})
    # the trainer already closed the event writer; writing reopened it: close it again, or the summary stays
    # in a background thread's buffer (and is flushed later into a cwd that may have changed, or lost at exit)
    logger.experiment.close()


def write_test_predictions(run_dir: Path, rows: list[list[int]]) -> Path:
    """``<run_dir>/test_predictions.csv`` from ``[index, label, prediction]`` rows in image order."""
    path = run_dir / TEST_PREDICTIONS
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TEST_COLUMNS)
        writer.writerows(rows)
    return path


def read_test_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index, label, prediction) arrays of a ``test_predictions.csv``."""
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    return data[:, 0], data[:, 1], data[:, 2]
