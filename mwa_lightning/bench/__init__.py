"""Side-by-side benchmarks of the token mixers and the models built on them.

- :mod:`.timing`: round-robin medians (:func:`~.timing.race`), one forward+backward closure
  (:func:`~.timing.train_step`), peak memory of a step (:func:`~.timing.peak_memory`);
- :mod:`.sections`: the sections, each a function of explicit arguments returning rows (notebooks import them);
- :mod:`.tables`: printing and CSV;
- ``mwa-lightning bench``: the command line (:mod:`.__main__`).

The names below are imported on first use (PEP 562): ``bench --help`` answers without importing torch.
"""

from __future__ import annotations

from mwa_lightning.lazy import lazy_exports

_LAZY = {  # name -> the module that defines it
    "bench_flops": "mwa_lightning.bench.sections",
    "bench_haar": "mwa_lightning.bench.sections",
    "bench_loader": "mwa_lightning.bench.sections",
    "bench_mixers": "mwa_lightning.bench.sections",
    "bench_models": "mwa_lightning.bench.sections",
    "bench_scaling": "mwa_lightning.bench.sections",
    "plot_scaling": "mwa_lightning.bench.sections",
    "peak_memory": "mwa_lightning.bench.timing",
    "race": "mwa_lightning.bench.timing",
    "train_step": "mwa_lightning.bench.timing",
    "print_table": "mwa_lightning.tables",
    "write_csv": "mwa_lightning.tables",
}

__all__ = [
    "bench_flops",
    "bench_haar",
    "bench_loader",
    "bench_mixers",
    "bench_models",
    "bench_scaling",
    "peak_memory",
    "plot_scaling",
    "print_table",
    "race",
    "train_step",
    "write_csv",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
