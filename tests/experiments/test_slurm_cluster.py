"""The SLURM launcher under a real scheduler: a single-node cluster on this machine (tests/slurm_cluster.py).

Array jobs, the warning signal through srun, the task's own requeue and SLURM's restart of it, DDP under srun,
scancel and resubmission, and an option the cluster cannot satisfy. Skipped, saying why, where SLURM is not
installed or its daemons do not start (``.ci/run`` installs Debian's slurm-wlm and munge).
"""

import json
import os
import re
from pathlib import Path

import pytest
import torch
import yaml

from mwa_lightning.experiments.report import find_runs, summarize
from mwa_lightning.training.runs import run_state
from tests.helpers import run_cli, tiny_config
from tests.slurm_cluster import MUNGE_KEY, SlurmCluster, missing_binaries, start_cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing); .ci/run installs slurm-wlm and munge")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's daemons run as root; this is not root")
    if not MUNGE_KEY.is_file():
        pytest.skip(f"no munge key at {MUNGE_KEY} (installed with the munge package)")
    try:
        started = start_cluster(tmp_path_factory.mktemp("slurm"))
    except Exception as e:  # a daemon that does not start: the tests cannot run here
        pytest.skip(f"the SLURM daemons did not start: {' '.join(str(e).split())[:800]}")
    yield started
    started.stop()


def study(folder: Path, name: str, seeds: list[int], *, epochs: int = 1, slow: bool = False) -> Path:
    """A tiny CPU study in ``folder``: one variant (MWA), the given seeds."""
    config = tiny_config(folder, **{"trainer.max_epochs": epochs})
    if slow:
        spec = yaml.safe_load(config.read_text())
        spec["trainer"]["callbacks"] = [{"class_path": "tests.helpers.SlowFirstAttempt"}]
        config.write_text(yaml.safe_dump(spec))
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"base": str(config), "seeds": seeds, "variants": {"mwa": {}}}))
    return path


def launch(cluster: SlurmCluster, folder: Path, *args: str, env: dict | None = None):
    env = {**cluster.env, "OMP_NUM_THREADS": "1", **(env or {})}
    return run_cli("slurm", *args, "--gpus", "0", "--cpus-per-task", "1", "--out", "slurm", cwd=folder, env=env)


