"""Run a study: a grid of seeded runs, resumable, then its report.

``mwa-lightning study configs/studies/<name>.yaml`` (``make study STUDY=<name>``).

A study file names a base experiment config, named variants (each a set of command-line overrides, an extra
``--config`` among them), the seeds, and optionally a ``data_dir``::

    base: configs/cifar10_cpu.yaml       # relative paths are taken from the repository root (the working folder)
    seeds: [0, 1, 2]
    data_dir: data                       # optional: --data.init_args.data_dir for every run
    args:                                # optional: overrides for every run
      trainer.max_epochs: 15
    tasks:                               # optional: crossed with the variants, giving <task>/<variant>;
                                         # each task its own test set: contrasts are made within each task
      two-scale: {data: configs/...}
    variants:                            # or variants_from: <another study file> (its variants and contrasts)
      mwa: {}
      mwa-no-skips: {model.mixer.init_args.skips: false}
      attention: {model.mixer: configs/shared/mixer/attention.yaml}
      ddp: {config: configs/overlays/ddp.yaml}
      minirocket: {command: minirocket}  # a reference model's tool instead of fit (time series)
      gfn+local: {same_as: mixer-x-local/gfn+local}  # that study's runs (a file beside this one), not rerun

Each run (:class:`~mwa_lightning.experiments.runspec.RunSpec`) is exactly one ``mwa-lightning fit ...`` command (or,
for a variant with ``command: minirocket``, the reference's ``mwa-lightning minirocket ...`` with the same
arguments), printed before it starts, with a fixed folder ``logs/<study>/<variant>/seed<k>/`` (``--experiment
<study>/<variant> --run seed<k>``) and one seed (``--seed_everything k``) for model initialisation, data order and
augmentation. A finished run is skipped (so is one finished on another machine, held in the committed
``results/<study>/runs.csv``: :mod:`~mwa_lightning.experiments.archive`); an unfinished one resumes from its
``last.ckpt`` (the command line does that on its own), so running the study again after a crash or a kill continues
where it stopped and never counts a run twice. Runs go seed by seed (every variant's seed 0 first), so a study
stopped early still compares every variant.

Everything is checked before the first run starts: unknown keys in the study file, a missing base config,
every variant's command line (parsed as the run would parse it), and every started run folder's ``config.yaml``
against what the study file now gives its variant (:func:`stale_runs`: a run trained with other settings is
refused by name, not skipped as done).

The fair-comparison protocol (``protocol: test-once``): every run selects on a validation split carved from
the training images (``data.init_args.val_size`` > 0, a fixed ``split_seed``; a variant without one is refused),
and is tested once, after its last epoch, on its last-epoch weights (``--test_after_fit``), leaving its
per-image predictions in the run folder. Paired ``contrasts`` between variants are then computed from those
predictions (:mod:`mwa_lightning.experiments.stats`)::

    protocol: test-once
    test_images: 10000                   # optional: the test-set size, for --dry-run's detectable difference
    delta: 1.0                           # optional: the equivalence margin in points ("equivalent within +-1")
    resample_train_size: {arrowhead: 30} # each seed its own resample of the data (UCR): training examples of one
    contrasts:
      mwa-vs-gfn: [mwa, gfn]                              # mwa - gfn
      local-helps-mwa-less: [[mwa+local, mwa], [gfn+local, gfn]]   # an interaction: (a - b) - (c - d)

Options: ``--jobs N`` trains up to N runs at once, the cores split between them or one GPU each
(:mod:`~mwa_lightning.experiments.execution`); ``--dry-run`` lists the runs and their state (done, partial, todo,
committed, stale), and under the protocol the smallest difference the study can detect; ``--print-commands`` prints
one command per line (for a cluster array job); ``--only PATTERN`` (repeatable) keeps to the variants matching a
shell-style pattern, e.g. to train the variants a later one's setting is chosen from (on validation) before that
one is written into the study file; ``--report-only`` writes the report from what is there. The report --
``results/<study>/report.md``, ``report.csv``, ``curves.png`` (:mod:`mwa_lightning.experiments.report`), and under
the protocol ``predictions.csv`` and ``contrasts.md``, ``contrasts.csv``, ``contrasts.png``
(:mod:`mwa_lightning.experiments.paired`), and the finished runs' ``runs.csv`` and ``scalars.csv``
(:mod:`mwa_lightning.experiments.archive`) -- goes to ``results/<study>/``, rewritten after every finished run;
without run folders, ``--report-only`` recomputes the contrasts from the committed ``predictions.csv`` alone."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import functools
import io
import json
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mwa_lightning import COMMAND
from mwa_lightning.experiments.archive import CommittedRun, CommittedRunsError, data_fingerprint, read_runs, write_runs
from mwa_lightning.experiments.execution import JobsError, plan
from mwa_lightning.experiments.execution import execute as run_all
from mwa_lightning.experiments.runspec import COMMITTED, FINISHED_STATES, FIT, IDENTITY_KEYS, RUN_COMMANDS, RunSpec
from mwa_lightning.experiments.stats import Contrast, contrast_variants, detectable_difference
from mwa_lightning.training.runs import (
    CONFIG_FILE,
    FOLDER_NAME_RULE,
    LOGS,
    STATES,
    config_differences,
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
    "resample_train_size",
}
PROTOCOLS = ("test-once",)
DEFAULT_RESULTS = "results"
STALE = "stale"  # --dry-run's state of a run folder trained with another config (stale_runs)


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
        path = Path(path)
        if not path.is_file():
            raise StudyError(f"no study file {path}")
        spec = yaml.safe_load(path.read_text()) or {}
        if not isinstance(spec, dict):
            raise StudyError(f"{path}: expected a mapping with keys {sorted(STUDY_KEYS)}")
        unknown = sorted(set(spec) - STUDY_KEYS)
        if unknown:
            raise StudyError(f"{path}: unknown key(s) {', '.join(unknown)}; expected some of {sorted(STUDY_KEYS)}")
        if "variants_from" in spec:  # another study's variants and contrasts, written once
            other = Path(spec["variants_from"])
            if not other.is_file():
                raise StudyError(f"{path}: variants_from: no study file {other} (paths are relative to {Path.cwd()})")
            theirs = yaml.safe_load(other.read_text()) or {}
            for key in ("variants", "contrasts"):
                if key in theirs:
                    spec.setdefault(key, theirs[key])
        for key in ("base", "seeds", "variants"):
            if key not in spec:
                raise StudyError(f"{path}: missing key {key!r}")
        base = Path(spec["base"])
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
            train_sizes={} if train_size is None else sizes,
        )

    def run(self, variant: str, seed: int) -> RunSpec:
        """The run of ``variant`` with ``seed``."""
        config_args = ("--config", str(self.base), *self.common, *self.variants[variant])
        if variant in self.aliases:  # another study's run, under this study's variant name
            other, name = self.aliases[variant]
            return dataclasses.replace(other.run(name, seed), variant=variant)
        command = self.commands.get(variant, FIT)
        committed = (variant, seed) in self.committed_runs
        experiment = f"{self.name}/{variant}"
        return RunSpec(experiment, seed, config_args, self.logs, variant=variant, command=command, committed=committed)

    @functools.cached_property
    def committed_runs(self) -> dict[tuple[str, int], CommittedRun]:
        """This study's finished runs in its committed results (``results/<study>/runs.csv``,
        :mod:`mwa_lightning.experiments.archive`), by (variant, seed)."""
        return read_runs(self.results_dir)

    def committed_run(self, variant: str, seed: int, with_scalars: bool = False) -> CommittedRun | None:
        """The committed run of ``variant`` (this study's, or for a ``same_as`` variant the other study's) and
        ``seed``; None when there is none."""
        if variant in self.aliases:
            other, name = self.aliases[variant]
            return other.committed_run(name, seed, with_scalars)
        return (self._committed_with_scalars if with_scalars else self.committed_runs).get((variant, seed))

    @functools.cached_property
    def _committed_with_scalars(self) -> dict[tuple[str, int], CommittedRun]:
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
        return [self.run(v, s) for s in self.seeds for v in variants]

    @property
    def results_dir(self) -> Path:
        return self.results / self.name


# The keys of a resolved config that :func:`stale_runs` does not compare: those that differ between the runs of
# one variant (the seed, the run's name) or that ``--print_config`` leaves to the run (the logger's folder names),
# where its folder was (a committed run trained under another machine's logs folder), and where, on how many
# processes and in which precision the run trained, which the machine decides (``mwa-lightning slurm`` sets
# them for a cluster, so a study run there and continued here is still the same study; a bf16 precision becomes
# 32-true on a CPU without native bf16, mwa_lightning.training.precision).
NOT_COMPARED = (
    "seed_everything",
    "run",
    "ckpt_path",
    "trainer.logger.init_args.name",
    "trainer.logger.init_args.version",
    "trainer.logger.init_args.save_dir",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.plugins",
    "trainer.precision",
    "keep_precision",
)


def check_variants(study: Study, variants: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Parse every variant's command line (or those of ``variants``) as the run would (no run starts); raise naming
    a rejected one. Under the ``test-once`` protocol, refuse a variant that would validate on the test split
    (``val_size: 0``). Returns each variant's resolved config (its first seed's)."""
    from mwa_lightning.cli import main

    resolved = {}
    for variant in study.variants if variants is None else variants:
        args = [*study.run(variant, study.seeds[0]).args, "--print_config"]
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
    (:data:`NOT_COMPARED` aside), each with the dotted keys that differ. The runner would otherwise skip a finished
    run trained with settings the study file no longer names, and report it as that variant.
    ``resolved``: :func:`check_variants`'s configs; without it, only the variants with a saved config are resolved."""
    saved_configs = {}
    for run in study.runs():
        if (run.folder / CONFIG_FILE).is_file():
            saved_configs[run] = yaml.safe_load((run.folder / CONFIG_FILE).read_text()) or {}
        elif run.state == COMMITTED:  # finished elsewhere: the config its committed row holds
            saved_configs[run] = study.committed_run(run.variant, run.seed).config  # type: ignore[union-attr]
    if resolved is None:
        resolved = check_variants(study, sorted({run.variant for run in saved_configs})) if saved_configs else {}
    stale = {}
    for run, saved in saved_configs.items():
        # keys in both only: an option the code gained or renamed since the run is not a change of the study file
        differ = config_differences(saved, resolved[run.variant], ignore=NOT_COMPARED, shared_only=True)
        if DATA_DIR in differ and _same_data(study, run, saved, resolved[run.variant]):
            differ.remove(DATA_DIR)  # the same files in another folder (another machine's path to them)
        if differ:
            stale[run.folder] = differ
    return stale


