"""mwa-lightning: Multiscale Wavelet Attention and its baselines in Vision Transformers, on PyTorch Lightning."""

from importlib.metadata import PackageNotFoundError, version

from mwa_lightning import early_signal

early_signal.catch()  # before torch is imported: a warning signal during start-up is kept, not fatal

from mwa_lightning.models import VisionTransformer  # noqa: E402

COMMAND = "mwa-lightning"  # the console script (pyproject.toml); also ``python -m mwa_lightning``

try:
    __version__ = version("mwa-lightning")  # stated once, in pyproject.toml
except PackageNotFoundError:  # imported from a source tree that was not installed
    __version__ = "unknown"

__all__ = ["COMMAND", "VisionTransformer", "__version__"]
