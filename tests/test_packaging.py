"""The wheel a user installs: its licence, its metadata, its dependency bounds and its one console script."""

import contextlib
import email
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version

import pytest

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out, source = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):  # a copy: setuptools writes build/ beside the source
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "mwa_lightning", source / "mwa_lightning", ignore=shutil.ignore_patterns("__pycache__"))
    # the environment's setuptools builds it offline when it is what pyproject.toml asks for (>= 77); else pip
    # fetches one into an isolated build environment
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."]
    with contextlib.suppress(PackageNotFoundError):
        if int(version("setuptools").split(".")[0]) >= 77:
            command.insert(4, "--no-build-isolation")
    result = subprocess.run(command, cwd=source, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (path,) = out.glob("mwa_lightning-*.whl")
    return zipfile.ZipFile(path)


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_the_wheel_carries_the_licence_and_says_what_it_is(wheel):
    names = wheel.namelist()
    assert any(n.endswith("licenses/LICENSE") for n in names), [n for n in names if "dist-info" in n]
    meta = _metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta["Author"] and "Multiscale Wavelet Attention" in meta["Summary"]
    assert "mwa_lightning/tools.py" in names and "mwa_lightning/cli.py" in names


def test_the_wheel_bounds_jsonargparse_and_leaves_timm_optional(wheel):
    requires = _metadata(wheel).get_all("Requires-Dist")
    jsonargparse = next(r for r in requires if r.startswith("jsonargparse"))
    assert "<" in jsonargparse, jsonargparse  # its releases often break LightningCLI: an upper bound
    timm = [r for r in requires if r.startswith("timm")]
    assert timm and all("extra ==" in r for r in timm), timm  # only through an extra (reference, dev)
    assert any('extra == "reference"' in r for r in timm)


def test_the_console_script_is_the_light_dispatch(wheel):
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    entry_points = wheel.read(name).decode()
    assert "mwa-lightning = mwa_lightning.tools:entry_point" in entry_points
