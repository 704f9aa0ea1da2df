"""latentgen.common.stats against known truths: hand-computed values, scipy's own intervals, and a Monte-Carlo
coverage check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from latentgen.common.stats import (
    Candidate,
    Estimate,
    Outcome,
    accuracy_interval,
    across_seeds,
    claim_outcome,
    exact_agreement_outcome,
    expected_noisy_accuracy_bias,
    mean_expected_noisy_accuracy_bias,
    normal_quantile,
    not_applicable,
    one_standard_error_choice,
    paired_difference,
    wilson_interval,
)

N = 1000


def paired_vectors(both: int, only_a: int, only_b: int, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of two classifiers on n samples: ``both`` right for both, ``only_a``/``only_b`` discordant."""
    a = np.zeros(n, dtype=bool)
    b = np.zeros(n, dtype=bool)
    a[:both] = b[:both] = True
    a[both : both + only_a] = True
    b[both + only_a : both + only_a + only_b] = True
    return a, b


# --------------------------------------------------------------------------------------------------------------
# Single accuracy
# --------------------------------------------------------------------------------------------------------------


def test_wilson_interval_of_8_of_10_matches_scipy_and_the_hand_value():
    estimate = accuracy_interval([True] * 8 + [False] * 2)
    reference = scipy_stats.binomtest(8, 10).proportion_ci(confidence_level=0.95, method="wilson")
    assert (estimate.low, estimate.high) == pytest.approx((reference.low, reference.high), abs=1e-12)
    assert (estimate.low, estimate.high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert estimate.value == 0.8 and estimate.n == 10
    assert estimate.standard_error == pytest.approx(math.sqrt(0.8 * 0.2 / 10))


def test_wilson_interval_stays_inside_0_1_and_is_not_degenerate_at_the_edges():
    # the normal interval would be [1, 1] here: no uncertainty from 20 samples is not believable
    perfect = accuracy_interval(np.ones(20, dtype=bool))
    assert perfect.high == 1.0 and 0.8 < perfect.low < 1.0
    assert perfect.standard_error == 0.0
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.0 < high < 0.2


def test_accuracy_interval_rejects_scores_passed_as_correctness():
    with pytest.raises(ValueError, match="boolean"):
        accuracy_interval([0.3, 0.9])
    with pytest.raises(ValueError, match="non-empty"):
        accuracy_interval([])


# --------------------------------------------------------------------------------------------------------------
# Paired difference
# --------------------------------------------------------------------------------------------------------------


def test_paired_standard_error_follows_the_discordant_pair_formula():
    # 1,000 samples, 30 discordant pairs: 20 only a gets right, 10 only b
    a, b = paired_vectors(both=700, only_a=20, only_b=10)
    estimate = paired_difference(a, b)
    discordant, net = 30, 10
    expected_se = math.sqrt((discordant - net**2 / N) / (N * (N - 1)))
    assert estimate.value == pytest.approx(0.01)
    assert estimate.standard_error == pytest.approx(expected_se, rel=1e-12)
    half_width = normal_quantile(0.95) * expected_se
    assert (estimate.low, estimate.high) == pytest.approx((0.01 - half_width, 0.01 + half_width))


def test_paired_standard_error_is_far_below_the_unpaired_one():
    a, b = paired_vectors(both=700, only_a=20, only_b=10)
    unpaired = math.hypot(accuracy_interval(a).standard_error, accuracy_interval(b).standard_error)
    assert paired_difference(a, b).standard_error < unpaired / 2


def test_identical_predictions_give_a_zero_width_interval():
    a, _ = paired_vectors(both=800, only_a=0, only_b=0)
    estimate = paired_difference(a, a.copy())
    assert estimate == Estimate(0.0, 0.0, 0.0, 0.0, N)


def test_paired_difference_needs_the_same_samples():
    with pytest.raises(ValueError, match="same samples"):
        paired_difference(np.ones(10, dtype=bool), np.ones(11, dtype=bool))


def test_paired_interval_covers_the_true_difference_at_about_the_nominal_rate():
    # pair categories (both right, only a, only b, both wrong); true difference p(only a) - p(only b) = 0.05
    probabilities = np.array([0.70, 0.10, 0.05, 0.15])
    rng = np.random.default_rng(20240611)
    categories = rng.choice(4, size=(200, N), p=probabilities)
    covered = 0
    for row in categories:
        estimate = paired_difference(np.isin(row, (0, 1)), np.isin(row, (0, 2)))
        covered += estimate.low <= 0.05 <= estimate.high
    assert 0.90 <= covered / 200 <= 0.99


# --------------------------------------------------------------------------------------------------------------
# Claims from synthetic classifiers on 1,000 images
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("only_a", "only_b", "outcome"),
    [
        (40, 35, Outcome.INCONCLUSIVE),  # 0.5 points apart: well within the noise
        (130, 30, Outcome.HOLDS),  # 10 points apart
        (30, 130, Outcome.FAILS),  # reversed
    ],
)
def test_a_better_than_b(only_a, only_b, outcome):
    a, b = paired_vectors(both=600, only_a=only_a, only_b=only_b)
    result = claim_outcome(paired_difference(a, b), threshold=0.0, direction="greater")
    assert result.outcome == outcome
    assert result.value == pytest.approx((only_a - only_b) / N)


