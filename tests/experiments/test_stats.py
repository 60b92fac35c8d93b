"""The paired statistics: coverage by simulation, power, hand computations, and a peer check against scipy."""

import csv
import math

import numpy as np
import pytest
from scipy import stats as sps

from mwa_lightning.experiments.stats import (
    analyse,
    contrast_result,
    detectable_difference,
    half_width,
    holm,
    paired_differences,
    resampled_variance,
    variance_parts,
)


def draw_differences(rng, draws, seeds, images, ratio, disagreement, delta=0.0, lean=0.6):
    """``draws`` studies' paired differences ``d`` (draws x seeds x images) in {-1, 0, 1} from a crossed model.

    A fresh test set each draw: half the images are contested (the two variants disagree on one with probability
    ``2 * disagreement``, once per run), the rest never disagree; a contested image leans towards ``a`` or ``b`` by
    ``lean`` of its disagreement in every run (the image effect: 7-39 % of the per-image variance, as in the
    committed studies). A seed shifts every contested image's lean by the same amount, drawn normal with variance
    ``ratio`` times one run's test-set variance (``disagreement / images``): ``ratio`` is the seed:image variance
    ratio. ``delta`` is the true difference."""
    q = 2 * disagreement
    contested = rng.random((draws, 1, images)) < 0.5
    side = rng.choice([-1.0, 1.0], (draws, 1, images))
    seed_effect = rng.normal(0.0, math.sqrt(ratio * disagreement / images), (draws, seeds, 1))
    shift = np.clip(lean * q * side + 2 * (delta + seed_effect), -q, q)  # E[d | contested] = shift
    u = rng.random((draws, seeds, images))
    d = np.where(u < (q + shift) / 2, 1.0, np.where(u < q, -1.0, 0.0))
    return np.where(contested, d, 0.0)


def coverage(seeds, ratio, disagreement, draws=2000, images=2000, chunk=250):
    """The fraction of simulated studies whose 95 % interval covers the true difference (0)."""
    rng = np.random.default_rng([seeds, round(100 * ratio), round(100 * disagreement)])
    covered = 0
    for _ in range(draws // chunk):
        d = draw_differences(rng, chunk, seeds, images, ratio, disagreement)
        half = half_width(*variance_parts(d), seeds, 0.95)
        covered += int(np.sum(np.abs(d.mean((1, 2))) <= half))
    return covered / draws


SETTINGS = [(s, r, q) for s in (3, 4, 5, 10) for r in (0.25, 1.0, 4.0) for q in (0.1, 0.25, 0.4)]


@pytest.mark.slow
@pytest.mark.parametrize("seeds,ratio,disagreement", SETTINGS)
def test_the_95_interval_covers_the_true_difference_in_every_setting(seeds, ratio, disagreement):
    """2,000 simulated studies a setting (binomial SE of the coverage 0.5 points): 93-97.5 % in each."""
    rate = coverage(seeds, ratio, disagreement)
    assert 0.93 <= rate <= 0.975, f"{seeds} seeds, ratio {ratio}, disagreement {disagreement}: {rate:.3f}"


@pytest.mark.parametrize("seeds,ratio,disagreement", [(3, 4.0, 0.25), (5, 0.25, 0.1), (10, 1.0, 0.4)])
def test_coverage_fast_twin(seeds, ratio, disagreement):
    """The slow grid's extremes, with 1,000 draws of 500 images (binomial SE 0.7 points)."""
    rate = coverage(seeds, ratio, disagreement, draws=1000, images=500)
    assert 0.925 <= rate <= 0.975, rate


def test_the_old_percentile_bootstrap_would_fail_the_same_check():
    """What the test guards against: +-1.96 standard errors over 3 seeds (the shape of a percentile bootstrap)
    covers far less than 95 % when the seeds dominate."""
    rng = np.random.default_rng(0)
    d = draw_differences(rng, 1000, 3, 500, 4.0, 0.25)
    half = 1.96 * np.sqrt(sum(variance_parts(d)))
    rate = np.mean(np.abs(d.mean((1, 2))) <= half)
    assert rate < 0.9, rate


def test_a_planted_two_point_difference_at_5_seeds_on_10000_images_is_detected_in_most_draws():
    rng = np.random.default_rng(7)
    detected = 0
    for _ in range(4):
        d = draw_differences(rng, 100, 5, 10_000, ratio=2.0, disagreement=0.25, delta=0.02)
        detected += int(np.sum(d.mean((1, 2)) > half_width(*variance_parts(d), 5, 0.95)))
    assert detected / 400 > 0.6, detected / 400


def parts_by_hand(d):
    """The two-way ANOVA of a small table with loops: the seed part and the test-set part of the variance."""
    S, N = len(d), len(d[0])
    g = sum(map(sum, d)) / (S * N)
    rows = [sum(r) / N for r in d]
    cols = [sum(d[s][i] for s in range(S)) / S for i in range(N)]
    ms_s = N * sum((r - g) ** 2 for r in rows) / (S - 1)
    ms_i = S * sum((c - g) ** 2 for c in cols) / (N - 1)
    ms_e = sum((d[s][i] - rows[s] - cols[i] + g) ** 2 for s in range(S) for i in range(N)) / ((S - 1) * (N - 1))
    return ms_s / (S * N), max(ms_i - ms_e, 0) / (S * N)


def test_variance_parts_by_hand():
    d = np.array([[1, 0, 0, 1, -1, 1], [0, 0, 1, 1, 0, 1], [1, -1, 0, 1, 0, 0]], dtype=float)
    seed_part, image_part = variance_parts(d)
    assert (float(seed_part), float(image_part)) == pytest.approx(parts_by_hand(d.tolist()))
    assert float(seed_part) == pytest.approx(np.var(d.mean(1), ddof=1) / 3)  # the per-seed means' variance / S
    assert float(image_part) > 0
    # no image effect (the images' means spread less than the residual): the test-set part is clipped to 0
    flat = np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]])
    assert float(variance_parts(flat)[1]) == 0


