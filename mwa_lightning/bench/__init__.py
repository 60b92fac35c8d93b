"""Side-by-side benchmarks of the token mixers and the models built on them.

- :mod:`.timing`: round-robin medians (:func:`~.timing.race`), one forward+backward closure
  (:func:`~.timing.train_step`), peak memory of a step (:func:`~.timing.peak_memory`);
- :mod:`.sections`: the sections, each a function of explicit arguments returning rows (notebooks import them);
- :mod:`.tables`: printing and CSV;
- ``mwa-lightning bench``: the command line (:mod:`.__main__`).
"""

from mwa_lightning.bench.sections import (
    bench_flops,
    bench_haar,
    bench_loader,
    bench_mixers,
    bench_models,
    bench_scaling,
    plot_scaling,
)
from mwa_lightning.bench.timing import peak_memory, race, train_step
from mwa_lightning.tables import print_table, write_csv

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