def test_less_mirrors_greater():
    a, b = paired_vectors(both=600, only_a=130, only_b=30)
    difference = paired_difference(a, b)
    assert claim_outcome(difference, direction="less").outcome == Outcome.FAILS
    assert claim_outcome(paired_difference(b, a), direction="less").outcome == Outcome.HOLDS


def test_an_interval_ending_at_the_threshold_fails_a_greater_claim():
    assert claim_outcome(Estimate(-0.1, 0.05, -0.2, 0.0, 100)).outcome == Outcome.FAILS


def test_threshold_other_than_zero():
    estimate = accuracy_interval(np.arange(N) < 900)  # 0.9, interval about [0.88, 0.92]
    assert claim_outcome(estimate, threshold=0.85).outcome == Outcome.HOLDS
    assert claim_outcome(estimate, threshold=0.95).outcome == Outcome.FAILS
    assert claim_outcome(estimate, threshold=0.91).outcome == Outcome.INCONCLUSIVE


def test_not_applicable_carries_its_reason_and_nan_is_not_applicable():
    result = not_applicable("no partly corrupted run")
    assert result.outcome == "n/a" and result.reason == "no partly corrupted run"
    assert math.isnan(result.value)
    assert claim_outcome(Estimate(float("nan"), 0.0, 0.0, 0.0, 0)).outcome == Outcome.NOT_APPLICABLE


def test_outcomes_are_the_plain_strings():
    assert Outcome.ALL == ("holds", "fails", "inconclusive", "n/a")


def test_exactness_claims():
    assert exact_agreement_outcome(0, n=N).outcome == Outcome.HOLDS
    assert exact_agreement_outcome(3).outcome == Outcome.FAILS
    assert "3 disagreements" in exact_agreement_outcome(3).reason
    exact = claim_outcome(Estimate(0.0, 0.0, 0.0, 0.0, N), direction="equal")
    assert (exact.outcome, exact.value, exact.standard_error) == (Outcome.HOLDS, 0.0, 0.0)
    assert claim_outcome(Estimate(0.001, 0.001, -0.001, 0.003, N), direction="equal").outcome == Outcome.FAILS


def test_unknown_direction_is_refused():
    with pytest.raises(ValueError, match="direction"):
        claim_outcome(Estimate(0.1, 0.01, 0.08, 0.12, N), direction="above")


# --------------------------------------------------------------------------------------------------------------
# Several seeds
# --------------------------------------------------------------------------------------------------------------


