"""Metrics of flags and rankings against the truly wrong labels, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from latentgen.label_issues import label_issue_metrics
from latentgen.label_issues.metrics import (
    bootstrap_auprc,
    bootstrap_counts,
    paired_auprc_difference,
    weighted_average_precision,
)


def test_hand_computed_case():
    is_wrong = [True, True, False, False, False, False]
    is_flagged = [True, False, True, False, False, False]
    label_score = [0.1, 0.5, 0.3, 0.6, 0.8, 0.9]
    # Suspicion 1 - score ranks the examples 0 (wrong), 2, 1 (wrong), 3, 4, 5.
    # Flags: 1 of 2 flagged is wrong, 1 of 2 wrong is flagged.
    # Average precision: precision 1/1 at the first wrong one, 2/3 at the second: (1 + 2/3) / 2 = 5/6.
    # AUROC: of the 2 x 4 (wrong, right) pairs only (example 1, example 2) is ordered wrongly: 7/8.
    metrics = label_issue_metrics(is_wrong, is_flagged, label_score)
    assert metrics == pytest.approx(
        {
            "precision": 0.5,
            "recall": 0.5,
            "f1": 0.5,
            "auprc": 5 / 6,
            "auroc": 7 / 8,
            "base_rate": 1 / 3,
            "n_flagged": 2,
            "n": 6,
        }
    )


def test_nothing_flagged_scores_zero_not_nan():
    metrics = label_issue_metrics([True, False, False], [False, False, False], [0.2, 0.5, 0.9])
    assert (metrics["precision"], metrics["recall"], metrics["f1"], metrics["n_flagged"]) == (0.0, 0.0, 0.0, 0)
    assert metrics["auprc"] == 1.0  # the ranking still puts the wrong label first


def test_every_metric_is_na_when_every_label_is_right():
    """A run at 0 % corruption: nothing to find, so no precision, recall or ranking; the flags still count."""
    metrics = label_issue_metrics([0, 0, 0], [0, 1, 0], [0.2, 0.5, 0.9])
    for name in ("precision", "recall", "f1", "auprc", "auroc"):
        assert math.isnan(metrics[name]), name
    assert metrics["base_rate"] == 0.0 and metrics["n_flagged"] == 1 and metrics["n"] == 3


def test_inputs_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="lengths differ"):
        label_issue_metrics([True, False], [True], [0.1, 0.2])


# --------------------------------------------------------------------------------------------------------------
# The bootstrap
# --------------------------------------------------------------------------------------------------------------


def test_weighted_average_precision_is_scikit_learns_on_resampled_examples():
    """Counts as weights equal the resample itself, ties included (deep k-NN's scores are tied in groups)."""
    rng = np.random.default_rng(4)
    is_wrong = rng.random(300) < 0.2
    suspicion = np.round(rng.random(300) + 0.5 * is_wrong, 1)  # few distinct values: many ties
    counts = bootstrap_counts(300, resamples=5, seed=1)
    ours = weighted_average_precision(is_wrong, suspicion, counts)
    for row, value in zip(counts, ours):
        drawn = np.repeat(np.arange(300), row)
        assert value == pytest.approx(average_precision_score(is_wrong[drawn], suspicion[drawn]), abs=1e-12)
    unit = weighted_average_precision(is_wrong, suspicion, np.ones((1, 300)))
    assert unit[0] == pytest.approx(average_precision_score(is_wrong, suspicion), abs=1e-12)


def test_hand_case_average_precision_under_weights():
    # Ranked 0 (wrong), 2 (right), 1 (wrong) as in test_hand_computed_case; example 0 not drawn, example 2
    # drawn twice: the first wrong label is example 1 at cumulative weight 2 + 1 = 3, precision 1/3.
    is_wrong = [True, True, False]
    suspicion = [0.9, 0.5, 0.7]
    assert weighted_average_precision(is_wrong, suspicion, [[0, 1, 2]])[0] == pytest.approx(1 / 3)
    assert math.isnan(weighted_average_precision(is_wrong, suspicion, [[0, 0, 3]])[0])  # no wrong label drawn


def test_bootstrap_counts_are_seeded_resamples_of_n():
    counts = bootstrap_counts(50, resamples=20, seed=3)
    assert counts.shape == (20, 50) and (counts.sum(axis=1) == 50).all()
    assert np.array_equal(counts, bootstrap_counts(50, resamples=20, seed=3))
    assert not np.array_equal(counts, bootstrap_counts(50, resamples=20, seed=4))


def test_paired_difference_is_narrower_than_the_unpaired_one():
    """Two rankings that share most of their noise: the paired interval of their AUPRC difference is far
    narrower than the spread of either AUPRC alone, and it excludes 0 for a real improvement."""
    rng = np.random.default_rng(0)
    n = 2000
    is_wrong = rng.random(n) < 0.3
    shared = rng.normal(size=n)
    score_a = 1.0 - (shared + 1.2 * is_wrong)  # label_score: low = suspicious
    score_b = 1.0 - (shared + 0.9 * is_wrong)
    counts = bootstrap_counts(n, resamples=200, seed=0)
    replicates_a, replicates_b = bootstrap_auprc(is_wrong, score_a, counts), bootstrap_auprc(is_wrong, score_b, counts)
    value_a = label_issue_metrics(is_wrong, np.zeros(n, bool), score_a)["auprc"]
    value_b = label_issue_metrics(is_wrong, np.zeros(n, bool), score_b)["auprc"]
    difference = paired_auprc_difference(value_a, value_b, replicates_a, replicates_b)
    assert difference.value == pytest.approx(value_a - value_b)
    assert difference.low <= difference.value <= difference.high
    assert difference.low > 0
    assert difference.standard_error < 0.5 * np.std(replicates_a, ddof=1)
    assert math.isnan(paired_auprc_difference(math.nan, value_b, replicates_a, replicates_b).value)
