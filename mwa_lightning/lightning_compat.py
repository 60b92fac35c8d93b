"""Every private Lightning and torch internal the project relies on, and nowhere else.

Exact resume (a run killed or requeued mid-epoch ends with the weights of an uninterrupted run) and the
one-line setup errors need a few things that Lightning and torch do not expose publicly. Each is used only
through this module, with the reason beside it, and :func:`check` verifies that the installed versions still
have them (``tests/training/test_lightning_compat.py`` runs it, naming the internal that changed).
``pyproject.toml`` bounds ``lightning`` and ``torch`` to the versions the test suite has run against.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch
from jsonargparse._common import debug_mode_active
from lightning.fabric.utilities.data import _set_sampler_epoch
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loops.fit_loop import _FitLoop
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "INTERNALS",
    "PRIVATE_ATEN_OPS",
    "SEED_ENV",
    "GuardedCLI",
    "UnrepeatedDistributedSampler",
    "at_last_batch",
    "check",
    "cpu_has_native_bf16",
    "debug_mode_active",
    "epoch_for_sampler",
    "flop_formula_on_raw_args",
    "in_middle_of_epoch",
    "is_compiled",
    "option_names",
    "private_aten_op",
    "restarted_mid_epoch",
    "run_seed",
    "set_sampler_epoch",
    "training_started",
]

SEED_ENV = "PL_GLOBAL_SEED"  # where lightning.seed_everything leaves the run's seed (not a documented interface)

# the flop_counter helpers training/flops.py calls, and the leading parameters it passes
FLOP_HELPERS = {
    "conv_flop_count": ["x_shape", "w_shape", "out_shape", "transposed"],
    "sdpa_flop": ["query_shape", "key_shape", "value_shape"],
    "sdpa_backward_flop": ["grad_out_shape", "query_shape", "key_shape", "value_shape"],
}

# internal -> why the project needs it
INTERNALS: dict[str, str] = {
    "LightningCLI._run_subcommand": "the one hook around the trainer call, to tell setup errors from training errors",
    "LightningCLI._parser": "a subcommand's parser, to dump the resolved config as config.yaml holds it",
    "torch.ops.aten._fft_r2c, _fft_c2r, _fft_c2c, _scaled_dot_product_flash_attention_for_cpu(_backward)": "the ops "
    "torch's FLOP counter misses (FFTs) or has no formula for (CPU attention): training/flops.py counts them",
    "PL_GLOBAL_SEED (environment variable)": "the run's seed as seed_everything leaves it, which components that "
    "reseed themselves later read (training/rng.py)",
    "jsonargparse._deprecated.JsonargparseDeprecationWarning": "pyproject.toml's pytest filter names the warning class",
    "fit_loop.epoch_loop.batch_progress": "the position within an epoch: started batches, the last batch",
    "fit_loop.epoch_progress.current.processed": "the epoch Lightning gives DistributedSampler.set_epoch",
    "fit_loop.restarted_mid_epoch": "a resumed run gets no on_train_epoch_start for the epoch it resumes in",
    "lightning.fabric.utilities.data._set_sampler_epoch": "set the DDP sampler's epoch before the first iterator",
    "lightning.pytorch.overrides.distributed.UnrepeatedDistributedSampler": "DDP evaluation sees each image once",
    "torch.nn.Module._compiled_call_impl": "whether Module.compile() already ran (no public flag)",
    "torch.utils.flop_counter custom formula `_get_raw`": "FFT FLOPs need the op's arguments, not only shapes",
    "torch.utils.flop_counter.conv_flop_count, sdpa_flop, sdpa_backward_flop (undocumented helpers)": "the "
    "formulas training/flops.py reuses for a grouped convolution's backward and CPU attention, not written again",
    "torchvision.transforms.v2.RandAugment.magnitude (an attribute its forward reads)": "ScaledRandAugment "
    "(data/augment.py) sets it before each call to draw timm's magnitude noise",
    "jsonargparse._common.debug_mode_active": "a one-line error keeps jsonargparse's debug mode (which raises)",
    "argparse.ArgumentParser._option_string_actions": "the options a mistyped one is matched against (did you mean)",
    "torch.cpu._is_avx512_bf16_supported, torch.cpu._is_amx_tile_supported": "whether this CPU computes bf16 "
    "natively (no public probe); elsewhere bf16 autocast is emulated and several times slower than fp32",
}


# ---------------------------------------------------------------------------------------------------- the CLI
class GuardedCLI(LightningCLI):
    """A LightningCLI whose subcommand (``fit``, ``validate``, ...) runs inside :meth:`guard_subcommand`."""

    def _run_subcommand(self, subcommand: str) -> None:  # private in Lightning 2.x: the call of trainer.<subcommand>
        with self.guard_subcommand(subcommand):
            super()._run_subcommand(subcommand)

    @contextlib.contextmanager
    def guard_subcommand(self, subcommand: str) -> Iterator[None]:
        """Override to wrap the trainer's call (default: nothing)."""
        yield

    def subcommand_parser(self, subcommand: str | None) -> LightningArgumentParser:
        """The parser of ``subcommand`` (the top-level one for None): what dumps a config as ``config.yaml`` does."""
        return self._parser(subcommand)  # private in Lightning 2.x; no public way to a subcommand's parser