def test_the_interval_takes_t_for_the_seeds_and_z_for_the_test_set_and_p_matches_it():
    rng = np.random.default_rng(3)
    d = draw_differences(rng, 1, 4, 300, 1.0, 0.3, delta=0.03)[0]
    r = contrast_result("x", ("a", "b"), d)
    seed_part, image_part = (float(x) for x in variance_parts(d))
    half = math.sqrt(sps.t.ppf(0.975, 3) ** 2 * seed_part + sps.norm.ppf(0.975) ** 2 * image_part)
    assert (r.low, r.high) == pytest.approx((100 * (d.mean() - half), 100 * (d.mean() + half)))
    assert r.seed_share == pytest.approx(seed_part / (seed_part + image_part))
    # the p-value is the level at which the interval's edge reaches 0
    assert float(half_width(seed_part, image_part, 4, 1 - r.p)) == pytest.approx(abs(d.mean()))
    assert (r.p < 0.05) == (r.low > 0 or r.high < 0)
    assert r.low < r.low90 < r.mean < r.high90 < r.high


def test_with_the_seeds_alone_the_interval_is_scipys_t_interval_over_the_per_seed_means():
    """No image effect at all (each image's mean over seeds spreads no more than chance): the interval is the one
    scipy's one-sample t test gives over the per-seed mean differences."""
    d = np.array([[1.0, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]])
    assert float(variance_parts(d)[1]) == 0
    r = contrast_result("x", ("a", "b"), d)
    ci = sps.ttest_1samp(d.mean(1), 0.0).confidence_interval(0.95)
    assert (r.low, r.high) == pytest.approx((100 * ci.low, 100 * ci.high))
    assert r.p == pytest.approx(sps.ttest_1samp(d.mean(1), 0.0).pvalue)


def test_resampled_variance_is_nadeau_bengios_correction():
    per_seed = np.array([0.02, -0.01, 0.00, 0.03, 0.01])
    variance = resampled_variance(per_seed, train=30, test=175)
    assert variance == pytest.approx((1 / 5 + 175 / 30) * np.var(per_seed, ddof=1))
    d = np.repeat(per_seed[:, None], 10, axis=1)  # rows: each seed's own test series, not paired across seeds
    r = contrast_result("x", ("a", "b"), d, resampled=(30, 175))
    half = sps.t.ppf(0.975, 4) * math.sqrt(variance)
    assert r.method == "resampled" and (r.low, r.high) == pytest.approx((100 * (0.01 - half), 100 * (0.01 + half)))


