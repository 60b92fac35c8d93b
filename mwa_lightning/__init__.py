"""mwa-lightning: Multiscale Wavelet Attention and its baselines in Vision Transformers, on PyTorch Lightning."""

from mwa_lightning.models import VisionTransformer

__all__ = ["VisionTransformer"]
__version__ = "0.1.0"
