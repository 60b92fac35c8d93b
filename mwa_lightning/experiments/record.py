"""One run's result, the one record the report, the study runner and the committed files share.

A :class:`RunRecord` is read either from a run folder (:func:`~mwa_lightning.experiments.report.find_runs`: its
``config.yaml``, its event files or ``metrics.csv``, its ``finished.json``) or from a study's committed files
(:func:`~mwa_lightning.experiments.archive.read_runs`: a line of ``runs.jsonl`` and its rows of ``scalars.csv``),
and the committed files are written from it (:func:`~mwa_lightning.experiments.archive.write_runs`).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwa_lightning.training.metric_names import (
    EPOCH,
    FLOPS,
    PARAMS,
    THROUGHPUT,
    THROUGHPUT_DEVICE,
    TRAIN_LOSS_EPOCH,
    VAL_ACC,
    VAL_ACC_TOP5,
)
from mwa_lightning.training.runs import FINISHED, RunState, run_state

# the scalars a record keeps of a run (a report's columns and curves; what scalars.csv commits)
SCALARS = (VAL_ACC, VAL_ACC_TOP5, EPOCH, THROUGHPUT, THROUGHPUT_DEVICE, TRAIN_LOSS_EPOCH, PARAMS, FLOPS)


@dataclass
class RunRecord:
    """One run: its config and the scalars it logged (tag -> [(step, value)]), read from its folder (``path``); or
    a run finished on another machine, read from a study's committed files, with the ``finished.json`` and the
    data fingerprint committed there (its folder, ``path``, is where it would be here, or None)."""

    path: Path | None
    config: dict[str, Any]
    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    seconds: float = 0.0  # wall time with the run's logger open: each event file's first to last event, summed
    committed_finished: dict[str, Any] | None = None  # a committed run's finished.json (its folder is not here)
    data: dict[str, str] | None = None  # a committed run's data fingerprint (archive.data_fingerprint)

    @property
    def finished(self) -> bool:
        if self.committed_finished is not None:
            return True
        return self.path is not None and run_state(self.path) == RunState.DONE

    @property
    def experiment(self) -> str:
        fallback = self.path.parent.name if self.path is not None else "?"
        return self.config.get("experiment", fallback)

    @functools.cached_property
    def finished_json(self) -> dict[str, Any]:
        """``finished.json``, read once ({} for an unfinished run)."""
        if self.committed_finished is not None:
            return self.committed_finished
        path = self.path / FINISHED if self.path is not None else None
        return json.loads(path.read_text()) if path is not None and path.is_file() else {}

    def final_metric(self, name: str) -> float:
        """A metric of ``finished.json`` (NaN when absent: e.g. a run not tested after fit)."""
        return float(self.finished_json.get("metrics", {}).get(name, math.nan))

    def epochs_trained(self) -> float:
        """Training epochs: ``finished.json``'s count, else one past the last epoch logged."""
        return float(self.finished_json.get("epochs", max(self.series(EPOCH), default=-1.0) + 1))

    def series(self, tag: str) -> list[float]:
        return [v for _, v in sorted(self.scalars.get(tag, []))]

    def throughput(self) -> list[float]:
        """Training images per second over the run: all processes when logged, else the only one's."""
        return self.series(THROUGHPUT) or self.series(THROUGHPUT_DEVICE)

    def by_epoch(self, tag: str) -> list[float]:
        """Values of an epoch-level metric, one per epoch in order (the last value logged at each step)."""
        epochs = dict(self.scalars.get(EPOCH, []))
        per_epoch: dict[int, float] = {}
        for step, value in sorted(self.scalars.get(tag, [])):
            per_epoch[int(epochs.get(step, len(per_epoch)))] = value
        return [per_epoch[e] for e in sorted(per_epoch)]
