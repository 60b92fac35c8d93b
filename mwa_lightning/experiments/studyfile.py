"""The study file: its keys, its variants and contrasts, checked when it is read (:class:`Study`).

What a study file holds and how the runner uses it: :mod:`mwa_lightning.experiments.study`. This module reads and
checks the file and turns each (variant, seed) into its run (:class:`~mwa_lightning.experiments.runspec.RunSpec`);
it runs nothing and imports no tool.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mwa_lightning import packaged
from mwa_lightning.experiments.archive import read_runs
from mwa_lightning.experiments.prereg import Prediction, PredictionError, parse_predictions
from mwa_lightning.experiments.record import RunRecord
from mwa_lightning.experiments.runspec import FIT, RUN_COMMANDS, RunSpec
from mwa_lightning.experiments.stats import Contrast, contrast_variants
from mwa_lightning.training.runs import (
    FOLDER_NAME_RULE,
    IDENTITY_KEYS,
    LOGS,
    is_folder_name,
)

STUDY_KEYS = {
    "base",
    "seeds",
    "data_dir",
    "args",
    "tasks",
    "variants",
    "description",
    "logs",
    "results",
    "protocol",
    "contrasts",
    "test_images",
    "variants_from",
    "delta",
    "predictions",
    "resample_train_size",
}
PROTOCOLS = ("test-once",)
DEFAULT_RESULTS = "results"


class StudyError(ValueError):
    """The study file is wrong; the message names the entry."""


def cli_value(value: Any) -> str:
    """A YAML value as the command line takes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def override_args(overrides: dict[str, Any] | None, where: str) -> list[str]:
    """``{key: value}`` -> ``["--key", "value", ...]``; ``config`` may hold a list of files."""
    if overrides is None:
        return []
    if not isinstance(overrides, dict):
        raise StudyError(f"{where}: expected a mapping of command-line keys to values, got {overrides!r}")
    args: list[str] = []
    for key, value in overrides.items():
        key = str(key).removeprefix("--")
        if key in IDENTITY_KEYS:
            raise StudyError(f"{where}: {key!r} is set by the study runner for every run; remove it")
        values = value if key == "config" and isinstance(value, list) else [value]
        for v in values:
            args += [f"--{key}", cli_value(v)]
    return args


def parse_contrasts(
    spec: Any, variants: dict[str, list[str]], path: Path, tasks: Sequence[str] = ("",)
) -> dict[str, Contrast]:
    """``{name: [a, b]}`` (a - b) or ``{name: [[a, b], [c, d]]}`` ((a - b) - (c - d)); every name a variant.
    With tasks, the names are the variants within a task and each contrast is made in every task, as
    ``<task>/<name>`` (each task has its own test set)."""
    if spec is None:
        return {}
    if any(tasks):
        per_task: dict[str, Contrast] = {}
        for task in tasks:
            within = {v.removeprefix(f"{task}/"): a for v, a in variants.items() if v.startswith(f"{task}/")}
            for name, contrast in parse_contrasts(spec, within, path).items():
                per_task[f"{task}/{name}"] = _in_task(contrast, task)
        return per_task
    if not isinstance(spec, dict):
        raise StudyError(f"{path}: contrasts must map names to [a, b] or [[a, b], [c, d]]")
    contrasts: dict[str, Contrast] = {}
    for name, value in spec.items():
        where = f"{path}: contrasts.{name}"
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            contrast: Contrast = (value[0], value[1])
        elif (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in value)
        ):
            contrast = ((value[0][0], value[0][1]), (value[1][0], value[1][1]))
        else:
            raise StudyError(f"{where}: {value!r}; expected [a, b] or [[a, b], [c, d]] of variant names")
        unknown = [v for v in contrast_variants(contrast) if v not in variants]
        if unknown:
            raise StudyError(
                f"{where} names unknown variant(s) {', '.join(map(repr, unknown))}; the variants: {', '.join(variants)}"
            )
        contrasts[str(name)] = contrast
    return contrasts


