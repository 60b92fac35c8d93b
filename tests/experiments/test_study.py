"""The study runner, through its real command line: fixed folders, skip, resume after SIGKILL, report."""

from __future__ import annotations

import csv
import statistics
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from mwa_lightning.experiments.record import RunRecord
from mwa_lightning.experiments.study import Study, StudyError, main
from tests.helpers import ROOT, run_cli, tiny_config

SEEDS = [0, 1]


def run_study(cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``mwa-lightning study ARGS`` in a subprocess, one thread."""
    return run_cli("study", *args, cwd=cwd, timeout=timeout, env={"OMP_NUM_THREADS": "1"})


def write_study(folder: Path, name: str, variants: dict, seeds=SEEDS, **extra) -> Path:
    base = tiny_config(folder, **{"trainer.max_epochs": 2})
    spec = {"base": base.name, "seeds": seeds, "variants": variants, **extra}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A finished 2-variant x 2-seed study on the tiny synthetic task."""
    folder = tmp_path_factory.mktemp("study")
    variants = {"wavelet": {}, "skips-only": {"model.mixer.init_args.transform": "none"}}
    study = write_study(folder, "smoke", variants, args={"throughput.window_size": 2})
    result = run_study(folder, study.name)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return folder, result


def test_every_run_is_a_printed_command_in_a_fixed_folder(smoke):
    folder, result = smoke
    for variant in ("wavelet", "skips-only"):
        for seed in SEEDS:
            run = folder / "logs" / "smoke" / variant / f"seed{seed}"
            assert (run / "finished.json").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
            saved = yaml.safe_load((run / "config.yaml").read_text())
            assert saved["seed_everything"] == seed and saved["run"] == f"seed{seed}"
            command = (
                "mwa-lightning fit --config tiny.yaml --throughput.window_size 2 "
                + ("--model.mixer.init_args.transform none " if variant == "skips-only" else "")
                + f"--experiment smoke/{variant} --run seed{seed} --seed_everything {seed}"
            )
            assert command in result.stdout
    assert not list((folder / "logs" / "smoke").rglob("version_*")), "no version_N folders in a study"
    # one seed drives everything: the two seeds of a variant end with different weights
    a, b = (weights(folder / "logs" / "smoke" / "wavelet" / f"seed{s}") for s in SEEDS)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_report_has_seeds_mean_and_std_of_the_last_epoch(smoke):
    folder, _ = smoke
    table = (folder / "results" / "smoke" / "report.md").read_text()
    assert "top-1 % (last epoch)" in table and "max top-1 % over epochs" in table
    assert table.endswith("The study is complete: all 4 runs have finished.\n")
    rows = {r["experiment"]: r for r in csv.DictReader((folder / "results" / "smoke" / "report.csv").open())}
    assert set(rows) == {"wavelet", "skips-only"}
    for variant, row in rows.items():
        assert row["runs"] == "2" and row["seeds"] == "0,1" and row["unfinished"] == "0"
        finals = [
            yaml.safe_load((folder / "logs" / "smoke" / variant / f"seed{s}" / "finished.json").read_text())
            for s in SEEDS
        ]
        last = [f["metrics"]["val/acc"] for f in finals]
        assert float(row["last_top1_mean"]) == pytest.approx(statistics.fmean(last))
        assert float(row["last_top1_std"]) == pytest.approx(statistics.stdev(last))
        assert float(row["params_M"]) > 0 and float(row["GFLOPs"]) > 0 and float(row["images_per_s_mean"]) > 0
    # the skips-only control lacks exactly the wavelet-domain conv: one block of 32 channels, 8 groups, 3x3
    fewer = (float(rows["wavelet"]["params_M"]) - float(rows["skips-only"]["params_M"])) * 1e6
    assert round(fewer) == 32 * 4 * 9 + 32
    assert (folder / "results" / "smoke" / "curves.png").stat().st_size > 10_000


def test_a_second_invocation_skips_finished_runs(smoke):
    folder, _ = smoke
    events = sorted(str(p) for p in (folder / "logs").rglob("events.out.tfevents.*"))
    again = run_study(folder, "smoke.yaml")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done, skipped") == 4
    assert sorted(str(p) for p in (folder / "logs").rglob("events.out.tfevents.*")) == events
    dry = run_study(folder, "smoke.yaml", "--dry-run")
    assert "4 runs: 4 done, 0 partial, 0 todo, 0 committed, 0 stale" in dry.stdout


def test_finished_runs_trained_with_another_config_are_refused_before_any_run(smoke, tmp_path, monkeypatch, capsys):
    """A study file edited after its runs finished (here skips-only's learning rate) would otherwise skip those runs
    and report them under the new settings; the runner and the SLURM launcher name them and start nothing."""
    from mwa_lightning.experiments import slurm

    folder, _ = smoke
    monkeypatch.chdir(folder)
    edited = tmp_path / "smoke.yaml"  # the same study name, so the same run folders
    spec = yaml.safe_load((folder / "smoke.yaml").read_text())
    spec["variants"]["skips-only"]["model.lr"] = 0.0123
    edited.write_text(yaml.safe_dump(spec))
    finished = sorted((folder / "logs" / "smoke").rglob("finished.json"))
    stamps = [p.stat().st_mtime_ns for p in finished]

    assert main([str(edited), "--dry-run"]) == 0
    out = capsys.readouterr().out
    for seed in SEEDS:
        assert f"stale    logs/smoke/skips-only/seed{seed} (differs in: model.lr)" in out
        assert f"done     logs/smoke/wavelet/seed{seed}" in out
    assert "4 runs: 2 done, 0 partial, 0 todo, 0 committed, 2 stale" in out

    assert main([str(edited)]) == 2
    err = capsys.readouterr().err
    assert "2 run(s) were trained with another config" in err and "logs/smoke/skips-only/seed0" in err
    assert "model.lr" in err and "Traceback" not in err
    assert slurm.main([str(edited), "--gpus", "0", "--dry-run", "--out", str(tmp_path / "slurm")]) == 2
    assert "logs/smoke/skips-only/seed1" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in finished] == stamps  # nothing ran again
    assert not (tmp_path / "slurm").exists()


