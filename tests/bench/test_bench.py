import csv
import time

import pytest
import torch

from mwa_lightning.bench import bench_flops
from mwa_lightning.bench.__main__ import main
from mwa_lightning.bench.references import MODEL_COST
from mwa_lightning.bench.timing import race
from mwa_lightning.models import VisionTransformer
from mwa_lightning.models.mixers import mixer_class, mixer_names
from mwa_lightning.training.flops import model_flops


def read(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_haar_section_writes_its_table(tmp_path, capsys):
    main(["--sections", "haar", "--repeats", "1", "--out", str(tmp_path)])
    haar = read(tmp_path / "haar.csv")
    assert [r["shape"] for r in haar] == ["(128, 384, 8, 8)", "(32, 384, 16, 16)"]
    assert all(float(r["fast_ms"]) > 0 and float(r["ptwt_ms"]) > 0 for r in haar)
    assert "fast path vs ptwt" in capsys.readouterr().out


def test_race_times_each_candidate_by_its_median():
    # sleeps last at least what they ask for: a lower bound that holds on any machine, however busy
    steps = {"slow": lambda: time.sleep(0.02), "fast": lambda: time.sleep(0.002)}
    medians = race(steps, repeats=5, device=torch.device("cpu"), warmup=0)
    assert medians["slow"] >= 0.02 and medians["fast"] >= 0.002
    assert medians["slow"] > medians["fast"]


def test_flops_rows_are_the_named_models_beside_the_references():
    rows = bench_flops(models=[(32, "S", 4), (224, "S", 16)])
    assert [(r["image"], r["mixer"]) for r in rows] == [(i, m) for i in (32, 224) for m in mixer_names()]
    compared = [r for r in rows if r["reference"] != "-"]  # the MWA paper's four at 32 px; DeiT-S and GFNet-XS
    assert [(r["image"], r["reference"]) for r in compared][-2:] == [(224, "DeiT-S"), (224, "GFNet-XS")]
    assert len(compared) == 4 + 2 and all(abs(r["GMACs_vs_paper"]) < 0.15 for r in compared)
    assert {r["grid"] for r in rows if r["image"] == 224} == {"14x14"}
    # each row's figures are those of the model it names
    row = next(r for r in rows if r["mixer"] == "mwa" and r["image"] == 32)
    model = VisionTransformer(mixer=mixer_class("mwa"), size="S", num_classes=10, image_size=32)
    assert row["GFLOPs"] == pytest.approx(model_flops(model, 32) / 1e9)
    assert row["params_M"] == pytest.approx(model.num_params() / 1e6)


@pytest.mark.slow
def test_the_full_flops_table(tmp_path):
    main(["--sections", "flops", "--out", str(tmp_path)])
    flops = read(tmp_path / "flops.csv")
    assert len(flops) == (len(MODEL_COST) + 3) * len(mixer_names())
    compared = [r for r in flops if r["reference"] != "-"]
    assert len(compared) == len(MODEL_COST) * 4 + 3  # the MWA paper's table; DeiT-S, DeiT-B, GFNet-XS at 224 px
    assert all(abs(float(r["GMACs_vs_paper"])) < 0.15 for r in compared)


@pytest.mark.slow
def test_every_section_runs(tmp_path, shared_data):
    main(
        [
            "--sections",
            "mixers",
            "models",
            "scaling",
            "loader",
            "--repeats",
            "1",
            "--sizes",
            "tiny",
            "--batch",
            "8",
            "--tokens",
            "256",
            "--cifar10-dir",
            str(shared_data / "cifar10"),
            "--out",
            str(tmp_path),
        ]
    )
    models = read(tmp_path / "models.csv")
    assert [r["mixer"] for r in models] == mixer_names() and all(float(r["peak_MiB"]) > 0 for r in models)
    scaling = read(tmp_path / "scaling.csv")
    assert [r["grid"] for r in scaling][:: len(mixer_names())] == ["8x8", "16x16", "32x32", "64x64"]
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
    assert len(read(tmp_path / "loader.csv")) == 3 and len(read(tmp_path / "mixers.csv")) == 2 * len(mixer_names())


def test_decode_section_times_every_image_folder_path(tmp_path):
    from mwa_lightning.bench.decode import bench_decode
    from tests.dataset_files import write_image_folder

    tree = write_image_folder(tmp_path / "tree", train=2, val=1)
    rows = bench_decode(tree, size=32, images=5, rounds=1)
    paths = [r["path"] for r in rows]
    assert len(paths) == 5 and paths[1].startswith("draft decode") and paths[-1].startswith("LitData stream")
    assert all(r["images"] == 5 for r in rows)  # the LitData pass read back all five from its chunks