def simulate(rng, shifts: dict[str, float], seeds=5, images=2000, seed_std=0.006):
    """Per-image correctness of each variant and seed: image difficulty shared by all runs, a per-run accuracy
    offset (the seed), and the variant's true shift."""
    difficulty = rng.beta(2.0, 2.0, images)
    out = {}
    for name, shift in shifts.items():
        out[name] = {}
        for s in range(seeds):
            p = np.clip(difficulty + shift + rng.normal(0, seed_std), 0, 1)
            out[name][s] = rng.random(images) < p
    return out


def test_equivalence_needs_the_90_interval_inside_the_margin():
    rng = np.random.default_rng(2)
    correct = simulate(rng, {"a": 0.02, "b": 0.0, "c": 0.0}, images=10_000)
    planted, null = analyse(correct, {"a-b": ("a", "b"), "c-b": ("c", "b")}, margin=1.5)
    assert planted.significant and not planted.equivalent and planted.verdict == "difference (Holm)"
    assert not null.significant and -1.5 < null.low90 and null.high90 < 1.5 and null.equivalent
    assert null.verdict == "equivalent within +-1.5"
    (wide,) = analyse(correct, {"c-b": ("c", "b")}, margin=0.2)
    assert wide.verdict == "no difference detected" and not wide.equivalent
    (none,) = analyse(correct, {"c-b": ("c", "b")})
    assert none.verdict == "no difference detected" and math.isnan(none.margin)


def test_an_interaction_is_the_difference_of_differences():
    rng = np.random.default_rng(3)
    correct = simulate(rng, {"a": 0.03, "b": 0.0, "c": 0.01, "d": 0.01}, images=10_000)
    d = paired_differences(correct, (("a", "b"), ("c", "d")))
    by_hand = np.mean(
        [
            (correct["a"][s].mean() - correct["b"][s].mean()) - (correct["c"][s].mean() - correct["d"][s].mean())
            for s in range(5)
        ]
    )
    assert d.mean() == pytest.approx(by_hand)
    (result,) = analyse(correct, {"x": (("a", "b"), ("c", "d"))})
    assert result.formula == "(a - b) - (c - d)" and result.low > 0 and 1.5 < result.mean < 4.5


def test_only_seeds_every_variant_finished_are_paired():
    correct = {
        "a": {0: np.ones(4, bool), 1: np.ones(4, bool), 2: np.ones(4, bool)},
        "b": {0: np.zeros(4, bool), 2: np.ones(4, bool)},
    }
    d = paired_differences(correct, ("a", "b"))
    assert d.shape == (2, 4) and d.mean() == pytest.approx(0.5)  # seeds 0 and 2: differences 1 and 0


def test_one_seed_is_not_estimable_and_holm_skips_it():
    correct = {"a": {0: np.array([1, 0, 1], bool)}, "b": {0: np.array([0, 0, 1], bool)}}
    (r,) = analyse(correct, {"a-b": ("a", "b")})
    assert math.isnan(r.low) and math.isnan(r.p) and r.verdict == "not estimable (one seed)"


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5] and holm([0.6, 0.7]) == [1.0, 1.0]
    adjusted = holm([0.01, float("nan"), 0.04])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)


def test_detectable_difference_has_the_power_it_promises_in_simulation():
    """Plan with the crossed model's own figures, then simulate studies at the planned difference: about 80 % of
    them find it at 5 %."""
    seeds, images, disagreement, ratio = 4, 2000, 0.25, 2.0
    rng = np.random.default_rng(11)
    null = draw_differences(rng, 400, seeds, images, ratio, disagreement)
    seed_std = float(np.median(np.std(null.mean(2), axis=1, ddof=1)))  # a pair's per-seed difference std
    delta = detectable_difference(seeds, images, seed_std=seed_std, disagreement=disagreement)
    d = draw_differences(rng, 1000, seeds, images, ratio, disagreement, delta=delta)
    power = np.mean(np.abs(d.mean((1, 2))) > half_width(*variance_parts(d), seeds, 0.95))
    assert 0.7 <= power <= 0.92, (delta, power)


def test_detectable_difference_grows_with_few_seeds_beyond_the_normal_approximation():
    se = math.sqrt(0.0167**2 / 3 + 0.25 / 10_000)  # 3 seeds of sequential CIFAR-10's spread, 1.67 points
    assert detectable_difference(3, 10_000, seed_std=0.0167, disagreement=0.25) > 1.5 * (1.959964 + 0.841621) * se
    assert detectable_difference(3, 10_000) > detectable_difference(5, 10_000) > detectable_difference(10, 10_000)
    assert detectable_difference(5, 10_000, interaction=True) > detectable_difference(5, 10_000)


