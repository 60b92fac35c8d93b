"""Submit runs to SLURM as one array job: ``mwa-lightning slurm TARGET ... [--dry-run]``.

TARGET is a study file (``configs/studies/<name>.yaml``: its runs) or, with ``--config`` (repeatable, stacked)
and ``--seeds``, one experiment (a baseline, a baseline + an ablation, ...). Every (experiment, seed) becomes one
task of a SLURM array: exactly the ``mwa-lightning fit ...`` command the study runner would run, in
its fixed run folder ``logs/<experiment>/seed<k>/``, launched by ``srun`` with one task per GPU, plus
``configs/overlays/slurm.yaml`` (DDP, Lightning's SLURM environment) and the GPU and node counts.

Preemption and time limits: the job asks for the warning signal ``USR1`` ``--signal-seconds`` before the end
(``#SBATCH --signal=USR1@N``) and is requeueable; :class:`~mwa_lightning.training.requeue.RequeueOnSignal` writes a
checkpoint at the next step, requeues the array task and stops; the requeued task runs the same command, which
resumes from the run folder's ``last.ckpt`` and ends with the weights of an uninterrupted run. Runs already
finished are left out of the array; a partial one resumes.

Writes ``<out>/<name>.sbatch`` (the array script, readable and re-submittable by hand with ``sbatch``) and
``<out>/<name>.commands`` (one command per array index), then runs ``sbatch``; ``--dry-run`` prints both and
submits nothing.

Why an sbatch array script rather than submitit: Lightning's SLURM support expects to be started by ``srun``
with one task per GPU and reads everything it needs from SLURM's environment, which a plain script does in one
line; submitit pickles a Python function into its own job wrapper with its own checkpoint-and-requeue protocol,
which would compete with Lightning's process launch and with the requeue above. A script is also what a
cluster's users read, edit and resubmit, and it needs nothing but the project on the login node.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from mwa_lightning import COMMAND, packaged
from mwa_lightning.early_signal import WARNING_SIGNAL
from mwa_lightning.experiments.archive import CommittedRunsError
from mwa_lightning.experiments.runspec import RunSpec
from mwa_lightning.experiments.staleness import refuse_stale, stale_runs
from mwa_lightning.experiments.studyfile import Study, StudyError
from mwa_lightning.training.runs import FINISHED_STATES

OVERLAY = "configs/overlays/slurm.yaml"


def overlay_path() -> Path:
    """The SLURM overlay as an absolute path: the working folder's ``configs/`` when it has one, else the
    package's copy (:mod:`mwa_lightning.packaged`). Relative, it would be resolved from wherever the job runs, and
    a job submitted from another folder would not find it (a real sbatch found that out)."""
    path = Path(packaged.resolve(OVERLAY))
    if not path.is_file():
        raise StudyError(f"{OVERLAY} not found in {Path.cwd()} or {packaged.configs_dir()}: reinstall mwa-lightning")
    return path.resolve()


_TIME = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")


def array_command(run: RunSpec, gpus: int, nodes: int, tasks_per_node: int | None = None) -> str:
    """The array task's command: the run's ``fit`` command with the SLURM overlay and the process and node
    counts (one process per GPU; ``gpus=0``: ``tasks_per_node`` processes on the CPUs, DDP over gloo), started by
    this interpreter (the one the study would use)."""
    devices = gpus if gpus else (tasks_per_node or 1)
    extra = ["--config", str(overlay_path()), "--trainer.devices", str(devices), "--trainer.num_nodes", str(nodes)]
    if not gpus:
        extra += ["--trainer.accelerator", "cpu"]
    return shlex.join([*run.argv(sys.executable), *extra])


def cluster_summary() -> str:
    """What the cluster offers, from ``sinfo``: partitions, CPUs and generic resources (GPUs) per node."""
    result = subprocess.run(["sinfo", "-h", "-o", "%P %c %G"], capture_output=True, text=True, check=False, timeout=30)
    if result.returncode:
        return "sinfo failed: " + " ".join(result.stderr.split())
    parts = []
    for line in sorted(set(result.stdout.split("\n")) - {""}):
        partition, cpus, gres = line.split(maxsplit=2)
        parts.append(f"partition {partition}: {cpus} CPUs per node, GRES {'none' if gres == '(null)' else gres}")
    return "; ".join(parts) or "no partitions"


def submit(script_file: Path, args: argparse.Namespace) -> int:
    """``sbatch`` the script; a refusal is one line naming what sbatch said and what the cluster has."""
    result = subprocess.run(["sbatch", str(script_file)], capture_output=True, text=True, check=False)
    if result.returncode == 0:
        print(result.stdout.strip())
        return 0
    said = " ".join(line.removeprefix("sbatch: error: ") for line in result.stderr.strip().splitlines())
    asked = f"--gpus {args.gpus} (GPUs per node)" if "gres" in said.lower() and args.gpus else "the job's options"
    print(
        f"error: sbatch refused {script_file} ({said}); it asks for {asked}, the cluster has: {cluster_summary()}. "
        f"The script and its commands are written: fix the options and submit again, or edit and sbatch {script_file}",
        file=sys.stderr,
    )
    return 2


def study_tasks(path: Path, data_dir: str | None, only: Sequence[str] = ()) -> tuple[str, list[RunSpec]]:
    study = Study.load(path, data_dir=data_dir)
    refuse_stale(study, stale_runs(study))
    return study.name, study.runs(only)


def experiment_tasks(
    configs: list[str], seeds: list[int], experiment: str | None, data_dir: str | None
) -> tuple[str, list[RunSpec]]:
    for config in configs:
        if not Path(packaged.resolve(config)).is_file():
            raise StudyError(f"no config file {config}")
    if experiment is None:  # the last config that names one (an ablation stacked on a baseline names itself)
        names = [(yaml.safe_load(Path(packaged.resolve(c)).read_text()) or {}).get("experiment") for c in configs]
        experiment = next((n for n in reversed(names) if n), None)
    if not experiment:
        raise StudyError("none of the configs names an experiment: pass --experiment NAME")
    base = [a for c in configs for a in ("--config", c)]
    if data_dir is not None:
        base += ["--data.init_args.data_dir", data_dir]
    return experiment.replace("/", "-"), [RunSpec(experiment, seed, tuple(base)) for seed in seeds]


def sbatch_script(name: str, commands_file: Path, n: int, args: argparse.Namespace) -> str:
    directives = {
        "job-name": name,
        "array": f"0-{n - 1}" + (f"%{args.max_parallel}" if args.max_parallel else ""),
        "partition": args.partition,
        "account": args.account,
        "nodes": args.nodes,
        "ntasks-per-node": args.gpus or args.tasks_per_node,
        "gpus-per-node": args.gpus or None,
        "cpus-per-task": args.cpus_per_task,
        "mem-per-gpu": args.mem_per_gpu if args.gpus else None,
        "time": args.time,
        "signal": f"{WARNING_SIGNAL.removeprefix('SIG')}@{args.signal_seconds}",
        "requeue": True,
        "open-mode": "append",
        "output": f"{args.log_dir}/%x_%A_%a.out",
    }
    lines = ["#!/bin/bash", f"# {name}: {n} runs, one array task each (mwa-lightning slurm)"]
    for key, value in directives.items():
        if value is True:
            lines.append(f"#SBATCH --{key}")
        elif value not in (None, ""):
            lines.append(f"#SBATCH --{key}={value}")
    lines += [
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path.cwd()))}",
        f'COMMAND=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str(commands_file))})',
        'echo "[$(date)] task $SLURM_ARRAY_TASK_ID (restart ${SLURM_RESTART_COUNT:-0}): $COMMAND"',
        'eval "srun $COMMAND"',
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"{COMMAND} slurm", description=__doc__.split("\n")[0])
    parser.add_argument("study", nargs="?", type=Path, help="a study file (configs/studies/<name>.yaml)")
    parser.add_argument("--config", action="append", default=[], help="an experiment config (repeat to stack)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of a --config experiment")
    parser.add_argument("--experiment", help="the experiment's name (default: the configs')")
    parser.add_argument("--data-dir", help="--data.init_args.data_dir for every run")
    parser.add_argument(
        "--only", action="append", default=[], metavar="PATTERN", help="a study's variants matching this pattern only"
    )
    parser.add_argument("--partition", help="SLURM partition")
    parser.add_argument("--account", help="SLURM account")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs per node (one task each); 0: a CPU-only job")
    parser.add_argument(
        "--tasks-per-node", type=int, default=1, help="with --gpus 0: processes per node (DDP over gloo on CPUs)"
    )
    parser.add_argument("--nodes", type=int, default=1, help="nodes per run")
    parser.add_argument("--time", default="24:00:00", help="time limit per array task, e.g. 24:00:00 or 2-00:00:00")
    parser.add_argument("--cpus-per-task", "--cpus-per-gpu", type=int, default=8, help="CPU cores per task")
    parser.add_argument("--mem-per-gpu", help="memory per GPU, e.g. 64G")
    parser.add_argument("--signal-seconds", type=int, default=180, help="warning signal this long before the end")
    parser.add_argument("--max-parallel", type=int, help="array tasks running at once")
    parser.add_argument("--out", type=Path, default=Path("slurm"), help="folder of the script and command list")
    parser.add_argument("--log-dir", default="logs/slurm", help="folder of the jobs' stdout/stderr")
    parser.add_argument("--include-done", action="store_true", help="also submit runs that have finished")
    parser.add_argument("--dry-run", action="store_true", help="print the script and commands; submit nothing")
    args = parser.parse_args(argv)
    try:
        if (args.study is None) == (not args.config):
            raise StudyError("give either a study file or --config (with --seeds), not both and not neither")
        if args.only and args.study is None:
            raise StudyError(f"--only {args.only[0]!r} picks a study's variants; it needs a study file, not --config")
        positive = (("--nodes", args.nodes), ("--signal-seconds", args.signal_seconds))
        for name, value in (
            *positive,
            ("--tasks-per-node", args.tasks_per_node),
            ("--cpus-per-task", args.cpus_per_task),
        ):
            if value < 1:
                raise StudyError(f"{name}={value}; expected a positive number")
        if args.gpus < 0:
            raise StudyError(f"--gpus={args.gpus}; expected 0 (a CPU-only job) or a positive number of GPUs per node")
        overlay_path()  # found before anything is written
        if not _TIME.match(args.time):
            raise StudyError(f"--time={args.time!r}; expected SLURM's [days-]hours:minutes:seconds, e.g. 24:00:00")
        if args.study is not None:
            name, tasks = study_tasks(args.study, args.data_dir, args.only)
        else:
            name, tasks = experiment_tasks(args.config, args.seeds, args.experiment, args.data_dir)
    except (StudyError, CommittedRunsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    todo = [t for t in tasks if args.include_done or t.state not in FINISHED_STATES]
    skipped = len(tasks) - len(todo)
    if not todo:
        print(f"{name}: all {len(tasks)} runs have finished; nothing to submit")
        return 0
    commands_file = args.out / f"{name}.commands"
    script_file = args.out / f"{name}.sbatch"
    commands = "\n".join(array_command(t, args.gpus, args.nodes, args.tasks_per_node) for t in todo) + "\n"
    script = sbatch_script(name, commands_file, len(todo), args)
    print(f"{name}: {len(todo)} array tasks" + (f" ({skipped} finished runs left out)" if skipped else ""))
    if args.dry_run:
        print(f"\n--- {script_file} (not written)\n{script}\n--- {commands_file} (not written)\n{commands}", end="")
        print("dry run: nothing submitted")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    commands_file.write_text(commands)
    script_file.write_text(script)
    print(f"wrote {script_file} and {commands_file}")
    if shutil.which("sbatch") is None:
        print(
            "error: sbatch is not on PATH (not a SLURM login node?); submit the script there with: "
            f"sbatch {script_file}",
            file=sys.stderr,
        )
        return 2
    return submit(script_file, args)


if __name__ == "__main__":
    raise SystemExit(main())
