"""Paired statistics of a study: contrasts between variants on the same test images, with honest intervals.

Every run of a study is tested once, on the same test images, and records per image whether it was right
(:mod:`mwa_lightning.experiments.predictions`). A contrast compares variants image by image and seed by seed:

- a pair ``a - b``: ``d[s, i] = correct_a[s, i] - correct_b[s, i]``;
- an interaction of a 2 x 2 ``(a - b) - (c - d)``: does the change from b to a add more than from d to c?

Seeds are paired by number (seed k of every variant). The estimate is the mean of ``d`` over the common seeds
and the images, in points of top-1. Its 95 % interval comes from a **hierarchical bootstrap**: each replicate
draws the seeds with replacement and, independently, the test images with replacement, so that the interval
covers both sources of noise: another training run (seed) and another test set drawn from the same distribution.
The two-sided bootstrap p-value is Holm-adjusted across the study's contrasts.

No library does a two-level (seeds x items) bootstrap of a paired difference: ``scipy.stats.bootstrap`` resamples
one level of independent observations, so the resampling is written here, in a few vectorised lines. Holm's
step-down adjustment is written here too (``scipy.stats`` has only Benjamini-Hochberg's false-discovery control).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

Pair = tuple[str, str]
Contrast = Pair | tuple[Pair, Pair]  # a - b, or (a - b) - (c - d)


@dataclass
class ContrastResult:
    """One contrast: the mean paired difference in top-1 points, its interval and (adjusted) p-value."""

    name: str
    formula: str
    seeds: int
    images: int
    mean: float  # points of top-1
    low: float
    high: float
    p: float
    p_holm: float = float("nan")

    @property
    def significant(self) -> bool:
        """At the 5 % level, after Holm's adjustment across the study's contrasts."""
        return self.p_holm < 0.05


def contrast_formula(contrast: Contrast) -> str:
    if isinstance(contrast[0], str):
        return f"{contrast[0]} - {contrast[1]}"
    (a, b), (c, d) = contrast
    return f"({a} - {b}) - ({c} - {d})"


def contrast_variants(contrast: Contrast) -> list[str]:
    """The variants a contrast names, in order."""
    return list(contrast) if isinstance(contrast[0], str) else [*contrast[0], *contrast[1]]


def paired_differences(correct: dict[str, dict[int, np.ndarray]], contrast: Contrast) -> np.ndarray:
    """``d[s, i]`` (seeds common to every variant of the contrast x images) as float64 in {-2..2}."""
    names = contrast_variants(contrast)
    seeds = sorted(set.intersection(*(set(correct[n]) for n in names)))
    if not seeds:
        raise ValueError(f"{contrast_formula(contrast)}: no seed has finished for every variant it compares")

    def stack(name: str) -> np.ndarray:
        return np.stack([correct[name][s] for s in seeds]).astype(np.float64)

    if isinstance(contrast[0], str):
        return stack(names[0]) - stack(names[1])
    a, b, c, d = (stack(n) for n in names)
    return (a - b) - (c - d)


def hierarchical_bootstrap(
    d: np.ndarray, replicates: int = 2000, seed: int = 0, chunk: int = 250
) -> tuple[float, np.ndarray]:
    """The mean of ``d`` (seeds x images) and its bootstrap replicates, resampling seeds and images."""
    n_seeds, n_images = d.shape
    rng = np.random.default_rng(seed)
    stats = np.empty(replicates)
    for start in range(0, replicates, chunk):
        k = min(chunk, replicates - start)
        # images: how often each is drawn in each replicate (a multinomial over the test set)
        counts = np.stack([np.bincount(rng.integers(0, n_images, n_images), minlength=n_images) for _ in range(k)])
        per_seed = d @ counts.T.astype(np.float64) / n_images  # (seeds, k): each seed's mean on the drawn images
        drawn = rng.integers(0, n_seeds, (k, n_seeds))  # seeds, with replacement
        stats[start : start + k] = per_seed[drawn, np.arange(k)[:, None]].mean(1)
    return float(d.mean()), stats


def bootstrap_p(replicates: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from the replicates' position around 0."""
    n = len(replicates)
    below = (np.sum(replicates <= 0) + 1) / (n + 1)
    above = (np.sum(replicates >= 0) + 1) / (n + 1)
    return float(min(1.0, 2 * min(below, above)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error across the contrasts), in the input's order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def analyse(
    correct: dict[str, dict[int, np.ndarray]],
    contrasts: dict[str, Contrast],
    replicates: int = 2000,
    seed: int = 0,
) -> list[ContrastResult]:
    """Every contrast's estimate, 95 % interval and p-values (Holm-adjusted across ``contrasts``)."""
    results = []
    for name, contrast in contrasts.items():
        d = paired_differences(correct, contrast)
        mean, stats = hierarchical_bootstrap(d, replicates, seed)
        low, high = np.quantile(stats, [0.025, 0.975])
        results.append(
            ContrastResult(
                name=name,
                formula=contrast_formula(contrast),
                seeds=d.shape[0],
                images=d.shape[1],
                mean=100 * mean,
                low=100 * float(low),
                high=100 * float(high),
                p=bootstrap_p(stats),
            )
        )
    for result, adjusted in zip(results, holm([r.p for r in results]), strict=True):
        result.p_holm = adjusted
    return results


def detectable_difference(
    seeds: int,
    images: int,
    seed_std: float = 0.0056,
    disagreement: float = 0.25,
    alpha: float = 0.05,
    power: float = 0.8,
    interaction: bool = False,
) -> float:
    """The smallest true difference in top-1 (a fraction) that a pair contrast detects with ``power``.

    The paired difference of two variants averaged over ``seeds`` runs each has variance
    ``2 seed_std^2 / seeds`` from training (each variant's own seed-to-seed spread, ``seed_std``) plus
    ``disagreement / images`` from the test set (``disagreement``: the fraction of images on which exactly one
    of the two is right); an interaction has twice both. Defaults: the spread of the committed cifar10-small
    study (0.56 points) and a quarter of the images disagreeing. Conservative: the test-set term is that of one
    pair of runs, part of which is seed noise already counted in the first term, and does not shrink with seeds.
    """
    variance = 2 * seed_std**2 / seeds + disagreement / images
    if interaction:
        variance *= 2
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return z * math.sqrt(variance)
