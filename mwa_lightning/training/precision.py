"""Precision that follows the hardware: bf16 only where the device computes it natively.

The paper's recipe trains in ``bf16-mixed`` (``configs/shared/trainer.yaml``). A GPU from Ampere on, and a CPU with
AVX512-BF16 or AMX, compute bf16 in hardware; elsewhere it is emulated, and a run is several times slower than in
float32 (ViT-S/4's forward at batch 16 on an AVX2 CPU: 3.57 s in fp32, 31.7 s under bf16 autocast; issue 32). So
the command line changes a bf16 precision, before anything is built, where the device lacks it: to ``32-true`` on
such a CPU, to ``16-mixed`` (fp16 with loss scaling) on such a GPU, and says so in one line. The run folder's
``config.yaml`` records the precision the run trained in. ``--keep_precision true`` keeps the configured one.
"""

from __future__ import annotations

import torch

from mwa_lightning.lightning_compat import cpu_has_native_bf16

BF16 = ("bf16-mixed", "bf16-true", "bf16")


def resolved_device(accelerator: object) -> str:
    """``cpu``, ``cuda`` or ``other`` for a trainer's ``accelerator`` setting (``auto`` as Lightning picks it)."""
    name = str(accelerator).lower() if isinstance(accelerator, str) else type(accelerator).__name__.lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "other" if torch.backends.mps.is_available() else "cpu"
    if name in ("gpu", "cuda") or name.startswith("cuda"):
        return "cuda"
    return "cpu" if name.startswith("cpu") else "other"


def native_precision(precision: object, accelerator: object) -> tuple[object, str | None]:
    """(the precision to train in, a one-line note when it differs from ``precision``)."""
    if str(precision) not in BF16:
        return precision, None
    device = resolved_device(accelerator)
    if device == "cpu" and not cpu_has_native_bf16():
        return "32-true", (
            f"precision {precision}: this CPU has no native bf16 (AVX512-BF16 or AMX), where it is emulated and "
            "several times slower than float32; training in 32-true (--keep_precision true keeps bf16)"
        )
    if device == "cuda" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported(including_emulation=False):
        fallback = "16-mixed" if str(precision) == "bf16-mixed" else "32-true"
        return fallback, (
            f"precision {precision}: this GPU ({torch.cuda.get_device_name()}) has no native bf16; training in "
            f"{fallback} (--keep_precision true keeps bf16)"
        )
    return precision, None
