"""Shared fixtures: seeded RNG, paths to the real data copies."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """The real CIFAR/Tiny-ImageNet copies in ../shared/data; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data copies not found at {SHARED_DATA} (../shared/data beside the checkout)")
    return SHARED_DATA
