"""Calibration: softmax temperature and biases fitted on out-of-fold scores against the given labels."""

from __future__ import annotations

import numpy as np
import pytest

from latentgen.label_issues import calibrated_probabilities, fit_softmax_calibration, softmax_rows


def _labels_drawn_from(probabilities: np.ndarray, rng) -> np.ndarray:
    cumulative = probabilities.cumsum(axis=1)
    return (rng.random((len(probabilities), 1)) > cumulative).sum(axis=1)


def test_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5000, 4))
    labels = _labels_drawn_from(softmax_rows(2.0 * scores), rng)
    calibration = fit_softmax_calibration(scores, labels, fit_bias=False)
    assert calibration.inverse_temperature == pytest.approx(2.0, rel=0.1)


def test_probabilities_do_not_depend_on_the_scores_scale():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(500, 3))
    labels = _labels_drawn_from(softmax_rows(scores), rng)
    small, _ = calibrated_probabilities(scores, labels)
    large, _ = calibrated_probabilities(1000.0 * scores + 7.0, labels)
    np.testing.assert_allclose(small, large, atol=1e-5)


def test_biases_learn_the_given_labels_class_frequencies():
    labels = np.array([0] * 70 + [1] * 30)
    probabilities, _ = calibrated_probabilities(np.zeros((100, 2)), labels)  # uninformative scores
    np.testing.assert_allclose(probabilities, np.tile([0.7, 0.3], (100, 1)), atol=1e-4)


def test_separable_scores_stay_finite_and_rows_sum_to_one():
    labels = np.arange(60) % 3
    scores = 50.0 * np.eye(3)[labels]  # every label perfectly predicted: the likelihood wants β → ∞
    probabilities, calibration = calibrated_probabilities(scores, labels)
    assert np.isfinite(calibration.inverse_temperature)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities.argmax(axis=1) == labels).all()


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="NaN or infinity"):
        fit_softmax_calibration(np.array([[0.0, np.nan], [1.0, 0.0]]), [0, 1])
