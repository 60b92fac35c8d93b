"""``make help``: the targets as a user reads them, with the make variables they name filled in."""

import shutil
import subprocess

import pytest

from tests.helpers import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_the_targets_with_their_variables_filled_in():
    result = subprocess.run(
        ["make", "--no-print-directory", "help", "STUDY=scale-trend"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "$(" not in result.stdout, result.stdout
    study = next(line for line in result.stdout.splitlines() if line.split()[:2] == ["make", "study"])
    assert "configs/studies/scale-trend.yaml" in study and "results/scale-trend/" in study
    for target in ("install", "test", "quickstart", "study", "gpu-check"):
        assert f"make {target} " in result.stdout, target
