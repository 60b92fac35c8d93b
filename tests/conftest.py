"""Shared fixtures: seeded RNG, paths to the real data copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mwa_lightning.models.mixers import mixer_class, mixer_names
from tests.helpers import tiny_fit

# the real data copies: ../shared/data beside the checkout, or wherever MWA_SHARED_DATA points
SHARED_DATA = Path(os.environ.get("MWA_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _cache_home(tmp_path_factory):
    """Caches (Tiny-ImageNet's decoded splits) under a temporary XDG_CACHE_HOME, not the user's ~/.cache; the
    command-line runs of the tests inherit it."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(params=mixer_names())
def mixer(request) -> type[torch.nn.Module]:
    """Every registered token mixer (the registry is the one list of mixers; a new one is tested here too)."""
    return mixer_class(request.param)


@pytest.fixture
def shared_data() -> Path:
    """The real CIFAR/Tiny-ImageNet copies in ../shared/data; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data copies not found at {SHARED_DATA} (../shared/data beside the checkout, or MWA_SHARED_DATA)"
        )
    return SHARED_DATA


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """Three finished tiny runs (two seeds of one experiment, one of another) under ``<tmp>/logs``."""
    workdir = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        tiny_fit(workdir, "mwa", 1)
        tiny_fit(workdir, "mwa", 2)
        tiny_fit(workdir, "mwa_m2", 1, "--model.mixer.levels", "2")
    return workdir / "logs"
