"""The scheduler's warning signal mid-epoch: checkpoint, requeue, stop; the same command resumes exactly."""

import os
import signal
import stat
import subprocess
import sys

import torch
import yaml

from mwa_lightning.training.requeue import REQUEUED_EXIT_CODE
from tests.helpers import run_cli, tiny_config


def fit(folder, *extra, env=None):
    config = tiny_config(folder, **{"trainer.max_epochs": 3})
    return run_cli("fit", "--config", str(config), "--run", "r", *extra, cwd=folder, env=env)


def state(folder):
    return torch.load(folder / "logs" / "tiny" / "r" / "checkpoints" / "last.ckpt", weights_only=True)


def folders(tmp_path):
    """Two empty run roots: one for the uninterrupted run, one for the cut one."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir()
    cut.mkdir()
    return whole, cut


def signal_at(tmp_path, epoch, batch):
    """Command-line options that send SIGUSR1 once, at an epoch's batch."""
    return [
        "--trainer.callbacks+=tests.helpers.SignalAt",
        f"--trainer.callbacks.epoch={epoch}",
        f"--trainer.callbacks.batch={batch}",
        f"--trainer.callbacks.marker={tmp_path / 'sent'}",
    ]


def fake_scontrol(folder):
    """A stand-in for SLURM's scontrol that records its arguments."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    script = bin_dir / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$@" >> {folder / "scontrol.log"}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_warning_signal_mid_epoch_then_rerun_ends_with_the_uninterrupted_weights(tmp_path):
    whole, cut = folders(tmp_path)
    assert fit(whole).returncode == 0
    signal = signal_at(tmp_path, 1, 3)
    env = {"PATH": f"{fake_scontrol(cut)}{os.pathsep}{os.environ['PATH']}", "SLURM_ARRAY_JOB_ID": "77"}
    env["SLURM_ARRAY_TASK_ID"] = "3"
    first = fit(cut, *signal, env=env)
    assert first.returncode == REQUEUED_EXIT_CODE, first.stderr[-3000:]
    assert "stopped on SIGUSR1 at epoch 1, step 10" in first.stderr and "Traceback" not in first.stderr
    assert (cut / "scontrol.log").read_text().split() == ["requeue", "77_3"]  # the array task, as SLURM names it
    run = cut / "logs" / "tiny" / "r"
    assert not (run / "finished.json").exists()
    midway = state(cut)
    assert midway["global_step"] == 10 and midway["SyntheticDataModule"]["pass"]["consumed"] == 4
    second = fit(cut, *signal, env=env)  # what the requeued job runs: the same command
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stderr and (run / "finished.json").is_file()
    a, b = state(whole), state(cut)
    assert a["global_step"] == b["global_step"] == 18
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    finished = yaml.safe_load((run / "finished.json").read_text())
    assert finished["epochs"] == 3


def test_ddp_warning_signal_mid_epoch_then_rerun_ends_with_the_uninterrupted_weights(tmp_path):
    """Two gloo processes: each takes back its own data position and random-number states."""
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2"]
    whole, cut = folders(tmp_path)
    assert fit(whole, *ddp).returncode == 0
    signal = signal_at(tmp_path, 1, 1)
    first = fit(cut, *ddp, *signal)
    assert first.returncode == REQUEUED_EXIT_CODE, first.stderr[-3000:]
    midway = state(cut)
    assert midway["global_step"] == 5  # 96 images / 2 processes / batch 16: 3 steps an epoch
    assert len(midway["callbacks"]["EpochSeed"]["rng_by_rank"]) == 2
    second = fit(cut, *ddp, *signal)
    assert second.returncode == 0, second.stderr[-3000:]
    a, b = state(whole), state(cut)
    assert a["global_step"] == b["global_step"] == 9
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def test_warning_signal_at_an_epochs_last_step_lets_it_validate_then_stops(tmp_path):
    """A checkpoint written at the last step would resume into an epoch with no batches left, skipping its
    validation: the epoch ends as usual, and the run stops when the next one starts."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    whole, cut = folders(tmp_path)
    assert fit(whole).returncode == 0
    signal = signal_at(tmp_path, 1, 5)  # 96 images / batch 16: the epoch's last step
    first = fit(cut, *signal)
    assert first.returncode == REQUEUED_EXIT_CODE, first.stderr[-3000:]
    assert "stopped on SIGUSR1 at epoch 2, step 12" in first.stderr
    assert state(cut)["global_step"] == 12
    assert fit(cut, *signal).returncode == 0
    steps = []
    for folder in (whole, cut):
        events = EventAccumulator(str(folder / "logs" / "tiny" / "r"))
        events.Reload()
        steps.append([(e.step, e.value) for e in events.Scalars("val/acc")])
    assert steps[0] == steps[1] and len(steps[0]) == 3  # every epoch validated once, with the same results
    a, b = state(whole), state(cut)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def test_a_warning_signal_before_training_starts_stops_at_the_first_step_and_resumes(tmp_path):
    """SLURM has sent the warning within seconds of a job's start, before any handler of Lightning's or ours:
    inside a SLURM job the package keeps it from import on, and the run acts on it at the first step boundary."""
    whole, cut = folders(tmp_path)
    assert fit(whole).returncode == 0
    early = ["--trainer.callbacks+=tests.helpers.SignalAtSetup", f"--trainer.callbacks.marker={tmp_path / 'sent'}"]
    env = {"PATH": f"{fake_scontrol(cut)}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "77"}
    first = fit(cut, *early, env=env)
    assert first.returncode == REQUEUED_EXIT_CODE, first.stderr[-3000:]
    assert "SIGUSR1 arrived before training started" in first.stderr
    assert "stopped on SIGUSR1 at epoch 0, step 1" in first.stderr
    assert (cut / "scontrol.log").read_text().split() == ["requeue", "77"]
    assert fit(cut, *early, env=env).returncode == 0  # the marker exists: no second signal
    a, b = state(whole), state(cut)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def _import_then_signal(env):
    code = (
        "import os, signal, mwa_lightning.early_signal as e; os.kill(os.getpid(), signal.SIGUSR1); "
        "print(e.take(), e.take())"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_the_package_keeps_a_warning_signal_only_inside_a_slurm_job():
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    inside = _import_then_signal({**base, "SLURM_JOB_ID": "5"})
    assert inside.returncode == 0 and inside.stdout.split() == ["True", "False"], inside.stderr  # taken once
    outside = _import_then_signal(base)
    assert outside.returncode == -signal.SIGUSR1  # outside SLURM the default stands: the signal terminates