def run_seed(explicit: int | None = None) -> int:
    """``explicit`` when given, else the seed of the run (``seed_everything``, read from :data:`SEED_ENV`), else 0."""
    if explicit is not None:
        return explicit
    return int(os.environ.get(SEED_ENV, 0))


# the private aten ops the FLOP counter keys its own formulas on (training/flops.py), by their names here
PRIVATE_ATEN_OPS = (
    "_fft_r2c",
    "_fft_c2r",
    "_fft_c2c",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention_for_cpu_backward",
)


def private_aten_op(name: str) -> Any:
    """``torch.ops.aten.<name>`` for one of :data:`PRIVATE_ATEN_OPS`."""
    if name not in PRIVATE_ATEN_OPS:
        raise KeyError(f"{name!r} is not a private aten op listed here; add it to PRIVATE_ATEN_OPS with its reason")
    return getattr(torch.ops.aten, name)


# ---------------------------------------------------------------------------------------------------- the loops
def _batch_progress(trainer: L.Trainer) -> Any:
    return trainer.fit_loop.epoch_loop.batch_progress


def training_started(trainer: L.Trainer) -> bool:
    """Whether any training batch has started in this process (errors after that keep their traceback)."""
    return _batch_progress(trainer).total.started > 0


def at_last_batch(trainer: L.Trainer) -> bool:
    """Whether the training batch just finished is the epoch's last."""
    progress = _batch_progress(trainer)
    return bool(progress.is_last_batch or progress.current.ready >= trainer.num_training_batches)


def in_middle_of_epoch(trainer: L.Trainer | None) -> bool:
    """Whether a checkpoint written now would be in the middle of a training epoch."""
    return trainer is not None and trainer.training and not _batch_progress(trainer).is_last_batch


def epoch_for_sampler(trainer: L.Trainer) -> int:
    """The epoch that the fit loop hands to ``DistributedSampler.set_epoch`` at the start of the next epoch."""
    return trainer.fit_loop.epoch_progress.current.processed


def restarted_mid_epoch(trainer: L.Trainer) -> bool:
    """Whether this fit resumed from a checkpoint written in the middle of an epoch."""
    return bool(trainer.fit_loop.restarted_mid_epoch)


def set_sampler_epoch(loader: torch.utils.data.DataLoader, epoch: int) -> None:
    """Set the epoch on the loader's sampler (and batch sampler), as Lightning does at each epoch start."""
    _set_sampler_epoch(loader, epoch)


# ---------------------------------------------------------------------------------------------------- torch
def is_compiled(module: nn.Module) -> bool:
    """Whether ``module.compile()`` has been called on this module."""
    return module._compiled_call_impl is not None


def option_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every ``--option`` a parser takes, without the dashes."""
    return [o.lstrip("-") for o in parser._option_string_actions if o.startswith("--")]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (x86 AVX512-BF16 or AMX); False where torch cannot say."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def flop_formula_on_raw_args(fn: Callable) -> Callable:
    """Mark a ``FlopCounterMode`` custom formula as taking the op's raw arguments (tensors), not their shapes."""
    fn._get_raw = True
    return fn