def test_dry_run_gives_the_time_left_from_the_finished_runs(smoke, tmp_path, monkeypatch, capsys):
    """A variant added to a finished study: its 2 runs would take the median of all finished runs each; the
    finished variants' own medians do not enter."""
    from mwa_lightning.experiments.report import run_seconds

    folder, _ = smoke
    monkeypatch.chdir(folder)
    spec = yaml.safe_load((folder / "smoke.yaml").read_text())
    spec["variants"]["added"] = {"model.lr": 0.002}
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(spec))
    assert main([str(tmp_path / "smoke.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    times = [run_seconds(folder / "logs" / "smoke" / v / f"seed{s}") for v in ("wavelet", "skips-only") for s in SEEDS]
    assert all(t > 0 for t in times)
    assert f"left: 2 runs, about {2 * statistics.median(times) / 60:.1f} minutes one at a time" in out
    assert "left:" not in run_study(folder, "smoke.yaml", "--dry-run").stdout  # nothing left
    assert main([str(tmp_path / "smoke.yaml"), "--dry-run", "--jobs", "2"]) == 0
    both_at_once = statistics.median(times) / 60  # the two runs side by side take as long as one
    assert f"one at a time, {both_at_once:.1f} minutes at --jobs 2" in capsys.readouterr().out


def test_the_wall_time_at_several_jobs_starts_each_run_on_the_first_free_slot():
    from mwa_lightning.experiments.study import wall_time

    assert wall_time([3, 1, 1, 1], 2) == 3  # the three short runs follow one another beside the long one
    assert wall_time([1, 1, 3], 2) == 4  # the long run starts last, when a slot frees at 1
    assert wall_time([1, 2, 3], 1) == 6 and wall_time([1, 2, 3], 5) == 3 and wall_time([], 2) == 0


def test_sigkill_mid_run_then_rerun_resumes_to_the_uninterrupted_result(smoke, tmp_path):
    folder, _ = smoke
    marker = tmp_path / "killed.marker"
    kill = {
        "trainer.callbacks+": "tests.helpers.KillAt",
        "trainer.callbacks.epoch": 1,
        "trainer.callbacks.batch": 2,
        "trainer.callbacks.marker": str(marker),
    }
    study = write_study(folder, "killed", {"wavelet": kill}, seeds=[0], args={"throughput.window_size": 2})
    first = run_study(folder, study.name)
    assert first.returncode == 1 and marker.exists() and "FAILED" in first.stdout
    run = folder / "logs" / "killed" / "wavelet" / "seed0"
    assert "partial" in run_study(folder, study.name, "--dry-run").stdout
    second = run_study(folder, study.name)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from its last.ckpt" in second.stdout
    resumed, whole = weights(run), weights(folder / "logs" / "smoke" / "wavelet" / "seed0")
    for key, value in whole.items():
        assert torch.equal(value, resumed[key]), key
    rows = list(csv.DictReader((folder / "results" / "killed" / "report.csv").open()))
    assert len(rows) == 1 and rows[0]["runs"] == "1"  # one run, however many times it was started


def test_print_commands_gives_one_line_per_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = write_study(tmp_path, "lines", {"a": {}, "b": {"model.lr": 0.01}}, seeds=3)
    assert main([str(study), "--print-commands"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("mwa-lightning fit --config tiny.yaml") for line in lines)
    assert sum("--model.lr 0.01" in line for line in lines) == 3
    assert lines[0].endswith("--experiment lines/a --run seed0 --seed_everything 0")


def test_only_keeps_to_the_variants_a_pattern_matches(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = write_study(tmp_path, "some", {"m1": {}, "m2": {"model.lr": 0.01}, "dilated": {"model.lr": 0.02}}, seeds=2)
    assert main([str(study), "--print-commands", "--only", "m*"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("--experiment ")[1].split(" --run")[0] for line in lines] == ["some/m1", "some/m2"] * 2
    assert main([str(study), "--dry-run", "--only", "dilated", "--only", "m2"]) == 0
    out = capsys.readouterr().out
    assert "4 runs: 0 done, 0 partial, 4 todo" in out and "some/m1" not in out
    assert main([str(study), "--dry-run", "--only", "m3*"]) == 2
    err = capsys.readouterr().err
    assert "--only 'm3*' matches no variant" in err and "'dilated'" in err and "Traceback" not in err


def test_tasks_cross_the_variants(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(
        tmp_path,
        "crossed",
        {"a": {}, "b": {"model.lr": 0.01}},
        tasks={"t1": {"data.init_args.num_train": 64}, "t2": None},
    )
    study = Study.load(path)
    assert list(study.variants) == ["t1/a", "t1/b", "t2/a", "t2/b"]
    assert study.variants["t1/b"] == ["--data.init_args.num_train", "64", "--model.lr", "0.01"]
    assert study.runs()[0].folder == Path("logs/crossed/t1/a/seed0")


def test_variants_from_takes_another_studys_variants_and_contrasts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    variants = {"a": {}, "b": {"model.lr": 0.01}}
    first = write_study(tmp_path, "first", variants, protocol="test-once", contrasts={"a-vs-b": ["a", "b"]})
    second = tmp_path / "second.yaml"
    second.write_text(
        yaml.safe_dump({"base": "tiny.yaml", "seeds": [3], "protocol": "test-once", "variants_from": first.name})
    )
    study = Study.load(second)
    assert study.variants == Study.load(first).variants and study.contrasts == {"a-vs-b": ("a", "b")}
    assert study.name == "second" and study.seeds == [3]
    second.write_text(yaml.safe_dump({"base": "tiny.yaml", "seeds": [3], "variants_from": "nope.yaml"}))
    with pytest.raises(StudyError, match=r"variants_from: no study file nope\.yaml"):
        Study.load(second)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"epochs": 3}, "unknown key(s) epochs"),
        ({"base": "missing.yaml"}, "base config missing.yaml does not exist"),
        ({"variants": {"bad": {"model.mixer.init_args.levelz": 2}}}, "variant 'bad' is rejected by the command line"),
        ({"variants": {"bad": {"seed_everything": 2}}}, "'seed_everything' is set by the study runner"),
        ({"seeds": [1, 1]}, "repeats a seed"),
    ],
)
def test_a_bad_study_fails_before_any_run_naming_the_entry(change, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, "bad", {"ok": {}})
    spec = yaml.safe_load(path.read_text()) | change
    path.write_text(yaml.safe_dump(spec))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    if "levelz" in message or "rejected" in message:
        assert "levelz" in err
    assert not (tmp_path / "logs").exists()


def test_one_seed_drives_the_data_order(monkeypatch):
    from mwa_lightning.data import SyntheticDataModule

    def first_batch(seed: int) -> torch.Tensor:
        monkeypatch.setenv("PL_GLOBAL_SEED", str(seed))
        dm = SyntheticDataModule(num_train=64, num_test=16, batch_size=8)
        dm.setup("fit")
        return next(iter(dm.train_dataloader()))[1]

    assert torch.equal(first_batch(3), first_batch(3))
    assert not torch.equal(first_batch(3), first_batch(4))
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    dm = SyntheticDataModule(num_train=64, num_test=16, batch_size=8, seed=4)  # an explicit seed wins
    dm.setup("fit")
    assert torch.equal(next(iter(dm.train_dataloader()))[1], first_batch(4))


def _resolved(args: list[str]) -> dict:
    import contextlib
    import io

    from mwa_lightning.cli import main as cli_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli_main(["fit", *args, "--print_config"])
    return yaml.safe_load(out.getvalue())


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "studies").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_committed_study_parses_and_its_mixers_are_exactly_their_shared_files(path, monkeypatch):
    import inspect
    import pkgutil

    from mwa_lightning.experiments.study import check_variants

    monkeypatch.chdir(ROOT)
    study = Study.load(path.relative_to(ROOT))
    validation_only = (yaml.safe_load(path.read_text()).get("args") or {}).get("test_after_fit") is False
    assert study.runs() and (len(study.seeds) >= 3 or validation_only)  # one seed only to select settings
    check_variants(study)
    # a variant that swaps the mixer gets exactly the shared file's options and its own overrides of them, none
    # carried over from the base's mixer
    spec = yaml.safe_load(path.read_text())
    if "variants_from" in spec:
        spec = yaml.safe_load((ROOT / spec["variants_from"]).read_text())
    for name, overrides in spec["variants"].items():
        shared = (overrides or {}).get("model.mixer")
        if not shared:
            continue
        for variant in [v for v in study.variants if v.split("/")[-1] == name]:
            resolved = _resolved(study.run_spec(variant, 0).args)["model"]["mixer"]
            wanted = yaml.safe_load((ROOT / shared).read_text())
            cls = pkgutil.resolve_name(wanted["class_path"])
            defaults = {
                k: p.default
                for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty
            }
            assert pkgutil.resolve_name(resolved["class_path"]) is cls
            own = {k.rsplit(".", 1)[1]: v for k, v in overrides.items() if k.startswith("model.mixer.init_args.")}
            assert resolved.get("init_args", {}) == {**defaults, **(wanted.get("init_args") or {}), **own}, variant


def test_a_committed_run_is_held_to_its_data_files_not_to_their_folder(tmp_path, monkeypatch, capsys):
    """A committed run continued on another machine, where the same CIFAR files lie in another folder, is not
    stale; one byte changed in those files makes it stale, naming the data folder."""
    import shutil

    from mwa_lightning.experiments import archive
    from mwa_lightning.experiments.study import check_variants, stale_runs
    from tests.dataset_files import write_cifar10

    monkeypatch.chdir(ROOT)
    here, there = tmp_path / "here", tmp_path / "there"
    write_cifar10(here)
    shutil.copytree(here, there)
    spec = {"base": "configs/cifar10_fair.yaml", "seeds": [0], "variants": {"mwa": {}}, "results": str(tmp_path)}
    path = tmp_path / "moved.yaml"
    path.write_text(yaml.safe_dump(spec))
    config = check_variants(Study.load(path, data_dir=here))["mwa"]
    fingerprint = archive.data_fingerprint(config)
    names = ["batches.meta", *(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    assert sorted(fingerprint) == [f"cifar-10-batches-py/{n}" for n in names]
    run = RunRecord(None, config, {}, 60.0, {"epochs": 1, "metrics": {}}, fingerprint)
    archive.write_runs(tmp_path / "moved", {("mwa", 0): run})
    assert archive.read_runs(tmp_path / "moved")[("mwa", 0)] == run  # written and read back whole

    study = Study.load(path, data_dir=there)
    assert study.runs()[0].state == "committed" and stale_runs(study) == {}
    with (there / "cifar-10-batches-py" / "test_batch").open("r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 1]))
    archive._fingerprint.cache_clear()  # the files changed under this process
    assert list(stale_runs(Study.load(path, data_dir=there)).values()) == [["data.init_args.data_dir"]]
    # and a folder without the files is no match either
    assert list(stale_runs(Study.load(path, data_dir=tmp_path / "nowhere")).values()) == [["data.init_args.data_dir"]]
    # a hand-damaged runs.jsonl is a one-line error naming the line, before anything runs
    runs = tmp_path / "moved" / archive.RUNS
    runs.write_text(runs.read_text().replace('"epochs":1', '"epochs":'))
    assert main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{runs}, line 1: not JSON (Expecting value" in err and "Traceback" not in err


def test_committed_runs_in_csv_rows_migrate_to_json_lines_as_the_same_records(tmp_path, capsys):
    """A results folder of before JSON Lines (runs.csv: CSV rows with JSON cells, a config longer than csv's
    default field limit) is read as it is, and the migration rewrites it as runs.jsonl, the same records."""
    import csv
    import dataclasses
    import json

    from mwa_lightning.experiments import archive

    config = {"model": {"lr": 0.004, "note": "x" * 200_000}, "data": {"init_args": {"data_dir": "data"}}}
    finished = {"epochs": 15, "metrics": {"val/acc": 0.5, "test/acc": float("nan")}}
    rows = [("mwa", 1, 12.5, finished, config, None), ("gfn", 0, 3.25, finished, config, {"a/b": "0" * 32})]
    folder = tmp_path / "study"
    folder.mkdir()
    with (folder / archive.LEGACY_RUNS).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(archive.RUN_FIELDS)
        for v, seed, sec, fin, cfg, data in rows:
            writer.writerow([v, seed, repr(sec), json.dumps(fin), json.dumps(cfg), json.dumps(data)])
    (folder / archive.SCALARS_FILE).write_text("variant,seed,tag,step,value\nmwa,1,val/acc,10,0.25\n")
    before = archive.read_runs(folder, with_scalars=True)
    assert before[("mwa", 1)].config == config and before[("mwa", 1)].scalars == {"val/acc": [(10, 0.25)]}
    assert before[("gfn", 0)].seconds == 3.25 and before[("gfn", 0)].data == {"a/b": "0" * 32}

    assert archive.main([str(folder), str(tmp_path / "nothing-here")]) == 0
    assert f"{folder}: runs.csv -> runs.jsonl (2 runs)" in capsys.readouterr().out
    assert not (folder / archive.LEGACY_RUNS).exists()
    lines = (folder / archive.RUNS).read_text().splitlines()
    assert [json.loads(line)["variant"] for line in lines] == ["gfn", "mwa"]  # by seed, then variant
    after = archive.read_runs(folder, with_scalars=True)
    assert after.keys() == before.keys()
    for key in before:  # NaN is not equal to itself: compare the JSON
        assert archive._json(dataclasses.asdict(after[key])) == archive._json(dataclasses.asdict(before[key]))
    assert archive.migrate(folder) is None  # nothing left to migrate

    (folder / archive.LEGACY_RUNS).write_text("variant\n")  # a stale copy beside the migrated file
    with pytest.raises(archive.CommittedRunsError, match=r"both runs\.jsonl and runs\.csv"):
        archive.read_runs(folder)
    assert archive.main([str(folder)]) == 0 and (folder / archive.LEGACY_RUNS).exists()  # nothing overwritten


def test_a_tiny_imagenet_study_writes_its_report_and_contrasts_from_its_run_folders(tmp_path):
    """The whole pipeline on Tiny-ImageNet's own layout: two variants trained by the runner, then the report,
    the committed runs (their data fingerprint is None: the reader names no files, so the folder's path is held)
    and the paired contrasts. A ``fingerprint`` of another signature once made this report raise TypeError."""
    from tests.dataset_files import write_tiny_imagenet

    write_tiny_imagenet(tmp_path / "data", train=6, val=4)
    base = tiny_config(tmp_path, **{"trainer.max_epochs": 1})
    config = yaml.safe_load(base.read_text())
    config["data"] = {
        "class_path": "mwa_lightning.data.TinyImageNetDataModule",
        "init_args": {"batch_size": 6, "val_size": 6, "cache_dir": str(tmp_path / "cache"), "decode_threads": 1},
    }
    config["model"]["patch_size"] = 16
    base.write_text(yaml.safe_dump(config))
    spec = {
        "base": base.name,
        "seeds": [0],
        "data_dir": "data",
        "protocol": "test-once",
        "variants": {"mwa": {}, "identity": {"model.mixer": "mwa_lightning.models.IdentityMixer"}},
        "contrasts": {"mwa-vs-identity": ["mwa", "identity"]},
    }
    (tmp_path / "tin.yaml").write_text(yaml.safe_dump(spec))
    result = run_study(tmp_path, "tin.yaml")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = tmp_path / "results" / "tin"
    assert "The study is complete: all 2 runs have finished." in (out / "report.md").read_text()
    with (out / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and set(rows[0]) == {"index", "label", "mwa/seed0", "identity/seed0"}
    contrasts = list(csv.DictReader((out / "contrasts.csv").open()))
    assert [c["name"] for c in contrasts] == ["mwa-vs-identity"] and contrasts[0]["images"] == "12"
    # the report again, from the committed files alone (no run folders): the same contrasts
    import shutil

    shutil.rmtree(tmp_path / "logs")
    again = run_study(tmp_path, "tin.yaml", "--report-only")
    assert again.returncode == 0, again.stderr[-3000:]
    assert list(csv.DictReader((out / "contrasts.csv").open())) == contrasts