DATA_DIR = "data.init_args.data_dir"


def _same_data(study: Study, run: RunSpec, saved: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a run's data (its committed fingerprint, or that of its saved config's folder) is the current config's:
    the same files, by md5, wherever they lie (:func:`~mwa_lightning.experiments.archive.data_fingerprint`)."""
    committed = study.committed_run(run.variant, run.seed) if run.state == COMMITTED else None
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
        f"run, its rows in {study.results_dir}/runs.csv) to train them again"
    )


def print_power(study: Study) -> None:
    """The smallest differences the study can detect (80 % power), for its seed count and test-set size, with the
    seed spread and disagreement measured from its committed predictions when it has some (else the planning
    figures of :mod:`~mwa_lightning.experiments.stats`, measured on mixer-x-local)."""
    from mwa_lightning.experiments.paired import predictions_path, read_predictions
    from mwa_lightning.experiments.stats import PLANNING_DISAGREEMENT, PLANNING_SEED_STD, planning_figures

    images = study.test_images
    if images is None:
        print("detectable difference: set test_images in the study file to see it")
        return
    seed_std, disagreement = PLANNING_SEED_STD, PLANNING_DISAGREEMENT
    source = "mixer-x-local's committed predictions (the planning figures)"
    path = predictions_path(study, study.tasks[0])
    if path.is_file():
        with contextlib.suppress(ValueError):  # fewer than two seeds finished: keep the planning figures
            prefix = f"{study.tasks[0]}/" if study.tasks[0] else ""
            correct = {f"{prefix}{v}": c for v, c in read_predictions(path)[1].items()}
            seed_std, disagreement = planning_figures(correct, study.contrasts)
            source = f"this study's committed {path}"
    n = len(study.seeds)
    if n < 2:
        print("detectable difference: a study needs at least 2 seeds for an interval")
        return
    alpha = 0.05 / max(1, len(study.contrasts))  # Holm's first step: the most demanding
    figures = {"seed_std": seed_std, "disagreement": disagreement}
    pair = detectable_difference(n, images, **figures)
    interaction = detectable_difference(n, images, interaction=True, **figures)
    strict = detectable_difference(n, images, alpha=alpha, **figures)
    print(
        f"detectable difference at 80 % power, {n} seeds x {images:,} test images: {100 * pair:.2f} points for a "
        f"pair, {100 * interaction:.2f} for an interaction (alpha 0.05); {100 * strict:.2f} for a pair at Holm's "
        f"strictest level ({alpha:.3g}, {len(study.contrasts)} contrasts). Assumes a pair's per-seed difference "
        f"spreads by {100 * seed_std:.2f} points (std over seeds) and {100 * disagreement:.0f} % of the test images "
        f"are judged differently, from {source} (mwa_lightning.experiments.stats.detectable_difference)."
    )


def print_time_left(study: Study, runs: list[RunSpec]) -> None:
    """How long the runs not done would take one at a time: each at the median run-hours of its variant's finished
    runs (:func:`~mwa_lightning.experiments.report.run_seconds`; a committed run's from its row), or of all finished
    runs for a variant with none; a partial run counts whole."""
    from mwa_lightning.experiments.report import run_seconds

    done: dict[str, list[float]] = {}
    left = []
    for run in runs:
        state = run.state
        if state == "done":
            done.setdefault(run.variant, []).append(run_seconds(run.folder))
        elif state == COMMITTED:
            done.setdefault(run.variant, []).append(study.committed_run(run.variant, run.seed).seconds)  # type: ignore[union-attr]
        else:
            left.append(run)
    if not left or not done:
        return
    everyone = statistics.median(t for times in done.values() for t in times)
    seconds = sum(statistics.median(done.get(run.variant) or [everyone]) for run in left)
    took = f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.1f} minutes"
    print(
        f"left: {len(left)} runs, about {took} one at a time (each at the median time of its variant's finished "
        "runs, or of all finished runs)"
    )


def execute(study: Study, python: str = sys.executable, only: Sequence[str] = (), jobs: int = 1) -> list[RunSpec]:
    """Run every run that is not done (of the variants ``only`` matches, if given), up to ``jobs`` at once
    (:mod:`~mwa_lightning.experiments.execution`), the report rewritten after each finished run (with the runs to
    commit: a study stopped there goes on from them on another machine); return the runs that failed."""
    return run_all(study.runs(only), on_finished=lambda run: write_report(study), python=python, jobs=jobs)


def progress(study: Study) -> str:
    """How much of the study has finished, for its report: the runs finished (here or committed) of all its runs,
    and each variant's finished seeds."""
    runs = study.runs()
    finished: dict[str, list[int]] = {variant: [] for variant in study.variants}
    for run in runs:
        if run.state in FINISHED_STATES:
            finished[run.variant].append(run.seed)
    done = sum(map(len, finished.values()))
    if done == len(runs):
        return f"\nThe study is complete: all {len(runs)} runs have finished.\n"
    seeds = "; ".join(f"{v} {','.join(map(str, s)) or '-'}" for v, s in finished.items())
    return (
        f"\n**Partial**: {done} of the study's {len(runs)} runs ({len(study.variants)} variants x {len(study.seeds)} "
        f"seeds) have finished; the figures above are of those. The seeds finished of each variant: {seeds}.\n"
    )


def write_report(study: Study) -> list[dict[str, Any]]:
    """The report from the study's runs -- its run folders here, and the committed runs without a finished folder
    here (:mod:`~mwa_lightning.experiments.archive`) -- then its committed runs (``runs.csv``, ``scalars.csv``: every
    finished run of its own), then the contrasts from the per-image predictions (collected into ``predictions.csv``
    from the run folders and the committed file; without any runs, the committed file alone)."""
    from mwa_lightning.experiments.paired import collect_predictions, write_contrasts
    from mwa_lightning.experiments.report import RunRecord, find_runs, report_runs

    own = study.logs / study.name
    on_disk = {record.path: record for record in find_runs(own)} if own.is_dir() else {}
    runs: list[RunRecord] = []
    to_commit = []
    for run in study.runs():
        record = on_disk.pop(run.folder, None)
        if record is None and run.variant in study.aliases and run.folder.is_dir():
            record = next(iter(find_runs(run.folder)), None)  # another study's run folder
        if (record is None or not record.finished) and run.state == COMMITTED:
            committed = study.committed_run(run.variant, run.seed, with_scalars=True)
            assert committed is not None
            record = RunRecord(run.folder, committed.config, committed.scalars, committed.seconds, committed.finished)
        if record is None:
            continue
        if run.variant in study.aliases:  # another study's run, reported under this study's variant name
            record.config = {**record.config, "experiment": f"{study.name}/{run.variant}"}
        elif record.finished:
            committed = study.committed_run(run.variant, run.seed) if run.state == COMMITTED else None
            data = committed.data if committed is not None else data_fingerprint(record.config)
            to_commit.append(
                CommittedRun(
                    run.variant, run.seed, record.seconds, record.finished_json, record.config, data, record.scalars
                )
            )
        runs.append(record)
    runs += on_disk.values()  # folders under logs/<study> that are no run of the study file (not committed)
    rows: list[dict[str, Any]] = []
    if runs:
        rows = report_runs(runs, study.results_dir, strip_prefix=f"{study.name}/")
        with (study.results_dir / "report.md").open("a") as f:
            f.write(progress(study))
        print(f"wrote {study.results_dir}/report.md, report.csv, curves.png ({len(rows)} variants)")
        if to_commit:
            n = write_runs(study.results_dir, to_commit)
            print(f"wrote {study.results_dir}/runs.csv, scalars.csv ({n} finished runs)")
        if study.protocol == "test-once":
            for path in collect_predictions(study):
                print(f"wrote {path}")
    results = write_contrasts(study)
    if results:
        print(f"wrote {study.results_dir}/contrasts.md, contrasts.csv, contrasts.png ({len(results)} contrasts)")
    elif not rows:
        raise FileNotFoundError(f"no runs under {study.logs / study.name} and no {study.results_dir}/predictions.csv")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"{COMMAND} study", description=__doc__.split("\n")[0])
    parser.add_argument("study", type=Path, help="the study file, e.g. configs/studies/mixer-x-local.yaml")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list the runs and their state; run nothing")
    mode.add_argument("--print-commands", action="store_true", help="print one command per run, one per line")
    mode.add_argument("--report-only", action="store_true", help="write the report from the runs on disk")
    parser.add_argument("--data-dir", help="the data folder for every run (replaces the study file's data_dir)")
    parser.add_argument("--no-check", action="store_true", help="skip parsing every variant before the first run")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="train up to N runs at once: the CPU cores split between them, or one GPU each (default 1)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run (list, print) only the variants matching this shell-style pattern, e.g. 'grid8x8-m*' (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        how = plan(args.jobs)  # before anything else: a --jobs this machine cannot hold is refused at once
        study = Study.load(args.study, data_dir=args.data_dir)
        if args.print_commands:
            for run in study.runs(args.only):
                print(run.shell())
            return 0
        if args.report_only:
            write_report(study)
            return 0
        stale = {} if args.no_check else stale_runs(study, check_variants(study))
        if args.dry_run:
            runs = study.runs(args.only)
            counts = dict.fromkeys((*STATES, COMMITTED, STALE), 0)
            for run in runs:
                state = STALE if run.folder in stale else run.state
                counts[state] += 1
                note = f" (differs in: {', '.join(stale[run.folder][:4])})" if state == STALE else ""
                print(f"{state:8s} {run.folder}{note}")
            print(f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
            print_time_left(study, runs)
            print(f"plan: {how.describe()} (--jobs {how.jobs})")
            if study.protocol == "test-once":
                print_power(study)
            return 0
        refuse_stale(study, stale)
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        failed = execute(study, only=args.only, jobs=args.jobs)
        write_report(study)
        if failed:
            print(f"{len(failed)} run(s) failed: " + ", ".join(str(r.folder) for r in failed), file=sys.stderr)
            return 1
        return 0
    except (StudyError, CommittedRunsError, FileNotFoundError, JobsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the study again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
