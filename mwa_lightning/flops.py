"""FLOP counting with PyTorch's ``FlopCounterMode``, made to see the spectral mixers.

Convention (PyTorch's): a multiply-add is 2 FLOPs; matmuls, convolutions and attention are counted, elementwise
work (GELU, norms, adds, softshrink) is not. The MWA paper's table, like fvcore, counts one multiply-add as one
"FLOP": halve our figures (``macs``) to compare.

What PyTorch's counter misses and this module registers:

- FFTs (``aten._fft_r2c``, ``_fft_c2r``, ``_fft_c2c``): the usual radix-2 estimate, 5 N log2 N real FLOPs for a
  complex transform of N points and half that for a real one (r2c/c2r), per transformed slice.
- the CPU kernels of ``F.scaled_dot_product_attention`` (``aten._scaled_dot_product_flash_attention_for_cpu``
  and its backward), with PyTorch's own formulas for the GPU kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_backward_flop, sdpa_flop

aten = torch.ops.aten


def fft_flops(points: int, batch: int, real: bool) -> int:
    """5 N log2 N per complex transform of N points (half for a real one), times the number of slices."""
    if points <= 1:
        return 0
    per = 5 * points * math.log2(points)
    return int(batch * (per / 2 if real else per))


def _points(shape: Any, dims: Any) -> tuple[int, int]:
    n = math.prod(shape[d] for d in dims)
    return n, math.prod(shape) // max(n, 1)


@register_flop_formula(aten._fft_r2c, get_raw=True)
def _fft_r2c_flop(input: Tensor, dim: list[int], normalization: int, onesided: bool, **kwargs: Any) -> int:
    n, batch = _points(input.shape, dim)
    return fft_flops(n, batch, real=True)


@register_flop_formula(aten._fft_c2r, get_raw=True)
def _fft_c2r_flop(input: Tensor, dim: list[int], normalization: int, last_dim_size: int, **kwargs: Any) -> int:
    shape = list(input.shape)
    shape[dim[-1]] = last_dim_size
    n, batch = _points(shape, dim)
    return fft_flops(n, batch, real=True)


@register_flop_formula(aten._fft_c2c, get_raw=True)
def _fft_c2c_flop(input: Tensor, dim: list[int], normalization: int, forward: bool, **kwargs: Any) -> int:
    n, batch = _points(input.shape, dim)
    return fft_flops(n, batch, real=False)


@register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu)
def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    return sdpa_flop(query_shape, key_shape, value_shape)


@register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)
def _sdpa_cpu_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args: Any, **kwargs: Any) -> int:
    return sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape)


def count_flops(fn: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """FLOPs of running ``fn()`` (forward, and backward if ``fn`` calls it), total and by operator."""
    with FlopCounterMode(display=False) as counter:
        fn()
    by_op: dict[str, int] = {}
    for ops in counter.get_flop_counts().values():
        for op, n in ops.items():
            by_op[str(op)] = max(by_op.get(str(op), 0), n)  # module levels repeat the global counts
    return counter.get_total_flops(), by_op


def model_flops(model: nn.Module, image_size: int, in_chans: int = 3, backward: bool = False) -> int:
    """FLOPs of one image through ``model`` (forward, or forward + backward), on the model's device."""
    p = next(model.parameters())
    x = torch.randn(1, in_chans, image_size, image_size, device=p.device, dtype=p.dtype)

    def step() -> None:
        out = model(x)
        if backward:
            out.float().sum().backward()

    was_training = model.training
    model.train(backward)
    try:
        total, _ = count_flops(step)
    finally:
        model.train(was_training)
        if backward:
            model.zero_grad(set_to_none=True)
    return total
