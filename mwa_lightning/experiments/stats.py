"""Paired statistics of a study: contrasts between variants on the same test images, with calibrated intervals.

Every run of a study is tested once, on the same test images, and records per image whether it was right
(:mod:`mwa_lightning.experiments.paired`). A contrast compares variants image by image and seed by seed:

- a pair ``a - b``: ``d[s, i] = correct_a[s, i] - correct_b[s, i]``;
- an interaction of a 2 x 2 ``(a - b) - (c - d)``: does the change from b to a add more than from d to c?

Seeds are paired by number (seed k of every variant). The estimate is the mean of ``d`` over the common seeds
and the images, in points of top-1.

**The interval: seeds and images as crossed random factors.** The mean of ``d`` moves for two reasons: another
training run (seed) and another test set drawn from the same population. Model ``d[s, i] = delta + a_s + b_i +
e_si`` with a seed effect ``a`` (variance ``s2_seed``), an image effect ``b`` (``s2_image``) and a residual
(``s2_e``); the mean's variance is ``s2_seed / S + s2_image / N + s2_e / (S N)``. The two-way ANOVA's mean squares
(seeds, images, residual) estimate it without bias (Searle, Casella & McCulloch, *Variance Components*, 1992,
ch. 4) as the sum of two parts: the **seed part** ``MS_seed / (S N)``, the variance of the per-seed means over
``S`` (it holds the residual too), and the **test-set part** ``(MS_image - MS_res) / (S N)``, the image effect
shared by every seed, clipped at 0 as an ANOVA estimate of a variance may not be negative. The seed part is
estimated from ``S`` numbers, so its half-width takes Student's t with ``S - 1`` df (4.30 at 3 seeds, 2.78 at 5);
the test-set part from ``N`` images, so its half-width takes the normal quantile; the 95 % half-width is
``sqrt(t_{S-1}^2 * seed part + z^2 * test-set part)``, the two half-widths added in quadrature.

Why this and not a single t with Satterthwaite's df (Satterthwaite, *Biometrics Bulletin* 2, 1946): at 3-5 seeds the
estimated df rises exactly when the seed part is underestimated, and in the test suite's simulation that interval
covered 91-93 % at 3 seeds; t with ``S - 1`` df on the whole variance covered 98-99.9 %; a percentile bootstrap over
seeds behaves like +-1.96 standard errors and covered about 80 % (issue 29's audit). The quadrature interval
covered 95.0-97.4 % in every setting (3 to 10 seeds, seed:image variance ratios 0.25 to 4, 10-40 % of images
disagreeing; ``tests/experiments/test_stats.py``): a little conservative where the test-set part is large, never
short. The p-value is the level at which the interval's edge reaches 0, so ``p < 0.05`` exactly when the 95 %
interval leaves out 0; p-values are Holm-adjusted across a study's contrasts.

**Per-seed resamples** (a UCR set with ``resample: seed``: each seed trains and tests on its own resample of the
pooled series, so the rows of ``d`` are different series in each seed and the resamples overlap): the per-seed
means are correlated through the shared series, and the variance of their mean is Nadeau & Bengio's corrected
resampled t (*Machine Learning* 52, 2003): ``(1/S + n_test/n_train) var(m_s)``, with ``S - 1`` df.

**Equivalence.** "Level with" needs a bound: with a study margin ``delta`` (points), a contrast is *equivalent
within +-delta* when its 90 % interval lies inside ``(-delta, +delta)`` (two one-sided tests at 5 %, Schuirmann,
1987); otherwise a contrast that is not significant is reported as *no difference detected*, with its interval.

Written here rather than taken from a library: statsmodels' ``MixedLM`` fits crossed random effects only through
variance components over one group, which at 5 seeds x 10,000 images builds a dense 50,000 x 10,000 design and
takes minutes, while the ANOVA estimator is exact for this balanced design and takes a few vectorised lines.
The quantiles are scipy's; Holm's step-down adjustment is written here (``scipy.stats`` has only Benjamini-Hochberg's
false-discovery control); the test suite checks both, and the committed intervals against scipy's own t interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# scipy (about a second to import) is imported by the functions that compute: the study runner's --help and its
# plan do not need it

Pair = tuple[str, str]
Contrast = Pair | tuple[Pair, Pair]  # a - b, or (a - b) - (c - d)
CROSSED, RESAMPLED = "crossed", "resampled"  # the two variance methods (module docstring)
ALPHA = 0.05  # the level of the tests, the 95 % intervals and (two one-sided tests) the 90 % ones

# Planning figures for --dry-run's detectable difference when a study has no committed predictions yet: measured
# on the committed mixer-x-local (5 seeds, 10,000 images; medians over every pair of its 10 variants) by
# ``python -m mwa_lightning.experiments.paired results/mixer-x-local/predictions.csv``.
PLANNING_SEED_STD = 0.0067  # std over seeds of a pair's per-seed difference in top-1 (a fraction)
PLANNING_DISAGREEMENT = 0.20  # fraction of the test images on which exactly one of the two variants is right


@dataclass
class ContrastResult:
    """One contrast: the mean paired difference in top-1 points, its 95 % and 90 % intervals, the t test."""

    name: str
    formula: str
    seeds: int
    images: int
    mean: float  # points of top-1
    low: float  # 95 % interval
    high: float
    low90: float  # 90 % interval (the equivalence test's)
    high90: float
    se: float  # standard error, points
    seed_share: float  # the seed part's share of the variance (the rest: the test set's)
    p: float
    p_holm: float = float("nan")
    method: str = CROSSED
    margin: float = float("nan")  # the study's equivalence margin delta, points (nan: none)

    @property
    def significant(self) -> bool:
        """At the 5 % level, after Holm's adjustment across the study's contrasts."""
        return self.p_holm < ALPHA

    @property
    def equivalent(self) -> bool:
        """The 90 % interval lies inside the study's margin (+-delta)."""
        return not math.isnan(self.margin) and -self.margin < self.low90 and self.high90 < self.margin

    @property
    def verdict(self) -> str:
        if math.isnan(self.p):
            return "not estimable (one seed)"
        within = f"within +-{self.margin:g}" if self.equivalent else ""
        if self.significant:
            return f"difference (Holm), {within}" if within else "difference (Holm)"
        return f"equivalent {within}" if within else "no difference detected"