# ---------------------------------------------------------------------------------------------------- the check
def check() -> list[str]:
    """The internals above that the installed Lightning and torch no longer have, each named; [] when all are."""
    problems = []
    if not callable(getattr(LightningCLI, "_parser", None)):
        problems.append("LightningCLI._parser(subcommand) is gone")
    for name in PRIVATE_ATEN_OPS:
        if not hasattr(torch.ops.aten, name):
            problems.append(f"torch.ops.aten.{name} is gone: training/flops.py would not count it")
    with contextlib.suppress(ImportError):
        from jsonargparse import _deprecated

        if not hasattr(_deprecated, "JsonargparseDeprecationWarning"):
            problems.append("jsonargparse._deprecated.JsonargparseDeprecationWarning is gone: pyproject's filter fails")
    saved = os.environ.get(SEED_ENV)
    L.seed_everything(1234, verbose=False)
    if os.environ.get(SEED_ENV) != "1234":
        problems.append(f"lightning.seed_everything no longer sets {SEED_ENV}")
    if saved is None:
        os.environ.pop(SEED_ENV, None)
    else:
        L.seed_everything(int(saved), verbose=False)
    run = getattr(LightningCLI, "_run_subcommand", None)
    if run is None or list(inspect.signature(run).parameters) != ["self", "subcommand"]:
        problems.append("LightningCLI._run_subcommand(self, subcommand) is gone or changed")
    if not isinstance(inspect.getattr_static(_FitLoop, "restarted_mid_epoch", None), property):
        problems.append("_FitLoop.restarted_mid_epoch is no longer a property")
    loop = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False).fit_loop
    paths = (
        "epoch_loop.batch_progress.total.started",
        "epoch_loop.batch_progress.current.ready",
        "epoch_loop.batch_progress.is_last_batch",
        "epoch_progress.current.processed",
    )
    for path in paths:
        target: Any = loop
        for part in path.split("."):
            target = getattr(target, part, None)
        if target is None:
            problems.append(f"fit_loop.{path} is gone")
    if list(inspect.signature(_set_sampler_epoch).parameters) != ["dataloader", "epoch"]:
        problems.append("lightning.fabric.utilities.data._set_sampler_epoch(dataloader, epoch) changed")
    if not callable(debug_mode_active):
        problems.append("jsonargparse._common.debug_mode_active is gone")
    probe = argparse.ArgumentParser()
    probe.add_argument("--seen")
    if "--seen" not in getattr(probe, "_option_string_actions", {}):
        problems.append("argparse.ArgumentParser._option_string_actions is gone or changed")
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        if not callable(getattr(torch.cpu, name, None)):
            problems.append(f"torch.cpu.{name} is gone: cpu_has_native_bf16 would always say False")
    if getattr(nn.Linear(1, 1), "_compiled_call_impl", False) is not None:
        problems.append("torch.nn.Module._compiled_call_impl is gone (or no longer None before compile())")
    seen: list[Any] = []

    @flop_formula_on_raw_args
    def formula(a: Any, b: Any, **kwargs: Any) -> int:
        seen.append(a)
        return 0

    with FlopCounterMode(display=False, custom_mapping={torch.ops.aten.mm: formula}):
        torch.ones(2, 2) @ torch.ones(2, 2)
    if not (seen and isinstance(seen[0], torch.Tensor)):
        problems.append("torch.utils.flop_counter no longer passes raw arguments to a formula marked `_get_raw`")
    from torch.utils import flop_counter

    for name, leading in FLOP_HELPERS.items():
        helper = getattr(flop_counter, name, None)
        if not callable(helper) or list(inspect.signature(helper).parameters)[: len(leading)] != leading:
            problems.append(f"torch.utils.flop_counter.{name}({', '.join(leading)}, ...) is gone or changed")
    from torchvision.transforms import v2

    with contextlib.suppress(OSError, TypeError):  # no source to read (a frozen install): nothing to say
        if "self.magnitude" not in inspect.getsource(v2.RandAugment.forward):
            problems.append(
                "torchvision's RandAugment.forward no longer reads self.magnitude: ScaledRandAugment's noise"
            )
    return problems
