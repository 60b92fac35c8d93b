"""A study's finished runs, committed beside its report, so that the study goes on from another machine.

Run folders (``logs/``: checkpoints, event files) stay on the machine that trained them, and are never committed.
A study that takes longer than one machine's session -- a cluster's scratch disk wiped, a laptop replaced, a CI
box lent for a day -- would start again from nothing. So the report also writes, under ``results/<study>/``:

- ``runs.csv``: one row per finished run: ``variant``, ``seed``, ``seconds`` (its run-hours' source,
  :func:`~mwa_lightning.experiments.report.run_seconds`), ``finished`` (its ``finished.json``), ``config`` (its
  ``config.yaml``) and ``data`` (the md5 of each file its DataModule reads, where it names them:
  :func:`data_fingerprint`; null otherwise), the last three as JSON;
- ``scalars.csv``: ``variant``, ``seed``, ``tag``, ``step``, ``value``: the scalars the report reads of it
  (:data:`~mwa_lightning.experiments.report.SCALARS`), at full precision;

and, under the ``test-once`` protocol, its per-image predictions are already in ``predictions.csv``. That is all
the report, the contrasts, the stale-run check and the runner's skip need of a run. A run listed in ``runs.csv``
with no finished folder on this machine is ``committed``: the study runner and ``mwa-lightning slurm`` skip it as
finished, ``--dry-run`` lists it as such, its config is checked against the study file as a run folder's is, and
the report takes it from these files. A run finished here replaces its committed rows. The data folder's path is
where the data lies on one machine: a committed run continued with another ``--data-dir`` is stale unless the
files there are the same (the same fingerprint).
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUNS = "runs.csv"
SCALARS_FILE = "scalars.csv"
RUN_FIELDS = ("variant", "seed", "seconds", "finished", "config", "data")
SCALAR_FIELDS = ("variant", "seed", "tag", "step", "value")


class CommittedRunsError(ValueError):
    """A study's committed runs cannot be read (a hand-edited or damaged ``runs.csv``); the message names the line."""


csv.field_size_limit(2**27)  # a run's config, as JSON in one cell, is longer than csv's default 128 KiB limit allows


@dataclass(frozen=True)
class CommittedRun:
    """One finished run: a row of ``runs.csv`` and (when read with them) its rows of ``scalars.csv``."""

    variant: str
    seed: int
    seconds: float
    finished: dict[str, Any]
    config: dict[str, Any]
    data: dict[str, str] | None = None  # data_fingerprint of its config's data
    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


def read_runs(results_dir: Path, with_scalars: bool = False) -> dict[tuple[str, int], CommittedRun]:
    """``runs.csv`` of a study's results folder, by (variant, seed), with their scalars if asked; {} when there is
    none."""
    path = results_dir / RUNS
    if not path.is_file():
        return {}
    scalars = _read_scalars(results_dir / SCALARS_FILE) if with_scalars else {}
    runs = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != RUN_FIELDS:
            raise CommittedRunsError(f"{path}: expected the columns {', '.join(RUN_FIELDS)}, got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                key = (row["variant"], int(row["seed"]))
                fields = [json.loads(row[name]) for name in ("finished", "config", "data")]
                runs[key] = CommittedRun(*key, float(row["seconds"]), *fields, scalars.get(key, {}))
            except (TypeError, ValueError) as e:  # a hand-edited row (json's errors are ValueErrors)
                raise CommittedRunsError(
                    f"{path}, line {line}: {e}; expected {', '.join(RUN_FIELDS)} as the report writes them "
                    f"(git checkout {path} restores it)"
                ) from None
    return runs


def _read_scalars(path: Path) -> dict[tuple[str, int], dict[str, list[tuple[int, float]]]]:
    scalars: dict[tuple[str, int], dict[str, list[tuple[int, float]]]] = {}
    if not path.is_file():
        return scalars
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            run = scalars.setdefault((row["variant"], int(row["seed"])), {})
            run.setdefault(row["tag"], []).append((int(row["step"]), float(row["value"])))
    return scalars


def write_runs(results_dir: Path, runs: Iterable[CommittedRun]) -> int:
    """Write ``runs.csv`` and ``scalars.csv`` (replacing them) from ``runs``; return how many runs."""
    runs = sorted(runs, key=lambda r: (r.seed, r.variant))
    results_dir.mkdir(parents=True, exist_ok=True)
    with (results_dir / RUNS).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RUN_FIELDS)
        for r in runs:
            writer.writerow([r.variant, r.seed, repr(r.seconds), _json(r.finished), _json(r.config), _json(r.data)])
    with (results_dir / SCALARS_FILE).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SCALAR_FIELDS)
        for r in runs:
            for tag in sorted(r.scalars):
                for step, value in sorted(r.scalars[tag]):
                    writer.writerow([r.variant, r.seed, tag, step, repr(float(value))])
    return len(runs)


def _json(value: Any) -> str:
    """Compact JSON that reads back to the same values (NaN included, which finished.json may hold)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@functools.cache
def _fingerprint(data_json: str) -> str:
    from mwa_lightning.models.mixers.registry import import_class

    data = json.loads(data_json)
    try:
        module = import_class(data["class_path"])(**(data.get("init_args") or {}))
    except Exception:  # a config this code can no longer build: no fingerprint, so the folder's path is compared
        return "null"
    fingerprint = getattr(module, "fingerprint", None)
    return _json(fingerprint() if callable(fingerprint) else None)


def data_fingerprint(config: dict[str, Any]) -> dict[str, str] | None:
    """The fingerprint of a resolved config's data (:meth:`~mwa_lightning.data.base.DiskDataModule.fingerprint`: the
    md5 of each file its DataModule reads), computed once per data config; None for data without one (generated,
    or a reader that does not name its files) or absent here."""
    data = config.get("data")
    if not isinstance(data, dict) or "class_path" not in data:
        return None
    return json.loads(_fingerprint(_json(data)))