def test_one_seed_keeps_its_own_normal_interval():
    estimate = across_seeds([Estimate(0.8, 0.01, 0.78, 0.82, N)])
    assert estimate.standard_error == pytest.approx(0.01)
    assert estimate.high - estimate.value == pytest.approx(1.959964 * 0.01, rel=1e-6)
    assert estimate.n == 1


def test_identical_seeds_keep_the_test_set_noise():
    # a sample variance of 0 from three seeds does not remove the test-set sampling noise of each
    estimate = across_seeds([(0.8, 0.01)] * 3)
    assert estimate.standard_error == pytest.approx(0.01 / math.sqrt(3))
    # the floor is a known binomial error, not estimated from the three values: a normal quantile
    assert estimate.high - estimate.value == pytest.approx(scipy_stats.norm.ppf(0.975) * 0.01 / math.sqrt(3))


def test_seed_spread_dominates_when_larger():
    values = [0.70, 0.80, 0.90]
    estimate = across_seeds([(value, 0.01) for value in values])
    assert estimate.value == pytest.approx(0.8)
    assert estimate.standard_error == pytest.approx(np.std(values, ddof=1) / math.sqrt(3))


# --------------------------------------------------------------------------------------------------------------
# The held-out choice
# --------------------------------------------------------------------------------------------------------------


def two_candidates(only_complex: int, only_simple: int) -> list[Candidate]:
    simple, complex_ = paired_vectors(both=600, only_a=only_simple, only_b=only_complex)
    return [Candidate("velpic:fc1", simple, simplicity=0), Candidate("masc:fc3", complex_, simplicity=5)]


def test_one_se_rule_prefers_the_simpler_candidate_within_noise():
    choice = one_standard_error_choice(two_candidates(only_complex=20, only_simple=17))  # 0.3 points ahead
    assert choice.best == "masc:fc3"
    assert choice.chosen == "velpic:fc1"
    assert choice.accuracy == pytest.approx(0.617)
    assert choice.standard_error == pytest.approx(math.sqrt(0.617 * 0.383 / N))
    assert choice.paired_standard_error == pytest.approx(paired_difference(*paired_vectors(600, 20, 17)).standard_error)
    assert set(choice.tied) == {"velpic:fc1", "masc:fc3"}


def test_one_se_rule_takes_the_better_candidate_when_clearly_ahead():
    choice = one_standard_error_choice(two_candidates(only_complex=130, only_simple=30))  # 10 points ahead
    assert choice.chosen == choice.best == "masc:fc3"
    assert choice.paired_standard_error == 0.0
    assert choice.tied == ("masc:fc3",)


# --------------------------------------------------------------------------------------------------------------
# Bias of the noisy-label ranking
# --------------------------------------------------------------------------------------------------------------


def test_expected_noisy_accuracy_bias_by_hand():
    # c = 0.4, K = 10, a = 0.8: expected agreement 0.6·0.8 + 0.04 = 0.52; measured 0.60 on 500 held-out samples
    heldout = np.arange(500) < 300
    bias = expected_noisy_accuracy_bias(heldout, test_accuracy=0.8, n_test=N, corruption=0.4, num_classes=10)
    assert bias.value == pytest.approx(0.08)
    expected_se = math.sqrt(0.6 * 0.4 / 500 + 0.6**2 * 0.8 * 0.2 / N)
    assert bias.standard_error == pytest.approx(expected_se)
    assert claim_outcome(bias).outcome == Outcome.HOLDS  # memorizes the slice


def test_corruption_given_as_a_percentage_is_refused():
    with pytest.raises(ValueError, match="fraction"):
        expected_noisy_accuracy_bias(np.ones(10, dtype=bool), 0.8, N, corruption=40, num_classes=10)


def test_mean_bias_uses_the_mean_of_the_standard_errors():
    biases = [Estimate(0.02, 0.01, 0.0, 0.04, 500), Estimate(0.04, 0.03, -0.02, 0.1, 500)]
    mean = mean_expected_noisy_accuracy_bias(biases)
    assert (mean.value, mean.standard_error, mean.n) == pytest.approx((0.03, 0.02, 2))
