"""The paired statistics on synthetic predictions whose answer is known."""

import math

import numpy as np
import pytest

from mwa_lightning.experiments.stats import (
    analyse,
    bootstrap_p,
    detectable_difference,
    hierarchical_bootstrap,
    holm,
    paired_differences,
)


def simulate(rng, shifts: dict[str, float], seeds=5, images=2000, seed_std=0.006):
    """Per-image correctness of each variant and seed: image difficulty shared by all runs (a fresh test set drawn
    from the population each call), a per-run accuracy offset (the seed), and the variant's true shift."""
    difficulty = rng.beta(2.0, 2.0, images)  # P(correct) of an image for a baseline run
    out = {}
    for name, shift in shifts.items():
        out[name] = {}
        for s in range(seeds):
            p = np.clip(difficulty + shift + rng.normal(0, seed_std), 0, 1)
            out[name][s] = rng.random(images) < p
    return out


def test_with_no_true_difference_the_interval_covers_zero_at_about_its_nominal_rate():
    rng = np.random.default_rng(1)
    covered = []
    for repeat in range(150):
        correct = simulate(rng, {"a": 0.0, "b": 0.0})
        (result,) = analyse(correct, {"a-b": ("a", "b")}, replicates=400, seed=repeat)
        covered.append(result.low <= 0 <= result.high)
    rate = np.mean(covered)
    assert 0.88 <= rate <= 0.995, rate  # nominal 0.95; 150 repeats: +-0.035 at two binomial SEs


def test_a_planted_two_point_difference_is_detected():
    rng = np.random.default_rng(2)
    correct = simulate(rng, {"a": 0.02, "b": 0.0, "c": 0.0}, images=10_000)
    results = analyse(correct, {"a-b": ("a", "b"), "c-b": ("c", "b")}, replicates=1000)
    planted, null = results
    assert 1.0 < planted.mean < 3.0 and planted.low > 0 and planted.significant
    assert null.low < 0 < null.high and not null.significant
    assert planted.seeds == 5 and planted.images == 10_000


def test_an_interaction_is_the_difference_of_differences():
    rng = np.random.default_rng(3)
    # the change b -> a adds 3 points, d -> c adds 0: interaction 3 points
    correct = simulate(rng, {"a": 0.03, "b": 0.0, "c": 0.01, "d": 0.01}, images=10_000)
    d = paired_differences(correct, (("a", "b"), ("c", "d")))
    by_hand = np.mean(
        [
            (correct["a"][s].mean() - correct["b"][s].mean()) - (correct["c"][s].mean() - correct["d"][s].mean())
            for s in range(5)
        ]
    )
    assert d.mean() == pytest.approx(by_hand)
    (result,) = analyse(correct, {"x": (("a", "b"), ("c", "d"))}, replicates=1000)
    assert result.formula == "(a - b) - (c - d)" and result.low > 0 and 1.5 < result.mean < 4.5


def test_only_seeds_every_variant_finished_are_paired():
    correct = {
        "a": {0: np.ones(4, bool), 1: np.ones(4, bool), 2: np.ones(4, bool)},
        "b": {0: np.zeros(4, bool), 2: np.ones(4, bool)},
    }
    d = paired_differences(correct, ("a", "b"))
    assert d.shape == (2, 4) and d.mean() == pytest.approx(0.5)  # seeds 0 and 2: differences 1 and 0


def test_the_bootstrap_resamples_both_levels():
    # all variation between seeds, none within: the replicates spread by the seeds alone
    d = np.repeat(np.array([[0.0], [1.0]]), 50, axis=1)
    mean, stats = hierarchical_bootstrap(d, replicates=2000, seed=0)
    assert mean == 0.5 and set(np.round(stats, 6)) <= {0.0, 0.5, 1.0} and 0.2 < np.mean(stats == 0.5) < 0.8
    # no variation between seeds: the images' spread alone
    d = np.tile((np.arange(100) % 2).astype(float), (3, 1))
    _, stats = hierarchical_bootstrap(d, replicates=2000, seed=0)
    assert stats.std() == pytest.approx(0.5 / math.sqrt(100), rel=0.15)


def test_p_values_and_holm_by_hand():
    assert bootstrap_p(np.array([1.0, 2.0, 3.0])) == pytest.approx(2 * 1 / 4)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5] and holm([0.6, 0.7]) == [1.0, 1.0]


def test_detectable_difference_by_hand():
    # 5 seeds of std 0.56 points, 10,000 images a quarter of which disagree, alpha 0.05, power 0.8
    se = math.sqrt(2 * 0.0056**2 / 5 + 0.25 / 10_000)
    assert detectable_difference(5, 10_000) == pytest.approx((1.959964 + 0.841621) * se, rel=1e-5)
    assert detectable_difference(5, 10_000, interaction=True) == pytest.approx(
        math.sqrt(2) * detectable_difference(5, 10_000)
    )
    assert detectable_difference(8, 10_000) < detectable_difference(5, 10_000) < detectable_difference(5, 1_000)
