"""A study's finished runs, committed beside its report, so that the study goes on from another machine.

Run folders (``logs/``: checkpoints, event files) stay on the machine that trained them, and are never committed.
A study that takes longer than one machine's session -- a cluster's scratch disk wiped, a laptop replaced, a CI
box lent for a day -- would start again from nothing. So the report also writes, under ``results/<study>/``:

- ``runs.jsonl``: one JSON object per line, one line per finished run: ``variant``, ``seed``, ``seconds`` (its
  run-hours' source, :func:`~mwa_lightning.experiments.report.run_seconds`), ``finished`` (its ``finished.json``),
  ``config`` (its ``config.yaml``) and ``data`` (the md5 of each file its DataModule reads, where it names them:
  :func:`data_fingerprint`; null otherwise). Its records were once CSV rows with JSON in their cells
  (``runs.csv``): still read, and rewritten as ``runs.jsonl`` by :func:`migrate` (``python -m
  mwa_lightning.experiments.archive results/*``) or by the next report that writes the runs;
- ``scalars.csv``: ``variant``, ``seed``, ``tag``, ``step``, ``value``: the scalars the report reads of it
  (:data:`~mwa_lightning.experiments.record.SCALARS`), at full precision;

and, under the ``test-once`` protocol, its per-image predictions are already in ``predictions.csv``. That is all
the report, the contrasts, the stale-run check and the runner's skip need of a run. A run listed in ``runs.jsonl``
with no finished folder on this machine is ``committed``: the study runner and ``mwa-lightning slurm`` skip it as
finished, ``--dry-run`` lists it as such, its config is checked against the study file as a run folder's is, and
the report takes it from these files. A run finished here replaces its committed rows. The data folder's path is
where the data lies on one machine: a committed run continued with another ``--data-dir`` is stale unless the
files there are the same (the same fingerprint).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import pkgutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mwa_lightning.experiments.record import RunRecord

RUNS = "runs.jsonl"
LEGACY_RUNS = "runs.csv"  # the same records as CSV rows with JSON cells, before runs.jsonl: read, then migrated
SCALARS_FILE = "scalars.csv"
RUN_FIELDS = ("variant", "seed", "seconds", "finished", "config", "data")
SCALAR_FIELDS = ("variant", "seed", "tag", "step", "value")


class CommittedRunsError(ValueError):
    """A study's committed runs cannot be read (a hand-edited or damaged ``runs.jsonl``); the message names the line."""


def read_runs(results_dir: Path, with_scalars: bool = False) -> dict[tuple[str, int], RunRecord]:
    """The committed runs of a study's results folder (``runs.jsonl``, or a ``runs.csv`` not yet migrated), by
    (variant, seed), as records without a folder (``path`` None), with their scalars if asked; {} when there are
    none."""
    path, legacy = results_dir / RUNS, results_dir / LEGACY_RUNS
    if path.is_file() and legacy.is_file():
        raise CommittedRunsError(
            f"{results_dir} holds both {RUNS} and {LEGACY_RUNS}, its records before the migration: delete "
            f"{legacy} once {RUNS} is committed"
        )
    if not (path.is_file() or legacy.is_file()):
        return {}
    scalars = _read_scalars(results_dir / SCALARS_FILE) if with_scalars else {}
    where = path if path.is_file() else legacy
    rows = _read_lines(where) if where == path else _read_legacy(where)
    runs = {}
    for line, row in rows:
        try:
            if set(row) != set(RUN_FIELDS):
                raise ValueError(f"fields {sorted(row)}")
            key = (row["variant"], int(row["seed"]))
            if not isinstance(key[0], str):
                raise TypeError(f"variant {key[0]!r}")
            if not isinstance(row["config"], dict) or not isinstance(row["finished"], dict):
                raise TypeError("config and finished must be JSON objects")
            runs[key] = RunRecord(
                None, row["config"], scalars.get(key, {}), float(row["seconds"]), row["finished"], row["data"]
            )
        except (TypeError, ValueError) as e:  # a hand-edited line
            raise CommittedRunsError(
                f"{where}, line {line}: {e}; expected the fields {', '.join(RUN_FIELDS)} as the report writes them "
                f"(git checkout {where} restores it)"
            ) from None
    return runs


