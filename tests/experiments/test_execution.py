"""``mwa-lightning study FILE --jobs N``: several runs at once on one machine, through the real command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from mwa_lightning.experiments.execution import JobsError, Plan, cpu_cores, plan
from tests.experiments.test_study import run_study, write_study
from tests.helpers import ROOT

needs_two_cores = pytest.mark.skipif(cpu_cores() < 2, reason="--jobs 2 needs two cores for this process")


def events(stdout: str) -> list[tuple[str, str]]:
    """(started|finished|FAILED, run folder) in the order the runner printed them."""
    out = []
    for line in stdout.splitlines():
        if m := re.match(r"\[\d+/\d+\] started \(pid \d+, [^)]*\): .* --experiment (\S+) --run (\S+)", line):
            out.append(("started", f"logs/{m[1]}/{m[2]}"))
        elif m := re.match(r"\[\d+/\d+\] (finished|FAILED)[^:]*: (\S+)", line):
            out.append((m[1], m[2].rstrip(";")))
    return out


@needs_two_cores
def test_two_runs_at_once_overlap_finish_and_report_as_one_at_a_time(tmp_path):
    variants = {"wavelet": {}, "skips-only": {"model.mixer.init_args.transform": "none"}}
    study = write_study(tmp_path, "pair", variants, seeds=[0])
    result = run_study(tmp_path, study.name, "--jobs", "2")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    order = [kind for kind, _ in events(result.stdout)]
    assert order == ["started", "started", "finished", "finished"], result.stdout  # both ran at the same time
    assert f"--jobs 2: 2 runs at once, {cpu_cores() // 2} thread(s) each" in result.stdout
    assert result.stdout.count(f"OMP_NUM_THREADS={cpu_cores() // 2}") == 2
    for variant in variants:
        run = tmp_path / "logs" / "pair" / variant / "seed0"
        assert (run / "finished.json").is_file()
        assert "best checkpoint: " in (run.parent / "seed0.log").read_text()  # its output went to its log
    report = (tmp_path / "results" / "pair" / "report.md").read_text()
    assert report.endswith("The study is complete: all 2 runs have finished.\n")
    again = run_study(tmp_path, study.name, "--jobs", "2")
    assert again.returncode == 0 and again.stdout.count("done, skipped") == 2


@needs_two_cores
def test_a_failed_run_is_named_and_the_others_finish(tmp_path):
    variants = {
        "wavelet": {},
        "broken": {"model.mixer.init_args.levels": 9},  # more levels than the 8 x 8 grid allows: fails at build
        "skips-only": {"model.mixer.init_args.transform": "none"},
    }
    study = write_study(tmp_path, "some-fail", variants, seeds=[0])
    result = run_study(tmp_path, study.name, "--jobs", "2", "--no-check")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    assert "1 run(s) failed: logs/some-fail/broken/seed0" in result.stderr
    assert ("FAILED", "logs/some-fail/broken/seed0") in events(result.stdout)
    assert "levels" in result.stdout  # the end of the failed run's log, with its error
    for variant in ("wavelet", "skips-only"):
        assert (tmp_path / "logs" / "some-fail" / variant / "seed0" / "finished.json").is_file()


@needs_two_cores
def test_ctrl_c_stops_every_run_and_running_again_resumes_them(tmp_path):
    variants = {"wavelet": {}, "skips-only": {"model.mixer.init_args.transform": "none"}}
    study = write_study(tmp_path, "stopped", variants, seeds=[0])
    spec = yaml.safe_load(study.read_text())
    spec["args"] = {"trainer.max_epochs": 60}
    study.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "mwa_lightning", "study", study.name, "--jobs", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoints = [tmp_path / "logs" / "stopped" / v / "seed0" / "checkpoints" / "last.ckpt" for v in variants]
    deadline = time.monotonic() + 240
    while not all(c.is_file() for c in checkpoints):  # both have trained an epoch: each resumable
        assert runner.poll() is None and time.monotonic() < deadline, "the runs did not start"
        time.sleep(0.5)
    runner.send_signal(signal.SIGINT)
    stdout, stderr = runner.communicate(timeout=90)
    assert runner.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "stopping 2 run(s)" in stdout and "interrupted: run the study again to resume" in stderr
    pids = [int(p) for p in re.findall(r"started \(pid (\d+)", stdout)]
    assert len(pids) == 2
    for pid in pids:  # every child is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not any((c.parent.parent / "finished.json").is_file() for c in checkpoints)
    again = run_study(tmp_path, study.name, "--jobs", "2", timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert again.stdout.count("(resuming from its last.ckpt)") == 2
    assert all((c.parent.parent / "finished.json").is_file() for c in checkpoints)


def test_the_plan_splits_the_cores_or_gives_each_run_a_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr("mwa_lightning.experiments.execution.cpu_cores", lambda: 8)
    assert plan(1) == Plan(1)
    assert plan(2).threads == 4 and plan(3).threads == 2 and plan(8).threads == 1
    assert plan(2).env(1) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}
    with pytest.raises(JobsError, match=r"--jobs 9: this process may use 8 core\(s\), so at most 8 runs at once"):
        plan(9)
    with pytest.raises(JobsError, match="--jobs 0: expected a positive number"):
        plan(0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert plan(2).env(0) == {"CUDA_VISIBLE_DEVICES": "2"} and plan(2).env(1) == {"CUDA_VISIBLE_DEVICES": "5"}
    with pytest.raises(JobsError, match="shows 2 GPU"):
        plan(3)


def test_too_many_jobs_is_one_line_before_anything_runs(tmp_path):
    study = write_study(tmp_path, "toomany", {"wavelet": {}}, seeds=[0])
    result = run_study(tmp_path, study.name, "--jobs", str(cpu_cores() + 1))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert (
        result.stderr.startswith(f"error: --jobs {cpu_cores() + 1}: this process may use")
        and "Traceback" not in result.stderr
    )
    assert not (tmp_path / "logs").exists()
    dry = run_study(tmp_path, study.name, "--dry-run", "--jobs", "1")
    assert "plan: one run at a time, in this terminal (--jobs 1)" in dry.stdout


def test_a_sigterm_to_the_runner_of_one_run_at_a_time_stops_that_run_too(tmp_path):
    """--jobs 1 (the default): the run in the foreground is stopped with the runner, not left training, orphaned, into
    a folder that the next runner resumes."""
    study = write_study(tmp_path, "alone", {"wavelet": {}}, seeds=[0])
    spec = yaml.safe_load(study.read_text())
    spec["args"] = {"trainer.max_epochs": 60}
    study.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "mwa_lightning", "study", study.name],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # as under nohup: no terminal sends the run a signal of its own
    )
    checkpoint = tmp_path / "logs" / "alone" / "wavelet" / "seed0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not checkpoint.is_file():  # it has trained an epoch: resumable
        assert runner.poll() is None and time.monotonic() < deadline, "the run did not start"
        time.sleep(0.5)
    children = subprocess.run(["pgrep", "-P", str(runner.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 1, children
    runner.send_signal(signal.SIGTERM)
    stdout, stderr = runner.communicate(timeout=90)
    assert runner.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "stopping 1 run(s): logs/alone/wavelet/seed0" in stdout
    with pytest.raises(ProcessLookupError):  # the run is gone with its runner
        os.kill(int(children[0]), 0)
    assert not (checkpoint.parent.parent / "finished.json").is_file()