def job_id(result) -> str:
    match = re.search(r"Submitted batch job (\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return match.group(1)


def wait_done(cluster: SlurmCluster, job: str, timeout: float) -> None:
    cluster.wait_for(lambda: not cluster.job_states(job), timeout, f"job {job} leaving the queue", every=2)


def outputs(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((folder / "logs" / "slurm").glob("*.out")))


def report_rows(folder: Path, name: str) -> list[dict]:
    return summarize(find_runs(folder / "logs" / name), f"{name}/")


def last_weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


def test_an_array_of_two_runs_finishes_both_and_the_report_counts_them(cluster, tmp_path):
    path = study(tmp_path, "pair", [0, 1])
    result = launch(cluster, tmp_path, str(path), "--time", "5")
    assert result.returncode == 0, result.stderr + cluster.logs()
    assert (tmp_path / "slurm" / "pair.sbatch").is_file() and len(
        (tmp_path / "slurm" / "pair.commands").read_text().splitlines()
    ) == 2
    wait_done(cluster, job_id(result), 240)
    for seed in (0, 1):
        assert run_state(tmp_path / "logs" / "pair" / "mwa" / f"seed{seed}") == "done", (
            outputs(tmp_path) + cluster.logs()
        )
    (row,) = report_rows(tmp_path, "pair")
    assert row["runs"] == 2 and row["unfinished"] == 0


def test_the_warning_signal_requeues_the_task_which_resumes_mid_epoch_to_the_uninterrupted_weights(cluster, tmp_path):
    # 6 steps an epoch, 6 epochs, 2 s a step on the first attempt: SLURM's warning (USR1, 30 s before the 1-minute
    # limit; its timing is coarse) arrives during training; the requeued attempt is quick
    path = study(tmp_path, "requeue", [0], epochs=6, slow=True)
    result = launch(
        cluster, tmp_path, str(path), "--time", "1", "--signal-seconds", "30", env={"MWA_TEST_STEP_SLEEP": "2"}
    )
    assert result.returncode == 0, result.stderr + cluster.logs()
    job = job_id(result)
    run = tmp_path / "logs" / "requeue" / "mwa" / "seed0"
    cluster.wait_for(lambda: "requeued SLURM job" in outputs(tmp_path), 180, "the task requeueing itself", every=2)
    # SLURM 22.05 has sent the warning within seconds of an attempt's start (the package keeps it: the attempt
    # stops at its first step and requeues again): give the waiting attempt a longer limit, so that this test
    # checks one signal, one requeue and one restart
    assert cluster.run("scontrol", "update", f"JobId={job}_0", "TimeLimit=10").returncode == 0
    cluster.wait_for(lambda: run_state(run) == "done", 420, f"{run} finishing after its requeue", every=3)
    wait_done(cluster, job, 60)
    log = outputs(tmp_path)
    assert log.count("(restart 0)") == 1 and log.count("(restart 1)") == 1, log  # one restart, by SLURM
    assert "requeued SLURM job" in log and "stopped on SIGUSR1" in log, log
    assert re.search(r"resuming .* from .*last\.ckpt", log), log
    # the uninterrupted run: the same command outside SLURM, under the overlay's strategy (DDP: Lightning's
    # DistributedSampler orders the data, even for one process)
    whole = tmp_path / "whole"
    whole.mkdir()
    args = ["--config", str(tmp_path / "tiny.yaml"), "--run", "seed0", "--seed_everything", "0"]
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.strategy", "ddp"]
    done = run_cli("fit", *args, *ddp, cwd=whole, env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = last_weights(run), last_weights(whole / "logs" / "tiny" / "seed0")
    for key, value in a.items():
        assert torch.equal(value, b[key]), key
    (row,) = report_rows(tmp_path, "requeue")
    assert row["runs"] == 1 and row["unfinished"] == 0  # counted once
    finished = json.loads((run / "finished.json").read_text())
    assert finished["epochs"] == 6


def test_two_ddp_processes_under_srun_end_with_the_weights_of_two_processes_outside_slurm(cluster, tmp_path):
    path = study(tmp_path, "ddp", [0], epochs=2)
    result = launch(cluster, tmp_path, str(path), "--tasks-per-node", "2", "--time", "5")
    assert result.returncode == 0, result.stderr + cluster.logs()
    wait_done(cluster, job_id(result), 300)
    run = tmp_path / "logs" / "ddp" / "mwa" / "seed0"
    assert run_state(run) == "done", outputs(tmp_path) + cluster.logs()
    outside = tmp_path / "outside"
    outside.mkdir()
    args = ["--config", str(tmp_path / "tiny.yaml"), "--run", "seed0", "--seed_everything", "0"]
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    done = run_cli("fit", *args, *ddp, cwd=outside, env={"OMP_NUM_THREADS": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = last_weights(run), last_weights(outside / "logs" / "tiny" / "seed0")
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


def test_scancel_leaves_a_partial_run_that_resubmitting_resumes_and_counts_once(cluster, tmp_path):
    path = study(tmp_path, "cancel", [0], epochs=4, slow=True)
    result = launch(cluster, tmp_path, str(path), "--time", "5", env={"MWA_TEST_STEP_SLEEP": "1"})
    assert result.returncode == 0, result.stderr + cluster.logs()
    job = job_id(result)
    run = tmp_path / "logs" / "cancel" / "mwa" / "seed0"
    cluster.wait_for(lambda: run_state(run) == "partial", 180, f"{run}'s first last.ckpt", every=1)
    assert cluster.run("scancel", job).returncode == 0
    wait_done(cluster, job, 60)
    assert run_state(run) == "partial"
    again = launch(cluster, tmp_path, str(path), "--time", "5")
    assert again.returncode == 0 and "1 array tasks" in again.stdout, again.stdout + again.stderr
    wait_done(cluster, job_id(again), 240)
    assert run_state(run) == "done", outputs(tmp_path) + cluster.logs()
    (row,) = report_rows(tmp_path, "cancel")
    assert row["runs"] == 1 and row["unfinished"] == 0
    # and a finished study submits nothing more
    rest = launch(cluster, tmp_path, str(path))
    assert rest.returncode == 0 and "all 1 runs have finished; nothing to submit" in rest.stdout


def test_gpus_on_a_cluster_without_gpus_is_one_line_naming_the_option(cluster, tmp_path):
    path = study(tmp_path, "gpus", [0])
    env = {**cluster.env, "OMP_NUM_THREADS": "1"}
    result = run_cli("slurm", str(path), "--gpus", "1", "--out", "slurm", cwd=tmp_path, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: sbatch refused"), result.stderr
    assert "--gpus 1 (GPUs per node)" in lines[0] and "GRES none" in lines[0]
    assert (tmp_path / "slurm" / "gpus.sbatch").is_file() and (tmp_path / "slurm" / "gpus.commands").is_file()