def _read_lines(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, record) of a JSON Lines file."""
    with path.open() as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError as e:
                raise CommittedRunsError(f"{path}, line {line}: not JSON ({e})") from None
            if not isinstance(record, dict):
                raise CommittedRunsError(f"{path}, line {line}: expected a JSON object, got {type(record).__name__}")
            yield line, record


def _read_legacy(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of a ``runs.csv``: its JSON cells decoded. A config is longer than csv's default
    128 KiB field limit allows, so the limit is raised while this reader reads, and restored after."""
    limit = csv.field_size_limit(2**27)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != RUN_FIELDS:
                expected = ", ".join(RUN_FIELDS)
                raise CommittedRunsError(f"{path}: expected the columns {expected}, got {reader.fieldnames}")
            rows = list(enumerate(reader, start=2))
    finally:
        csv.field_size_limit(limit)
    for line, row in rows:
        try:
            for name in ("finished", "config", "data"):
                row[name] = json.loads(row[name])
        except (TypeError, ValueError) as e:
            raise CommittedRunsError(f"{path}, line {line}: {e}") from None
    return rows


def _read_scalars(path: Path) -> dict[tuple[str, int], dict[str, list[tuple[int, float]]]]:
    scalars: dict[tuple[str, int], dict[str, list[tuple[int, float]]]] = {}
    if not path.is_file():
        return scalars
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            run = scalars.setdefault((row["variant"], int(row["seed"])), {})
            run.setdefault(row["tag"], []).append((int(row["step"]), float(row["value"])))
    return scalars


def write_runs(results_dir: Path, runs: Mapping[tuple[str, int], RunRecord]) -> int:
    """Write ``runs.jsonl`` and ``scalars.csv`` (replacing them, and a ``runs.csv`` of before the migration) from
    the finished records ``runs``, by (variant, seed); return how many runs."""
    keys = sorted(runs, key=lambda k: (k[1], k[0]))
    results_dir.mkdir(parents=True, exist_ok=True)
    with (results_dir / RUNS).open("w") as f:
        for variant, seed in keys:
            r = runs[variant, seed]
            values = (variant, seed, r.seconds, r.finished_json, r.config, r.data)
            f.write(_json(dict(zip(RUN_FIELDS, values, strict=True))) + "\n")
    (results_dir / LEGACY_RUNS).unlink(missing_ok=True)
    with (results_dir / SCALARS_FILE).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SCALAR_FIELDS)
        for variant, seed in keys:
            scalars = runs[variant, seed].scalars
            for tag in sorted(scalars):
                for step, value in sorted(scalars[tag]):
                    writer.writerow([variant, seed, tag, step, repr(float(value))])
    return len(keys)


def migrate(results_dir: Path) -> int | None:
    """Rewrite a results folder's ``runs.csv`` as ``runs.jsonl``, the same records (its scalars unchanged); how
    many runs, or None when there was nothing to migrate."""
    if not (results_dir / LEGACY_RUNS).is_file() or (results_dir / RUNS).is_file():
        return None
    return write_runs(results_dir, read_runs(results_dir, with_scalars=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mwa_lightning.experiments.archive",
        description=f"Rewrite each results folder's {LEGACY_RUNS} as {RUNS} (the same runs; nothing else changes).",
    )
    parser.add_argument("folders", nargs="+", type=Path, help="results folders, e.g. results/*")
    args = parser.parse_args(argv)
    for folder in args.folders:
        try:
            n = migrate(folder)
        except CommittedRunsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if n is not None:
            print(f"{folder}: {LEGACY_RUNS} -> {RUNS} ({n} runs)")
    return 0


def _json(value: Any) -> str:
    """Compact JSON that reads back to the same values (NaN included, which finished.json may hold)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@functools.cache
def _fingerprint(data_json: str) -> str:
    """:func:`data_fingerprint` of a data config as compact JSON (hashable, so each is computed once)."""
    data = json.loads(data_json)
    try:
        module = pkgutil.resolve_name(data["class_path"])(**(data.get("init_args") or {}))
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


if __name__ == "__main__":
    raise SystemExit(main())
