"""Whether a study's started runs are still the runs its study file asks for.

Before the first run starts, every variant's command line is parsed as the run would parse it
(:func:`check_variants`), and every started run folder's ``config.yaml`` (or a committed run's saved config) is held
to what the study file now gives its variant (:func:`stale_runs`, the volatile keys of
:mod:`mwa_lightning.training.runs` aside): a run trained with other settings is refused by name
(:func:`refuse_stale`), not skipped as done.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mwa_lightning.experiments.archive import RUNS, data_fingerprint
from mwa_lightning.experiments.runspec import RunSpec
from mwa_lightning.experiments.studyfile import Study, StudyError
from mwa_lightning.training.runs import (
    CONFIG_FILE,
    VOLATILE_KEYS,
    RunState,
    config_differences,
)


def check_variants(study: Study, variants: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Parse every variant's command line (or those of ``variants``) as the run would (no run starts); raise naming
    a rejected one. Under the ``test-once`` protocol, refuse a variant that would validate on the test split
    (``val_size: 0``). Returns each variant's resolved config (its first seed's)."""
    from mwa_lightning.cli import main

    resolved = {}
    for variant in study.variants if variants is None else variants:
        args = [*study.run_spec(variant, study.seeds[0]).args, "--print_config"]
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main(args, run=False)
        except SystemExit as e:
            if e.code not in (0, None):
                message = " ".join(err.getvalue().split())[-600:]
                raise StudyError(
                    f"{study.path}: variant {variant!r} is rejected by the command line: {message}"
                ) from None
        resolved[variant] = yaml.safe_load(out.getvalue()) or {}
        if study.protocol == "test-once":
            data = resolved[variant].get("data") or {}
            if not (data.get("init_args") or {}).get("val_size"):
                raise StudyError(
                    f"{study.path}: variant {variant!r} has val_size 0, so it would validate (select) on the test "
                    "split; the test-once protocol needs a validation split: set data.init_args.val_size"
                )
    return resolved


def stale_runs(study: Study, resolved: dict[str, dict[str, Any]] | None = None) -> dict[Path, list[str]]:
    """The run folders (finished or partial), and the committed runs without one here, whose saved config
    (``config.yaml``, or the committed row's) differs from what the study file now gives their variant
    (the volatile keys aside), each with the dotted keys that differ. The runner would otherwise skip a finished
    run trained with settings the study file no longer names, and report it as that variant.
    ``resolved``: :func:`check_variants`'s configs; without it, only the variants with a saved config are resolved."""
    saved_configs = {}
    for run in study.runs():
        if (run.folder / CONFIG_FILE).is_file():
            saved_configs[run] = yaml.safe_load((run.folder / CONFIG_FILE).read_text()) or {}
        elif run.state == RunState.COMMITTED:  # finished elsewhere: the config its committed row holds
            saved_configs[run] = study.committed_run(run.variant, run.seed).config  # type: ignore[union-attr]
    if resolved is None:
        resolved = check_variants(study, sorted({run.variant for run in saved_configs})) if saved_configs else {}
    stale = {}
    for run, saved in saved_configs.items():
        # keys in both only: an option the code gained or renamed since the run is not a change of the study file
        differ = config_differences(saved, resolved[run.variant], ignore=VOLATILE_KEYS, shared_only=True)
        if DATA_DIR in differ and _same_data(study, run, saved, resolved[run.variant]):
            differ.remove(DATA_DIR)  # the same files in another folder (another machine's path to them)
        if differ:
            stale[run.folder] = differ
    return stale


DATA_DIR = "data.init_args.data_dir"


def _same_data(study: Study, run: RunSpec, saved: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a run's data (its committed fingerprint, or that of its saved config's folder) is the current config's:
    the same files, by md5, wherever they lie (:func:`~mwa_lightning.experiments.archive.data_fingerprint`)."""
    committed = study.committed_run(run.variant, run.seed) if run.state == RunState.COMMITTED else None
    theirs = committed.data if committed is not None else data_fingerprint(saved)
    return theirs is not None and theirs == data_fingerprint(current)


def refuse_stale(study: Study, stale: dict[Path, list[str]]) -> None:
    """Raise naming the stale runs (:func:`stale_runs`), before any run starts."""
    if not stale:
        return
    listed = "; ".join(f"{folder} (differs in: {', '.join(keys[:4])})" for folder, keys in list(stale.items())[:4])
    more = f" and {len(stale) - 4} more" if len(stale) > 4 else ""
    raise StudyError(
        f"{study.path}: {len(stale)} run(s) were trained with another config than the study file now gives "
        f"their variant: {listed}{more}; restore the study file, or delete those run folders (and, for a committed "
        f"run, its line in {study.results_dir / RUNS}) to train them again"
    )
