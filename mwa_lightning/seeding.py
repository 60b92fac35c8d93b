"""The run's seed: one number drives model initialisation, data order and augmentation.

``seed_everything`` (the command line's ``--seed_everything``, default 0) seeds the process and records the
seed in the ``PL_GLOBAL_SEED`` environment variable; every component that reseeds itself later -- the
per-epoch reseeding callback, the training loader's per-pass shuffling -- takes its seed from there unless
given one explicitly.
"""

from __future__ import annotations

import os

SEED_ENV = "PL_GLOBAL_SEED"  # set by lightning.seed_everything


def run_seed(explicit: int | None = None) -> int:
    """``explicit`` when given, else the seed of the run (``seed_everything``), else 0."""
    if explicit is not None:
        return explicit
    return int(os.environ.get(SEED_ENV, 0))
