"""FLOP counting with PyTorch's ``FlopCounterMode``, made to see the spectral mixers.

Convention (PyTorch's): a multiply-add is 2 FLOPs; matmuls, convolutions and attention are counted, elementwise
work (GELU, norms, adds, softshrink) is not. The MWA paper's table, like fvcore, counts one multiply-add as one
"FLOP": halve our figures to compare (the bench prints both).

What PyTorch's counter misses or miscounts, and this module supplies (as ``FlopCounterMode``'s custom mapping,
leaving PyTorch's global registry alone):

- FFTs (``aten._fft_r2c``, ``_fft_c2r``, ``_fft_c2c``): the usual radix-2 estimate, 5 N log2 N real FLOPs for a
  complex transform of N points and half that for a real one (r2c/c2r), per transformed slice.
- the CPU kernels of ``F.scaled_dot_product_attention`` (``aten._scaled_dot_product_flash_attention_for_cpu``
  and its backward), with PyTorch's own formulas for the GPU kernels.
- ``aten.convolution_backward`` of grouped convolutions: PyTorch (2.14) counts the weight gradient as if the
  convolution were dense, ``groups`` times too much (16x for MWA's convs in ViT-S). Both gradients of a
  convolution cost what its forward does; that is what is counted here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, sdpa_backward_flop, sdpa_flop

from mwa_lightning.lightning_compat import flop_formula_on_raw_args, private_aten_op

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


@flop_formula_on_raw_args
def _fft_r2c_flop(input: Tensor, dim: list[int], normalization: int, onesided: bool, **kwargs: Any) -> int:
    n, batch = _points(input.shape, dim)
    return fft_flops(n, batch, real=True)


@flop_formula_on_raw_args
def _fft_c2r_flop(input: Tensor, dim: list[int], normalization: int, last_dim_size: int, **kwargs: Any) -> int:
    shape = list(input.shape)
    shape[dim[-1]] = last_dim_size
    n, batch = _points(shape, dim)
    return fft_flops(n, batch, real=True)


@flop_formula_on_raw_args
def _fft_c2c_flop(input: Tensor, dim: list[int], normalization: int, forward: bool, **kwargs: Any) -> int:
    n, batch = _points(input.shape, dim)
    return fft_flops(n, batch, real=False)


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    return sdpa_flop(query_shape, key_shape, value_shape)


def _sdpa_cpu_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args: Any, **kwargs: Any) -> int:
    return sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape)


def _conv_backward_flop(
    grad_out_shape,
    x_shape,
    w_shape,
    _bias,
    _stride,
    _padding,
    _dilation,
    transposed,
    _output_padding,
    _groups,
    output_mask,
    *args: Any,
    **kwargs: Any,
) -> int:
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)  # w_shape holds C_in / groups
    return forward * (int(output_mask[0]) + int(output_mask[1]))


CUSTOM_FLOPS = {
    private_aten_op("_fft_r2c"): _fft_r2c_flop,
    private_aten_op("_fft_c2r"): _fft_c2r_flop,
    private_aten_op("_fft_c2c"): _fft_c2c_flop,
    private_aten_op("_scaled_dot_product_flash_attention_for_cpu"): _sdpa_cpu_flop,
    private_aten_op("_scaled_dot_product_flash_attention_for_cpu_backward"): _sdpa_cpu_backward_flop,
    aten.convolution_backward: _conv_backward_flop,
}


def count_flops(fn: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """FLOPs of running ``fn()`` (forward, and backward if ``fn`` calls it), total and by operator."""
    with FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS) as counter:
        fn()
    by_op: dict[str, int] = {}
    for ops in counter.get_flop_counts().values():
        for op, n in ops.items():
            by_op[str(op)] = max(by_op.get(str(op), 0), n)  # module levels repeat the global counts
    return counter.get_total_flops(), by_op


def model_flops(model: nn.Module, image_size: int | None = None, in_chans: int = 3, backward: bool = False) -> int:
    """FLOPs of one input through ``model`` (forward, or forward + backward), on the model's device: an image of
    ``image_size`` pixels, or (None) the model's own ``input_shape`` (a sequence backbone's ``(in_chans, L)``)."""
    p = next(model.parameters())
    shape = (in_chans, image_size, image_size) if image_size is not None else tuple(model.input_shape)
    x = torch.randn(1, *shape, device=p.device, dtype=p.dtype)

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
