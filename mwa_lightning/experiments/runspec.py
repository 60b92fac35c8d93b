"""One run's identity, the same for the study runner and the SLURM launcher.

A run is (experiment, seed): the fixed run folder ``<logs>/<experiment>/seed<k>/``, one seed for model
initialisation, data order and augmentation (``--seed_everything k``), and the ``fit`` command that trains it
there (``--experiment <experiment> --run seed<k>``), resuming from its ``last.ckpt`` when it was stopped.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mwa_lightning import COMMAND
from mwa_lightning.training.runs import LOGS, RunState, run_state, seed_run_name

FIT = "fit"  # a run's command: ``mwa-lightning fit``, or a reference's (e.g. ``minirocket``) that takes the same args
MINIROCKET = "minirocket"  # the non-deep time-series reference (mwa_lightning.experiments.minirocket)
RUN_COMMANDS = (FIT, MINIROCKET)  # what a study variant's ``command`` may be


@dataclass(frozen=True)
class RunSpec:
    """One (experiment, seed) run.

    Args:
        experiment: the run's experiment, ``<study>/<variant>`` in a study.
        seed: the run's seed.
        config_args: the command-line arguments after ``fit`` that say what to train (``--config`` files and
            overrides), without the identity arguments.
        logs: the folder of run folders.
        variant: the study variant the run belongs to (``""`` outside a study).
        command: what runs it, ``mwa-lightning <command> <args>``: ``fit``, or a reference model's tool that takes
            the same arguments and writes the same run folder (``minirocket``).
        committed: whether the study's committed results hold this run, finished
            (:mod:`mwa_lightning.experiments.archive`).
    """

    experiment: str
    seed: int
    config_args: tuple[str, ...]
    logs: Path = Path(LOGS)
    variant: str = field(default="", compare=False)
    command: str = FIT
    committed: bool = field(default=False, compare=False)

    @property
    def name(self) -> str:
        """``<experiment>/seed<k>``."""
        return f"{self.experiment}/{seed_run_name(self.seed)}"

    @property
    def folder(self) -> Path:
        return self.logs / self.experiment / seed_run_name(self.seed)

    @property
    def args(self) -> list[str]:
        """Everything after ``fit``: what to train, then the run's identity."""
        identity = ["--experiment", self.experiment, "--run", seed_run_name(self.seed)]
        if self.logs != Path(LOGS):
            identity += ["--trainer.logger.init_args.save_dir", str(self.logs)]
        return [*self.config_args, *identity, "--seed_everything", str(self.seed)]

    @property
    def state(self) -> RunState:
        """``done``, ``partial`` or ``todo`` (:func:`mwa_lightning.training.runs.run_state`), or ``committed`` for
        a run whose folder here is not done but which the study's committed results hold, finished."""
        state = run_state(self.folder)
        return RunState.COMMITTED if self.committed and state != RunState.DONE else state

    def shell(self) -> str:
        """The command as a user would type it."""
        return shlex.join([COMMAND, self.command, *self.args])

    def argv(self, python: str) -> list[str]:
        """The command as this machine's ``python`` runs it."""
        return [python, "-m", "mwa_lightning", self.command, *self.args]
