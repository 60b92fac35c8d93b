"""mwa-lightning: Multiscale Wavelet Attention and its baselines in Vision Transformers, on PyTorch Lightning."""

from importlib.metadata import PackageNotFoundError, version

from mwa_lightning import early_signal
from mwa_lightning.lazy import lazy_exports

early_signal.catch()  # before torch is imported: a warning signal during start-up is kept, not fatal

COMMAND = "mwa-lightning"  # the console script (pyproject.toml); also ``python -m mwa_lightning``
SUBCOMMANDS = (
    "fit",
    "validate",
    "test",
    "predict",
)  # LightningCLI's (mwa_lightning.cli); the tools: mwa_lightning.tools

try:
    __version__ = version("mwa-lightning")  # stated once, in pyproject.toml
except PackageNotFoundError:  # imported from a source tree that was not installed
    __version__ = "unknown"

_LAZY = {"VisionTransformer": "mwa_lightning.models"}  # imports torch: on first use, not on import (PEP 562)

__all__ = ["COMMAND", "SUBCOMMANDS", "VisionTransformer", "__version__"]

# ``mwa_lightning.VisionTransformer`` imports torch on first use, so that the tools' ``--help`` and the study
# runner's parent process never pay for it
__getattr__, _lazy_dir = lazy_exports(__name__, _LAZY, _LAZY)


def __dir__() -> list[str]:
    return sorted({*globals(), *_lazy_dir()})
