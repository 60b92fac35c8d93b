"""The wheel a user installs: its licence, its metadata, its dependency bounds and its one console script."""

import contextlib
import email
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version

import pytest
import yaml

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


def test_the_wheel_carries_every_config_under_the_package(wheel):
    packaged = {n.removeprefix("mwa_lightning/") for n in wheel.namelist() if n.startswith("mwa_lightning/configs/")}
    in_clone = {p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    assert in_clone and packaged == in_clone, sorted(packaged ^ in_clone)[:10]


def test_an_installed_wheel_runs_the_readme_commands_outside_a_clone(wheel, tmp_path):
    """The user's commands, from a folder without a clone, against the wheel alone: `--config configs/...` and a
    study file of configs/studies/ are read from the package's copy."""
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), wheel.filename]
    result = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "mwa_lightning", *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )

    printed = run("fit", "--config", "configs/quickstart.yaml", "--print_config")
    assert printed.returncode == 0, printed.stderr[-2000:]
    config = yaml.safe_load(printed.stdout)
    assert config["experiment"] == "quickstart" and config["data"]["init_args"]["num_train"] == 10000
    assert config["model"]["mixer"]["class_path"].endswith("MultiscaleWaveletAttention")
    plan = run("study", "configs/studies/mixer-x-local.yaml", "--data-dir", "data", "--dry-run")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "todo     logs/mixer-x-local/identity/seed0" in plan.stdout, plan.stdout
    missing = run("fit", "--config", "configs/no_such.yaml")
    assert missing.returncode != 0 and "configs/no_such.yaml" in missing.stderr
    assert not (elsewhere / "configs").exists() and not (elsewhere / "logs").exists()
    import_path = subprocess.run(  # the wheel's package answered, not the clone's editable install
        [sys.executable, "-c", "import mwa_lightning.packaged as p; print(p.configs_dir())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert import_path.stdout.strip().startswith(str(site)), import_path.stdout


def test_a_configs_path_is_read_from_the_package_only_where_it_is_not_found(tmp_path, monkeypatch):
    from mwa_lightning.packaged import configs_dir, resolve, resolve_argv

    assert configs_dir().samefile(ROOT / "configs")  # in a clone: the link to the top-level folder
    monkeypatch.chdir(tmp_path)
    packaged = str(configs_dir() / "quickstart.yaml")
    assert resolve("configs/quickstart.yaml") == packaged
    assert resolve_argv(["fit", "--config=configs/quickstart.yaml", "--config", "configs/quickstart.yaml"]) == [
        "fit",
        f"--config={packaged}",
        "--config",
        packaged,
    ]
    assert resolve("configs/no_such.yaml") == "configs/no_such.yaml"  # left for the caller's error to name
    assert resolve("other/quickstart.yaml") == "other/quickstart.yaml"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "quickstart.yaml").write_text("experiment: mine\n")
    assert resolve("configs/quickstart.yaml") == "configs/quickstart.yaml"  # the user's own file comes first
