"""Run a study's runs: one at a time, or several at once on one machine (``mwa-lightning study FILE --jobs N``).

With ``--jobs N`` up to N runs train at once, each its own ``mwa-lightning fit`` process:

- on a CPU machine the cores are split between them: each run gets ``cores // N`` threads (``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS``), so that N runs never oversubscribe the machine (one thread per run is the fastest on a
  2-core machine: two 1-thread runs side by side gave 2.1x the images/s of one 2-thread run); N above the cores is
  refused;
- on a machine with GPUs each run gets one visible GPU (``CUDA_VISIBLE_DEVICES``), so N is at most their number.

Each run's output goes to ``<run folder>.log`` beside its folder (``logs/<study>/<variant>/seed<k>.log``), not to
the terminal, where N runs would interleave; the runner prints one line when a run starts (its command, process id
and log) and one when it ends. A run that fails is reported by name with the end of its log, and the others go on.
Ctrl-C, or a SIGTERM to the runner, stops every child (SIGTERM, then SIGKILL after 30 s) and leaves each one
resumable from its last checkpoint, as a single run is; the children are also told to stop if the runner dies
without warning (Linux's parent-death signal). Running the study again resumes them, as always. One run at a time
(``--jobs 1``, the default) is stopped the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mwa_lightning.experiments.runspec import RunSpec
from mwa_lightning.training.runs import FINISHED_STATES, RunState


class JobsError(ValueError):
    """``--jobs`` asks for more runs at once than this machine can hold; the message names the limit."""


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
STOP_GRACE_S = 30.0  # how long a stopped child may take to exit on SIGTERM before it is killed


def cpu_cores() -> int:
    """The cores this process may run on (its affinity: a cluster job's allocation, not the whole node)."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """The GPUs a run here could use, as ``CUDA_VISIBLE_DEVICES`` entries (none on a CPU machine)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


@dataclass(frozen=True)
class Plan:
    """How ``jobs`` runs share this machine: a thread count each, or a GPU each."""

    jobs: int
    threads: int | None = None  # per run, on a CPU machine
    gpus: tuple[str, ...] = field(default_factory=tuple)  # one per slot, on a GPU machine

    def env(self, slot: int) -> dict[str, str]:
        """The environment variables of the run in ``slot`` (0 .. jobs - 1)."""
        if self.gpus:
            return {"CUDA_VISIBLE_DEVICES": self.gpus[slot]}
        if self.threads is None:
            return {}
        return dict.fromkeys(THREAD_VARIABLES, str(self.threads))

    def describe(self) -> str:
        if self.jobs == 1:
            return "one run at a time, in this terminal"
        if self.gpus:
            return f"{self.jobs} runs at once, one GPU each (CUDA_VISIBLE_DEVICES {', '.join(self.gpus)})"
        return f"{self.jobs} runs at once, {self.threads} thread(s) each ({cpu_cores()} cores)"


def plan(jobs: int) -> Plan:
    """The plan for ``--jobs``; a :class:`JobsError` naming the limit when the machine cannot hold that many runs."""
    if jobs < 1:
        raise JobsError(f"--jobs {jobs}: expected a positive number of runs at once")
    if jobs == 1:
        return Plan(1)
    gpus = visible_gpus()
    if gpus:
        if jobs > len(gpus):
            raise JobsError(f"--jobs {jobs}: this machine shows {len(gpus)} GPU(s); one run per GPU, so at most that")
        return Plan(jobs, gpus=tuple(gpus[:jobs]))
    cores = cpu_cores()
    if jobs > cores:
        raise JobsError(f"--jobs {jobs}: this process may use {cores} core(s), so at most {cores} runs at once")
    return Plan(jobs, threads=cores // jobs)


def log_path(run: RunSpec) -> Path:
    """Where a run started by ``--jobs`` writes its output: ``<run folder>.log``, beside the folder."""
    return run.folder.with_name(f"{run.folder.name}.log")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Ask Linux to send this child SIGTERM when the runner dies (prctl PR_SET_PDEATHSIG); elsewhere, nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _tail(path: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        return "\n".join("    " + line for line in path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def execute(
    runs: Sequence[RunSpec],
    on_finished: Callable[[RunSpec], None],
    python: str = sys.executable,
    jobs: int = 1,
) -> list[RunSpec]:
    """Run every run that is not finished, up to ``jobs`` at once (:func:`plan`); call ``on_finished`` after each
    one that finished; return the ones that failed."""
    if jobs == 1:
        return _one_at_a_time(runs, on_finished, python)
    return _at_once(runs, on_finished, python, plan(jobs))


def _skip(i: int, n: int, run: RunSpec) -> bool:
    state = run.state
    if state in FINISHED_STATES:
        where = " (finished elsewhere: in the committed results)" if state == RunState.COMMITTED else ""
        print(f"[{i}/{n}] {state}, skipped: {run.folder}{where}", flush=True)
        return True
    return False


def _interrupt(signum, frame):  # SIGTERM to the runner: stop as Ctrl-C does
    raise KeyboardInterrupt


def _one_at_a_time(runs: Sequence[RunSpec], on_finished: Callable[[RunSpec], None], python: str) -> list[RunSpec]:
    """Each run in the foreground, its output in this terminal. A SIGTERM to the runner stops the run as Ctrl-C does,
    and the run is told to stop if the runner dies, so that no run trains on, orphaned, into a folder a later runner
    resumes."""
    failed = []
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for i, run in enumerate(runs, 1):
            if _skip(i, len(runs), run):
                continue
            note = " (resuming from its last.ckpt)" if run.state == RunState.PARTIAL else ""
            print(f"[{i}/{len(runs)}] {run.shell()}{note}", flush=True)
            t0 = time.perf_counter()
            process = subprocess.Popen(run.argv(python), preexec_fn=_die_with_parent)
            try:
                code = process.wait()
            except KeyboardInterrupt:
                _stop([(run.folder, process)])
                raise
            took = time.perf_counter() - t0
            if code != 0 or run.state != RunState.DONE:
                print(f"[{i}/{len(runs)}] FAILED (exit {code}) after {took:.0f} s: {run.folder}", flush=True)
                failed.append(run)
            else:
                print(f"[{i}/{len(runs)}] finished in {took:.0f} s: {run.folder}", flush=True)
                on_finished(run)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return failed


@dataclass
class _Child:
    index: int
    run: RunSpec
    slot: int
    process: subprocess.Popen
    started: float
    log: Path


def _at_once(runs: Sequence[RunSpec], on_finished: Callable[[RunSpec], None], python: str, how: Plan) -> list[RunSpec]:
    print(f"--jobs {how.jobs}: {how.describe()}; each run's output in <run folder>.log", flush=True)
    n = len(runs)
    waiting = [(i, run) for i, run in enumerate(runs, 1) if not _skip(i, n, run)]
    free = list(range(how.jobs))
    children: list[_Child] = []
    failed: list[RunSpec] = []

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while waiting or children:
            while waiting and free:
                i, run = waiting.pop(0)
                slot = free.pop(0)
                log = log_path(run)
                log.parent.mkdir(parents=True, exist_ok=True)
                note = " (resuming from its last.ckpt)" if run.state == RunState.PARTIAL else ""
                with log.open("ab") as out:
                    process = subprocess.Popen(
                        run.argv(python),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env={**os.environ, **how.env(slot)},
                        start_new_session=True,  # Ctrl-C reaches the runner, which stops the children itself
                        preexec_fn=_die_with_parent,
                    )
                children.append(_Child(i, run, slot, process, time.perf_counter(), log))
                env = " ".join(f"{k}={v}" for k, v in how.env(slot).items())
                print(f"[{i}/{n}] started (pid {process.pid}, {env}, log {log}){note}: {run.shell()}", flush=True)
            time.sleep(0.5)
            for child in [c for c in children if c.process.poll() is not None]:
                children.remove(child)
                free.append(child.slot)
                took = time.perf_counter() - child.started
                code = child.process.returncode
                if code != 0 or child.run.state != RunState.DONE:
                    print(
                        f"[{child.index}/{n}] FAILED (exit {code}) after {took:.0f} s: {child.run.folder}; the end "
                        f"of {child.log}:\n{_tail(child.log)}",
                        flush=True,
                    )
                    failed.append(child.run)
                else:
                    print(f"[{child.index}/{n}] finished in {took:.0f} s: {child.run.folder}", flush=True)
                    on_finished(child.run)
    except KeyboardInterrupt:
        _stop([(c.run.folder, c.process) for c in children])
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return failed


def _stop(children: Sequence[tuple[Path, subprocess.Popen]]) -> None:
    """SIGTERM every child (its run folder, its process), wait up to :data:`STOP_GRACE_S`, then SIGKILL the rest;
    say so."""
    if not children:
        return
    print(f"stopping {len(children)} run(s): " + ", ".join(str(folder) for folder, _ in children), flush=True)
    for _, process in children:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for _, process in children:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    print("stopped; run the study again to resume them from their last checkpoints", flush=True)