def resolve_alias(path: Path, name: str, same_as: Any, data_dir: str | Path | None) -> tuple[Study, str]:
    """``same_as: <study>/<variant>``: that study (a file beside this one) and its variant, checked."""
    where = f"{path}: variants.{name}.same_as={same_as!r}"
    other_name, _, variant = str(same_as).partition("/")
    other_path = path.parent / f"{other_name}.yaml"
    if not variant or not other_path.is_file():
        raise StudyError(f"{where}: expected <study>/<variant> with the study file {other_path} beside this one")
    if other_path.resolve() == path.resolve():
        raise StudyError(f"{where}: a study cannot reuse its own runs")
    other = Study.load(other_path, data_dir)
    if variant not in other.variants or variant in other.aliases:
        raise StudyError(
            f"{where}: {other_path} has no own variant {variant!r}; its variants: {', '.join(other.variants)}"
        )
    return other, variant


def _in_task(contrast: Contrast, task: str) -> Contrast:
    if isinstance(contrast[0], str):
        return (f"{task}/{contrast[0]}", f"{task}/{contrast[1]}")
    return (_in_task(contrast[0], task), _in_task(contrast[1], task))  # type: ignore[return-value]


@dataclass
class Study:
    """A parsed study file."""

    name: str
    path: Path
    base: Path
    seeds: list[int]
    variants: dict[str, list[str]]
    common: list[str] = field(default_factory=list)
    logs: Path = Path(LOGS)
    results: Path = Path(DEFAULT_RESULTS)
    protocol: str | None = None
    contrasts: dict[str, Contrast] = field(default_factory=dict)
    test_images: int | None = None
    commands: dict[str, str] = field(default_factory=dict)  # variant -> its run command when not ``fit``
    tasks: list[str] = field(default_factory=lambda: [""])  # each task its own data (test set); "" without tasks
    aliases: dict[str, tuple[Study, str]] = field(default_factory=dict)  # variant -> (study, variant) it reuses
    delta: float | None = None  # the equivalence margin, points of top-1 (mwa_lightning.experiments.stats)
    predictions: dict[str, Prediction] = field(default_factory=dict)  # contrast -> its pre-registered prediction
    train_sizes: dict[str, int] = field(default_factory=dict)  # task -> training examples of each seed's resample

    def resample_train_size(self, task: str = "") -> int:
        """How many examples each seed's resample trains on (``resample_train_size``): the Nadeau-Bengio correction
        of a task whose seeds each have their own test split needs it."""
        if task not in self.train_sizes:
            where = f"task {task!r}" if task else "the study"
            raise StudyError(
                f"{self.path}: each seed of {where} has its own test split (overlapping resamples), so its contrasts "
                "need the number of training examples of a resample: set resample_train_size"
            )
        return self.train_sizes[task]

    @classmethod
    def load(cls, path: str | Path, data_dir: str | Path | None = None) -> Study:
        """Read and check a study file; ``data_dir`` replaces the file's own."""
        path = Path(packaged.resolve(path))  # configs/studies/...: the package's copy outside a clone
        if not path.is_file():
            raise StudyError(f"no study file {path}")
        spec = yaml.safe_load(path.read_text()) or {}
        if not isinstance(spec, dict):
            raise StudyError(f"{path}: expected a mapping with keys {sorted(STUDY_KEYS)}")
        unknown = sorted(set(spec) - STUDY_KEYS)
        if unknown:
            raise StudyError(f"{path}: unknown key(s) {', '.join(unknown)}; expected some of {sorted(STUDY_KEYS)}")
        if "variants_from" in spec:  # another study's variants and contrasts, written once
            other = Path(packaged.resolve(spec["variants_from"]))
            if not other.is_file():
                raise StudyError(f"{path}: variants_from: no study file {other} (paths are relative to {Path.cwd()})")
            theirs = yaml.safe_load(other.read_text()) or {}
            for key in ("variants", "contrasts"):
                if key in theirs:
                    spec.setdefault(key, theirs[key])
        for key in ("base", "seeds", "variants"):
            if key not in spec:
                raise StudyError(f"{path}: missing key {key!r}")
        base = Path(packaged.resolve(spec["base"]))
        if not base.is_file():
            raise StudyError(f"{path}: base config {base} does not exist (paths are relative to {Path.cwd()})")
        seeds = spec["seeds"]
        if isinstance(seeds, int):
            seeds = list(range(seeds))
        if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds)):
            raise StudyError(f"{path}: seeds={seeds!r}; expected a count or a list of non-negative integers")
        if len(set(seeds)) != len(seeds):
            raise StudyError(f"{path}: seeds={seeds!r} repeats a seed")
        common = []
        protocol = spec.get("protocol")
        if protocol is not None and protocol not in PROTOCOLS:
            raise StudyError(f"{path}: protocol={protocol!r}; expected one of {', '.join(PROTOCOLS)} (or none)")
        if protocol == "test-once":
            common += ["--test_after_fit", "true"]
        data_dir = data_dir if data_dir is not None else spec.get("data_dir")
        if data_dir is not None:
            common += ["--data.init_args.data_dir", str(data_dir)]
        common += override_args(spec.get("args"), f"{path}: args")
        variants_spec = spec["variants"]
        if not isinstance(variants_spec, dict) or not variants_spec:
            raise StudyError(f"{path}: variants must be a non-empty mapping of names to overrides")
        tasks_spec = spec.get("tasks") or {"": None}
        if not isinstance(tasks_spec, dict):
            raise StudyError(f"{path}: tasks must be a mapping of names to overrides")
        variants, commands, aliases = {}, {}, {}
        for task, task_overrides in tasks_spec.items():
            task_args = override_args(task_overrides, f"{path}: tasks.{task}")
            for name, overrides in variants_spec.items():
                full = f"{task}/{name}" if task else str(name)
                for part in full.split("/"):
                    if not is_folder_name(part):
                        raise StudyError(f"{path}: variant name {full!r}: use {FOLDER_NAME_RULE}")
                overrides = dict(overrides or {}) if isinstance(overrides, dict) else overrides
                if isinstance(overrides, dict) and "same_as" in overrides:
                    same_as = overrides.pop("same_as")
                    if overrides or task:
                        raise StudyError(f"{path}: variants.{name}.same_as stands alone (no other keys, no tasks)")
                    aliases[full] = resolve_alias(path, name, same_as, data_dir)
                    variants[full] = list(aliases[full][0].variants[aliases[full][1]])
                    continue
                command = overrides.pop("command", FIT) if isinstance(overrides, dict) else FIT
                if command not in RUN_COMMANDS:
                    raise StudyError(
                        f"{path}: variants.{name}.command={command!r}; expected one of {', '.join(RUN_COMMANDS)}"
                    )
                variants[full] = task_args + override_args(overrides, f"{path}: variants.{name}")
                commands[full] = command
        for variant, (other, _) in aliases.items():
            if other.protocol != protocol:
                raise StudyError(
                    f"{path}: variant {variant!r} reuses a run of {other.path}, whose protocol ({other.protocol}) "
                    f"is not this study's ({protocol})"
                )
        tasks = [str(t) for t in tasks_spec]
        contrasts = parse_contrasts(spec.get("contrasts"), variants, path, tasks)
        if contrasts and protocol != "test-once":
            raise StudyError(f"{path}: contrasts need per-image test predictions: set protocol: test-once")
        delta = spec.get("delta")
        if delta is not None and not (isinstance(delta, int | float) and not isinstance(delta, bool) and delta > 0):
            raise StudyError(f"{path}: delta={delta!r}; expected a positive equivalence margin in points of top-1")
        try:
            predictions = parse_predictions(spec.get("predictions"), spec.get("contrasts") or {}, delta, str(path))
        except PredictionError as e:
            raise StudyError(str(e)) from None
        if any(tasks):  # each task's contrasts, each with the prediction of the contrast it repeats
            predictions = {
                f"{task}/{name}": dataclasses.replace(prediction, contrast=f"{task}/{name}")
                for task in tasks
                for name, prediction in predictions.items()
            }
        train_size = spec.get("resample_train_size")
        sizes = train_size if isinstance(train_size, dict) else {t: train_size for t in tasks}
        if train_size is not None and not (
            set(sizes) <= set(tasks) and all(isinstance(n, int) and n > 0 for n in sizes.values())
        ):
            raise StudyError(
                f"{path}: resample_train_size={train_size!r}; expected a positive number of training examples, or "
                f"one per task ({', '.join(tasks)})"
            )
        test_images = spec.get("test_images")
        if test_images is not None and not (isinstance(test_images, int) and test_images > 0):
            raise StudyError(f"{path}: test_images={test_images!r}; expected a positive number of images")
        return cls(
            name=path.stem,
            path=path,
            base=base,
            seeds=seeds,
            variants=variants,
            common=common,
            logs=Path(spec.get("logs", LOGS)),
            results=Path(spec.get("results", DEFAULT_RESULTS)),
            protocol=protocol,
            contrasts=contrasts,
            test_images=test_images,
            commands=commands,
            tasks=tasks,
            aliases=aliases,
            delta=None if delta is None else float(delta),
            predictions=predictions,
            train_sizes={} if train_size is None else sizes,
        )

    def run_spec(self, variant: str, seed: int) -> RunSpec:
        """The run of ``variant`` with ``seed``: what to train, where (nothing is run; :meth:`runs` lists them all)."""
        config_args = ("--config", str(self.base), *self.common, *self.variants[variant])
        if variant in self.aliases:  # another study's run, under this study's variant name
            other, name = self.aliases[variant]
            return dataclasses.replace(other.run_spec(name, seed), variant=variant)
        command = self.commands.get(variant, FIT)
        committed = (variant, seed) in self.committed_runs
        experiment = f"{self.name}/{variant}"
        return RunSpec(experiment, seed, config_args, self.logs, variant=variant, command=command, committed=committed)

    @functools.cached_property
    def committed_runs(self) -> dict[tuple[str, int], RunRecord]:
        """This study's finished runs in its committed results (``results/<study>/runs.jsonl``,
        :mod:`mwa_lightning.experiments.archive`), by (variant, seed)."""
        return read_runs(self.results_dir)

    def committed_run(self, variant: str, seed: int, with_scalars: bool = False) -> RunRecord | None:
        """The committed run of ``variant`` (this study's, or for a ``same_as`` variant the other study's) and
        ``seed``; None when there is none."""
        if variant in self.aliases:
            other, name = self.aliases[variant]
            return other.committed_run(name, seed, with_scalars)
        return (self._committed_with_scalars if with_scalars else self.committed_runs).get((variant, seed))

    @functools.cached_property
    def _committed_with_scalars(self) -> dict[tuple[str, int], RunRecord]:
        return read_runs(self.results_dir, with_scalars=True)

    def runs(self, only: Sequence[str] = ()) -> list[RunSpec]:
        """Every run, seed by seed; with ``only``, the runs of the variants matching one of these shell-style
        patterns (``grid8x8-m*``). A pattern that matches no variant is refused, naming the variants."""
        variants = list(self.variants)
        for pattern in only:
            if not fnmatch.filter(variants, pattern):
                raise StudyError(f"--only {pattern!r} matches no variant of {self.path}; its variants: {variants}")
        if only:
            variants = [v for v in variants if any(fnmatch.fnmatchcase(v, p) for p in only)]
        return [self.run_spec(v, s) for s in self.seeds for v in variants]

    @property
    def results_dir(self) -> Path:
        return self.results / self.name
