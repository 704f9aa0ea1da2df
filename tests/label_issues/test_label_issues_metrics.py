"""Metrics of flags and rankings against the truly wrong labels, on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from latentgen.label_issues import label_issue_metrics


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
            "average_precision": 5 / 6,
            "auroc": 7 / 8,
            "base_rate": 1 / 3,
            "n_flagged": 2,
            "n": 6,
        }
    )


def test_nothing_flagged_scores_zero_not_nan():
    metrics = label_issue_metrics([True, False, False], [False, False, False], [0.2, 0.5, 0.9])
    assert (metrics["precision"], metrics["recall"], metrics["f1"], metrics["n_flagged"]) == (0.0, 0.0, 0.0, 0)
    assert metrics["average_precision"] == 1.0  # the ranking still puts the wrong label first


def test_rankings_are_undefined_when_every_label_is_right():
    metrics = label_issue_metrics([0, 0, 0], [0, 1, 0], [0.2, 0.5, 0.9])
    assert math.isnan(metrics["average_precision"]) and math.isnan(metrics["auroc"])
    assert metrics["precision"] == 0.0 and metrics["base_rate"] == 0.0


def test_inputs_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="lengths differ"):
        label_issue_metrics([True, False], [True], [0.1, 0.2])
