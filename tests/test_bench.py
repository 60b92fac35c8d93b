import csv

import pytest

from mwa_lightning.bench.__main__ import main
from mwa_lightning.flops import model_flops
from mwa_lightning.models import VisionTransformer
from mwa_lightning.models.mixers import mixer_class, mixer_names
from mwa_lightning.paper import MODEL_COST


def read(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_haar_and_flops_sections_write_their_tables(tmp_path, capsys):
    main(["--sections", "haar", "flops", "--repeats", "1", "--out", str(tmp_path)])
    haar = read(tmp_path / "haar.csv")
    assert [r["shape"] for r in haar] == ["(128, 384, 8, 8)", "(32, 384, 16, 16)"]
    for r in haar:
        assert float(r["speedup"]) == pytest.approx(float(r["ptwt_ms"]) / float(r["fast_ms"]), rel=1e-6)
    flops = read(tmp_path / "flops.csv")
    assert len(flops) == len(MODEL_COST) * len(mixer_names()) and {r["mixer"] for r in flops} == set(mixer_names())
    assert all(abs(float(r["GMACs_vs_paper"])) < 0.15 for r in flops)
    # each row's figures are those of the model it names
    row = next(r for r in flops if r["mixer"] == "mwa" and r["backbone"] == "ViT-S/4" and r["image"] == "32")
    model = VisionTransformer(mixer=mixer_class("mwa"), size="S", num_classes=10, image_size=32)
    assert float(row["GFLOPs"]) == pytest.approx(model_flops(model, 32) / 1e9)
    assert float(row["params_M"]) == pytest.approx(model.num_params() / 1e6)
    assert "parameters and FLOPs per image" in capsys.readouterr().out


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
