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


def study(
    folder: Path, name: str, seeds: list[int], *, epochs: int = 1, wait_at: tuple[int, int] | None = None
) -> Path:
    """A tiny CPU study in ``folder``: one variant (MWA), the given seeds; ``wait_at=(epoch, step)``: its first
    attempt waits there for the warning signal (:class:`tests.helpers.WaitForWarningOnFirstAttempt`)."""
    config = tiny_config(folder, **{"trainer.max_epochs": epochs})
    if wait_at is not None:
        spec = yaml.safe_load(config.read_text())
        callback = {"class_path": "tests.helpers.WaitForWarningOnFirstAttempt"}
        spec["trainer"]["callbacks"] = [{**callback, "init_args": {"epoch": wait_at[0], "batch": wait_at[1]}}]
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
    # The first attempt waits at epoch 1, step 3 (of 6) and says so in a file; only then does the test send the
    # warning, through SLURM to the job's step as its --signal timer would (scancel --signal). A 10-minute limit
    # (its own warning 30 s before it) is far beyond the run: nothing depends on how fast or loaded the machine is.
    # SLURM's own timer reaching Python is checked apart (test_slurms_own_warning_timer_reaches_the_run).
    path = study(tmp_path, "requeue", [0], epochs=3, wait_at=(1, 2))
    ready = tmp_path / "ready"
    result = launch(
        cluster, tmp_path, str(path), "--time", "10", "--signal-seconds", "30", env={"MWA_TEST_READY_FILE": str(ready)}
    )
    assert result.returncode == 0, result.stderr + cluster.logs()
    job = job_id(result)
    run = tmp_path / "logs" / "requeue" / "mwa" / "seed0"
    cluster.wait_for(ready.is_file, 420, "the first attempt reaching epoch 1, step 3", every=1)
    assert cluster.run("scancel", "--signal=USR1", f"{job}_0").returncode == 0  # the warning, to the job's step
    cluster.wait_for(lambda: run_state(run) == "done", 420, f"{run} finishing after its requeue", every=2)
    wait_done(cluster, job, 120)
    log = outputs(tmp_path)
    assert log.count("(restart 0)") == 1 and log.count("(restart 1)") == 1, log  # one requeue, one restart
    assert len(re.findall(r"requeued SLURM job \d+_0", log)) == 1, log
    assert len(re.findall(r"stopped on SIGUSR1 at epoch 1, step (?:9|10)\b", log)) == 1, log  # mid-epoch 1 (6 steps)
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
    assert finished["epochs"] == 3


def test_slurms_own_warning_timer_reaches_the_run(cluster, tmp_path):
    """SLURM's ``--signal=USR1@100`` with a 2-minute limit: the first attempt waits at its first step for the
    warning, however long SLURM's coarse timer takes (the package also records one that comes during start-up), then
    checkpoints and requeues. Whether the warning reaches Python at all, with no step or speed to race against."""
    path = study(tmp_path, "warned", [0], epochs=2, wait_at=(0, 0))
    result = launch(cluster, tmp_path, str(path), "--time", "2", "--signal-seconds", "100")
    assert result.returncode == 0, result.stderr + cluster.logs()
    job = job_id(result)
    cluster.wait_for(lambda: "requeued SLURM job" in outputs(tmp_path), 150, "SLURM's warning and the requeue", every=2)
    assert cluster.run("scancel", job).returncode == 0  # the requeued attempt is not this test's
    wait_done(cluster, job, 60)
    log = outputs(tmp_path)
    assert re.search(r"stopped on SIGUSR1 at epoch 0, step \d+", log), log


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
    # the first attempt waits at epoch 1, step 3 (after epoch 0's last.ckpt) for a warning that never comes:
    # cancelled there, whatever the machine's speed
    path = study(tmp_path, "cancel", [0], epochs=3, wait_at=(1, 2))
    ready = tmp_path / "ready"
    result = launch(cluster, tmp_path, str(path), "--time", "10", env={"MWA_TEST_READY_FILE": str(ready)})
    assert result.returncode == 0, result.stderr + cluster.logs()
    job = job_id(result)
    run = tmp_path / "logs" / "cancel" / "mwa" / "seed0"
    cluster.wait_for(ready.is_file, 420, "the first attempt reaching epoch 1, step 3", every=1)
    assert run_state(run) == "partial"
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