def interval(low: float, high: float) -> str:
    """An interval as the reports print it, in points: ``[-0.63, +1.34]``."""
    return f"[{low:+.2f}, {high:+.2f}]"


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


def variance_parts(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seed part and the test-set part of the variance of the mean of ``d`` (seeds x images, or a stack
    ``(..., S, N)`` of such), seeds and images crossed random factors (module docstring). NaN for one seed."""
    S, N = d.shape[-2:]
    if S < 2:
        nan = np.full(d.shape[:-2], np.nan)
        return nan, nan
    grand = d.mean((-2, -1), keepdims=True)
    per_seed = d.mean(-1, keepdims=True)  # (..., S, 1)
    per_image = d.mean(-2, keepdims=True)  # (..., 1, N)
    ms_seed = N * ((per_seed - grand) ** 2).sum((-2, -1)) / (S - 1)
    ms_image = S * ((per_image - grand) ** 2).sum((-2, -1)) / (N - 1)
    ms_res = ((d - per_seed - per_image + grand) ** 2).sum((-2, -1)) / ((S - 1) * (N - 1))
    return ms_seed / (S * N), np.maximum(ms_image - ms_res, 0.0) / (S * N)


def half_width(seed_part, image_part, seeds: int, level: float):
    """``sqrt(t_{S-1}^2 * seed part + z^2 * test-set part)`` at a two-sided ``level`` (arrays welcome)."""
    from scipy import stats as sps

    q = 0.5 + level / 2
    return np.sqrt(sps.t.ppf(q, seeds - 1) ** 2 * seed_part + sps.norm.ppf(q) ** 2 * image_part)


def p_value(mean: float, seed_part: float, image_part: float, seeds: int) -> float:
    """Two-sided p of "no difference": one minus the level whose interval's edge reaches 0."""
    from scipy import optimize

    if math.isnan(seed_part):
        return float("nan")
    if seed_part + image_part == 0:
        return 1.0 if mean == 0 else 0.0
    if mean == 0:
        return 1.0
    edge = lambda level: float(half_width(seed_part, image_part, seeds, level)) - abs(mean)  # noqa: E731
    if edge(1 - 1e-15) <= 0:
        return 1e-15
    return 1 - optimize.brentq(edge, 0.0, 1 - 1e-15, xtol=1e-12)


def resampled_variance(per_seed: np.ndarray, train: int, test: int) -> float:
    """Nadeau & Bengio's corrected variance of the mean of per-seed means from overlapping resamples (``S - 1`` df:
    all of it a seed part)."""
    if len(per_seed) < 2:
        return float("nan")
    return float((1 / len(per_seed) + test / train) * np.var(per_seed, ddof=1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error across the contrasts), in the input's order; a NaN
    p-value (a contrast that cannot be tested) stays NaN and does not count."""
    tested = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(tested)
    order = sorted(tested, key=lambda i: p_values[i])
    adjusted = [float("nan")] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def contrast_result(
    name: str,
    contrast: Contrast,
    d: np.ndarray,
    margin: float | None = None,
    resampled: tuple[int, int] | None = None,
) -> ContrastResult:
    """One contrast from its paired differences ``d`` (seeds x images); ``resampled``: (n_train, n_test) when each
    seed has its own resample of the data (rows of ``d`` then pair nothing across seeds)."""
    mean, seeds = float(d.mean()), d.shape[0]
    if resampled is None:
        seed_part, image_part = (float(x) for x in variance_parts(d))
        method = CROSSED
    else:
        seed_part, image_part = resampled_variance(d.mean(1), *resampled), 0.0
        method = RESAMPLED
    h95, h90 = (float(half_width(seed_part, image_part, seeds, level)) for level in (1 - ALPHA, 1 - 2 * ALPHA))
    variance = seed_part + image_part
    return ContrastResult(
        name=name,
        formula=contrast_formula(contrast),
        seeds=seeds,
        images=d.shape[1],
        mean=100 * mean,
        low=100 * (mean - h95),
        high=100 * (mean + h95),
        low90=100 * (mean - h90),
        high90=100 * (mean + h90),
        se=100 * math.sqrt(variance),
        seed_share=seed_part / variance if variance > 0 else float("nan"),
        p=p_value(mean, seed_part, image_part, seeds),
        method=method,
        margin=float("nan") if margin is None else float(margin),
    )


def analyse(
    correct: dict[str, dict[int, np.ndarray]],
    contrasts: dict[str, Contrast],
    margin: float | None = None,
    resampled: dict[str, tuple[int, int]] | None = None,
) -> list[ContrastResult]:
    """Every contrast's estimate, 95 % and 90 % intervals and p-values (Holm-adjusted across ``contrasts``);
    ``margin``: the equivalence margin delta in points; ``resampled``: (n_train, n_test) of the contrasts whose
    seeds each have their own resample."""
    resampled = resampled or {}
    results = [
        contrast_result(name, c, paired_differences(correct, c), margin, resampled.get(name))
        for name, c in contrasts.items()
    ]
    for result, adjusted in zip(results, holm([r.p for r in results]), strict=True):
        result.p_holm = adjusted
    return results


def detectable_difference(
    seeds: int,
    images: int,
    seed_std: float = PLANNING_SEED_STD,
    disagreement: float = PLANNING_DISAGREEMENT,
    alpha: float = ALPHA,
    power: float = 0.8,
    interaction: bool = False,
) -> float:
    """The smallest true difference in top-1 (a fraction) that a pair contrast detects with ``power`` at ``alpha``
    (two-sided), for the interval :func:`analyse` uses.

    Seed part ``seed_std^2 / seeds`` (``seed_std``: the std over seeds of a pair's per-seed difference, which holds
    the training noise of both variants), test-set part ``disagreement / images`` (at most the fraction of images on
    which exactly one of the two is right: conservative); an interaction has twice both. The test rejects when the
    mean passes the quadrature half-width, ``k = sqrt(t_{S-1}^2 w + z^2 (1 - w))`` standard errors (``w``: the seed
    part's share); the power of that cut is taken from the noncentral t with Satterthwaite's df for the two parts
    (about ``seeds - 1`` when the seeds dominate, large when the test set does). Defaults:
    :data:`PLANNING_SEED_STD` and :data:`PLANNING_DISAGREEMENT`."""
    from scipy import optimize
    from scipy import stats as sps

    seed_part, image_part = seed_std**2 / seeds, disagreement / images
    if interaction:
        seed_part, image_part = 2 * seed_part, 2 * image_part
    variance = seed_part + image_part
    df = variance**2 / (seed_part**2 / (seeds - 1) + image_part**2 / (images - 1))
    critical = float(half_width(seed_part, image_part, seeds, 1 - alpha)) / math.sqrt(variance)

    def shortfall(ncp: float) -> float:  # power at noncentrality ncp, minus the power asked for
        wrong_side = np.nan_to_num(sps.nct.cdf(-critical, df, ncp), nan=0.0)  # scipy gives NaN far out in the tail
        return sps.nct.sf(critical, df, ncp) + wrong_side - power

    return optimize.brentq(shortfall, 0.0, 2 * critical + 10) * math.sqrt(variance)


def planning_figures(correct: dict[str, dict[int, np.ndarray]], contrasts: dict[str, Contrast]) -> tuple[float, float]:
    """(seed std of a pair's per-seed difference, disagreement rate), medians over the pair contrasts, measured from
    committed predictions: the figures :func:`detectable_difference` plans with."""
    stds, rates = [], []
    for contrast in contrasts.values():
        if not isinstance(contrast[0], str) or not all(v in correct for v in contrast):
            continue
        if not set(correct[contrast[0]]) & set(correct[contrast[1]]):
            continue
        d = paired_differences(correct, contrast)
        if d.shape[0] >= 2:
            stds.append(float(np.std(d.mean(1), ddof=1)))
        rates.append(float(np.mean(d != 0)))
    if not stds:
        raise ValueError("no pair contrast has two finished seeds: nothing to measure the seed spread from")
    return float(np.median(stds)), float(np.median(rates))
