"""mwa-lightning: Multiscale Wavelet Attention and its baselines in Vision Transformers, on PyTorch Lightning."""

from importlib.metadata import PackageNotFoundError, version

from mwa_lightning import early_signal

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

__all__ = ["COMMAND", "SUBCOMMANDS", "VisionTransformer", "__version__"]


def __getattr__(name: str):
    # ``mwa_lightning.VisionTransformer`` imports torch on first use, not on ``import mwa_lightning``: the tools'
    # ``--help`` and the study runner's parent process never pay for torch (PEP 562)
    if name == "VisionTransformer":
        from mwa_lightning.models import VisionTransformer

        return VisionTransformer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
