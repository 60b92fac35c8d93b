import csv

import pytest

from mwa_lightning import bench


def read(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_haar_and_flops_sections_write_their_tables(tmp_path, capsys):
    bench.main(["--sections", "haar", "flops", "--repeats", "1", "--out", str(tmp_path)])
    haar = read(tmp_path / "haar.csv")
    assert [r["shape"] for r in haar] == ["(128, 384, 8, 8)", "(32, 384, 16, 16)"]
    assert all(float(r["fast_ms"]) > 0 and float(r["ptwt_ms"]) > 0 for r in haar)
    flops = read(tmp_path / "flops.csv")
    assert len(flops) == 5 * 4 and {r["mixer"] for r in flops} == set(bench.MIXERS)
    assert all(abs(float(r["GMACs_vs_paper"])) < 0.15 for r in flops)
    assert "parameters and FLOPs per image" in capsys.readouterr().out


@pytest.mark.slow
def test_every_section_runs(tmp_path, shared_data):
    bench.main(
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
    assert [r["mixer"] for r in models] == list(bench.MIXERS) and all(float(r["peak_MiB"]) > 0 for r in models)
    scaling = read(tmp_path / "scaling.csv")
    assert [r["grid"] for r in scaling][::4] == ["8x8", "16x16", "32x32", "64x64"]
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
    assert len(read(tmp_path / "loader.csv")) == 3 and len(read(tmp_path / "mixers.csv")) == 8
