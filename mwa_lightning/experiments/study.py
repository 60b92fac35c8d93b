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
``results/<study>/runs.jsonl``: :mod:`~mwa_lightning.experiments.archive`); an unfinished one resumes from its
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
    predictions:                         # optional: what each contrast should show, written before any run
      mwa-vs-gfn: equivalent             # or positive, negative, at-least <points>, at-most <points>

Options: ``--jobs N`` trains up to N runs at once, the cores split between them or one GPU each
(:mod:`~mwa_lightning.experiments.execution`); ``--dry-run`` lists the runs and their state (done, partial, todo,
committed, stale), and under the protocol the smallest difference the study can detect; ``--print-commands`` prints
one command per line (for a cluster array job); ``--only PATTERN`` (repeatable) keeps to the variants matching a
shell-style pattern, e.g. to train the variants a later one's setting is chosen from (on validation) before that
one is written into the study file; ``--report-only`` writes the report from what is there. The report --
``results/<study>/report.md``, ``report.csv``, ``curves.png`` (:mod:`mwa_lightning.experiments.report`), and under
the protocol ``predictions.csv`` and ``contrasts.md``, ``contrasts.csv``, ``contrasts.png``
(:mod:`mwa_lightning.experiments.paired`; each pre-registered prediction's verdict:
:mod:`~mwa_lightning.experiments.prereg`), and the finished runs' ``runs.jsonl`` and ``scalars.csv``
(:mod:`mwa_lightning.experiments.archive`) -- goes to ``results/<study>/``, rewritten after every finished run;
without run folders, ``--report-only`` recomputes the contrasts from the committed ``predictions.csv`` alone."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import heapq
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mwa_lightning import COMMAND
from mwa_lightning.experiments.archive import (
    RUNS,
    SCALARS_FILE,
    CommittedRunsError,
    data_fingerprint,
    write_runs,
)
from mwa_lightning.experiments.execution import JobsError, plan
from mwa_lightning.experiments.execution import execute as run_all
from mwa_lightning.experiments.paired import collect_predictions, predictions_path, read_predictions, write_contrasts
from mwa_lightning.experiments.record import RunRecord
from mwa_lightning.experiments.report import find_runs, report_runs, run_seconds
from mwa_lightning.experiments.runspec import RunSpec
from mwa_lightning.experiments.staleness import check_variants, refuse_stale, stale_runs
from mwa_lightning.experiments.stats import (
    PLANNING_DISAGREEMENT,
    PLANNING_SEED_STD,
    detectable_difference,
    planning_figures,
)
from mwa_lightning.experiments.studyfile import Study, StudyError
from mwa_lightning.training.runs import (
    FINISHED_STATES,
    FOLDER_STATES,
    RunState,
)

__all__ = ["Study", "StudyError", "check_variants", "main", "refuse_stale", "stale_runs", "write_report"]


def print_power(study: Study) -> None:
    """The smallest differences the study can detect (80 % power), for its seed count and test-set size, with the
    seed spread and disagreement measured from its committed predictions when it has some (else the planning
    figures of :mod:`~mwa_lightning.experiments.stats`, measured on mixer-x-local)."""

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


def print_time_left(study: Study, runs: list[RunSpec], jobs: int = 1) -> None:
    """How long the runs not done would take one at a time: each at the median run-hours of its variant's finished
    runs (:func:`~mwa_lightning.experiments.report.run_seconds`; a committed run's from its row), or of all finished
    runs for a variant with none; a partial run counts whole. With ``jobs`` > 1, also the wall time when the runs
    start in order as slots free (as :mod:`~mwa_lightning.experiments.execution` starts them), each taking as long
    as it did among the finished runs (measured as they ran: alone, or beside others)."""

    done: dict[str, list[float]] = {}
    left = []
    for run in runs:
        state = run.state
        if state == RunState.DONE:
            done.setdefault(run.variant, []).append(run_seconds(run.folder))
        elif state == RunState.COMMITTED:
            done.setdefault(run.variant, []).append(study.committed_run(run.variant, run.seed).seconds)  # type: ignore[union-attr]
        else:
            left.append(run)
    if not left or not done:
        return
    everyone = statistics.median(t for times in done.values() for t in times)
    each = [statistics.median(done.get(run.variant) or [everyone]) for run in left]
    at_once = f", {_hours(wall_time(each, jobs))} at --jobs {jobs}" if jobs > 1 else ""
    print(
        f"left: {len(left)} runs, about {_hours(sum(each))} one at a time{at_once} (each at the median time of its "
        "variant's finished runs, or of all finished runs)"
    )


def wall_time(durations: Sequence[float], jobs: int) -> float:
    """When the last of ``durations`` ends if each starts, in order, on the first of ``jobs`` slots to free."""
    slots = [0.0] * max(1, jobs)
    for duration in durations:
        heapq.heappush(slots, heapq.heappop(slots) + duration)
    return max(slots)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.1f} minutes"


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
    here (:mod:`~mwa_lightning.experiments.archive`) -- then its committed runs (``runs.jsonl``, ``scalars.csv``: every
    finished run of its own), then the contrasts from the per-image predictions (collected into ``predictions.csv``
    from the run folders and the committed file; without any runs, the committed file alone)."""

    own = study.logs / study.name
    on_disk = {record.path: record for record in find_runs(own)} if own.is_dir() else {}
    runs: list[RunRecord] = []
    to_commit: dict[tuple[str, int], RunRecord] = {}
    for run in study.runs():
        record = on_disk.pop(run.folder, None)
        if record is None and run.variant in study.aliases and run.folder.is_dir():
            record = next(iter(find_runs(run.folder)), None)  # another study's run folder
        if (record is None or not record.finished) and run.state == RunState.COMMITTED:
            committed = study.committed_run(run.variant, run.seed, with_scalars=True)
            assert committed is not None
            record = dataclasses.replace(committed, path=run.folder)  # where its folder would be here
        if record is None:
            continue
        if run.variant in study.aliases:  # another study's run, reported under this study's variant name
            record.config = {**record.config, "experiment": f"{study.name}/{run.variant}"}
        elif record.finished:
            committed = study.committed_run(run.variant, run.seed) if run.state == RunState.COMMITTED else None
            data = committed.data if committed is not None else data_fingerprint(record.config)
            to_commit[run.variant, run.seed] = dataclasses.replace(record, data=data)
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
            print(f"wrote {study.results_dir}/{RUNS}, {SCALARS_FILE} ({n} finished runs)")
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
            counts = dict.fromkeys((*FOLDER_STATES, RunState.COMMITTED, RunState.STALE), 0)
            for run in runs:
                state = RunState.STALE if run.folder in stale else run.state
                counts[state] += 1
                note = f" (differs in: {', '.join(stale[run.folder][:4])})" if state == RunState.STALE else ""
                print(f"{state:8s} {run.folder}{note}")
            print(f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
            print_time_left(study, runs, how.jobs)
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