def test_peer_check_on_the_committed_mixer_x_local_against_scipys_own_intervals(monkeypatch):
    """Every committed mixer-x-local contrast against intervals scipy computes (a library nobody here wrote).
    Lower peer: scipy's one-sample t interval over the per-seed differences (the seed part alone). Upper peer:
    that interval and z times scipy's standard error of the per-image means added in quadrature (which counts the
    residual a second time). Ours lies between the two, and within 20 % of the upper peer; the means are
    identical."""
    from mwa_lightning.experiments.paired import read_predictions
    from mwa_lightning.experiments.study import Study
    from tests.helpers import ROOT

    monkeypatch.chdir(ROOT)  # the study file's paths are the repository's
    _, correct = read_predictions(ROOT / "results" / "mixer-x-local" / "predictions.csv")
    contrasts = Study.load("configs/studies/mixer-x-local.yaml").contrasts
    results = analyse(correct, contrasts)
    assert len(results) == 7
    for r, contrast in zip(results, contrasts.values(), strict=True):
        d = paired_differences(correct, contrast)
        t = sps.ttest_1samp(d.mean(1), 0.0).confidence_interval(0.95)
        seed_only = 100 * (t.high - t.low) / 2
        upper = math.sqrt(seed_only**2 + (100 * sps.norm.ppf(0.975) * sps.sem(d.mean(0))) ** 2)
        ours = (r.high - r.low) / 2
        assert r.mean == pytest.approx(100 * (t.low + t.high) / 2), r.name
        assert seed_only - 1e-9 <= ours <= upper + 1e-9, (r.name, seed_only, ours, upper)
        assert ours >= 0.8 * upper, (r.name, ours, upper)


def test_the_paired_command_gives_asked_contrasts_of_a_predictions_file_and_names_a_bad_pair(tmp_path, capsys):
    """``python -m mwa_lightning.experiments.paired PREDICTIONS A:B``: A - B from the committed file, by hand."""
    from mwa_lightning.experiments.paired import main

    # 4 images, 2 seeds: a is right on 3 of 4 in both seeds, b on 1 of 4 and 2 of 4 -> a - b = (50 + 25) / 2 points
    labels = [0, 1, 2, 3]
    columns = {"a+x/seed0": [0, 1, 2, 0], "a+x/seed1": [0, 1, 2, 0], "b/seed0": [0, 0, 0, 0], "b/seed1": [0, 1, 0, 0]}
    lines = ["index,label," + ",".join(columns)]
    lines += [f"{i},{y}," + ",".join(str(c[i]) for c in columns.values()) for i, y in enumerate(labels)]
    path = tmp_path / "predictions.csv"
    path.write_text("\n".join(lines) + "\n")
    assert main([str(path), "a+x:b"]) == 0
    out = capsys.readouterr().out
    assert "| a+x - b | a+x - b | 2 | 4 | +37.50 |" in out and "Holm-adjusted across these 1" in out
    assert "Holm-adjusted across the contrasts asked" in out  # not "this study's contrasts": none were named
    # --out writes them as a study writes its own: contrasts.md, .csv (the figures the docs may quote) and .png
    assert main([str(path), "a+x:b", "--out", str(tmp_path / "asked")]) == 0
    rows = list(csv.DictReader((tmp_path / "asked" / "contrasts.csv").open()))
    assert [(r["name"], float(r["mean"])) for r in rows] == [("a+x - b", 37.5)]
    assert (tmp_path / "asked" / "contrasts.png").stat().st_size > 0
    assert "+37.50" in (tmp_path / "asked" / "contrasts.md").read_text()
    # a variant that is not in the file, or a pair without its colon: one line naming it and the variants there are
    assert main([str(path), "a+x:c"]) == 2
    assert "'a+x:c': no variant 'c'; the variants are a+x, b" in capsys.readouterr().err
    assert main([str(path), "a+x-b"]) == 2
    assert "'a+x-b': not of the form A:B" in capsys.readouterr().err
    assert main([str(tmp_path / "none.csv"), "a+x:b"]) == 2
    assert "no predictions file at" in capsys.readouterr().err
