"""Contrasts against scale (experiments/trend.py): the rows it reads from a contrasts.csv and the figure it draws."""

import csv

import pytest

from mwa_lightning.experiments.trend import main, read_scaled

FIELDS = ["name", "mean", "low", "high", "low90", "high90"]


def _contrasts(path, rows):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*FIELDS, "verdict"])
        writer.writeheader()
        for name, mean in rows:
            writer.writerow(
                {
                    "name": name,
                    "mean": mean,
                    "low": mean - 2,
                    "high": mean + 2,
                    "low90": mean - 1.5,
                    "high90": mean + 1.5,
                    "verdict": "-",
                }
            )
    return path


def test_it_reads_each_contrast_at_each_scale_and_leaves_the_rest(tmp_path):
    path = _contrasts(
        tmp_path / "contrasts.csv",
        [
            ("n2250-mwa-vs-gfn", 1.0),
            ("n9000-mwa-vs-gfn", 0.5),
            ("e45-mwa-vs-gfn", -0.25),
            ("n2250-conv-vs-mwa", 3.0),
            ("data-trend-mwa-vs-gfn", 9.9),  # a trend row: not a point of the figure
        ],
    )
    scaled = read_scaled(path)
    assert set(scaled) == {"mwa-vs-gfn", "conv-vs-mwa"}
    assert scaled["mwa-vs-gfn"][("n", 9000)]["mean"] == 0.5 and scaled["mwa-vs-gfn"][("e", 45)]["low"] == -2.25
    assert set(scaled["conv-vs-mwa"]) == {("n", 2250)}


def test_it_draws_the_figure_and_refuses_a_table_without_scales(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = _contrasts(tmp_path / "contrasts.csv", [("n2250-a-vs-b", 1.0), ("n4500-a-vs-b", 0.8), ("e45-a-vs-b", 0.1)])
    assert main([str(path)]) == 0
    png = tmp_path / "trend.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert main([str(_contrasts(tmp_path / "plain.csv", [("mwa-vs-gfn", 1.0)]))]) == 2
    assert "has no <scale>-<contrast> rows" in capsys.readouterr().err
